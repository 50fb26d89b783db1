import { byId, el } from './dom.js';

/** Where a token pasted into the sign-in box is kept: this tab only, gone when it closes. */
const STORAGE_KEY = 'booksai_token';

/** What `GET /api/session` answers: who this page is signed in as, and what it may do. */
export interface SessionInfo {
  auth: boolean;
  sub: string | null;
  tenant: string | null;
  scopes: string[];
  expiresAt: number | null;
  staleAfterSeconds: number;
}

/**
 * signed-in: a valid token (or authentication off: `auth` false); signed-out: the server needs
 * a token and has none; refused: the token given was expired or not valid; unreachable: no answer.
 */
export type Session =
  | { state: 'signed-in'; info: SessionInfo }
  | { state: 'signed-out' | 'refused'; reason: string }
  | { state: 'unreachable'; reason: string };

/** Until /api/session says otherwise: the server's default. */
const DEFAULT_STALE_AFTER_SECONDS = 120;

let current: Session | null = null;

/**
 * The token pasted into the sign-in box, if any. Pages the host app serves next to its
 * `booksai_token` cookie need none: the browser sends the cookie itself (HttpOnly: no script reads it).
 */
export function pastedToken(): string | null {
  return sessionStorage.getItem(STORAGE_KEY);
}

/** fetch, with the pasted token; a 401 shows the sign-in box. */
export async function apiFetch(url: string, init: RequestInit = {}): Promise<Response> {
  const token = pastedToken();
  const headers = { ...(init.headers as Record<string, string> | undefined), ...(token ? { Authorization: `Bearer ${token}` } : {}) };
  const res = await fetch(url, { ...init, headers });
  if (res.status === 401) {
    const reason = await res.clone().json().then((b: { error?: { message?: string } }) => b.error?.message ?? '', () => '');
    signedOut({ state: token !== null ? 'refused' : 'signed-out', reason });
  }
  return res;
}

/** Asks the server who this page is; the answer decides what the page shows. */
export async function loadSession(): Promise<Session> {
  try {
    const res = await apiFetch('api/session');
    if (res.status === 401) return current ?? { state: 'signed-out', reason: '' };
    if (!res.ok) return (current = { state: 'unreachable', reason: `the server answered ${res.status}` });
    const body = (await res.json()) as { data: SessionInfo };
    current = { state: 'signed-in', info: body.data };
    showWho(body.data);
    return current;
  } catch {
    return (current = { state: 'unreachable', reason: 'the server did not answer' });
  }
}

/** Whether the signed-in caller's token allows `scope` (admin allows every one). */
export function may(scope: string): boolean {
  return current?.state === 'signed-in' && current.info.scopes.includes(scope);
}

export function staleAfterMs(): number {
  return (current?.state === 'signed-in' ? current.info.staleAfterSeconds : DEFAULT_STALE_AFTER_SECONDS) * 1000;
}

/** The page says it is signed out (or its token was refused), asks for a token, and hides the rest. */
function signedOut(session: Session & { state: 'signed-out' | 'refused' }): void {
  current = session;
  document.body.dataset.session = 'signed-out';
  const connection = document.getElementById('connection');
  if (connection) {
    connection.dataset.state = 'signed-out';
    connection.textContent = session.state === 'refused' ? 'Token refused' : 'Signed out';
  }
  document.getElementById('who')?.replaceChildren();
  showSignIn(session);
}

/** Signed in: who (sub, tenant), and a way to sign out of a pasted token. */
function showWho(info: SessionInfo): void {
  document.body.dataset.session = 'signed-in';
  const who = document.getElementById('who');
  if (!who) return;
  if (!info.auth) {
    who.replaceChildren(el('span', { class: 'muted' }, 'Authentication off'));
    return;
  }
  const name = el('span', { 'data-sub': info.sub ?? '' }, `Signed in as ${info.sub ?? 'publisher'}`);
  const parts: Array<Node | string> = [name];
  if (info.tenant !== null) parts.push(' · ', el('span', { 'data-tenant': info.tenant }, `tenant ${info.tenant}`));
  if (pastedToken() !== null) {
    const out = el('button', { type: 'button', class: 'link', id: 'sign-out' }, 'Sign out');
    out.addEventListener('click', () => {
      sessionStorage.removeItem(STORAGE_KEY);
      location.reload();
    });
    parts.push(' ', out);
  } else {
    parts.push(el('span', { class: 'muted' }, ' (by your app’s sign-in)'));
  }
  who.replaceChildren(...parts);
}

/** The sign-in box: a token pasted there is used for this tab's requests and streams. */
function showSignIn(session: { state: 'signed-out' | 'refused'; reason: string }): void {
  const box = byId('sign-in');
  if (!box.hidden) return;
  const input = el('input', { name: 'token', type: 'password', autocomplete: 'off', required: '', 'aria-label': 'Access token' });
  const why =
    session.state === 'refused'
      ? `The token was refused${session.reason ? ` (${session.reason})` : ''}. Paste a new one.`
      : 'This server needs a token to show books. Paste the one your app gave you.';
  const form = el(
    'form',
    {},
    el('h2', {}, session.state === 'refused' ? 'Sign in again' : 'Sign in'),
    el('p', { class: 'muted' }, why),
    el('label', {}, 'Access token', input),
    el('button', { type: 'submit' }, 'Use token'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(STORAGE_KEY, input.value.trim());
    location.reload();
  });
  box.replaceChildren(form);
  box.hidden = false;
}
