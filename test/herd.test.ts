// Thundering herd: 10,000 concurrent requests on a cold client make exactly one token request, against the real
// oidc-provider and the real protected API.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../src/index.js';
import { SVC_CREDENTIALS, manualClock, startStack, tokenRequestCounter, type Stack } from './helpers/fixtures.js';

const N = 10_000;

let stack: Stack;

before(async () => {
  stack = await startStack({ ttl: 60 });
});
after(() => stack.close());

/** Sends `n` requests at once (the default keep-alive Agent queues them over its 128 connections). */
async function herd(client: Client, n: number): Promise<Set<string>> {
  const from = stack.api.requests.length;
  const responses = await Promise.allSettled(Array.from({ length: n }, () => client.get('/things')));
  const failed = responses.filter((r) => r.status === 'rejected');
  assert.equal(failed.length, 0, `${failed.length} failed, e.g. ${String((failed[0] as PromiseRejectedResult | undefined)?.reason)}`);
  for (const r of responses) assert.equal((r as PromiseFulfilledResult<{ statusCode: number }>).value.statusCode, 200);
  return new Set(stack.api.requests.slice(from).map((r) => String(r.headers.authorization)));
}

test(`${N} concurrent requests on a cold client make exactly 1 token request`, async () => {
  const client = new Client({
    baseUrl: stack.api.url,
    tokenUrl: stack.proxiedTokenUrl,
    clientCredentialsAuthCredentials: SVC_CREDENTIALS,
  });
  try {
    stack.proxy.inject({ kind: 'delay', ms: 200 }); // the herd piles up behind a slow token endpoint
    const tokenRequests = tokenRequestCounter(stack.op);
    const sent = await herd(client, N);
    assert.equal(tokenRequests(), 1);
    assert.equal(client.stats().tokenRequests, 1);
    assert.equal(client.stats().waits, N);
    assert.equal(sent.size, 1, 'every request carried the one token');
  } finally {
    await client.close();
  }
});

test('2,000 concurrent requests when the cached token has expired make exactly 1 more token request', async () => {
  const clock = manualClock();
  const client = new Client({
    baseUrl: stack.api.url,
    tokenUrl: stack.proxiedTokenUrl,
    clock,
    clientCredentialsAuthCredentials: SVC_CREDENTIALS,
  });
  try {
    const first = await client.clientCredentialsAuthManager.getToken();
    clock.set(first.expiry! * 1000);
    const tokenRequests = tokenRequestCounter(stack.op);
    const waits = client.stats().waits;
    const sent = await herd(client, 2_000);
    assert.equal(tokenRequests(), 1);
    assert.equal(client.stats().waits - waits, 2_000);
    assert.equal(sent.size, 1);
    assert.ok(!sent.has(`Bearer ${first.accessToken}`), 'the expired token was never sent');
  } finally {
    await client.close();
  }
});
