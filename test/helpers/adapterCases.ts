/**
 * The core cases every adapter (client.fetch, openapi-fetch, ky, the undici interceptor under global fetch and
 * undici.request, axios) must pass, as one table: one token request for 500 concurrent cold calls, no token to another
 * origin, 401 recovery exactly once, and refresh ahead without waiting (on an injected clock). Real servers only.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, type ClientConfiguration } from '../../src/index.js';
import { startProtectedApi, type ProtectedApiHandle } from './api.js';
import { SVC_CREDENTIALS, manualClock, nextEvent, startStack, tokenRequestCounter, type ManualClock, type Stack } from './fixtures.js';

/** One response as the case table sees it. */
export interface AdapterResponse {
  status: number;
  body: unknown;
}

/** An adapter wired to one Client: GET an absolute URL with it. */
export interface AdapterSession {
  get(url: string): Promise<AdapterResponse>;
  /** Undoes the wiring (restores a global dispatcher, detaches interceptors). */
  close?(): Promise<void> | void;
}

/** An adapter under test. */
export interface AdapterUnderTest {
  name: string;
  attach(client: Client): AdapterSession | Promise<AdapterSession>;
}

/** The servers the cases use: the usual stack plus another origin that records what it receives. */
export interface AdapterServers {
  stack: Stack;
  /** A server on another origin, not in the Client's allowed origins; every request is accepted. */
  other: ProtectedApiHandle;
}

/** Starts the servers in `before` and closes them in `after`; the returned object is filled in `before`. */
export function adapterServers(): AdapterServers {
  const servers = {} as AdapterServers;
  before(async () => {
    servers.stack = await startStack({ ttl: 60 });
    servers.other = await startProtectedApi({ verify: async () => true });
  });
  after(async () => {
    await servers.other.close();
    await servers.stack.close();
  });
  return servers;
}

/** A Client for the cases: the stack's API as `baseUrl`, the given clock. */
export function adapterClient(servers: AdapterServers, clock: ManualClock = manualClock(), extra: Partial<ClientConfiguration> = {}): Client {
  return new Client({ baseUrl: servers.stack.api.url, tokenUrl: servers.stack.op.tokenUrl, clock, clientCredentialsAuthCredentials: SVC_CREDENTIALS, ...extra });
}

