import { watch } from './client.js';
import type { BookProgress } from './client.js';
import { showConnection } from './connection.js';
import { byId, el, serverBase } from './dom.js';
import { apiFetch, pastedToken } from './session.js';
import { STEP_LABELS, eta } from './format.js';
import { progressBar, setProgress, statusText } from './widgets.js';

interface BookSummary {
  bookId: string;
  title: string;
  progress: BookProgress | null;
}

interface Row {
  element: HTMLTableRowElement;
  status: HTMLElement;
  step: HTMLElement;
  bar: HTMLElement;
  message: HTMLElement;
  eta: HTMLElement;
  progress: BookProgress | null;
}

const rows = new Map<string, Row>();
const tbody = byId('books').querySelector('tbody') as HTMLTableSectionElement;
const connection = byId('connection');

function addRow(book: BookSummary, atTop: boolean): Row {
  const existing = rows.get(book.bookId);
  if (existing) return existing;
  const link = el('a', { href: `book/${encodeURIComponent(book.bookId)}` }, book.title || book.bookId);
  const row: Row = {
    element: el('tr', { 'data-book-id': book.bookId }),
    status: el('td'),
    step: el('td'),
    bar: progressBar(`Progress of ${book.title || book.bookId}`),
    message: el('td', { class: 'message' }),
    eta: el('td'),
    progress: null,
  };
  row.element.append(el('td', {}, link), row.status, row.step, el('td', {}, row.bar), row.message, row.eta);
  if (atTop) tbody.prepend(row.element);
  else tbody.append(row.element);
  rows.set(book.bookId, row);
  byId('empty').hidden = true;
  if (book.progress) update(book.progress);
  return row;
}

function update(progress: BookProgress): void {
  const row = rows.get(progress.bookId);
  if (!row) {
    void fetchAndAdd(progress.bookId, progress);
    return;
  }
  if (row.progress && row.progress.version >= progress.version) return;
  row.progress = progress;
  row.status.textContent = statusText(progress.status);
  row.step.textContent = STEP_LABELS[progress.generationStep];
  setProgress(row.bar, progress);
  row.message.textContent = progress.status === 'ERROR' ? (progress.error ?? progress.message) : progress.message;
  row.eta.textContent = eta(progress);
}

/** A book started elsewhere: its title comes from the books API. */
async function fetchAndAdd(bookId: string, progress: BookProgress): Promise<void> {
  let title = bookId;
  try {
    const res = await apiFetch(`api/books/${encodeURIComponent(bookId)}`);
    if (res.ok) title = ((await res.json()) as { data: { title: string } }).data.title;
  } catch {
    // Title unknown for now: the id stands in.
  }
  addRow({ bookId, title, progress: null }, true);
  update(progress);
}

async function loadBooks(): Promise<void> {
  const res = await apiFetch('api/books');
  if (!res.ok) return;
  const body = (await res.json()) as { data: BookSummary[] };
  for (const book of body.data) addRow(book, false);
}

byId<HTMLFormElement>('new-book').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target as HTMLFormElement);
  const errorBox = byId('form-error');
  errorBox.textContent = '';
  const res = await apiFetch('api/books', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      title: String(form.get('title') ?? ''),
      chapters: Number(form.get('chapters')),
      sectionsPerChapter: Number(form.get('sectionsPerChapter')),
    }),
  });
  const body = (await res.json()) as { data?: { bookId: string; title: string }; error?: { message: string } };
  if (!res.ok || !body.data) {
    errorBox.textContent = body.error?.message ?? `request failed (${res.status})`;
    return;
  }
  addRow({ bookId: body.data.bookId, title: body.data.title, progress: null }, true);
});

// ETAs count down between updates.
setInterval(() => {
  for (const row of rows.values()) if (row.progress) row.eta.textContent = eta(row.progress);
}, 1_000);

await loadBooks().catch(() => undefined);
const token = pastedToken();
watch('all', update, { baseUrl: serverBase(), onConnection: (state) => showConnection(connection, state), ...(token ? { token } : {}) });
