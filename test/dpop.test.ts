/**
 * DPoP (RFC 9449) end to end: oidc-provider issues DPoP-bound tokens to a client registered with
 * `dpop_bound_access_tokens` and requires server nonces; a resource server verifies every proof with `jose`
 * (signature, typ, htm, htu, ath, cnf.jkt, iat, jti) and requires its own nonce. Both nonce round trips happen once
 * each, and the nonces are remembered per origin afterwards.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { Client, InvalidOptionError, MemoryTokenStore, type ClientConfiguration } from '../src/index.js';
import type { OidcProviderHandle } from './helpers/oidc.js';
import { DPOP_CLIENT, startDpopWorld, type DpopApiHandle, type DpopWorld } from './helpers/dpopApi.js';
import { manualClock } from './helpers/fixtures.js';

let world: DpopWorld;
let op: OidcProviderHandle;
let api: DpopApiHandle;
const clients: Client[] = [];

before(async () => {
  world = await startDpopWorld();
  ({ op, api } = world);
});
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await world.close();
});

function makeClient(config: Partial<ClientConfiguration> = {}): Client {
  const client = new Client({ baseUrl: api.url, tokenUrl: op.tokenUrl, retry: false, clientCredentialsAuthCredentials: DPOP_CLIENT, dpop: true, ...config });
  clients.push(client);
  return client;
}

function claimsOf(jwt: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = jwt.split('.') as [string, string];
  return { header: JSON.parse(Buffer.from(h, 'base64url').toString()), payload: JSON.parse(Buffer.from(p, 'base64url').toString()) };
}

test('dpop: true gets a DPoP-bound token the jose-verifying API accepts, with one nonce round trip at each server', async () => {
  const client = makeClient();
  const tokenStart = op.tokenRequests.length;
  const apiStart = api.requests.length;
  const res = await client.get<{ client_id: string; jkt: string }>('/things?x=1');
  assert.equal(res.statusCode, 200);
  assert.equal(res.result.client_id, 'dpop-svc');

  // Token endpoint: a proof without a nonce → use_dpop_nonce, then one with the server's nonce.
  const tokenRequests = op.tokenRequests.slice(tokenStart);
  assert.equal(tokenRequests.length, 2);
  const [first, second] = tokenRequests.map((r) => claimsOf(r.headers.dpop as string));
  assert.equal(first!.payload.nonce, undefined);
  assert.equal(typeof second!.payload.nonce, 'string');
  for (const proof of [first!, second!]) {
    assert.equal(proof.header.typ, 'dpop+jwt');
    assert.equal(proof.header.alg, 'ES256');
    assert.equal((proof.header.jwk as { d?: string }).d, undefined, 'no private member in the proof');
    assert.deepEqual([proof.payload.htm, proof.payload.htu, proof.payload.ath], ['POST', op.tokenUrl, undefined]);
  }
  assert.notEqual(first!.payload.jti, second!.payload.jti);
  const token = await client.clientCredentialsAuthManager.getToken();
  assert.equal(token.tokenType, 'DPoP');

  // API: refused once for its nonce, then accepted; htu has no query, ath binds the token.
  const apiRequests = api.requests.slice(apiStart);
  assert.deepEqual(apiRequests.map((r) => r.verdict), ['nonce required', 'ok']);
  assert.match(apiRequests[1]!.headers.authorization!, /^DPoP /);
  assert.equal(apiRequests[1]!.proof!.htu, `${api.url}/things`);
  assert.equal(apiRequests[1]!.proof!.htm, 'GET');
});

test('nonces are remembered per origin: later token and API requests need no round trip', async () => {
  const client = makeClient();
  await client.get('/things');
  const tokenStart = op.tokenRequests.length;
  const apiStart = api.requests.length;
  await client.get('/things');
  await client.clientCredentialsAuthManager.fetchToken();
  assert.deepEqual(api.requests.slice(apiStart).map((r) => r.verdict), ['ok']);
  assert.equal(op.tokenRequests.length - tokenStart, 1, 'the token endpoint nonce was reused');
});

test('a new API nonce (use_dpop_nonce with DPoP-Nonce) is retried once, with a fresh proof', async () => {
  const client = makeClient();
  await client.get('/things');
  api.rotateNonce();
  const apiStart = api.requests.length;
  assert.equal((await client.get('/things')).statusCode, 200);
  const seen = api.requests.slice(apiStart);
  assert.deepEqual(seen.map((r) => r.verdict), ['nonce required', 'ok']);
  assert.notEqual(seen[0]!.headers.dpop, seen[1]!.headers.dpop);
});

test("POST: htm is POST and every proof's jti is unique", async () => {
  const client = makeClient();
  await client.get('/things');
  const apiStart = api.requests.length;
  // /things answers any method with the verified proof
  for (let i = 0; i < 5; i++) await client.request({ method: 'POST', path: '/things', json: { i } });
  const proofs = api.requests.slice(apiStart).map((r) => r.proof!);
  assert.ok(proofs.every((p) => p.htm === 'POST'));
  const all = api.requests.filter((r) => r.proof).map((r) => r.proof!.jti);
  assert.equal(new Set(all).size, all.length);
});

test("iat is read from the Client's clock", async () => {
  const clock = manualClock(Math.floor(Date.now() / 1000) * 1000 + 20_000);
  const client = makeClient({ clock });
  await client.get('/things');
  const proof = api.requests.at(-1)!.proof!;
  assert.equal(proof.iat, clock.now() / 1000);
});

test('a key of your own (Ed25519, EdDSA) works, and the tokens are bound to it', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const client = makeClient({ dpop: { privateKey } });
  const res = await client.get<{ jkt: string }>('/things');
  assert.equal(res.statusCode, 200);
  const { createHash } = await import('node:crypto');
  const jwk = publicKey.export({ format: 'jwk' });
  assert.equal(res.result.jkt, createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x })).digest('base64url'));
});

test('without dpop, a client registered with dpop_bound_access_tokens is refused (the server requires DPoP)', async () => {
  const client = makeClient({ dpop: false });
  await assert.rejects(client.clientCredentialsAuthManager.fetchToken(), { code: 'ERR_OAUTH_PROVIDER', error: 'invalid_grant', statusCode: 400 });
});

describe('token sharing', () => {
  test('Clients with ephemeral keys do not share DPoP-bound tokens through a store; Clients with the same key do', async () => {
    const store = new MemoryTokenStore();
    const a = makeClient({ tokenStore: store });
    const b = makeClient({ tokenStore: store });
    await a.get('/things');
    const before = op.tokenRequests.length;
    await b.get('/things');
    assert.ok(op.tokenRequests.length > before, 'b fetched its own token');

    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const c = makeClient({ tokenStore: store, dpop: { privateKey } });
    const d = makeClient({ tokenStore: store, dpop: { privateKey: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string } });
    await c.get('/things');
    const mid = op.tokenRequests.length;
    assert.equal((await d.get('/things')).statusCode, 200);
    assert.equal(op.tokenRequests.length, mid, 'd used the token c stored: same key');
  });

  test('a clone made by withConfiguration keeps the DPoP key and the token', async () => {
    const client = makeClient();
    await client.get('/things');
    const before = op.tokenRequests.length;
    const clone = client.withConfiguration({ headers: { 'x-clone': '1' } });
    clients.push(clone);
    assert.equal((await clone.get('/things')).statusCode, 200);
    assert.equal(op.tokenRequests.length, before);
  });
});

test('bad dpop options are InvalidOptionError at construction', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const cases: [unknown, string][] = [
    ['yes', 'dpop'],
    [{ privateKey: 'not a key' }, 'dpop.privateKey'],
    [{ privateKey: rsa, algorithm: 'ES256' }, 'dpop.algorithm'],
    [{ privateKey: rsa, algorithm: 'HS256' }, 'dpop.algorithm'],
  ];
  for (const [dpop, option] of cases) {
    assert.throws(
      () => new Client({ tokenUrl: 'https://as.example/token', clientCredentialsAuthCredentials: DPOP_CLIENT, dpop: dpop as never }),
      (e: unknown) => e instanceof InvalidOptionError && e.option === option,
      String(option),
    );
  }
});

test('a token endpoint that keeps asking for a new nonce is retried once only, then its error is thrown', async () => {
  const http = await import('node:http');
  const { listenLocal, closeServer, readBody } = await import('./helpers/http.js');
  let count = 0;
  const server = http.createServer((req, res) => {
    void readBody(req).then(() => {
      count++;
      res.writeHead(400, { 'content-type': 'application/json', 'dpop-nonce': `nonce-${count}` }).end(JSON.stringify({ error: 'use_dpop_nonce', error_description: 'nonce required' }));
    });
  });
  const url = await listenLocal(server);
  try {
    const client = makeClient({ tokenUrl: `${url}/token`, circuitBreaker: false });
    await assert.rejects(client.clientCredentialsAuthManager.fetchToken(), { code: 'ERR_OAUTH_PROVIDER', error: 'use_dpop_nonce' });
    assert.equal(count, 2);
  } finally {
    await closeServer(server);
  }
});

test('htu is the URL without query, fragment or credentials; toJSON names the DPoP algorithm, never the key', async () => {
  const { htu } = await import('../src/auth/dpop.js');
  assert.equal(htu('https://user:pw@api.example/a/b?c=1#d'), 'https://api.example/a/b');
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const client = makeClient({ dpop: { privateKey } });
  const json = JSON.stringify(client.toJSON());
  assert.match(json, /"dpop":"ES384"/);
  assert.ok(!json.includes(String(privateKey.export({ format: 'jwk' }).d)));
});
