import { createRemoteJWKSet, errors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { BookIdSchema, TenantSchema } from '../progress/schema.js';
import { DEFAULT_SCOPE, SCOPES } from './caller.js';
import type { Caller, Scope } from './caller.js';
import { Refusal } from '../refusal.js';
import { authRefusal } from './errors.js';

/** Algorithms a JWK Set may sign with; a shared secret signs with HS256 only. */
export const JWKS_ALGORITHMS = ['RS256', 'ES256', 'EdDSA', 'Ed25519'];
/** Verified tokens kept for their lifetime, so a poller's token every 3 s costs one verification. */
export const MAX_CACHED_TOKENS = 10_000;
/** The most book ids a `books` claim may list. */
export const MAX_BOOKS_CLAIM = 1_000;
/** How long a JWK Set fetch may take; a new `kid` refetches the set at most this often. */
const JWKS_TIMEOUT_MS = 2_000;
const JWKS_COOLDOWN_MS = 5_000;
/**
 * Clock skew allowed for `nbf` and `iat` (a token minted on a host whose clock runs a little
 * ahead is valid at once); none for `exp`, so a stream ends exactly when its token does.
 */
export const CLOCK_TOLERANCE_SECONDS = 5;

export interface TokenSettings {
  /** HS256 secrets, the current first; empty when only a JWK Set is trusted. */
  secrets: readonly string[];
  jwksUrl: string | null;
  issuer: string | null;
  audience: string | null;
}

const ClaimsSchema = z.object({
  sub: TenantSchema,
  exp: z.number(),
  tenant: TenantSchema.optional(),
  scope: z.string().max(4_096).optional(),
  books: z.array(BookIdSchema).max(MAX_BOOKS_CLAIM).optional(),
});

interface CachedCaller {
  readonly caller: Caller;
  /** The insertion count when it was (re)inserted. */
  readonly at: number;
}

/** The JWK Set could not be fetched: not the client's fault. */
class JwksUnavailableError extends Error {
  override readonly name = 'JwksUnavailableError';
}

/**
 * Verifies JWTs with jose. The algorithm comes from the configuration, never from the token:
 * a secret allows HS256 only, a JWK Set its asymmetric algorithms only, `none` never. A token
 * verified once is cached by its string until its `exp` (bounded).
 */
export class TokenVerifier {
  readonly #secrets: Uint8Array[];
  readonly #jwks: JWTVerifyGetKey | null;
  readonly #options: { issuer?: string; audience?: string };
  /** Verified tokens in least-recently-refreshed order (eviction takes the first). */
  readonly #cache = new Map<string, CachedCaller>();
  /** Counts insertions: an entry's `at` says how many came after it. */
  #inserted = 0;

  constructor(settings: TokenSettings) {
    this.#secrets = settings.secrets.map((secret) => new TextEncoder().encode(secret));
    this.#jwks = settings.jwksUrl === null ? null : remoteKeys(new URL(settings.jwksUrl));
    this.#options = {
      ...(settings.issuer === null ? {} : { issuer: settings.issuer }),
      ...(settings.audience === null ? {} : { audience: settings.audience }),
    };
  }

  /** The caller of a token verified before and not expired; undefined otherwise (then call verify). */
  cached(token: string, now = Date.now()): Caller | undefined {
    const entry = this.#cache.get(token);
    if (entry === undefined) return undefined;
    if ((entry.caller.expiresAt as number) <= now) {
      this.#cache.delete(token);
      return undefined;
    }
    // A hit costs one lookup. Only an entry in the older half is moved to the end (delete and
    // set), so a token in use is never the next evicted, without reordering the Map on every
    // request of a poller.
    if (this.#inserted - entry.at > MAX_CACHED_TOKENS / 2) this.#insert(token, entry.caller);
    return entry.caller;
  }

  #insert(token: string, caller: Caller): void {
    this.#cache.delete(token);
    if (this.#cache.size >= MAX_CACHED_TOKENS) this.#cache.delete(this.#cache.keys().next().value as string);
    this.#cache.set(token, { caller, at: ++this.#inserted });
  }

  /** The caller the token names; throws a Refusal `invalid_token` (or `auth_unavailable`). */
  async verify(token: string): Promise<Caller> {
    const hit = this.cached(token);
    if (hit) return hit;
    const payload = await this.#verifySignature(token);
    const caller = callerOf(payload);
    this.#insert(token, caller);
    return caller;
  }

  async #verifySignature(token: string): Promise<JWTPayload> {
    const common = { ...this.#options, requiredClaims: ['sub', 'exp'], clockTolerance: CLOCK_TOLERANCE_SECONDS };
    let failure: unknown = authRefusal('invalid_token', 'the token is not valid');
    try {
      // HS256 tokens go to the secrets, others to the JWK Set: each with only its own algorithms.
      const symmetric = headerAlgorithm(token) === 'HS256';
      if (symmetric || this.#jwks === null) {
        for (const secret of this.#secrets) {
          try {
            return (await jwtVerify(token, secret, { ...common, algorithms: ['HS256'] })).payload;
          } catch (error) {
            failure = error;
            // Another secret (during rotation) may have signed it; any other failure is final.
            if (!(error instanceof errors.JWSSignatureVerificationFailed)) break;
          }
        }
        throw failure;
      }
      return (await jwtVerify(token, this.#jwks, { ...common, algorithms: JWKS_ALGORITHMS })).payload;
    } catch (error) {
      throw asRefusal(error);
    }
  }
}

/** The header's `alg`, or null when the token is not a readable JWS. */
function headerAlgorithm(token: string): string | null {
  const head = token.split('.', 1)[0] as string;
  try {
    const header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8')) as { alg?: unknown };
    return typeof header.alg === 'string' ? header.alg : null;
  } catch {
    return null;
  }
}

function remoteKeys(url: URL): JWTVerifyGetKey {
  const keys = createRemoteJWKSet(url, { timeoutDuration: JWKS_TIMEOUT_MS, cooldownDuration: JWKS_COOLDOWN_MS });
  return async (header, token) => {
    try {
      return await keys(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
      throw new JwksUnavailableError((error as Error).message);
    }
  };
}

/** The message may say "expired" or "not yet valid"; never why a signature failed. */
function asRefusal(error: unknown): Refusal {
  if (error instanceof Refusal) return error;
  if (error instanceof JwksUnavailableError) return authRefusal('auth_unavailable', 'the signing keys cannot be fetched; retry later');
  if (error instanceof errors.JWTExpired) return authRefusal('invalid_token', 'the token has expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return authRefusal('invalid_token', 'the token is not valid yet');
    return authRefusal('invalid_token', `the token's "${error.claim}" claim is missing or not accepted`);
  }
  return authRefusal('invalid_token', 'the token is not valid');
}

function callerOf(payload: JWTPayload): Caller {
  const claims = ClaimsSchema.safeParse(payload);
  if (!claims.success) {
    const issue = claims.error.issues[0];
    throw authRefusal('invalid_token', `the token's "${issue?.path.join('.') || 'payload'}" claim is not valid`);
  }
  const { sub, exp, tenant, scope, books } = claims.data;
  const now = Date.now();
  // The tolerance given to jose is for nbf; exp gets none.
  if (exp * 1000 <= now) throw authRefusal('invalid_token', 'the token has expired');
  // jose checks iat only against a maximum age: one from the future is a token not valid yet.
  if (typeof payload.iat === 'number' && (payload.iat - CLOCK_TOLERANCE_SECONDS) * 1000 > now) throw authRefusal('invalid_token', 'the token is not valid yet');
  const scopes = new Set<Scope>();
  for (const name of (scope ?? DEFAULT_SCOPE).split(' ')) if ((SCOPES as readonly string[]).includes(name)) scopes.add(name as Scope);
  return Object.freeze({
    sub,
    tenant: tenant ?? sub,
    anyTenant: scopes.has('admin'),
    scopes,
    books: books === undefined ? null : new Set(books),
    expiresAt: exp * 1000,
  });
}
