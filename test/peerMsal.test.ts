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
import { startFaultProxy } from './helpers/faultProxy.js';
import { msalLoopbackConfiguration } from './helpers/msalLoopback.js';
import { startNodeOAuthServer } from './helpers/nodeoauth.js';

const request = { scopes: ['api:read'] };

async function withMsal(ttl: number, fn: (app: ConfidentialClientApplication, tokenRequests: () => number) => Promise<void>): Promise<void> {
  const server = await startNodeOAuthServer({ ttl });
  try {
    await fn(new ConfidentialClientApplication(msalLoopbackConfiguration(server.tokenUrl, 'svc', 'svc-secret')), () => server.tokenRequests.length);
  } finally {
    await server.close();
  }
}

test('MSAL Node keeps the token: two calls one after the other make one token request and get the same token', async () => {
  await withMsal(3600, async (app, tokenRequests) => {
    const first = await app.acquireTokenByClientCredential(request);
    const second = await app.acquireTokenByClientCredential(request);
    assert.ok(first?.accessToken);
    assert.equal(second?.accessToken, first.accessToken);
    assert.equal(tokenRequests(), 1);
  });
});

test('MSAL Node does not reuse a token that expires within 5 minutes: with 4-minute tokens every call fetches one', async () => {
  // MSAL treats a cached token as expired 300 s before its expiry (a fixed margin, not configurable in msal-node).
  await withMsal(240, async (app, tokenRequests) => {
    const first = await app.acquireTokenByClientCredential(request);
    const second = await app.acquireTokenByClientCredential(request);
    assert.ok(first?.accessToken && second?.accessToken);
    assert.notEqual(second.accessToken, first.accessToken);
    assert.equal(tokenRequests(), 2);
  });
});

test('MSAL Node: calls that arrive together on a cold start each fetch a token (no shared fetch)', async () => {
  const server = await startNodeOAuthServer({ ttl: 3600 });
  const proxy = await startFaultProxy(server.url);
  try {
    const tokenUrl = new URL(new URL(server.tokenUrl).pathname, proxy.url).href;
    const app = new ConfidentialClientApplication(msalLoopbackConfiguration(tokenUrl, 'svc', 'svc-secret'));
    // A token endpoint that takes 300 ms, as a real one under load may: no answer arrives before every call has asked.
    proxy.inject({ kind: 'delay', ms: 300 }, 5);
    const results = await Promise.all(Array.from({ length: 5 }, () => app.acquireTokenByClientCredential(request)));
    assert.ok(results.every((r) => r?.accessToken));
    assert.equal(server.tokenRequests.length, 5);
  } finally {
    await proxy.close();
    await server.close();
  }
});

test('MSAL Node: after a 503 from the token endpoint it refuses to send another token request (60 s throttle)', async () => {
  const server = await startNodeOAuthServer({ ttl: 3600 });
  const proxy = await startFaultProxy(server.url);
  try {
    const tokenUrl = new URL(new URL(server.tokenUrl).pathname, proxy.url).href;
    const app = new ConfidentialClientApplication(msalLoopbackConfiguration(tokenUrl, 'svc', 'svc-secret'));
    proxy.inject({ kind: 'json', status: 503, body: { error: 'temporarily_unavailable' } });
    await assert.rejects(app.acquireTokenByClientCredential(request));
    // The endpoint is healthy again, but MSAL answers from its throttle entry without asking it.
    await assert.rejects(app.acquireTokenByClientCredential(request));
    assert.equal(proxy.requests, 1);
    assert.equal(server.tokenRequests.length, 0);
  } finally {
    await proxy.close();
    await server.close();
  }
});

test('MSAL Node with `refresh_in`: a 503 at the refresh point is followed by refused calls although the cached token is good', async () => {
  const server = await startNodeOAuthServer({ ttl: 3600 });
  const proxy = await startFaultProxy(server.url);
  try {
    const tokenUrl = new URL(new URL(server.tokenUrl).pathname, proxy.url).href;
    const app = new ConfidentialClientApplication(msalLoopbackConfiguration(tokenUrl, 'svc', 'svc-secret'));
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
  } finally {
    await proxy.close();
    await server.close();
  }
});

test('MSAL Node with `refresh_in`: a refresh that cannot reach the server fails the call although the cached token is good', async () => {
  const server = await startNodeOAuthServer({ ttl: 3600 });
  const proxy = await startFaultProxy(server.url);
  try {
    const tokenUrl = new URL(new URL(server.tokenUrl).pathname, proxy.url).href;
    const app = new ConfidentialClientApplication(msalLoopbackConfiguration(tokenUrl, 'svc', 'svc-secret'));
    proxy.inject({ kind: 'json', status: 200, body: { access_token: 'token-1', token_type: 'Bearer', expires_in: 3600, refresh_in: 1 } });
    assert.equal((await app.acquireTokenByClientCredential(request))?.accessToken, 'token-1');
    await sleep(2_200);
    proxy.inject({ kind: 'reset' });
    await assert.rejects(app.acquireTokenByClientCredential(request), { name: 'ClientAuthError' });
    // The next call refreshes again (the server is reachable now) and is given the cached token meanwhile.
    assert.equal((await app.acquireTokenByClientCredential(request))?.accessToken, 'token-1');
    assert.equal(server.tokenRequests.length, 1);
  } finally {
    await proxy.close();
    await server.close();
  }
});
