/**
 * The credential options real setups need, against oidc-provider where a server is involved: platform assertions
 * (`clientAssertion`), certificate thumbprints, a JWK's own `kid`, a key without `clientAuthMethod` (with and without
 * discovery), grant type variants with `tokenParameters`, and the messages of a metadata redirect. Every bad value is a
 * typed error before any I/O.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { SignJWT } from 'jose';
import { CallbackError, Client, DiscoveryError, InvalidOptionError, type ClientCredentialsAuthCredentials } from '../src/index.js';
import { DEFAULT_OIDC_CLIENTS, startOidcProvider, type OidcProviderHandle } from './helpers/oidc.js';
import { sendJson, startScripted } from './helpers/scripted.js';
import { testCertificates } from './helpers/certs.js';

const publicJwk = (key: KeyObject, kid: string) => ({ ...key.export({ format: 'jwk' }), kid, use: 'sig' });
const headerOf = (jwt: string): Record<string, unknown> => JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;

describe('credential options against oidc-provider', () => {
  let op: OidcProviderHandle;
  const one = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const two = generateKeyPairSync('ec', { namedCurve: 'P-256' });

  before(async () => {
    op = await startOidcProvider({
      clients: [
        ...DEFAULT_OIDC_CLIENTS,
        { client_id: 'pk', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk(one.publicKey, 'k-one'), publicJwk(two.publicKey, 'k-two')] } },
      ],
    });
  });
  after(() => op.close());

  const client = (credentials: Partial<ClientCredentialsAuthCredentials>, where: { tokenUrl?: string; issuer?: string } = {}): Client =>
    new Client({ ...(where.issuer ? { issuer: where.issuer } : { tokenUrl: where.tokenUrl ?? op.tokenUrl }), retry: false, clientCredentialsAuthCredentials: { oAuthClientId: 'pk', ...credentials } });

  test('a private JWK\'s own kid goes in the header; keyId overrides it', async () => {
    const jwk = { ...two.privateKey.export({ format: 'jwk' }), kid: 'k-two' };
    await client({ privateKey: jwk }).clientCredentialsAuthManager.fetchToken();
    assert.equal(headerOf(new URLSearchParams(op.tokenRequests.at(-1)!.body).get('client_assertion')!)['kid'], 'k-two');
    await client({ privateKey: { ...one.privateKey.export({ format: 'jwk' }), kid: 'stale' }, keyId: 'k-one' }).clientCredentialsAuthManager.fetchToken();
    assert.equal(headerOf(new URLSearchParams(op.tokenRequests.at(-1)!.body).get('client_assertion')!)['kid'], 'k-one');
  });

  test('a key without clientAuthMethod is private_key_jwt, with tokenUrl and with discovery (docs/discovery.md)', async () => {
    await client({ privateKey: one.privateKey, keyId: 'k-one' }).clientCredentialsAuthManager.fetchToken();
    const c = client({ privateKey: one.privateKey, keyId: 'k-one' }, { issuer: op.issuer });
    const token = await c.clientCredentialsAuthManager.fetchToken();
    assert.ok(token.accessToken);
    assert.equal(new URLSearchParams(op.tokenRequests.at(-1)!.body).get('client_assertion_type'), 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
  });

  test('clientAssertion: an assertion signed elsewhere is sent as client_assertion, with no secret, fresh for each token request', async () => {
    let calls = 0;
    const issued: string[] = [];
    const clientAssertion = async (): Promise<string> => {
      calls++;
      const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k-one' }).setIssuer('pk').setSubject('pk').setAudience(op.tokenUrl)
        .setJti(`jti-${calls}-${Date.now()}`).setIssuedAt().setExpirationTime('1m').sign(one.privateKey);
      issued.push(jwt);
      return `${jwt}\n`; // a file's final newline is trimmed
    };
    const c = client({ clientAssertion });
    await c.clientCredentialsAuthManager.fetchToken();
    await c.clientCredentialsAuthManager.fetchToken();
    assert.equal(calls, 2);
    const form = new URLSearchParams(op.tokenRequests.at(-1)!.body);
    assert.equal(form.get('client_assertion'), issued[1]);
    assert.equal(form.has('client_secret'), false);
    assert.equal(op.tokenRequests.at(-1)!.headers.authorization, undefined);
  });

  test('clientAssertion that throws or gives no usable JWT: CallbackError, no request sent, the value never quoted', async () => {
    const before = op.tokenRequests.length;
    const cases: [string, () => unknown][] = [
      ['throws', () => { throw new Error('no token file'); }],
      ['rejects', () => Promise.reject(new Error('no token file'))],
      ['empty', () => ''],
      ['not a string', () => 42],
      ['a space inside', () => 'eyJhbGciOi JIUzI1NiJ9.e30.sig-secret-part'],
      ['too long', () => 'a'.repeat(20_000)],
    ];
    for (const [label, source] of cases) {
      await assert.rejects(client({ clientAssertion: source as () => string }).clientCredentialsAuthManager.fetchToken(), (error: unknown) => {
        assert.ok(error instanceof CallbackError, label);
        assert.ok(!inspect(error).includes('sig-secret-part'), label);
        return true;
      });
    }
    assert.equal(op.tokenRequests.length, before);
  });

  test('the platform assertion is redacted: a server that echoes it back shows [redacted]', async () => {
    const assertion = 'eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJrOHMifQ.echoed-signature-part-0123456789';
    const echo = await startScripted((_req, res, recorded) => sendJson(res, 400, { error: 'invalid_client', error_description: `bad assertion ${new URLSearchParams(recorded.body).get('client_assertion')}` }));
    try {
      await assert.rejects(client({ clientAssertion: () => assertion }, { tokenUrl: `${echo.url}/token` }).clientCredentialsAuthManager.fetchToken(), (error: unknown) => {
        const text = `${inspect(error, { depth: 6 })}${JSON.stringify(error)}${(error as Error).message}`;
        assert.ok(!text.includes(assertion) && !text.includes('echoed-signature-part'), text);
        return true;
      });
    } finally {
      await echo.close();
    }
  });

  test('certificate: x5t#S256 (and x5t when asked) of the key\'s certificate; oidc-provider still accepts the assertion', async () => {
    const certs = testCertificates();
    // A client registered with the certificate's public key.
    const der = new X509Certificate(certs.clientCert);
    const opWithCert = await startOidcProvider({ clients: [{ client_id: 'cert', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk(der.publicKey, 'c1')] } }] });
    try {
      const c = new Client({ tokenUrl: opWithCert.tokenUrl, clientCredentialsAuthCredentials: { oAuthClientId: 'cert', privateKey: certs.clientKey, certificate: certs.clientCert, certificateThumbprints: ['x5t#S256', 'x5t'] } });
      await c.clientCredentialsAuthManager.fetchToken();
      const header = headerOf(new URLSearchParams(opWithCert.tokenRequests.at(-1)!.body).get('client_assertion')!);
      assert.equal(header['x5t#S256'], createHash('sha256').update(der.raw).digest('base64url'));
      assert.equal(header['x5t'], createHash('sha1').update(der.raw).digest('base64url'));
    } finally {
      await opWithCert.close();
    }
  });

  test('grantType with tokenParameters: grant_type replaced once, the parameters sent', async () => {
    const server = await startScripted((_req, res) => sendJson(res, 200, { access_token: 'zoom-token-value', token_type: 'bearer', expires_in: 3599 }));
    try {
      const c = new Client({ tokenUrl: `${server.url}/oauth/token`, clientCredentialsAuthCredentials: { oAuthClientId: 'z', oAuthClientSecret: 'z-secret-value', grantType: 'account_credentials', tokenParameters: { account_id: 'acc-1' } } });
      await c.clientCredentialsAuthManager.fetchToken();
      const form = new URLSearchParams(server.requests[0]!.body);
      assert.deepEqual(form.getAll('grant_type'), ['account_credentials']);
      assert.equal(form.get('account_id'), 'acc-1');
      assert.ok(server.requests[0]!.body.startsWith('grant_type=account_credentials'));
    } finally {
      await server.close();
    }
  });

  test('a metadata URL answering 301 is named in the discovery error, with where it points', async () => {
    const server = await startScripted((req, res) => {
      res.writeHead(301, { location: `/moved${req.url}` }).end();
    });
    try {
      const c = new Client({ issuer: `${server.url}/realm`, clientCredentialsAuthCredentials: { oAuthClientId: 'a', oAuthClientSecret: 'a-secret-value' } });
      await assert.rejects(c.clientCredentialsAuthManager.fetchToken(), (error: unknown) => {
        assert.ok(error instanceof DiscoveryError);
        assert.match(error.message, /answered 301, a redirect to http:\/\/127\.0\.0\.1:\d+\/moved\/\.well-known\/oauth-authorization-server\/realm/);
        return true;
      });
    } finally {
      await server.close();
    }
  });
});

describe('bad values are typed errors before any I/O', () => {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const make = (credentials: Record<string, unknown>): Client =>
    new Client({ tokenUrl: 'http://127.0.0.1:9/token', clientCredentialsAuthCredentials: { oAuthClientId: 'id', ...credentials } as unknown as ClientCredentialsAuthCredentials });
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['clientAssertion not a function', { clientAssertion: 'eyJ...' }, /clientAssertion/],
    ['clientAssertion with privateKey', { clientAssertion: () => 'x', privateKey: key }, /clientAssertion/],
    ['clientAssertion with a secret', { clientAssertion: () => 'x', oAuthClientSecret: 'secret-value' }, /clientAssertion/],
    ['clientAssertion with client_secret_post', { clientAssertion: () => 'x', clientAuthMethod: 'client_secret_post' }, /clientAssertion/],
    ['certificate of another key', { privateKey: key, certificate: testCertificates().clientCert }, /certificate.*not the certificate/],
    ['certificate that is not one', { privateKey: key, certificate: 'not a pem' }, /certificate.*X\.509/],
    ['certificate without a key', { oAuthClientSecret: 'secret-value', certificate: testCertificates().clientCert }, /certificate/],
    ['certificateThumbprints without certificate', { privateKey: other, certificateThumbprints: ['x5t'] }, /certificateThumbprints/],
    ['certificateThumbprints unknown', { privateKey: testCertificates().clientKey, certificate: testCertificates().clientCert, certificateThumbprints: ['sha1'] }, /certificateThumbprints/],
    ['keyId empty', { privateKey: key, keyId: '' }, /keyId/],
    ['grantType with a space', { oAuthClientSecret: 'secret-value', grantType: 'client credentials' }, /grantType/],
    ['grantType not a string', { oAuthClientSecret: 'secret-value', grantType: 7 }, /grantType/],
    ...['grant_type', 'scope', 'resource', 'audience', 'client_secret', 'client_assertion', 'client_assertion_type'].map((name): [string, Record<string, unknown>, RegExp] =>
      [`tokenParameters.${name}`, { oAuthClientSecret: 'secret-value', tokenParameters: { [name]: 'x' } }, new RegExp(`tokenParameters\\.${name}`)]),
    ['tokenParameters not strings', { oAuthClientSecret: 'secret-value', tokenParameters: { account_id: 1 } }, /tokenParameters/],
  ];
  for (const [label, credentials, message] of cases) {
    test(label, () => {
      assert.throws(() => make(credentials), (error: unknown) => error instanceof InvalidOptionError && error.code === 'ERR_INVALID_OPTION' && message.test(error.message));
    });
  }
});
