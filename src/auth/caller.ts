import type { Writer } from '../progress/tracker.js';

/** What a token may do; `admin` also reads and writes across tenants and reads `/metrics`. */
export const SCOPES = ['progress:read', 'progress:write', 'books:write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** The scope a token has when its `scope` claim is absent. */
export const DEFAULT_SCOPE: Scope = 'progress:read';

/**
 * Who is asking, as the verified token (or the open mode) says. Every read and write path asks
 * `mayRead` / `hasScope` / `writerOf` with it: one place decides.
 */
export interface Caller {
  /** The user (`sub`); null in open mode. */
  readonly sub: string | null;
  /** The caller's tenant; null in open mode, where every book is readable. */
  readonly tenant: string | null;
  /** Admins and the open mode read and write across tenants. */
  readonly anyTenant: boolean;
  readonly scopes: ReadonlySet<Scope>;
  /** The `books` claim: reads are limited to these books of the tenant. Null: every book of it. */
  readonly books: ReadonlySet<string> | null;
  /** When the token expires (ms since the epoch); null when it never does (open mode, PUBLISH_TOKEN). */
  readonly expiresAt: number | null;
}

/** The caller of a server without authentication: reads and writes everything. */
export const OPEN_CALLER: Caller = Object.freeze({
  sub: null,
  tenant: null,
  anyTenant: true,
  scopes: new Set<Scope>(SCOPES),
  books: null,
  expiresAt: null,
});

/** A server that guards writes with PUBLISH_TOKEN only: whoever lacks the token may read. */
export const OPEN_READER: Caller = Object.freeze({ ...OPEN_CALLER, scopes: new Set<Scope>(['progress:read']) });

export function hasScope(caller: Caller, scope: Scope): boolean {
  return caller.scopes.has(scope) || caller.scopes.has('admin');
}

/**
 * Whether the caller may read this book, whose state names `tenant` (undefined: a book
 * without one, which only admins read once authentication is on).
 */
export function mayRead(caller: Caller, bookId: string, tenant: string | undefined): boolean {
  if (!hasScope(caller, 'progress:read')) return false;
  if (caller.anyTenant) return true;
  return tenant === caller.tenant && (caller.books === null || caller.books.has(bookId));
}

/**
 * Whether the caller may watch (stream, subscribe to) a book whose current state is `latest`
 * (null: it has none yet). Without authentication a stream may wait for a book's first state;
 * with it, a book without one is refused as missing, so that a refusal never tells a book of
 * another tenant from one that does not exist.
 */
export function mayWatch(caller: Caller, bookId: string, latest: { readonly tenant: string | undefined } | null): boolean {
  return latest === null ? caller.anyTenant : mayRead(caller, bookId, latest.tenant);
}

/** Whether the caller may change a book of `tenant` (cancel, retry): its own tenant's, or any as admin. */
export function mayWrite(caller: Caller, tenant: string | undefined): boolean {
  return caller.anyTenant || tenant === caller.tenant;
}

/** The caller as the tracker sees a writer: the tenant new books get, and whether it may write others'. */
export function writerOf(caller: Caller): Writer {
  return { tenant: caller.tenant, anyTenant: caller.anyTenant };
}
