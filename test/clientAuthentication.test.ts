/**
 * Client authentication at the token endpoint, against oidc-provider and @node-oauth/oauth2-server:
 * client_secret_basic (RFC 6749 §2.3.1: form-urlencode id and secret before base64), client_secret_post,
 * client_secret_jwt and private_key_jwt (RFC 7523) with RSA, EC and Ed25519 keys given as PEM, JWK and KeyObject.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { Client, type ClientConfiguration } from '../src/index.js';
import { DEFAULT_OIDC_CLIENTS } from './helpers/oidc.js';
import { startProtectedApi, type ProtectedApiHandle } from './helpers/api.js';
import { startNodeOAuthServer, type NodeOAuthHandle } from './helpers/nodeoauth.js';
import { manualClock, startStack, type Stack } from './helpers/fixtures.js';

const HS_SECRET = 'client-secret-jwt-shared-secret-0123456789abcdef';
const SPECIAL = { id: 'my client:1', secret: "sp ace+plus/slash:colon%pct!'()*~" };

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
const publicJwk = (key: KeyObject, kid: string) => ({ ...key.export({ format: 'jwk' }), kid, use: 'sig' });

let stack: Stack;
const clients: Client[] = [];

before(async () => {
  stack = await startStack({
    clients: [
      ...DEFAULT_OIDC_CLIENTS,
      { client_id: SPECIAL.id, client_secret: SPECIAL.secret },
      { client_id: 'hs', client_secret: HS_SECRET, token_endpoint_auth_method: 'client_secret_jwt' },
      { client_id: 'pk-rsa', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk(rsa.publicKey, 'rsa-1')] } },
      { client_id: 'pk-ec', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk(ec.publicKey, 'ec-1')] } },
      { client_id: 'pk-ed', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk(ed.publicKey, 'ed-1')] } },
    ],
  });
});
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await stack.close();
});

type Credentials = NonNullable<ClientConfiguration['clientCredentialsAuthCredentials']>;

function makeClient(credentials: Credentials, config: Partial<ClientConfiguration> = {}): Client {
  const client = new Client({ baseUrl: stack.api.url, tokenUrl: stack.op.tokenUrl, refreshAhead: 0, ...config, clientCredentialsAuthCredentials: credentials });
  clients.push(client);
  return client;
}

/** Calls the API and returns the client_id it saw in the token. */
async function apiClientId(client: Client): Promise<string> {
  const res = await client.get<{ client_id: string }>('/things');
  assert.equal(res.statusCode, 200);
  return res.result.client_id;
}

