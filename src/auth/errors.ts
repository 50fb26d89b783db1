import { Refusal } from '../refusal.js';

/**
 * Why a request is refused before any book is looked at: `unauthorized` and `invalid_token`
 * 401, `insufficient_scope` and `origin_not_allowed` 403, `tenant_required` 400,
 * `auth_unavailable` 503 (the JWK Set could not be fetched).
 */
export type AuthErrorCode = 'unauthorized' | 'invalid_token' | 'insufficient_scope' | 'tenant_required' | 'origin_not_allowed' | 'auth_unavailable';

const AUTH_ERROR_STATUS: Record<AuthErrorCode, 400 | 401 | 403 | 503> = {
  unauthorized: 401,
  invalid_token: 401,
  insufficient_scope: 403,
  tenant_required: 400,
  origin_not_allowed: 403,
  auth_unavailable: 503,
};

/** The refusal for `code`, with its status and `WWW-Authenticate` challenge (RFC 6750) where one applies. */
export function authRefusal(code: AuthErrorCode, message: string): Refusal {
  return new Refusal(AUTH_ERROR_STATUS[code], code, message, { challenge: challengeFor(code) });
}

function challengeFor(code: AuthErrorCode): string | null {
  if (code === 'unauthorized') return 'Bearer';
  if (code === 'invalid_token' || code === 'insufficient_scope') return `Bearer error="${code}"`;
  return null;
}
