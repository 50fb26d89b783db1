import { SignJWT } from 'jose';
import type { JWTPayload } from 'jose';

/** The HS256 secret of the test servers: 32 bytes, the shortest the server accepts. */
export const TEST_SECRET = 'test-secret-of-exactly-32-bytes!';

export interface TokenClaims extends JWTPayload {
  tenant?: string;
  scope?: string;
  books?: string[];
}

/**
 * A token as the host app would mint it, with jose: HS256 with `secret`, `exp` `ttlSeconds`
 * from now (negative: already expired). Claims given as undefined are left out.
 */
export async function mintToken(claims: TokenClaims, options: { secret?: string; ttlSeconds?: number } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: JWTPayload = { iat: now, exp: now + (options.ttlSeconds ?? 600), ...claims };
  for (const key of Object.keys(payload)) if (payload[key] === undefined) delete payload[key];
  return new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(options.secret ?? TEST_SECRET));
}

/** Bearer headers for `token`, merged into `headers`. */
export function bearer(token: string, headers: Record<string, string> = {}): Record<string, string> {
  return { ...headers, authorization: `Bearer ${token}` };
}
