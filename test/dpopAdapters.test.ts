/**
 * DPoP (RFC 9449) through every adapter: `client.fetch`, `client.interceptor()` under Node's global fetch and under
 * undici.request, and the axios adapter send a DPoP-bound token with a fresh proof that the jose-verifying API of
 * test/helpers/dpopApi.ts accepts (htm, htu, ath, cnf.jkt, jti, the API's nonce after one `use_dpop_nonce`), and a
 * redirect carries neither `Authorization` nor `DPoP` to another origin (an allowed origin gets a proof of its own).
 * Tokens come from oidc-provider, which binds them to the Client's key and requires its own nonce.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import axios, { type AxiosError } from 'axios';
import { Agent, getGlobalDispatcher, interceptors, request, setGlobalDispatcher } from 'undici';
import { attachClientCredentials } from '../src/adapters/axios.js';
import { Client } from '../src/index.js';
import type { OidcProviderHandle } from './helpers/oidc.js';
import { DPOP_CLIENT, startDpopWorld, type DpopApiHandle, type DpopWorld } from './helpers/dpopApi.js';
import { closeServer, listenLocal, readBody, type RecordedRequest } from './helpers/http.js';


/** A server that records what it receives; `/away` redirects to `other`, `/to-api` to the DPoP API (307). */
interface Recorder {
  url: string;
  requests: RecordedRequest[];
  server: http.Server;
}

async function recorder(route: (req: http.IncomingMessage, res: http.ServerResponse) => boolean): Promise<Recorder> {
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    void readBody(req).then((body) => {
      requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: { ...req.headers }, body, at: Date.now() });
      if (!route(req, res)) res.writeHead(200, { 'content-type': 'application/json' }).end('{"landed":true}');
    });
  });
  return { url: await listenLocal(server), requests, server };
}

let world: DpopWorld;
let op: OidcProviderHandle;
let api: DpopApiHandle;
let other: Recorder;
let hop: Recorder;

before(async () => {
  world = await startDpopWorld();
  ({ op, api } = world);
  other = await recorder((req, res) => {
    if (req.url !== '/deny') return false;
    res.writeHead(401, { 'www-authenticate': 'DPoP error="invalid_token"' }).end();
    return true;
  });
  hop = await recorder((req, res) => {
    if (req.url === '/away') res.writeHead(302, { location: `${other.url}/landing` }).end();
    else if (req.url === '/away-denied') res.writeHead(302, { location: `${other.url}/deny` }).end();
    else if (req.url === '/to-api') res.writeHead(307, { location: `${api.url}/things?via=hop` }).end();
    else return false;
    return true;
  });
});
after(async () => {
  await closeServer(hop.server);
  await closeServer(other.server);
  await world.close();
});

/** One response as the cases see it. */
interface Answer {
  status: number;
  body: unknown;
}

/** An adapter wired to one Client. */
interface Session {
  send(method: string, url: string, body?: string): Promise<Answer>;
  close(): Promise<void>;
}

interface Adapter {
  name: string;
  /** Whether the adapter follows redirects (undici.request does not). */
  follows: boolean;
  attach(client: Client): Session;
}

const parse = (text: string): unknown => (text ? (JSON.parse(text) as unknown) : undefined);

/** Installs `client.interceptor()` on a new global Agent; `close` restores the previous global dispatcher. */
function globally(client: Client): () => Promise<void> {
  const previous = getGlobalDispatcher();
  const agent = new Agent();
  setGlobalDispatcher(agent.compose(client.interceptor()));
  return async () => {
    setGlobalDispatcher(previous);
    await agent.close();
  };
}

