/**
 * Discovery (`issuer` instead of `tokenUrl`): RFC 8414 path-aware metadata first, then OpenID Connect; the issuer
 * must match; token_endpoint and mTLS aliases; methods and algorithms chosen from, and checked against, the metadata;
 * one metadata fetch for concurrent callers, a TTL on the Client's clock, and a refresh after a token-endpoint 404
 * or connection failure. Against oidc-provider and against a small metadata server whose documents the test controls.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { generateKeyPairSync } from 'node:crypto';
import { Client, DiscoveryError, InvalidOptionError, NetworkError, type ClientConfiguration } from '../src/index.js';
import { metadataUrls } from '../src/auth/discovery.js';
import { closeServer, listenLocal, readBody, type RecordedRequest } from './helpers/http.js';
import { manualClock, startStack, type Stack } from './helpers/fixtures.js';
import { testCertificates } from './helpers/certs.js';

type Credentials = NonNullable<ClientConfiguration['clientCredentialsAuthCredentials']>;
const clients: Client[] = [];
function makeClient(config: ClientConfiguration): Client {
  const client = new Client({ retry: false, circuitBreaker: false, ...config });
  clients.push(client);
  return client;
}
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
});

test('metadataUrls: RFC 8414 inserts the well-known segment before the issuer path; OpenID Connect appends it', () => {
  assert.deepEqual(metadataUrls('https://as.example'), ['https://as.example/.well-known/oauth-authorization-server', 'https://as.example/.well-known/openid-configuration']);
  assert.deepEqual(metadataUrls('https://as.example/tenant/a'), [
    'https://as.example/.well-known/oauth-authorization-server/tenant/a',
    'https://as.example/tenant/a/.well-known/openid-configuration',
  ]);
});

test('`issuer` and `tokenUrl` together are an InvalidOptionError; `issuer` must be a URL', () => {
  const credentials = { oAuthClientId: 'a', oAuthClientSecret: 's' };
  assert.throws(() => new Client({ issuer: 'https://as.example', tokenUrl: 'https://as.example/token', clientCredentialsAuthCredentials: credentials }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'issuer');
  for (const issuer of ['as.example', 'https://user:pw@as.example', 'https://as.example/?tenant=a', 'https://as.example/#x']) {
    assert.throws(() => new Client({ issuer, clientCredentialsAuthCredentials: credentials }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'issuer' && !e.message.includes('pw'), issuer);
  }
});

describe('against oidc-provider (OpenID Connect discovery)', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(async () => {
    await stack.close();
  });

  test('with only `issuer`, the token endpoint is discovered and the API accepts the token', async () => {
    const client = makeClient({ issuer: stack.op.issuer, baseUrl: stack.api.url, clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret', oAuthScopes: 'api:read' } });
    const before = stack.op.tokenRequests.length;
    const res = await client.get<{ client_id: string }>('/things');
    assert.equal(res.result.client_id, 'svc');
    assert.equal(stack.op.tokenRequests.length, before + 1);
    assert.equal(stack.op.tokenRequests.at(-1)!.url, '/token');
  });

  test('a wrong issuer (a trailing path) finds no metadata: DiscoveryError not_found, no token request', async () => {
    const before = stack.op.tokenRequests.length;
    const client = makeClient({ issuer: `${stack.op.issuer}/other`, clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret' } });
    await assert.rejects(client.clientCredentialsAuthManager.fetchToken(), (e: unknown) => e instanceof DiscoveryError && e.reason === 'not_found' && e.code === 'ERR_DISCOVERY');
    assert.equal(stack.op.tokenRequests.length, before);
  });
});

describe('against a metadata server the test controls', () => {
  let url: string;
  let server: http.Server;
  const requests: RecordedRequest[] = [];
  /** Documents by path; tests replace them. */
  let documents: Map<string, unknown>;
  let tokenStatus = 200;
  const issuerA = () => `${url}/tenant-a`;
  const baseMetadata = () => ({
    issuer: issuerA(),
    token_endpoint: `${url}/tenant-a/token`,
    mtls_endpoint_aliases: { token_endpoint: `${url}/mtls/token` },
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'tls_client_auth'],
  });
  const metadataRequests = () => requests.filter((r) => r.method === 'GET');
  const tokenRequests = () => requests.filter((r) => r.method === 'POST');

  before(async () => {
    server = http.createServer((req, res) => {
      void readBody(req).then((body) => {
        requests.push({ method: req.method!, url: req.url!, headers: req.headers, body, at: Date.now() });
        if (req.method === 'POST' && req.url!.endsWith('/token')) {
          res.writeHead(tokenStatus, { 'content-type': 'application/json' });
          return void res.end(tokenStatus === 200 ? JSON.stringify({ access_token: `tok-${requests.length}`, token_type: 'Bearer', expires_in: 600 }) : '{"error":"not_found"}');
        }
        const doc = documents.get(req.url!);
        if (doc === undefined) return void res.writeHead(404).end();
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
      });
    });
    url = await listenLocal(server);
  });
  beforeEach(() => {
    requests.length = 0;
    tokenStatus = 200;
    documents = new Map([['/.well-known/oauth-authorization-server/tenant-a', baseMetadata()]]);
  });
  after(async () => {
    await closeServer(server);
  });

  const secret: Credentials = { oAuthClientId: 'c1', oAuthClientSecret: 'c1-secret' };

  test('RFC 8414 path-aware metadata is read first; the token goes to its token_endpoint', async () => {
    const client = makeClient({ issuer: issuerA(), clientCredentialsAuthCredentials: secret });
    assert.equal((await client.clientCredentialsAuthManager.fetchToken()).tokenType, 'Bearer');
    assert.deepEqual(requests.map((r) => `${r.method} ${r.url}`), ['GET /.well-known/oauth-authorization-server/tenant-a', 'POST /tenant-a/token']);
  });

  test('OpenID Connect metadata is the fallback when RFC 8414 has none', async () => {
    documents = new Map([['/tenant-a/.well-known/openid-configuration', baseMetadata()]]);
    const client = makeClient({ issuer: issuerA(), clientCredentialsAuthCredentials: secret });
    await client.clientCredentialsAuthManager.fetchToken();
    assert.deepEqual(requests.map((r) => `${r.method} ${r.url}`), [
      'GET /.well-known/oauth-authorization-server/tenant-a',
      'GET /tenant-a/.well-known/openid-configuration',
      'POST /tenant-a/token',
    ]);
  });

  test('metadata naming another issuer is a DiscoveryError issuer_mismatch, and no token request is sent', async () => {
    documents.set('/.well-known/oauth-authorization-server/tenant-a', { ...baseMetadata(), issuer: `${url}/tenant-b` });
    const client = makeClient({ issuer: issuerA(), clientCredentialsAuthCredentials: secret });
    await assert.rejects(client.clientCredentialsAuthManager.fetchToken(), (e: unknown) => e instanceof DiscoveryError && e.reason === 'issuer_mismatch' && e.message.includes('tenant-b'));
    assert.equal(tokenRequests().length, 0);
  });

  test('concurrent token requests share one metadata fetch (single flight), and later ones reuse it', async () => {
    const client = makeClient({ issuer: issuerA(), clientCredentialsAuthCredentials: secret });
    await Promise.all(Array.from({ length: 8 }, () => client.clientCredentialsAuthManager.fetchToken()));
    await client.clientCredentialsAuthManager.fetchToken();
    assert.equal(metadataRequests().length, 1);
    assert.equal(tokenRequests().length, 9);
  });

  test("the metadata is cached for an hour on the Client's clock, then fetched again", async () => {
    const clock = manualClock();
    const client = makeClient({ issuer: issuerA(), clock, clientCredentialsAuthCredentials: secret });
    await client.clientCredentialsAuthManager.fetchToken();
    clock.advance(3_599_000);
    await client.clientCredentialsAuthManager.fetchToken();
    assert.equal(metadataRequests().length, 1);
    clock.advance(1_000);
    await client.clientCredentialsAuthManager.fetchToken();
    assert.equal(metadataRequests().length, 2);
  });

  test('tls_client_auth uses the mtls_endpoint_aliases token endpoint (RFC 8705 §5)', async () => {
    const client = makeClient({ issuer: issuerA(), clientCredentialsAuthCredentials: { oAuthClientId: 'c1', clientAuthMethod: 'tls_client_auth' } });
    await client.clientCredentialsAuthManager.fetchToken();
    assert.equal(tokenRequests().at(-1)!.url, '/mtls/token');
    assert.equal(new URLSearchParams(tokenRequests().at(-1)!.body).get('client_id'), 'c1');
  });

  test('a configured method the server does not offer is a DiscoveryError unsupported_method before any token request', async () => {
    documents.set('/.well-known/oauth-authorization-server/tenant-a', { ...baseMetadata(), token_endpoint_auth_methods_supported: ['client_secret_basic'] });
    const client = makeClient({ issuer: issuerA(), clientCredentialsAuthCredentials: { ...secret, clientAuthMethod: 'client_secret_post' } });
    await assert.rejects(client.clientCredentialsAuthManager.fetchToken(), (e: unknown) => e instanceof DiscoveryError && e.reason === 'unsupported_method' && /client_secret_post.*offers client_secret_basic/.test(e.message));
    assert.equal(tokenRequests().length, 0);
  });

  test('with no method configured and basic not offered, the first offered method the credentials allow is used', async () => {
    documents.set('/.well-known/oauth-authorization-server/tenant-a', { ...baseMetadata(), token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_post'] });
    const client = makeClient({ issuer: issuerA(), clientCredentialsAuthCredentials: secret });
    await client.clientCredentialsAuthManager.fetchToken();
    const sent = tokenRequests().at(-1)!;
    assert.equal(sent.headers.authorization, undefined);
    assert.equal(new URLSearchParams(sent.body).get('client_secret'), 'c1-secret');
  });

  test("the assertion algorithm comes from the server's signing algorithms; a configured one it lacks is unsupported_algorithm", async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    documents.set('/.well-known/oauth-authorization-server/tenant-a', { ...baseMetadata(), token_endpoint_auth_signing_alg_values_supported: ['ES256', 'PS384'] });
    const credentials: Credentials = { oAuthClientId: 'c1', clientAuthMethod: 'private_key_jwt', privateKey };
    await makeClient({ issuer: issuerA(), clientCredentialsAuthCredentials: credentials }).clientCredentialsAuthManager.fetchToken();
    const assertion = new URLSearchParams(tokenRequests().at(-1)!.body).get('client_assertion')!;
    assert.equal(JSON.parse(Buffer.from(assertion.split('.')[0]!, 'base64url').toString()).alg, 'PS384');
    const pinned = makeClient({ issuer: issuerA(), clientCredentialsAuthCredentials: { ...credentials, privateKeyAlgorithm: 'RS256' } });
    await assert.rejects(pinned.clientCredentialsAuthManager.fetchToken(), (e: unknown) => e instanceof DiscoveryError && e.reason === 'unsupported_algorithm');
  });

  test('a 404 from the token endpoint drops the metadata: the next request reads it again and follows the move', async () => {
    const client = makeClient({ issuer: issuerA(), clientCredentialsAuthCredentials: secret });
    tokenStatus = 404;
    await assert.rejects(client.clientCredentialsAuthManager.fetchToken(), { statusCode: 404 });
    tokenStatus = 200;
    documents.set('/.well-known/oauth-authorization-server/tenant-a', { ...baseMetadata(), token_endpoint: `${url}/moved/token` });
    await client.clientCredentialsAuthManager.fetchToken();
    assert.equal(metadataRequests().length, 2);
    assert.equal(tokenRequests().at(-1)!.url, '/moved/token');
  });

  test('a token_endpoint that looks like an http(s) URL but does not parse is a DiscoveryError invalid_metadata (not a bare TypeError), with no token request', async () => {
    for (const bad of ['https://exa mple.com/token', 'http://[::1/token', 'https://host:99999/token']) {
      documents.set('/.well-known/oauth-authorization-server/tenant-a', { ...baseMetadata(), token_endpoint: bad });
      const client = makeClient({ issuer: issuerA(), clientCredentialsAuthCredentials: secret });
      await assert.rejects(client.clientCredentialsAuthManager.fetchToken(), (e: unknown) => e instanceof DiscoveryError && e.reason === 'invalid_metadata' && /token_endpoint/.test(e.message), bad);
    }
    assert.equal(tokenRequests().length, 0);
  });

  test('a token_endpoint whose scheme is in upper case (RFC 3986 §3.1: case-insensitive) is used, as the mTLS alias already is', async () => {
    documents.set('/.well-known/oauth-authorization-server/tenant-a', { ...baseMetadata(), token_endpoint: `${url.replace(/^http/, 'HTTP')}/tenant-a/token` });
    const client = makeClient({ issuer: issuerA(), clientCredentialsAuthCredentials: secret });
    await client.clientCredentialsAuthManager.fetchToken();
    assert.equal(tokenRequests().length, 1);
  });

  test('a connection failure at the token endpoint drops the metadata too', async () => {
    const dead = http.createServer();
    const deadUrl = await listenLocal(dead);
    await closeServer(dead);
    documents.set('/.well-known/oauth-authorization-server/tenant-a', { ...baseMetadata(), token_endpoint: `${deadUrl}/token` });
    const client = makeClient({ issuer: issuerA(), clientCredentialsAuthCredentials: secret });
    await assert.rejects(client.clientCredentialsAuthManager.fetchToken(), (e: unknown) => e instanceof NetworkError);
    documents.set('/.well-known/oauth-authorization-server/tenant-a', baseMetadata());
    await client.clientCredentialsAuthManager.fetchToken();
    assert.equal(metadataRequests().length, 2);
    assert.equal(tokenRequests().length, 1);
  });
});

