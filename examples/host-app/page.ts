// The host app's page, in the browser: starts books on the progress server and shows every book
// of the signed-in user's tenant live. The progress server is on another origin; the browser
// sends it the HttpOnly `booksai_token` cookie the host app set (credentials: 'include',
// withCredentials), and the server's CORS_ORIGINS lets this page read the answers.
import { watch } from '../../web/client.js';
import type { BookProgress } from '../../web/client.js';

const meta = (name: string) => (document.querySelector(`meta[name="${name}"]`) as HTMLMetaElement).content;
const progressUrl = meta('progress-url');
/** Renew the token's cookie this often (a third of its lifetime), so open streams reconnect with a valid one. */
const renewMs = Number(meta('token-renew-ms'));

interface Row {
  title: HTMLElement;
  bar: HTMLProgressElement;
  percent: HTMLElement;
  status: HTMLElement;
  version: number;
}

const rows = new Map<string, Row>();
const list = document.getElementById('books') as HTMLUListElement;

/** fetch to the progress server with the user's cookie; a 401 means the token is gone: renew it or sign in again. */
async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(`${progressUrl}${path}`, { ...init, credentials: 'include' });
  if (res.status === 401) await renewToken();
  return res;
}

async function renewToken(): Promise<void> {
  const res = await fetch('/session/refresh', { method: 'POST' });
  if (res.status === 401) location.assign('/'); // the host app's session ended: its sign-in form
}

function text(tag: string, className: string, content = ''): HTMLElement {
  const element = document.createElement(tag);
  element.className = className;
  element.textContent = content; // text, never HTML: titles and messages come from users
  return element;
}

function row(bookId: string, title?: string): Row {
  let found = rows.get(bookId);
  if (!found) {
    const item = document.createElement('li');
    item.dataset.bookId = bookId;
    const bar = document.createElement('progress');
    bar.max = 100;
    bar.value = 0;
    found = { title: text('span', 'title', title ?? bookId), bar, percent: text('span', 'percent', '0 %'), status: text('span', 'status'), version: 0 };
    bar.setAttribute('aria-label', `Progress of ${found.title.textContent}`);
    item.append(found.title, bar, found.percent, found.status);
    list.prepend(item);
    rows.set(bookId, found);
    (document.getElementById('empty') as HTMLElement).hidden = true;
    if (title === undefined) void fillTitle(bookId, found);
  }
  if (title !== undefined) found.title.textContent = title;
  return found;
}

/** A book started elsewhere (another tab): its title comes from the books API. */
async function fillTitle(bookId: string, target: Row): Promise<void> {
  const res = await api(`/api/books/${encodeURIComponent(bookId)}`).catch(() => null);
  if (res?.ok) target.title.textContent = ((await res.json()) as { data: { title: string } }).data.title;
}

function show(progress: BookProgress): void {
  const target = row(progress.bookId);
  if (progress.version <= target.version) return;
  target.version = progress.version;
  target.bar.value = progress.overallProgress;
  target.percent.textContent = `${Math.round(progress.overallProgress)} %`;
  target.status.textContent = progress.status;
  target.status.title = progress.status === 'ERROR' ? (progress.error ?? progress.message) : progress.message;
}

(document.getElementById('start') as HTMLFormElement).addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target as HTMLFormElement);
  const error = document.getElementById('error') as HTMLElement;
  error.textContent = '';
  // JSON makes this a non-simple request: the browser asks the server first (a preflight), which
  // answers only for origins in CORS_ORIGINS, so no other site can start books with the cookie.
  const res = await api('/api/books', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ title: String(form.get('title') ?? ''), chapters: Number(form.get('chapters')), sectionsPerChapter: 1 }),
  }).catch(() => null);
  const body = res ? ((await res.json().catch(() => ({}))) as { data?: { bookId: string; title: string }; error?: { message: string } }) : {};
  if (!res?.ok || !body.data) {
    error.textContent = body.error?.message ?? 'The progress server did not answer.';
    return;
  }
  row(body.data.bookId, body.data.title);
});

// The books so far, with their titles; then every state of every book of the tenant, live
// (the stream's first states and the list overlap: show() keeps the newest version).
const res = await api('/api/books').catch(() => null);
if (res?.ok) for (const book of ((await res.json()) as { data: Array<{ bookId: string; title: string; progress: BookProgress | null }> }).data.reverse()) {
  row(book.bookId, book.title);
  if (book.progress) show(book.progress);
}
const connection = document.getElementById('connection') as HTMLElement;
watch('all', show, {
  baseUrl: progressUrl,
  withCredentials: true,
  onConnection: (state) => (connection.textContent = state),
});

setInterval(() => void renewToken(), renewMs);
// After a laptop's sleep the timer may be late: renew at once when the tab shows again.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') void renewToken();
});
