import { watch } from './client.js';
import type { BookProgress, Watching } from './client.js';
import { chapterTextView, savedChapter } from './chapter-text.js';
import { showConnection } from './connection.js';
import { byId, el, serverBase } from './dom.js';
import { apiFetch, loadSession, may, pastedToken, staleAfterMs } from './session.js';
import { SteadyEnd, bookName, counters, eta, joined, percent, stalledAt, stalledText } from './format.js';
import { StepTimes, renderSteps } from './steps.js';
import type { TimelineStep } from './steps.js';
import { bookActions, progressBar, setProgress, statusText } from './widgets.js';
import type { BookActions } from './widgets.js';

interface Chapter {
  number: number;
  title: string;
  content: string;
}

interface BookAnswer {
  title: string;
  run: string | null;
  chapters: Chapter[];
}

const bookId = decodeURIComponent(location.pathname.split('/').pop() ?? '');
const bar = progressBar('Book progress');
byId('bar-slot').append(bar);
const times = new StepTimes();
const shownChapters = new Set<number>();
let lastChapterFetch = -1;
let latest: BookProgress | null = null;
let managed = false;
let actions: BookActions | null = null;
let watching: Watching | null = null;
let timelineStep: string | null = null;
const steadyEnd = new SteadyEnd();
const steadyLate = new SteadyEnd();

/** The header and the tab: the book's title, or its id when it has none. */
function showName(title: string): void {
  const name = bookName(title, bookId);
  byId('title').textContent = name;
  document.title = `${name} · booksai-progress`;
}

/** The status line: status, percent, ETA or stalled, the parts that apply joined by " · ". */
function renderSummary(progress: BookProgress): void {
  const stalled = stalledAt(progress, staleAfterMs());
  const parts: Array<[string, string]> = [
    ['status', statusText(progress.status)],
    ['percent', percent(progress)],
    // "done" says again what "Complete" said: the list's ETA column keeps it.
    ['eta', stalled === undefined && progress.status !== 'COMPLETE' ? eta(progress, Date.now(), { end: steadyEnd.at(), late: steadyLate.at() }) : ''],
    ['stalled', stalled === undefined ? '' : stalledText(stalled)],
  ];
  const shown = parts.filter(([, text]) => text !== '');
  byId('summary').replaceChildren(...shown.flatMap(([id, text], i) => [...(i > 0 ? [' · '] : []), el('span', { id, ...(id === 'stalled' ? { class: 'stalled' } : {}) }, text)]));
  byId('summary').toggleAttribute('data-stalled', stalled !== undefined);
  byId('summary').title = joined(shown.map(([, text]) => text));
}

function render(progress: BookProgress): void {
  latest = progress;
  steadyEnd.set(progress.estimatedEndTime);
  steadyLate.set(progress.estimatedEndTimeLate);
  times.observe(progress);
  setProgress(bar, progress);
  renderSummary(progress);
  byId('counters').textContent = counters(progress);
  byId('message').textContent = progress.message;
  const error = byId('error');
  error.hidden = progress.status !== 'ERROR';
  error.textContent = progress.status === 'ERROR' ? `Generation failed: ${progress.error ?? 'unknown error'}` : '';
  actions?.update(progress, managed);
  renderSteps(byId('steps'), progress, times);
  // A step ended that the page did not see start (or the run ended): the recorded timeline knows.
  if (timelineStep !== progress.generationStep) void loadTimeline(progress.generationStep);
  const written = progress.status === 'COMPLETE' ? progress.totalChapters : progress.currentSection >= progress.totalSections ? progress.currentChapter : progress.currentChapter - 1;
  if (written > lastChapterFetch || progress.status !== 'GENERATING') void loadChapters(written);
}

async function loadTimeline(step: string): Promise<void> {
  timelineStep = step;
  try {
    const res = await apiFetch(`api/books/${encodeURIComponent(bookId)}/timeline`);
    if (!res.ok) return; // none recorded yet: the steps this page sees are timed
    times.record(((await res.json()) as { data: { steps: TimelineStep[] } }).data.steps);
    if (latest) renderSteps(byId('steps'), latest, times);
  } catch {
    // Times come with the next step.
  }
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

/** The book's row (title, run, chapters); null when there is no such book (or the caller may not see it). */
async function fetchBook(): Promise<BookAnswer | null | 'failed'> {
  try {
    const res = await apiFetch(`api/books/${encodeURIComponent(bookId)}`);
    if (res.status === 404 || res.status === 400) return null;
    if (!res.ok) return 'failed';
    return ((await res.json()) as { data: BookAnswer }).data;
  } catch {
    return 'failed';
  }
}

async function loadChapters(written: number): Promise<void> {
  lastChapterFetch = Math.max(lastChapterFetch, written);
  const book = await fetchBook();
  if (book === null || book === 'failed') return; // chapters come with the next update
  showName(book.title);
  managed = book.run !== null;
  actions?.update(latest, managed);
  renderChapters(book.chapters);
}

/** Nothing by this id for this caller: say so, and watch nothing. */
function showNotFound(): void {
  document.body.dataset.book = 'not-found';
  byId('title').textContent = 'Book not found';
  document.title = 'Not found · booksai-progress';
  const connection = byId('connection');
  connection.dataset.state = 'closed';
  connection.textContent = '';
  byId('not-found').hidden = false;
  byId('not-found-id').textContent = bookId;
}

/** The chapter being written, above the saved ones. */
const live = chapterTextView();
byId('chapters').closest('section')?.before(live.element);

function startWatching(): void {
  watching?.close();
  const token = pastedToken();
  watching = watch([bookId], (progress) => {
    render(progress);
    live.onProgress(progress);
  }, { baseUrl: serverBase(), text: true, onText: live.onText, onChapterSaved: () => void loadChapters(lastChapterFetch + 1), onConnection: (state) => showConnection(byId('connection'), state), ...(token ? { token } : {}) });
}

// A silent book turns stalled, and the ETA counts down, with the clock alone.
setInterval(() => {
  if (latest) renderSummary(latest);
}, 1_000);

showName('');
const session = await loadSession();
if (session.state === 'signed-in') {
  const book = await fetchBook();
  // A book whose row the database has not got yet may already have a state: the poll knows.
  const known = book !== null || (await apiFetch(`api/ai/progress/${encodeURIComponent(bookId)}`).then((res) => res.ok, () => true));
  if (!known) showNotFound();
  else {
    document.body.dataset.book = 'found';
    if (book !== null && book !== 'failed') {
      showName(book.title);
      managed = book.run !== null;
      renderChapters(book.chapters);
    }
    if (may('books:write')) {
      // After a retry the book runs again: the finished watch starts over.
      actions = bookActions(bookId, bookName(book !== null && book !== 'failed' ? book.title : '', bookId), (path) => apiFetch(path, { method: 'POST' }), (action) => {
        if (action === 'retry') startWatching();
      });
      actions.update(latest, managed);
      byId('actions-slot').append(actions.element);
    }
    startWatching();
  }
} else if (session.state === 'unreachable') {
  const connection = byId('connection');
  connection.dataset.state = 'offline';
  connection.textContent = 'Offline';
  byId('summary').textContent = `The server did not answer: ${session.reason}. Reload to try again.`;
}
