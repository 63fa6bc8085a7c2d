/**
 * A server's `refresh_in` makes the stale point earlier, down to a floor (a tenth of the usable lifetime, at least
 * 1 s): a tiny value such as `0.001` must not make every token stale at birth, with a refresh on every call. Against a
 * real scripted token endpoint, on an injected clock, and for 2 s of real time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '../src/index.js';
import { recordFromInput } from '../src/auth/tokenRecord.js';
import { waitUntil } from './helpers/fixtures.js';
import { sendJson, startScripted, type ScriptedServer } from './helpers/scripted.js';

const CREDENTIALS = { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret' };

async function endpointWithRefreshIn(refreshIn: number, lifetime: number): Promise<ScriptedServer> {
  let n = 0;
  return startScripted((_req, res) => sendJson(res, 200, { access_token: `tok-${++n}-${'x'.repeat(24)}`, token_type: 'Bearer', expires_in: lifetime, refresh_in: refreshIn }));
}

test('the floor: refresh_in is honoured down to a tenth of the usable lifetime, and never below 1 s', () => {
  const policy = { defaultLifetime: 300, maxLifetime: 31_536_000, clockSkew: 0, refreshAhead: undefined };
  const now = 1_700_000_000_000;
  const stale = (refreshIn: number, expiresIn: number) => recordFromInput({ accessToken: 'at', tokenType: 'Bearer', expiresIn, refreshIn }, now, policy, 'manual', 't').staleAtMs - now;
  assert.equal(stale(0.001, 60), 6_000);
  assert.equal(stale(0.001, 4), 1_000);
  assert.equal(stale(10, 60), 10_000, 'above the floor: as the server says');
  assert.equal(stale(45, 60), 30_000, 'never later than the middle');
  assert.equal(stale(0.001, 1.5), 750, 'never later than the middle, even below the floor');
});

test('refresh_in 0.001 on an injected clock: one background refresh per tenth of the lifetime, not one per call', async () => {
  const endpoint = await endpointWithRefreshIn(0.001, 60);
  let t = Math.floor(Date.now() / 1000) * 1000;
  const client = new Client({ tokenUrl: `${endpoint.url}/token`, clock: { now: () => t, monotonic: () => t }, clientCredentialsAuthCredentials: CREDENTIALS });
  let settled = 0;
  client.on('tokenRefreshed', () => settled++);
  client.on('refreshFailed', () => settled++);
  try {
    // 12 s of calls (0 to 12 s inclusive), one every 10 ms, each background refresh let finish before the next call.
    for (let i = 0; i <= 1_200; i++) {
      await client.clientCredentialsAuthManager.getToken();
      await waitUntil(() => settled === client.stats().backgroundRefreshes);
      t += 10;
    }
    assert.equal(client.stats().backgroundRefreshes, 2, 'stale at 6 s and at 12 s (a tenth of 60 s), not at every call');
    assert.equal(endpoint.requests.length, 3);
  } finally {
    await client.close();
    await endpoint.close();
  }
});

test('refresh_in 0.001, 2 s of real time, 8 callers: a handful of token requests, not hundreds', async () => {
  const endpoint = await endpointWithRefreshIn(0.001, 4);
  const client = new Client({ tokenUrl: `${endpoint.url}/token`, clientCredentialsAuthCredentials: CREDENTIALS });
  try {
    const end = Date.now() + 2_000;
    let calls = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (Date.now() < end) {
          await client.clientCredentialsAuthManager.getToken();
          calls++;
          await sleep(1);
        }
      }),
    );
    assert.ok(calls > 20, `the callers ran (${calls} calls)`);
    // A 4 s token is stale 1 s after its issue (the floor): at most about one refresh per second; wide margin for a
    // slow machine, where the old code made one per call.
    assert.ok(endpoint.requests.length <= 5, `${endpoint.requests.length} token requests in 2 s`);
  } finally {
    await client.close();
    await endpoint.close();
  }
});
