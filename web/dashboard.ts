import { watch } from './client.js';
import type { BookProgress } from './client.js';
import { showConnection } from './connection.js';
import { byId, el, serverBase } from './dom.js';
import { apiFetch, loadSession, may, pastedToken, staleAfterMs } from './session.js';
import { STEP_LABELS, bookName, eta, stalledAt, stalledText } from './format.js';
import { bookActions, progressBar, setProgress, statusText } from './widgets.js';
import type { BookActions } from './widgets.js';

interface BookSummary {
  bookId: string;
  title: string;
  /** Where the book stands in our generation queue; null: an outside worker publishes it. */
  run: string | null;
  progress: BookProgress | null;
}

interface Row {
  element: HTMLTableRowElement;
  status: HTMLElement;
  step: HTMLElement;
  bar: HTMLElement;
  message: HTMLElement;
  eta: HTMLElement;
  actions: BookActions | null;
  managed: boolean;
  progress: BookProgress | null;
}

const rows = new Map<string, Row>();
const tbody = byId('books').querySelector('tbody') as HTMLTableSectionElement;
const connection = byId('connection');
const listState = byId('list-state');

const post = (path: string) => apiFetch(path, { method: 'POST' });

/** What the list says when it shows no rows: loading, empty (with what to do), or why it failed. */
function showListState(state: 'loading' | 'empty' | 'error' | 'none', detail = ''): void {
  listState.dataset.state = state;
  listState.hidden = state === 'none';
  byId('books').hidden = state !== 'none';
  if (state === 'loading') listState.replaceChildren(el('p', {}, 'Loading books…'));
  if (state === 'empty') {
    const hint = may('books:write') ? 'Start a demo book above, or publish one from a worker.' : 'Books appear here as soon as a worker publishes progress for one.';
    listState.replaceChildren(el('p', { class: 'lead' }, 'No books yet'), el('p', { class: 'muted' }, hint));
  }
  if (state === 'error') {
    const again = el('button', { type: 'button' }, 'Try again');
    again.addEventListener('click', () => location.reload());
    listState.replaceChildren(el('p', { class: 'lead error-text' }, 'The books could not be loaded'), el('p', { class: 'muted' }, detail.charAt(0).toUpperCase() + detail.slice(1)), again);
  }
}

function addRow(book: BookSummary, atTop: boolean): Row {
  const existing = rows.get(book.bookId);
  if (existing) return existing;
  const name = bookName(book.title, book.bookId);
  const link = el('a', { href: `book/${encodeURIComponent(book.bookId)}` }, name);
  const cell = (label: string, ...children: Array<Node | string>) => el('td', { 'data-label': label }, ...children);
  const row: Row = {
    element: el('tr', { 'data-book-id': book.bookId }),
    status: cell('Status'),
    step: cell('Step'),
    bar: progressBar(`Progress of ${name}`),
    message: el('td', { class: 'message', 'data-label': 'Message' }),
    eta: cell('ETA'),
    actions: may('books:write') ? bookActions(book.bookId, name, post) : null,
    managed: book.run !== null,
    progress: null,
  };
  const title = el('td', { class: 'title', 'data-label': 'Title' }, link);
  if (!book.title) title.append(el('span', { class: 'muted untitled' }, ' (no title)'));
  row.element.append(title, row.status, row.step, cell('Progress', row.bar), row.message, row.eta, cell('', ...(row.actions ? [row.actions.element] : [])));
  if (atTop) tbody.prepend(row.element);
  else tbody.append(row.element);
  rows.set(book.bookId, row);
  showListState('none');
  row.actions?.update(null, row.managed);
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
  row.step.textContent = STEP_LABELS[progress.generationStep];
  setProgress(row.bar, progress);
  row.message.textContent = progress.status === 'ERROR' ? (progress.error ?? progress.message) : progress.message;
  row.actions?.update(progress, row.managed);
  tick(row);
}

/** What changes with the clock alone: the ETA counting down, and a book going stalled. */
function tick(row: Row): void {
  const progress = row.progress;
  if (!progress) return;
  const stalled = stalledAt(progress, staleAfterMs());
  row.element.toggleAttribute('data-stalled', stalled !== undefined);
  row.status.replaceChildren(statusText(progress.status), ...(stalled !== undefined ? [el('span', { class: 'stalled' }, stalledText(stalled))] : []));
  row.eta.textContent = stalled !== undefined ? '' : eta(progress);
}

/** A book started elsewhere: its title comes from the books API. */
async function fetchAndAdd(bookId: string, progress: BookProgress): Promise<void> {
  let book: BookSummary = { bookId, title: '', run: null, progress: null };
  try {
    const res = await apiFetch(`api/books/${encodeURIComponent(bookId)}`);
    if (res.ok) book = { ...((await res.json()) as { data: BookSummary }).data, progress: null };
  } catch {
    // Title unknown for now: the id stands in.
  }
  addRow(book, true);
  update(progress);
}

async function loadBooks(): Promise<boolean> {
  if (rows.size === 0) showListState('loading');
  try {
    const res = await apiFetch('api/books');
    if (res.status === 401) return false;
    if (!res.ok) {
      const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
      showListState('error', body.error?.message ?? `The server answered ${res.status}.`);
      return true;
    }
    const body = (await res.json()) as { data: BookSummary[] };
    for (const book of body.data) addRow(book, false);
    if (rows.size === 0) showListState('empty');
  } catch {
    showListState('error', 'The server did not answer. Check that it runs, then try again.');
  }
  return true;
}

byId<HTMLFormElement>('new-book').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target as HTMLFormElement);
  const errorBox = byId('form-error');
  errorBox.textContent = '';
  let res: Response;
  try {
    res = await apiFetch('api/books', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        title: String(form.get('title') ?? ''),
        chapters: Number(form.get('chapters')),
        sectionsPerChapter: Number(form.get('sectionsPerChapter')),
      }),
    });
  } catch {
    errorBox.textContent = 'The server did not answer: try again.';
    return;
  }
  if (res.status === 401) return; // the page now asks for sign-in
  const body = (await res.json().catch(() => ({}))) as { data?: { bookId: string; title: string }; error?: { message: string } };
  if (!res.ok || !body.data) {
    errorBox.textContent = body.error?.message ?? `request failed (${res.status})`;
    return;
  }
  addRow({ bookId: body.data.bookId, title: body.data.title, run: 'queued', progress: null }, true);
});

// ETAs count down between updates, and a silent book turns stalled.
setInterval(() => {
  for (const row of rows.values()) tick(row);
}, 1_000);

const session = await loadSession();
if (session.state === 'signed-in') {
  // Start needs books:write; a reader sees the list only.
  byId('new-book').hidden = !may('books:write');
  if (await loadBooks()) {
    const token = pastedToken();
    watch('all', update, { baseUrl: serverBase(), delta: true, onConnection: (state) => showConnection(connection, state), ...(token ? { token } : {}) });
  }
} else if (session.state === 'unreachable') {
  connection.dataset.state = 'offline';
  connection.textContent = 'Offline';
  showListState('error', `${session.reason}. Check that it runs, then reload.`);
}
