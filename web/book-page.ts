import { watch } from './client.js';
import type { BookProgress } from './client.js';
import { chapterTextView, savedChapter } from './chapter-text.js';
import { showConnection } from './connection.js';
import { byId, el, serverBase } from './dom.js';
import { apiFetch, pastedToken } from './session.js';
import { STEP_LABELS, duration, eta, percent } from './format.js';
import { progressBar, setProgress, statusText } from './widgets.js';

const STEPS = Object.keys(STEP_LABELS) as Array<BookProgress['generationStep']>;

interface Chapter {
  number: number;
  title: string;
  content: string;
}

const bookId = decodeURIComponent(location.pathname.split('/').pop() ?? '');
const bar = progressBar('Book progress');
byId('bar-slot').append(bar);
/** When each step was first seen, from the states' timestamps: the timeline's durations. */
const stepStarted = new Map<string, number>();
const shownChapters = new Set<number>();
let lastChapterFetch = -1;

function renderSteps(progress: BookProgress): void {
  const current = STEPS.indexOf(progress.generationStep);
  if (!stepStarted.has(progress.generationStep)) stepStarted.set(progress.generationStep, progress.timestamp);
  const list = byId('steps');
  list.replaceChildren(
    ...STEPS.map((step, i) => {
      const state = progress.status === 'COMPLETE' || i < current ? 'done' : i === current ? 'current' : 'todo';
      const item = el('li', { 'data-step': step, 'data-state': state }, STEP_LABELS[step]);
      if (state === 'current') item.setAttribute('aria-current', 'step');
      const started = stepStarted.get(step);
      const next = STEPS.slice(i + 1).map((s) => stepStarted.get(s)).find((t) => t !== undefined);
      if (started !== undefined && next !== undefined && step !== 'COMPLETE') item.append(el('span', { class: 'took' }, `took ${duration(next - started)}`));
      return item;
    }),
  );
}

function render(progress: BookProgress): void {
  setProgress(bar, progress);
  byId('status').textContent = statusText(progress.status);
  byId('percent').textContent = percent(progress);
  byId('eta').textContent = eta(progress);
  const sections = progress.totalSections > 0 ? ` · Section ${progress.currentSection} of ${progress.totalSections}` : '';
  byId('counters').textContent = progress.totalChapters > 0 ? `Chapter ${progress.currentChapter} of ${progress.totalChapters}${sections}` : '';
  byId('message').textContent = progress.message;
  const error = byId('error');
  error.hidden = progress.status !== 'ERROR';
  error.textContent = progress.status === 'ERROR' ? `Generation failed: ${progress.error ?? 'unknown error'}` : '';
  renderSteps(progress);
  const written = progress.status === 'COMPLETE' ? progress.totalChapters : progress.currentSection >= progress.totalSections ? progress.currentChapter : progress.currentChapter - 1;
  if (written > lastChapterFetch || progress.status !== 'GENERATING') void loadChapters(written);
}

function renderChapters(chapters: Chapter[]): void {
  const box = byId('chapters');
  for (const chapter of chapters) {
    if (shownChapters.has(chapter.number)) continue;
    shownChapters.add(chapter.number);
    box.append(savedChapter(chapter));
  }
  byId('no-chapters').hidden = shownChapters.size > 0;
}

async function loadChapters(written: number): Promise<void> {
  lastChapterFetch = Math.max(lastChapterFetch, written);
  try {
    const res = await apiFetch(`api/books/${encodeURIComponent(bookId)}`);
    if (!res.ok) return;
    const body = (await res.json()) as { data: { title: string; chapters: Chapter[] } };
    byId('title').textContent = body.data.title;
    document.title = `${body.data.title} · booksai-progress`;
    renderChapters(body.data.chapters);
  } catch {
    // Chapters come with the next update.
  }
}

byId('title').textContent = bookId;
void loadChapters(0);
const token = pastedToken();
const live = chapterTextView();
byId('chapters').closest('section')?.before(live.element);
const onProgress = (progress: BookProgress) => {
  render(progress);
  live.onProgress(progress);
};
watch([bookId], onProgress, { baseUrl: serverBase(), text: true, onText: live.onText, onChapterSaved: () => void loadChapters(lastChapterFetch + 1), onConnection: (state) => showConnection(byId('connection'), state), ...(token ? { token } : {}) });
