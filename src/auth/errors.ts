/**
 * Why a request is refused before any book is looked at. The HTTP layers map each code to its
 * status: `unauthorized` and `invalid_token` 401, `insufficient_scope` 403, `tenant_required`
 * 400, `auth_unavailable` 503 (the JWK Set could not be fetched).
 */
export type AuthErrorCode = 'unauthorized' | 'invalid_token' | 'insufficient_scope' | 'tenant_required' | 'origin_not_allowed' | 'auth_unavailable';

export class AuthError extends Error {
  override readonly name = 'AuthError';
  constructor(
    readonly code: AuthErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export const AUTH_ERROR_STATUS: Record<AuthErrorCode, 400 | 401 | 403 | 503> = {
  unauthorized: 401,
  invalid_token: 401,
  insufficient_scope: 403,
  tenant_required: 400,
  origin_not_allowed: 403,
  auth_unavailable: 503,
};

/** The `WWW-Authenticate` challenge for a refusal (RFC 6750), or null when none applies. */
export function challengeFor(error: AuthError): string | null {
  if (error.code === 'unauthorized') return 'Bearer';
  if (error.code === 'invalid_token' || error.code === 'insufficient_scope') return `Bearer error="${error.code}"`;
  return null;
}