function decodeSegment(segment: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('client_secret_basic (the default)', () => {
  test("form-urlencodes id and secret before base64 (RFC 6749 §2.3.1): the `weird` client's secret p+s/s:w%rd works", async () => {
    const client = makeClient({ oAuthClientId: 'weird', oAuthClientSecret: 'p+s/s:w%rd' });
    assert.equal(await apiClientId(client), 'weird');
    const sent = stack.op.tokenRequests.at(-1)!;
    assert.equal(sent.headers.authorization, `Basic ${Buffer.from('weird:p%2Bs%2Fs%3Aw%25rd').toString('base64')}`);
    assert.equal(new URLSearchParams(sent.body).get('client_secret'), null, 'the secret is not also in the body');
    assert.equal(new URLSearchParams(sent.body).get('client_id'), null);
  });

  test('spaces become +, and !\'()* are percent-encoded, in both the id and the secret', async () => {
    const client = makeClient({ oAuthClientId: SPECIAL.id, oAuthClientSecret: SPECIAL.secret });
    assert.equal(await apiClientId(client), SPECIAL.id);
    assert.equal(
      stack.op.tokenRequests.at(-1)!.headers.authorization,
      `Basic ${Buffer.from('my+client%3A1:sp+ace%2Bplus%2Fslash%3Acolon%25pct%21%27%28%29%2A~').toString('base64')}`,
    );
  });
});

test('client_secret_post sends client_id and client_secret in the body and no Authorization header', async () => {
  const client = makeClient({ oAuthClientId: 'postclient', oAuthClientSecret: 'post-secret', clientAuthMethod: 'client_secret_post', oAuthScopes: 'api:read' });
  assert.equal(await apiClientId(client), 'postclient');
  const sent = stack.op.tokenRequests.at(-1)!;
  assert.equal(sent.headers.authorization, undefined);
  assert.deepEqual(Object.fromEntries(new URLSearchParams(sent.body)), {
    grant_type: 'client_credentials',
    scope: 'api:read',
    client_id: 'postclient',
    client_secret: 'post-secret',
  });
});

test('client_secret_jwt signs an HS256 assertion with the secret; each fetch has a fresh jti', async () => {
  const clock = manualClock();
  const client = makeClient({ oAuthClientId: 'hs', oAuthClientSecret: HS_SECRET, clientAuthMethod: 'client_secret_jwt' }, { clock });
  assert.equal(await apiClientId(client), 'hs');
  const form = new URLSearchParams(stack.op.tokenRequests.at(-1)!.body);
  assert.equal(stack.op.tokenRequests.at(-1)!.headers.authorization, undefined);
  assert.equal(form.get('client_id'), 'hs');
  assert.equal(form.get('client_secret'), null);
  assert.equal(form.get('client_assertion_type'), 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
  const [header, payload] = form.get('client_assertion')!.split('.');
  assert.equal(decodeSegment(header!).alg, 'HS256');
  const claims = decodeSegment(payload!);
  assert.equal(claims.iss, 'hs');
  assert.equal(claims.sub, 'hs');
  assert.equal(claims.aud, stack.op.tokenUrl);
  assert.equal(typeof claims.jti, 'string');
  assert.equal(claims.iat, clock.now() / 1000);
  assert.ok((claims.exp as number) > (claims.iat as number));

  // oidc-provider rejects a replayed jti, so a second fetch only succeeds with a new assertion.
  clock.advance(60_000);
  assert.equal(await apiClientId(client), 'hs');
  const second = decodeSegment(new URLSearchParams(stack.op.tokenRequests.at(-1)!.body).get('client_assertion')!.split('.')[1]!);
  assert.notEqual(second.jti, claims.jti);
});

describe('private_key_jwt', () => {
  const cases = [
    { id: 'pk-rsa', kid: 'rsa-1', alg: 'RS256', form: 'a PEM string', privateKey: () => rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string },
    { id: 'pk-ec', kid: 'ec-1', alg: 'ES256', form: 'a private JWK', privateKey: () => ec.privateKey.export({ format: 'jwk' }) as Record<string, unknown> },
    { id: 'pk-ed', kid: 'ed-1', alg: 'EdDSA', form: 'a KeyObject', privateKey: () => ed.privateKey },
  ];
  for (const { id, kid, alg, form, privateKey } of cases) {
    test(`${alg} with the key given as ${form}, no client secret`, async () => {
      const client = makeClient({ oAuthClientId: id, clientAuthMethod: 'private_key_jwt', privateKey: privateKey(), keyId: kid });
      assert.equal(await apiClientId(client), id);
      const sent = new URLSearchParams(stack.op.tokenRequests.at(-1)!.body);
      assert.equal(sent.get('client_id'), id);
      assert.equal(sent.get('client_assertion_type'), 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
      const header = decodeSegment(sent.get('client_assertion')!.split('.')[0]!);
      assert.deepEqual([header.alg, header.kid], [alg, kid]);
    });
  }

  test('an assertion signed with the wrong key is refused with invalid_client', async () => {
    const client = makeClient({ oAuthClientId: 'pk-ec', clientAuthMethod: 'private_key_jwt', privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, keyId: 'ec-1' });
    await assert.rejects(client.get('/things'), { code: 'ERR_OAUTH_PROVIDER', error: 'invalid_client' });
  });
});

describe('@node-oauth/oauth2-server', () => {
  let server: NodeOAuthHandle;
  let opaqueApi: ProtectedApiHandle;
  before(async () => {
    server = await startNodeOAuthServer();
    opaqueApi = await startProtectedApi({ verify: async (token) => (await server.introspect(token)) ?? false });
  });
  after(async () => {
    await opaqueApi.close();
    await server.close();
  });

  for (const method of ['client_secret_basic', 'client_secret_post'] as const) {
    test(`${method} with a portable secret gets an opaque token the API accepts`, async () => {
      const client = makeClient(
        { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret', clientAuthMethod: method, oAuthScopes: ['api:read'] },
        { baseUrl: opaqueApi.url, tokenUrl: server.tokenUrl },
      );
      const res = await client.get<{ client_id: string; scope: string }>('/things');
      assert.deepEqual([res.statusCode, res.result.client_id, res.result.scope], [200, 'svc', 'api:read']);
      const sent = server.tokenRequests.at(-1)!;
      assert.equal(sent.headers.authorization === undefined, method === 'client_secret_post');
      assert.equal(new URLSearchParams(sent.body).get('scope'), 'api:read');
    });
  }

  test('a wrong secret is an OAuthProviderError with invalid_client', async () => {
    const client = makeClient({ oAuthClientId: 'svc', oAuthClientSecret: 'nope' }, { baseUrl: opaqueApi.url, tokenUrl: server.tokenUrl });
    await assert.rejects(client.get('/things'), { name: 'OAuthProviderError', code: 'ERR_OAUTH_PROVIDER', error: 'invalid_client', statusCode: 401 });
  });
});
