/**
 * Lifecycle options that contradict each other: `refreshAhead` not longer than `clockSkew` (no stale window would be
 * left: callers would wait at every expiry) is refused with a typed error naming both; `defaultTokenLifetime` is
 * clamped by `maxTokenLifetime` like every lifetime. Against a real scripted token endpoint, on an injected clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Client, ErrorCode, InvalidOptionError } from '../src/index.js';
import { resolveConfiguration } from '../src/configuration.js';
import { recordFromInput } from '../src/auth/tokenRecord.js';
import { waitUntil } from './helpers/fixtures.js';
import { sendJson, startScripted } from './helpers/scripted.js';

const CREDENTIALS = { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret' };
const TOKEN_URL = 'http://127.0.0.1:9/token';

function clock() {
  let t = Math.floor(Date.now() / 1000) * 1000;
  return { now: () => t, monotonic: () => t, advance: (ms: number) => void (t += ms) };
}

test('refreshAhead not longer than clockSkew is refused with InvalidOptionError naming both options', () => {
  for (const [refreshAhead, clockSkew] of [[20, 30], [30, 30], [0.5, 1]] as const) {
    assert.throws(
      () => new Client({ tokenUrl: TOKEN_URL, refreshAhead, clientCredentialsAuthCredentials: { ...CREDENTIALS, clockSkew } }),
      (error: unknown) => {
        assert.ok(error instanceof InvalidOptionError);
        assert.equal(error.code, ErrorCode.InvalidOption);
        assert.equal(error.option, 'refreshAhead');
        assert.match(error.message, /`refreshAhead`/);
        assert.match(error.message, /`clientCredentialsAuthCredentials\.clockSkew` \(\d+(\.\d+)? s\)/);
        return true;
      },
    );
  }
  // The alias is named as the caller spelt it.
  assert.throws(
    () => new Client({ tokenUrl: TOKEN_URL, refreshAhead: 5, clientCredentialsAuthCredentials: { ...CREDENTIALS, oAuthClockSkew: 10 } }),
    (error: unknown) => error instanceof InvalidOptionError && /oAuthClockSkew/.test(error.message),
  );
  // 0 turns the stale window off on purpose; a longer refreshAhead, or none, is fine.
  for (const refreshAhead of [0, 31, undefined]) {
    void new Client({ tokenUrl: TOKEN_URL, ...(refreshAhead === undefined ? {} : { refreshAhead }), clientCredentialsAuthCredentials: { ...CREDENTIALS, clockSkew: 30 } }).close();
  }
});

test('property: every refreshAhead the Client accepts leaves a stale window before the expiry (unless it is 0)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 3_600 }), fc.integer({ min: 0, max: 7_200_000 }).map((ms) => ms / 1000), fc.integer({ min: 2, max: 86_400 }), (clockSkew, refreshAhead, lifetime) => {
      let config;
      try {
        config = resolveConfiguration({ tokenUrl: TOKEN_URL, refreshAhead, clientCredentialsAuthCredentials: { ...CREDENTIALS, clockSkew } });
      } catch (error) {
        assert.ok(error instanceof InvalidOptionError && refreshAhead > 0 && refreshAhead <= clockSkew, `refused only when 0 < refreshAhead <= clockSkew (${refreshAhead}, ${clockSkew})`);
        return;
      }
      if (refreshAhead === 0) return;
      const now = 1_700_000_000_000;
      const record = recordFromInput({ accessToken: 'at', tokenType: 'Bearer', expiresIn: lifetime }, now, { ...config.lifetime, clockSkew, refreshAhead }, 'manual', 'token');
      assert.ok(record.staleAtMs < record.expiresAtMs, `a stale window for skew ${clockSkew}, refreshAhead ${refreshAhead}, lifetime ${lifetime}`);
    }),
    { seed: 18_05, numRuns: 2_000 },
  );
});

test('a clockSkew with a longer refreshAhead: the token is refreshed in the background, callers never wait at its expiry', async () => {
  let n = 0;
  const endpoint = await startScripted((_req, res) => sendJson(res, 200, { access_token: `tok-${++n}-${'x'.repeat(24)}`, token_type: 'Bearer', expires_in: 60 }));
  const c = clock();
  const client = new Client({ tokenUrl: `${endpoint.url}/token`, clock: c, refreshAhead: 40, clientCredentialsAuthCredentials: { ...CREDENTIALS, clockSkew: 30 } });
  try {
    const manager = client.clientCredentialsAuthManager;
    await manager.getToken();
    c.advance(25_000); // stale (60 − 40 = 20 s) but not expired (60 − 30 = 30 s)
    await manager.getToken();
    await waitUntil(() => n === 2 && client.stats().tokensObtained === 2);
    assert.equal(client.stats().waits, 1, 'only the cold start waited');
    assert.equal(n, 2);
  } finally {
    await client.close();
    await endpoint.close();
  }
});

test('defaultTokenLifetime is clamped by maxTokenLifetime (a token response without expires_in)', async () => {
  let n = 0;
  const endpoint = await startScripted((_req, res) => sendJson(res, 200, { access_token: `opaque-${++n}-${'x'.repeat(24)}`, token_type: 'Bearer' }));
  try {
    for (const [options, expected] of [
      [{ maxTokenLifetime: 60 }, 60],
      [{ defaultTokenLifetime: 600, maxTokenLifetime: 120 }, 120],
      [{ defaultTokenLifetime: 30, maxTokenLifetime: 120 }, 30],
    ] as const) {
      const c = clock();
      const client = new Client({ tokenUrl: `${endpoint.url}/token`, clock: c, ...options, clientCredentialsAuthCredentials: CREDENTIALS });
      try {
        const before = n;
        const token = await client.clientCredentialsAuthManager.getToken();
        assert.equal(token.expiresIn, expected, JSON.stringify(options));
        assert.equal(token.expiry, Math.floor((c.now() + expected * 1000) / 1000));
        // It expires then: the next call past it fetches a new one.
        c.advance(expected * 1000);
        const next = await client.clientCredentialsAuthManager.getToken();
        assert.notEqual(next.accessToken, token.accessToken);
        assert.equal(n - before, 2);
        // The resolved policy says so too (for every other path: provider, store, preset).
        assert.equal(resolveConfiguration({ ...options }).lifetime.defaultLifetime, expected);
      } finally {
        await client.close();
      }
    }
  } finally {
    await endpoint.close();
  }
});