const adapters: Adapter[] = [
  {
    name: 'client.fetch',
    follows: true,
    attach: (client) => ({
      send: async (method, url, body) => {
        const response = await client.fetch(url, { method, ...(body !== undefined ? { body, headers: { 'content-type': 'text/plain' } } : {}) });
        return { status: response.status, body: parse(await response.text()) };
      },
      close: async () => undefined,
    }),
  },
  {
    name: 'client.fetch with a Request',
    follows: true,
    attach: (client) => ({
      send: async (method, url, body) => {
        const response = await client.fetch(new Request(url, { method, ...(body !== undefined ? { body } : {}) }));
        return { status: response.status, body: parse(await response.text()) };
      },
      close: async () => undefined,
    }),
  },
  {
    name: 'global fetch with client.interceptor()',
    follows: true,
    attach: (client) => {
      const close = globally(client);
      return {
        send: async (method, url, body) => {
          const response = await fetch(url, { method, ...(body !== undefined ? { body } : {}) });
          return { status: response.status, body: parse(await response.text()) };
        },
        close,
      };
    },
  },
  {
    name: 'undici.request with client.interceptor()',
    follows: false,
    attach: (client) => {
      const close = globally(client);
      return {
        send: async (method, url, body) => {
          const response = await request(url, { method: method as 'GET', ...(body !== undefined ? { body } : {}) });
          return { status: response.statusCode, body: parse(await response.body.text()) };
        },
        close,
      };
    },
  },
  {
    name: 'undici.request through undici\'s redirect interceptor listed after client.interceptor()',
    follows: true,
    attach: (client) => {
      const agent = new Agent();
      const dispatcher = agent.compose(client.interceptor(), interceptors.redirect({ maxRedirections: 3 }));
      return {
        send: async (method, url, body) => {
          const response = await request(url, { dispatcher, method: method as 'GET', ...(body !== undefined ? { body } : {}) });
          return { status: response.statusCode, body: parse(await response.body.text()) };
        },
        close: () => agent.close(),
      };
    },
  },
  {
    name: 'axios with attachClientCredentials',
    follows: true,
    attach: (client) => {
      const instance = axios.create();
      const detach = attachClientCredentials(instance, client);
      return {
        send: async (method, url, body) => {
          try {
            const response = await instance.request({ method, url, ...(body !== undefined ? { data: body } : {}) });
            return { status: response.status, body: response.data as unknown };
          } catch (error) {
            const response = (error as AxiosError).response;
            if (!response) throw error;
            return { status: response.status, body: response.data as unknown };
          }
        },
        close: async () => detach(),
      };
    },
  },
];

function makeClient(): Client {
  return new Client({ baseUrl: api.url, allowedOrigins: [hop.url], tokenUrl: op.tokenUrl, retry: false, clientCredentialsAuthCredentials: DPOP_CLIENT, dpop: true });
}

async function withSession(adapter: Adapter, fn: (session: Session, client: Client) => Promise<void>): Promise<void> {
  const client = makeClient();
  const session = adapter.attach(client);
  try {
    await fn(session, client);
  } finally {
    await session.close();
    await client.close();
  }
}

for (const adapter of adapters) {
  test(`${adapter.name}: a DPoP-bound token goes with a fresh proof the API verifies, its nonce learned after one use_dpop_nonce`, () =>
    withSession(adapter, async (session, client) => {
      const start = api.requests.length;
      const first = await session.send('GET', `${api.url}/things?x=1`);
      assert.equal(first.status, 200, JSON.stringify(api.requests.slice(start).map((r) => r.verdict)));
      assert.equal((first.body as { client_id: string }).client_id, 'dpop-svc');
      const seen = api.requests.slice(start);
      assert.deepEqual(seen.map((r) => r.verdict), ['nonce required', 'ok']);
      assert.notEqual(seen[0]!.headers.dpop, seen[1]!.headers.dpop);
      const token = await client.clientCredentialsAuthManager.getToken();
      assert.equal(token.tokenType, 'DPoP');
      assert.equal(seen[1]!.headers.authorization, `DPoP ${token.accessToken}`);
      assert.deepEqual([seen[1]!.proof!.htm, seen[1]!.proof!.htu], ['GET', `${api.url}/things`]);

      // The nonce is remembered: no round trip; a POST gets htm POST; every proof is new.
      const mid = api.requests.length;
      assert.equal((await session.send('POST', `${api.url}/things`, 'hello')).status, 200);
      assert.equal((await session.send('GET', `${api.url}/things`)).status, 200);
      const later = api.requests.slice(mid);
      assert.deepEqual(later.map((r) => r.verdict), ['ok', 'ok']);
      assert.equal(later[0]!.proof!.htm, 'POST');

      // A new nonce at the API: one more try, with a new proof (a GET: under fetch the interceptor sees a body as a
      // stream, which it cannot send twice).
      api.rotateNonce();
      const rotated = api.requests.length;
      assert.equal((await session.send('GET', `${api.url}/things`)).status, 200);
      assert.deepEqual(api.requests.slice(rotated).map((r) => r.verdict), ['nonce required', 'ok']);
      const jtis = api.requests.filter((r) => r.proof).map((r) => r.proof!.jti);
      assert.equal(new Set(jtis).size, jtis.length);
    }));

  test(`${adapter.name}: requests sent together with the same stale nonce are each retried with the new one (no good token dropped)`, () =>
    withSession(adapter, async (session) => {
      assert.equal((await session.send('GET', `${api.url}/things`)).status, 200);
      api.rotateNonce();
      const tokensBefore = op.tokenRequests.length;
      const start = api.requests.length;
      const answers = await Promise.all(Array.from({ length: 6 }, () => session.send('GET', `${api.url}/things`)));
      const verdicts = api.requests.slice(start).map((r) => r.verdict);
      assert.deepEqual(answers.map((a) => a.status), Array(6).fill(200), verdicts.join(', '));
      assert.equal(op.tokenRequests.length, tokensBefore, `no token fetched again: ${verdicts.join(', ')}`);
      assert.equal(verdicts.filter((v) => v === 'ok').length, 6);
    }));

  test(`${adapter.name}: a redirect carries neither Authorization nor DPoP to another origin; an allowed one gets its own proof`, () =>
    withSession(adapter, async (session) => {
      assert.equal((await session.send('GET', `${api.url}/things`)).status, 200);
      const hopStart = hop.requests.length;
      const otherStart = other.requests.length;
      const away = await session.send('GET', `${hop.url}/away`);
      // The allowed origin got the token and a proof for its own URL.
      const atHop = hop.requests.slice(hopStart);
      assert.equal(atHop.length, 1);
      assert.match(String(atHop[0]!.headers.authorization), /^DPoP /);
      assert.equal(typeof atHop[0]!.headers.dpop, 'string');
      if (!adapter.follows) {
        assert.equal(away.status, 302);
        assert.equal(other.requests.length, otherStart);
        return;
      }
      assert.equal(away.status, 200);
      const atOther = other.requests.slice(otherStart);
      assert.equal(atOther.length, 1);
      assert.equal(atOther[0]!.headers.authorization, undefined);
      assert.equal(atOther[0]!.headers.dpop, undefined);

      // A redirect to another allowed origin: the proof is made for the URL the request lands on (307 keeps POST).
      const apiStart = api.requests.length;
      const landed = await session.send('POST', `${hop.url}/to-api`, 'body');
      assert.equal(landed.status, 200, JSON.stringify(api.requests.slice(apiStart).map((r) => r.verdict)));
      const atApi = api.requests.slice(apiStart).at(-1)!;
      assert.deepEqual([atApi.verdict, atApi.proof!.htm, atApi.proof!.htu], ['ok', 'POST', `${api.url}/things`]);
    }));
}

