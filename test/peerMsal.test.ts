/**
 * What the README's comparison table says of MSAL Node (`@azure/msal-node`), shown on a real token endpoint
 * (@node-oauth/oauth2-server on 127.0.0.1) with MSAL used as its docs teach for a daemon app: one
 * `ConfidentialClientApplication`, `acquireTokenByClientCredential({ scopes })` before each call. MSAL is pointed at
 * the local server through its documented extension points only (test/helpers/msalLoopback.ts: transport, nothing of
 * MSAL's cache or expiry logic is replaced). The bench (S2, S3, S7) measures the same behaviours under load.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { startFaultProxy, type FaultProxyHandle } from './helpers/faultProxy.js';
import { msalLoopbackConfiguration } from './helpers/msalLoopback.js';
import { startNodeOAuthServer, type NodeOAuthHandle } from './helpers/nodeoauth.js';

const request = { scopes: ['api:read'] };

interface MsalFixture {
  /** A `ConfidentialClientApplication` for client `svc`, whose token endpoint is reached through `proxy`. */
  app: ConfidentialClientApplication;
  /** The @node-oauth/oauth2-server behind the proxy (`server.tokenRequests`: the requests it answered). */
  server: NodeOAuthHandle;
  /** A fault proxy in front of the token endpoint: passes requests on unless told otherwise. */
  proxy: FaultProxyHandle;
}

/** Runs `fn` with MSAL pointed at a fresh token endpoint (tokens of `ttl` seconds) behind a fault proxy, then stops both. */
async function withMsal(ttl: number, fn: (fixture: MsalFixture) => Promise<void>): Promise<void> {
  const server = await startNodeOAuthServer({ ttl });
  const proxy = await startFaultProxy(server.url);
  try {
    const tokenUrl = new URL(new URL(server.tokenUrl).pathname, proxy.url).href;
    await fn({ app: new ConfidentialClientApplication(msalLoopbackConfiguration(tokenUrl, 'svc', 'svc-secret')), server, proxy });
  } finally {
    await proxy.close();
    await server.close();
  }
}

test('MSAL Node keeps the token: two calls one after the other make one token request and get the same token', async () => {
  await withMsal(3600, async ({ app, server }) => {
    const first = await app.acquireTokenByClientCredential(request);
    const second = await app.acquireTokenByClientCredential(request);
    assert.ok(first?.accessToken);
    assert.equal(second?.accessToken, first.accessToken);
    assert.equal(server.tokenRequests.length, 1);
  });
});

test('MSAL Node does not reuse a token that expires within 5 minutes: with 4-minute tokens every call fetches one', async () => {
  // MSAL treats a cached token as expired 300 s before its expiry (a fixed margin, not configurable in msal-node).
  await withMsal(240, async ({ app, server }) => {
    const first = await app.acquireTokenByClientCredential(request);
    const second = await app.acquireTokenByClientCredential(request);
    assert.ok(first?.accessToken && second?.accessToken);
    assert.notEqual(second.accessToken, first.accessToken);
    assert.equal(server.tokenRequests.length, 2);
  });
});

test('MSAL Node: calls that arrive together on a cold start each fetch a token (no shared fetch)', async () => {
  await withMsal(3600, async ({ app, server, proxy }) => {
    // A token endpoint that takes 300 ms, as a real one under load may: no answer arrives before every call has asked.
    proxy.inject({ kind: 'delay', ms: 300 }, 5);
    const results = await Promise.all(Array.from({ length: 5 }, () => app.acquireTokenByClientCredential(request)));
    assert.ok(results.every((r) => r?.accessToken));
    assert.equal(server.tokenRequests.length, 5);
  });
});

test('MSAL Node: after a 503 from the token endpoint it refuses to send another token request (60 s throttle)', async () => {
  await withMsal(3600, async ({ app, server, proxy }) => {
    proxy.inject({ kind: 'json', status: 503, body: { error: 'temporarily_unavailable' } });
    await assert.rejects(app.acquireTokenByClientCredential(request));
    // The endpoint is healthy again, but MSAL answers from its throttle entry without asking it.
    await assert.rejects(app.acquireTokenByClientCredential(request));
    assert.equal(proxy.requests, 1);
    assert.equal(server.tokenRequests.length, 0);
  });
});

test('MSAL Node with `refresh_in`: a 503 at the refresh point is followed by refused calls although the cached token is good', async () => {
  await withMsal(3600, async ({ app, proxy }) => {
    // An hour-long token that the server asks to be refreshed after 1 s (`refresh_in`, an Entra extension).
    proxy.inject({ kind: 'json', status: 200, body: { access_token: 'token-1', token_type: 'Bearer', expires_in: 3600, refresh_in: 1 } });
    assert.equal((await app.acquireTokenByClientCredential(request))?.accessToken, 'token-1');
    await sleep(2_200); // MSAL counts whole seconds: past `refresh_in` whatever the fraction of the first second
    proxy.inject({ kind: 'json', status: 503, body: { error: 'temporarily_unavailable' } });
    // The call that passes the refresh point waits for the refresh; the 503 is logged and the cached token returned.
    assert.equal((await app.acquireTokenByClientCredential(request))?.accessToken, 'token-1');
    // The next one tries to refresh again, meets MSAL's own 60 s throttle of that 503, and fails.
    await assert.rejects(app.acquireTokenByClientCredential(request), { name: 'ServerError' });
    assert.equal(proxy.requests, 2);
  });
});

test('MSAL Node with `refresh_in`: a refresh that cannot reach the server fails the call although the cached token is good', async () => {
  await withMsal(3600, async ({ app, server, proxy }) => {
    proxy.inject({ kind: 'json', status: 200, body: { access_token: 'token-1', token_type: 'Bearer', expires_in: 3600, refresh_in: 1 } });
    assert.equal((await app.acquireTokenByClientCredential(request))?.accessToken, 'token-1');
    await sleep(2_200);
    proxy.inject({ kind: 'reset' });
    await assert.rejects(app.acquireTokenByClientCredential(request), { name: 'ClientAuthError' });
    // The next call refreshes again (the server is reachable now) and is given the cached token meanwhile.
    assert.equal((await app.acquireTokenByClientCredential(request))?.accessToken, 'token-1');
    assert.equal(server.tokenRequests.length, 1);
  });
});