test('an https issuer whose metadata names a plain-http token endpoint (loopback included: any local user may listen there) is a DiscoveryError insecure_endpoint, unless allowInsecureHttp', async () => {
  const { ca, serverKey, serverCert } = testCertificates();
  let posts = 0;
  const plain = http.createServer((req, res) => {
    if (req.method === 'POST') posts++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: 'tok-downgrade-0001', token_type: 'Bearer', expires_in: 60 }));
  });
  const plainUrl = await listenLocal(plain);
  let issuer = '';
  const tlsServer = https.createServer({ key: serverKey, cert: serverCert }, (req, res) => {
    const doc = { issuer, token_endpoint: `${plainUrl}/token`, mtls_endpoint_aliases: { token_endpoint: `${plainUrl}/mtls/token` } };
    if (req.url === '/.well-known/oauth-authorization-server') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
    res.writeHead(404).end();
  });
  issuer = (await listenLocal(tlsServer)).replace('http:', 'https:');
  try {
    for (const clientAuthMethod of ['client_secret_basic', 'tls_client_auth'] as const) {
      const client = makeClient({ issuer, tls: { ca }, clientCredentialsAuthCredentials: { oAuthClientId: 'c1', clientAuthMethod, ...(clientAuthMethod === 'tls_client_auth' ? {} : { oAuthClientSecret: 'c1-secret-downgrade' }) } });
      await assert.rejects(client.clientCredentialsAuthManager.fetchToken(), (e: unknown) => e instanceof DiscoveryError && e.reason === 'insecure_endpoint', clientAuthMethod);
    }
    assert.equal(posts, 0);
    const allowed = makeClient({ issuer, tls: { ca }, allowInsecureHttp: true, clientCredentialsAuthCredentials: { oAuthClientId: 'c1', oAuthClientSecret: 'c1-secret-downgrade' } });
    assert.equal((await allowed.clientCredentialsAuthManager.fetchToken()).accessToken, 'tok-downgrade-0001');
  } finally {
    await closeServer(tlsServer);
    await closeServer(plain);
  }
});

