/** The cookie the host app sets (HttpOnly) with the user's token. */
export const TOKEN_COOKIE = 'booksai_token';
/** The query parameter for clients that cannot send headers (EventSource). */
export const TOKEN_QUERY_PARAMETER = 'access_token';

/** Where a request may carry its token, as raw strings (the HTTP layers read them). */
export interface Credentials {
  authorization?: string | undefined;
  cookie?: string | undefined;
  /** The `access_token` query parameter. */
  accessToken?: string | null | undefined;
}

/**
 * Where a request carries its token: its Authorization and Cookie headers (as Node parses them)
 * and `query`, the URL's search part when it has one.
 */
export function credentialsOf(headers: { authorization?: string | undefined; cookie?: string | undefined }, query: URLSearchParams | null): Credentials {
  return { authorization: headers.authorization, cookie: headers.cookie, accessToken: query?.get(TOKEN_QUERY_PARAMETER) };
}

/**
 * The request's token, from the first place that has one: `Authorization: Bearer`, the
 * `booksai_token` cookie, then `?access_token=`; and where it came from (a cookie is sent by the
 * browser on its own, so a write it authorizes must come from a trusted page). A present but
 * malformed Authorization header is 'malformed', never skipped for the next place; none at all is null.
 */
export function findToken(credentials: Credentials): { token: string | 'malformed' | null; from: 'header' | 'cookie' | 'query' | null } {
  const { authorization } = credentials;
  if (authorization !== undefined) return { token: bearerToken(authorization), from: 'header' };
  const fromCookie = credentials.cookie === undefined ? null : cookieValue(credentials.cookie, TOKEN_COOKIE);
  if (fromCookie !== null) return { token: fromCookie, from: 'cookie' };
  const fromQuery = credentials.accessToken;
  if (fromQuery === undefined || fromQuery === null || fromQuery === '') return { token: null, from: null };
  return { token: fromQuery, from: 'query' };
}

const BEARER = /^Bearer +([^\s]+) *$/i;

/**
 * The token of `Authorization: Bearer <token>`, or 'malformed'. The common spelling (`Bearer `,
 * one space, printable ASCII after it) is read without a regex, since every request of a poller
 * carrying a token passes here; anything else goes through the full pattern.
 */
function bearerToken(header: string): string {
  if (header.startsWith('Bearer ') && header.length > 7) {
    let plain = true;
    for (let i = 7; i < header.length; i++) {
      const code = header.charCodeAt(i);
      if (code <= 0x20 || code >= 0x7f) {
        plain = false;
        break;
      }
    }
    if (plain) return header.slice(7);
  }
  const match = BEARER.exec(header);
  return match ? (match[1] as string) : 'malformed';
}

/** One cookie's value from a Cookie header; null when absent or empty. */
function cookieValue(header: string, name: string): string | null {
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1 || part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    return value === '' ? null : value;
  }
  return null;
}