test('client.interceptor() with undici\'s redirect interceptor inside it: a DPoP-bound request is not followed (its proof would go to the next hop, another origin included); the 3xx reaches the caller', async () => {
  const client = makeClient();
  const agent = new Agent();
  // The wrong order: the redirect interceptor runs inside ours, so ours never sees the hops (docs/dpop.md: list ours first).
  const dispatcher = agent.compose(interceptors.redirect({ maxRedirections: 3 }), client.interceptor());
  try {
    const otherStart = other.requests.length;
    const away = await request(`${hop.url}/away`, { dispatcher });
    await away.body.dump();
    assert.equal(away.statusCode, 302);
    assert.equal(other.requests.length, otherStart, 'nothing reached the other origin');
    // A request sent without the Client's token follows redirects as the dispatcher says.
    const own = await request(`${hop.url}/away`, { dispatcher, headers: { authorization: 'Bearer mine' } });
    await own.body.dump();
    assert.equal(own.statusCode, 200);
  } finally {
    await agent.close();
    await client.close();
  }
});

test('client.fetch: a DPoP-bound token refused with 401 is dropped and the call retried once with a new token and proof', async () => {
  const client = makeClient();
  try {
    assert.equal((await client.fetch('/things')).status, 200);
    const old = (await client.clientCredentialsAuthManager.getToken()).accessToken;
    // A token the API cannot verify (its signature broken), installed by hand: the API answers 401 to it.
    client.clientCredentialsAuthManager.updateToken({ accessToken: `${old.slice(0, -4)}AAAA`, tokenType: 'DPoP', expiry: Math.floor(Date.now() / 1000) + 600 });
    const start = api.requests.length;
    const response = await client.fetch('/things', { method: 'POST', body: 'x' });
    assert.equal(response.status, 200);
    const seen = api.requests.slice(start);
    assert.deepEqual(seen.map((r) => r.verdict), ['access token does not verify', 'ok']);
    assert.equal(client.stats().unauthorizedRetries, 1);
  } finally {
    await client.close();
  }
});

test('client.fetch (DPoP): a 401 from another origin after a redirect keeps the token (that origin got neither header)', async () => {
  const client = makeClient();
  try {
    assert.equal((await client.fetch('/things')).status, 200);
    const requests = client.stats().tokenRequests;
    const otherStart = other.requests.length;
    const response = await client.fetch(`${hop.url}/away-denied`);
    assert.equal(response.status, 401);
    assert.equal(other.requests.slice(otherStart)[0]!.headers.authorization, undefined);
    assert.equal(client.stats().unauthorizedRetries, 0);
    assert.equal(client.stats().tokenRequests, requests);
    assert.equal((await client.fetch('/things')).status, 200);
    assert.equal(client.stats().tokenRequests, requests, 'the token was not refused');
  } finally {
    await client.close();
  }
});
