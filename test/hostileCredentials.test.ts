/**
 * The credential options of issue 19 under attack: a platform assertion callback that never settles, hostile token
 * parameters, and docs/providers.md's promise that each row is proved by a test. Servers are real, on 127.0.0.1.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AbortError, Client, TimeoutError } from '../src/index.js';
import { startScripted, tokenScript } from './helpers/scripted.js';

/** Settles with what `promise` gave, or 'still pending' after `ms` (the wide margin a loaded machine needs). */
const within = <T>(promise: Promise<T>, ms: number): Promise<T | 'still pending'> =>
  Promise.race([promise, new Promise<'still pending'>((resolve) => setTimeout(() => resolve('still pending'), ms).unref())]);

describe('clientAssertion that never settles', () => {
  test('is bounded by tokenRequestTimeout: ERR_TIMEOUT, no token request sent, the next call asks again', async () => {
    const server = await startScripted(tokenScript());
    let calls = 0;
    const c = new Client({
      tokenUrl: `${server.url}/token`, retry: false, tokenRequestTimeout: 300,
      clientCredentialsAuthCredentials: { oAuthClientId: 'wl', clientAssertion: () => (++calls === 1 ? new Promise<string>(() => {}) : 'eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJrOHMifQ.c2lnbmF0dXJl') },
    });
    try {
      const outcome = await within(c.clientCredentialsAuthManager.fetchToken().then(() => 'token', (error: unknown) => error), 10_000);
      assert.ok(outcome instanceof TimeoutError, String(outcome));
      assert.match(outcome.message, /clientAssertion/);
      assert.equal(server.requests.length, 0);
      // The Client is not poisoned: the next token request calls the source again and is sent.
      await c.clientCredentialsAuthManager.fetchToken();
      assert.equal(calls, 2);
      assert.equal(server.requests.length, 1);
    } finally {
      await c.close();
      await server.close();
    }
  });

  test('is cancelled by close(): the waiting getToken() rejects with ERR_ABORTED', async () => {
    const server = await startScripted(tokenScript());
    const c = new Client({
      tokenUrl: `${server.url}/token`, retry: false, tokenRequestTimeout: 600_000,
      clientCredentialsAuthCredentials: { oAuthClientId: 'wl', clientAssertion: () => new Promise<string>(() => {}) },
    });
    try {
      const pending = c.clientCredentialsAuthManager.getToken().then(() => 'token', (error: unknown) => error);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await within(c.close(), 10_000);
      const outcome = await within(pending, 10_000);
      assert.ok(outcome instanceof AbortError, String(outcome));
      assert.equal(server.requests.length, 0);
    } finally {
      await server.close();
    }
  });
});
