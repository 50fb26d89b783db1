import { timingSafeEqual } from 'node:crypto';
import { TenantSchema } from '../progress/schema.js';
import { OPEN_CALLER, OPEN_READER, hasScope } from './caller.js';
import type { Caller, Scope } from './caller.js';
import { findToken } from './credentials.js';
import type { Credentials } from './credentials.js';
import { authRefusal } from './errors.js';
import { TokenVerifier } from './tokens.js';
import type { TokenSettings } from './tokens.js';

export interface AuthSettings extends TokenSettings {
  /** False: the server runs open (no AUTH_* setting); reads and writes need no token. */
  enabled: boolean;
  /** The service credential: publishes and starts books, for the tenant named in X-Tenant. */
  publishToken: string | null;
}

/** The header naming the tenant a PUBLISH_TOKEN request acts for. */
export const TENANT_HEADER = 'x-tenant';

/** What the service credential may do: write, for one tenant at a time. */
const SERVICE_SCOPES: ReadonlySet<Scope> = new Set<Scope>(['progress:write', 'books:write']);

/**
 * Who a request is: the one entry point of every HTTP route, the fast poll path and the
 * WebSocket upgrade. Never falls back to anonymous when a token is missing, bad or expired.
 */
export class Authenticator {
  readonly enabled: boolean;
  readonly #publishToken: Buffer | null;
  readonly #tokens: TokenVerifier | null;

  constructor(settings: AuthSettings) {
    this.enabled = settings.enabled;
    this.#publishToken = settings.publishToken === null ? null : Buffer.from(settings.publishToken);
    this.#tokens = settings.enabled ? new TokenVerifier(settings) : null;
  }

  /** The caller, or throws a Refusal (see authRefusal). `tenant`: the X-Tenant header, for PUBLISH_TOKEN requests. */
  async authenticate(credentials: Credentials, tenant?: string): Promise<Caller> {
    const { token } = findToken(credentials);
    const known = this.#withoutVerifying(token, tenant);
    if (known !== undefined) return known;
    return (this.#tokens as TokenVerifier).verify(token as string);
  }

  /**
   * The same answer when it needs no signature check (open mode, a token verified before);
   * undefined when authenticate() must run. Never throws: the slow path says why it refuses.
   */
  cachedCaller(credentials: Credentials): Caller | undefined {
    try {
      const { token } = findToken(credentials);
      return this.#withoutVerifying(token, undefined) ?? this.#tokens?.cached(token as string);
    } catch {
      return undefined;
    }
  }

  #withoutVerifying(token: string | 'malformed' | null, tenant: string | undefined): Caller | undefined {
    if (!this.enabled) {
      // Open: a token matters only as PUBLISH_TOKEN, which guards writes when set.
      if (this.#publishToken === null) return OPEN_CALLER;
      return token !== null && token !== 'malformed' && this.#isPublishToken(token) ? OPEN_CALLER : OPEN_READER;
    }
    if (token === 'malformed') throw authRefusal('invalid_token', 'the Authorization header must be "Bearer <token>"');
    const service = token !== null && this.#isPublishToken(token);
    if (token === null) throw authRefusal('unauthorized', 'this endpoint needs a token: Authorization: Bearer <token>, the booksai_token cookie, or ?access_token=');
    if (!service) return undefined;
    if (tenant === undefined || !TenantSchema.safeParse(tenant).success || !/^[\x20-\x7e]+$/.test(tenant)) {
      throw authRefusal('tenant_required', 'a PUBLISH_TOKEN request names its tenant in the X-Tenant header: 1-256 printable ASCII characters');
    }
    return Object.freeze({ sub: 'publish-token', tenant, anyTenant: false, scopes: SERVICE_SCOPES, books: null, expiresAt: null });
  }

  #isPublishToken(token: string): boolean {
    const expected = this.#publishToken;
    // The length first: a user's JWT (never as long as the secret, most of the time) costs no Buffer.
    if (expected === null || Buffer.byteLength(token) !== expected.length) return false;
    const given = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

/** Throws unless the caller has `scope`: 401 for an anonymous caller, 403 for a token without it. */
export function requireScope(caller: Caller, scope: Scope): void {
  if (hasScope(caller, scope)) return;
  if (caller.sub === null) throw authRefusal('unauthorized', 'this endpoint needs Authorization: Bearer <PUBLISH_TOKEN>');
  throw authRefusal('insufficient_scope', `this endpoint needs the "${scope}" scope`);
}