/** Registers the core cases for each adapter. */
export function adapterCases(servers: AdapterServers, adapters: readonly AdapterUnderTest[]): void {
  for (const adapter of adapters) {
    const withSession = async (fn: (session: AdapterSession, client: Client, clock: ManualClock) => Promise<void>): Promise<void> => {
      const clock = manualClock();
      const client = adapterClient(servers, clock);
      const session = await adapter.attach(client);
      try {
        await fn(session, client, clock);
      } finally {
        await session.close?.();
        await client.close();
      }
    };

    test(`${adapter.name}: one token request for 500 concurrent cold calls`, () =>
      withSession(async (session, client) => {
        const tokenRequests = tokenRequestCounter(servers.stack.op);
        const seen = servers.stack.api.requests.length;
        const responses = await Promise.all(Array.from({ length: 500 }, () => session.get(`${servers.stack.api.url}/things`)));
        assert.deepEqual(new Set(responses.map((r) => r.status)), new Set([200]));
        assert.equal(tokenRequests(), 1);
        assert.equal(client.stats().tokenRequests, 1);
        const token = (await client.clientCredentialsAuthManager.getToken()).accessToken;
        const sent = servers.stack.api.requests.slice(seen).map((r) => r.headers.authorization);
        assert.equal(sent.length, 500);
        assert.deepEqual(new Set(sent), new Set([`Bearer ${token}`]));
      }));

    test(`${adapter.name}: no token to another origin`, () =>
      withSession(async (session, client) => {
        assert.equal((await session.get(`${servers.stack.api.url}/things`)).status, 200);
        const seen = servers.other.requests.length;
        const response = await session.get(`${servers.other.url}/public`);
        assert.equal(response.status, 200);
        const received = servers.other.requests.slice(seen);
        assert.equal(received.length, 1);
        assert.equal(received[0]!.headers.authorization, undefined);
        assert.equal(client.stats().tokenRequests, 1);
      }));

    test(`${adapter.name}: a 401 drops the token and the request is retried once with a new one`, () =>
      withSession(async (session, client, clock) => {
        assert.equal((await session.get(`${servers.stack.api.url}/things`)).status, 200);
        const old = (await client.clientCredentialsAuthManager.getToken()).accessToken;
        servers.stack.api.revoke(old);
        const tokenRequests = tokenRequestCounter(servers.stack.op);
        let seen = servers.stack.api.requests.length;
        const recovered = await session.get(`${servers.stack.api.url}/things`);
        assert.equal(recovered.status, 200);
        assert.equal(tokenRequests(), 1);
        const fresh = (await client.clientCredentialsAuthManager.getToken()).accessToken;
        assert.notEqual(fresh, old);
        assert.deepEqual(servers.stack.api.requests.slice(seen).map((r) => r.headers.authorization), [`Bearer ${old}`, `Bearer ${fresh}`]);
        assert.equal(client.stats().invalidations, 1);
        assert.equal(client.stats().unauthorizedRetries, 1);

        // A resource that always answers 401: one retry, then the 401 is the answer.
        clock.advance(5_000); // past the refusal throttle of the revocation above
        seen = servers.stack.api.requests.length;
        const refused = await session.get(`${servers.stack.api.url}/status/401`);
        assert.equal(refused.status, 401);
        assert.equal(servers.stack.api.requests.length - seen, 2);
        assert.equal(tokenRequests(), 2);
        assert.equal(client.stats().unauthorizedRetries, 2);

        // Asked again at once: the key's new token was refused moments ago, so no new token request and no retry.
        seen = servers.stack.api.requests.length;
        assert.equal((await session.get(`${servers.stack.api.url}/status/401`)).status, 401);
        assert.equal(servers.stack.api.requests.length - seen, 1);
        assert.equal(tokenRequests(), 2);
      }));

    test(`${adapter.name}: refresh ahead: a stale token is sent at once while one background refresh runs`, () =>
      withSession(async (session, client, clock) => {
        assert.equal((await session.get(`${servers.stack.api.url}/things`)).status, 200);
        const first = await client.clientCredentialsAuthManager.getToken();
        const issuedMs = first.expiry! * 1000 - 60_000;
        const waits = client.stats().waits;
        clock.set(issuedMs + 45_000);
        const refreshed = nextEvent(client, 'tokenRefreshed');
        const seen = servers.stack.api.requests.length;
        const responses = await Promise.all(Array.from({ length: 5 }, () => session.get(`${servers.stack.api.url}/things`)));
        assert.deepEqual(new Set(responses.map((r) => r.status)), new Set([200]));
        assert.equal(client.stats().waits, waits, 'nobody waited');
        assert.equal(client.stats().backgroundRefreshes, 1);
        await refreshed;
        const second = await client.clientCredentialsAuthManager.getToken();
        // The stale token went out at once (a call that reached the wire after the refresh landed may carry the new one).
        const sent = servers.stack.api.requests.slice(seen).map((r) => r.headers.authorization);
        assert.ok(sent.includes(`Bearer ${first.accessToken}`));
        assert.ok(sent.every((h) => h === `Bearer ${first.accessToken}` || h === `Bearer ${second.accessToken}`));
        assert.notEqual(second.accessToken, first.accessToken);
        const after = servers.stack.api.requests.length;
        assert.equal((await session.get(`${servers.stack.api.url}/things`)).status, 200);
        assert.equal(servers.stack.api.requests[after]!.headers.authorization, `Bearer ${second.accessToken}`);
        assert.equal(client.stats().tokenRequests, 2);
      }));
  }
}