test('inspect --verify (verifyAccessToken): keys from a plain-http jwks_uri of an https issuer, or an issuer on plain http to another host, verify nothing', async () => {
  const { SignJWT, exportJWK } = await import('jose');
  const { verifyAccessToken } = await import('../src/auth/accessTokenVerification.js');
  const { createDispatcher, createTransport } = await import('../src/http/transport.js');
  const { ca, serverKey, serverCert } = testCertificates();
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  let jwksFetches = 0;
  const plain = http.createServer((_req, res) => {
    jwksFetches++;
    void exportJWK(publicKey).then((jwk) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [{ ...jwk, kid: 'k1', use: 'sig' }] })));
  });
  const plainUrl = await listenLocal(plain);
  let issuer = '';
  const tlsServer = https.createServer({ key: serverKey, cert: serverCert }, (req, res) => {
    if (req.url === '/.well-known/oauth-authorization-server') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer, token_endpoint: `${issuer}/token`, jwks_uri: `${plainUrl}/jwks` }));
    res.writeHead(404).end();
  });
  issuer = (await listenLocal(tlsServer)).replace('http:', 'https:');
  const dispatcher = createDispatcher({ ca });
  try {
    const now = Date.now();
    const token = await new SignJWT({ sub: 'svc', aud: 'api' }).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' }).setIssuer(issuer).setIssuedAt(Math.floor(now / 1000)).setExpirationTime(Math.floor(now / 1000) + 300).sign(privateKey);
    const options = { issuer, transport: createTransport(dispatcher), now, timeout: 5_000, userAgent: 'test' };
    const downgraded = (await verifyAccessToken(token, options)).find((c) => c.name === 'signature')!;
    assert.equal(downgraded.ok, false, downgraded.detail);
    assert.match(downgraded.detail, /plain http/);
    assert.equal(jwksFetches, 0);
    const remote = (await verifyAccessToken(token, { ...options, issuer: 'http://as.example.test' })).find((c) => c.name === 'signature')!;
    assert.equal(remote.ok, false);
    assert.match(remote.detail, /plain http/);
  } finally {
    await dispatcher.close();
    await closeServer(tlsServer);
    await closeServer(plain);
  }
});

