import { byId, el } from './dom.js';

/** Where a token pasted into the sign-in box is kept: this tab only, gone when it closes. */
const STORAGE_KEY = 'booksai_token';

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
  if (res.status === 401) showSignIn(token !== null);
  return res;
}

/** The sign-in box: a token pasted there is used for this tab's requests and streams. */
function showSignIn(rejected: boolean): void {
  const box = byId('sign-in');
  if (!box.hidden) return;
  const input = el('input', { name: 'token', type: 'password', autocomplete: 'off', required: '', 'aria-label': 'Access token' });
  const form = el(
    'form',
    {},
    el('h2', {}, 'Sign in'),
    el('p', { class: 'muted' }, rejected ? 'The token was refused (expired or not valid). Paste a new one.' : 'This server needs a token. Paste the one your app gave you.'),
    input,
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
