import { describe, expect, it } from 'vitest';
import { findToken } from '../../src/auth/credentials.js';
import { MAX_CACHED_TOKENS, TokenVerifier } from '../../src/auth/tokens.js';
import { TEST_SECRET, mintToken } from '../support/tokens.js';

const settings = { secrets: [TEST_SECRET], jwksUrl: null, issuer: null, audience: null };

describe('findToken, Authorization header', () => {
  it('reads the common spelling and every other one the pattern accepts, the same way', () => {
    const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln';
    for (const header of [`Bearer ${token}`, `bearer ${token}`, `BEARER ${token}`, `Bearer   ${token}`, `Bearer ${token}  `]) {
      expect(findToken({ authorization: header })).toEqual({ token, from: 'header' });
    }
    expect(findToken({ authorization: 'Bearer tökén' }).token).toBe('tökén');
  });

  it('calls anything else malformed, never a token', () => {
    for (const header of ['Bearer ', 'Bearer', 'Basic abc', 'Bearer a b', 'Bearer a\tb', 'Bearer a\u00a0b', ' Bearer abc', 'Bearerabc']) {
      expect(findToken({ authorization: header }).token, header).toBe('malformed');
    }
  });
});

describe('TokenVerifier cache', () => {
  it('answers a verified token from memory until it expires', async () => {
    const verifier = new TokenVerifier(settings);
    const token = await mintToken({ sub: 'alice', tenant: 'acme' }, { ttlSeconds: 60 });
    expect(verifier.cached(token)).toBeUndefined();
    const caller = await verifier.verify(token);
    expect(verifier.cached(token)).toBe(caller);
    expect(verifier.cached(token, Date.now() + 61_000)).toBeUndefined();
    // Dropped once seen expired.
    expect(verifier.cached(token)).toBeUndefined();
  });

  it('evicts the least recently used token when full, never one in use', async () => {
    const verifier = new TokenVerifier(settings);
    const inUse = await mintToken({ sub: 'in-use' });
    const idle = await mintToken({ sub: 'idle' });
    await verifier.verify(inUse);
    await verifier.verify(idle);
    const others = await Promise.all(Array.from({ length: MAX_CACHED_TOKENS - 1 }, (_, i) => mintToken({ sub: `user-${i}` })));
    for (const [i, token] of others.entries()) {
      await verifier.verify(token);
      if (i % 100 === 0) expect(verifier.cached(inUse)?.sub).toBe('in-use');
    }
    // One more than the cache holds went in: the idle token left, the one in use stayed.
    expect(verifier.cached(idle)).toBeUndefined();
    expect(verifier.cached(inUse)?.sub).toBe('in-use');
    expect(verifier.cached(others.at(-1) as string)?.sub).toBe(`user-${MAX_CACHED_TOKENS - 2}`);
  });
});