test('inspect --verify (verifyAccessToken): a token whose nbf is still ahead fails an nbf check (RFC 7519 §4.1.5); one valid since a while passes it', async () => {
  const { SignJWT, exportJWK } = await import('jose');
  const { verifyAccessToken } = await import('../src/auth/accessTokenVerification.js');
  const { createDispatcher, createTransport } = await import('../src/http/transport.js');
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  let issuer = '';
  const server = http.createServer((req, res) => {
    if (req.url === '/.well-known/oauth-authorization-server') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` }));
    if (req.url === '/jwks') return void exportJWK(publicKey).then((jwk) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [{ ...jwk, kid: 'k1' }] })));
    res.writeHead(404).end();
  });
  issuer = await listenLocal(server);
  const dispatcher = createDispatcher();
  try {
    const now = Date.now();
    const seconds = Math.floor(now / 1000);
    const sign = (nbf: number) => new SignJWT({ sub: 'svc', aud: 'api', nbf }).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' }).setIssuer(issuer).setIssuedAt(seconds).setExpirationTime(seconds + 7200).sign(privateKey);
    const options = { issuer, transport: createTransport(dispatcher), now, timeout: 5_000, userAgent: 'test' };
    const ahead = await verifyAccessToken(await sign(seconds + 3600), options);
    assert.equal(ahead.find((c) => c.name === 'signature')?.ok, true);
    const nbf = ahead.find((c) => (c.name as string) === 'nbf');
    assert.equal(nbf?.ok, false, JSON.stringify(ahead));
    assert.match(nbf!.detail, /not valid before/);
    const since = await verifyAccessToken(await sign(seconds - 10), options);
    assert.ok(since.every((c) => c.ok), JSON.stringify(since));
  } finally {
    await dispatcher.close();
    await closeServer(server);
  }
});

test('metadata text quoted in a DiscoveryError (a wrong issuer, the methods and algorithms offered) cannot forge log lines or flood them: control characters escaped, bounded length', async () => {
  const forged = `https://as.example\r\n2026-12-08T00:00:00Z ERROR forged line\u001b[31m${'A'.repeat(100_000)}`;
  const documents: Record<string, unknown>[] = [
    { issuer: forged },
    { issuer: '', token_endpoint: '', token_endpoint_auth_methods_supported: Array.from({ length: 5_000 }, (_, i) => `m${i}\r\nforged`) },
    { issuer: '', token_endpoint: '', token_endpoint_auth_signing_alg_values_supported: [`RS\n${'B'.repeat(50_000)}`] },
  ];
  let current: Record<string, unknown> = {};
  let issuer = '';
  const server = http.createServer((req, res) => {
    if (req.url === '/.well-known/oauth-authorization-server') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...current, ...(current['issuer'] === '' ? { issuer, token_endpoint: `${issuer}/token` } : {}) }));
    res.writeHead(404).end();
  });
  issuer = await listenLocal(server);
  try {
    for (const [i, doc] of documents.entries()) {
      current = doc;
      const client = makeClient({ issuer, clientCredentialsAuthCredentials: i === 2 ? { oAuthClientId: 'c1', oAuthClientSecret: 'c1-secret-value', clientAuthMethod: 'client_secret_jwt', privateKeyAlgorithm: 'HS256' } : { oAuthClientId: 'c1', oAuthClientSecret: 'c1-secret-value' } });
      const error = await client.clientCredentialsAuthManager.fetchToken().then(() => assert.fail('expected a DiscoveryError'), (e: unknown) => e);
      assert.ok(error instanceof DiscoveryError, String(error));
      assert.doesNotMatch(error.message, /[\r\n\u001b]/, `document ${i}`);
      assert.ok(error.message.length < 1_000, `document ${i}: ${error.message.length} characters`);
    }
  } finally {
    await closeServer(server);
  }
});
