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
import fc from 'fast-check';

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
    ['privateKey an encrypted PEM: says so and how to decrypt it', { privateKey: key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pass-phrase' }) }, /privateKey.*encrypted PEM.*openssl pkey/],
    ['privateKey a certificate: says so', { privateKey: testCertificates().clientCert }, /privateKey.*is a certificate/],
    ['privateKey a public PEM: says so', { privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) }, /privateKey.*is a public key/],
    ['privateKey a public JWK: says so', { privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) }, /privateKey.*public JWK/],
    ['assertionAudience empty (it was sent as aud "")', { privateKey: key, assertionAudience: '' }, /assertionAudience/],
    ['assertionAudience not a string (it was sent as aud 42)', { privateKey: key, assertionAudience: 42 }, /assertionAudience/],
    ['assertionAudience with CR/LF', { privateKey: key, assertionAudience: 'https://as.example.com/token\r\n' }, /assertionAudience/],
  ];
  test('a public KeyObject as privateKey (or as the DPoP key) is an InvalidOptionError at construction, not a bare TypeError at the first token request', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    assert.throws(() => make({ privateKey: publicKey }), (error: unknown) => error instanceof InvalidOptionError && error.option === 'clientCredentialsAuthCredentials.privateKey' && /public key/.test(error.message));
    assert.throws(
      () => new Client({ tokenUrl: 'http://127.0.0.1:9/token', dpop: { privateKey: publicKey }, clientCredentialsAuthCredentials: { oAuthClientId: 'id', oAuthClientSecret: 'secret-value-123' } }),
      (error: unknown) => error instanceof InvalidOptionError && error.option === 'dpop.privateKey' && /public key/.test(error.message),
    );
  });
  for (const [label, credentials, message] of cases) {
    test(label, () => {
      assert.throws(() => make(credentials), (error: unknown) => error instanceof InvalidOptionError && error.code === 'ERR_INVALID_OPTION' && message.test(error.message));
    });
  }
});

describe('resource and audience: RFC 8707 absolute URIs and audiences without control characters, refused before any I/O', () => {
  // A token endpoint that counts what reaches it: a refused value must send nothing.
  let hits = 0;
  let server: Awaited<ReturnType<typeof startScripted>>;
  before(async () => {
    server = await startScripted((_req, res) => {
      hits++;
      sendJson(res, 200, { access_token: 'tok-resource-audience-0001', token_type: 'Bearer', expires_in: 300 });
    });
  });
  after(() => server.close());
  const make = (credentials: Record<string, unknown> = {}): Client =>
    new Client({ baseUrl: server.url, tokenUrl: `${server.url}/token`, retry: false, clientCredentialsAuthCredentials: { oAuthClientId: 'id', oAuthClientSecret: 'secret-value-123', ...credentials } });
  const typed = (option: RegExp) => (error: unknown): boolean => error instanceof InvalidOptionError && error.code === 'ERR_INVALID_OPTION' && option.test(error.option);

  const badResources = ['/relative', 'relative/path', 'api.example.com', 'https://api.example.com/#frag', 'https://api.example.com/ x', 'https://api.example.com/\r\nX: y', 'urn:x\u0000', 'https://bücher.example/', ' https://api.example.com/', '#', ':nothing'];
  const badAudiences = ['a\r\nb', 'api\n', '\u0000', 'x\u007f', 'x\u0085y', 'tab\there', 'lone \ud800 surrogate'];

  test('configured: a resource that is not an absolute URI, or has a fragment, and an audience with a control character are InvalidOptionErrors', () => {
    for (const resource of badResources) {
      assert.throws(() => make({ resource }), typed(/^clientCredentialsAuthCredentials\.resource$/), JSON.stringify(resource));
      assert.throws(() => make({ resource: ['https://ok.example.com/', resource] }), typed(/^clientCredentialsAuthCredentials\.resource$/), JSON.stringify(resource));
    }
    for (const audience of badAudiences) assert.throws(() => make({ audience }), typed(/^clientCredentialsAuthCredentials\.audience$/), JSON.stringify(audience));
    assert.equal(hits, 0);
  });

  test('per request (the manager and client.request): the same values are refused before any I/O, every time (a refusal is not memoised as a key)', async () => {
    const client = make();
    for (let round = 0; round < 2; round++) {
      for (const resource of badResources) {
        await assert.rejects(client.clientCredentialsAuthManager.getToken({ resource }), typed(/^resource$/), JSON.stringify(resource));
        await assert.rejects(client.request({ method: 'GET', path: '/api', resource }), typed(/^resource$/), JSON.stringify(resource));
      }
      for (const audience of badAudiences) {
        await assert.rejects(client.clientCredentialsAuthManager.getToken({ audience }), typed(/^audience$/), JSON.stringify(audience));
        await assert.rejects(client.request({ method: 'GET', path: '/api', audience }), typed(/^audience$/), JSON.stringify(audience));
      }
    }
    assert.equal(hits, 0);
  });

  test('absolute URIs (with a query), URNs, an Entra v1 application ID, and audiences of printable text are still accepted and sent', async () => {
    const client = make({ resource: ['https://api.example.com/v1?tenant=a', 'urn:example:api'], audience: 'https://api.example.com' });
    await client.clientCredentialsAuthManager.getToken();
    await client.clientCredentialsAuthManager.getToken({ resource: 'https://other.example.com', audience: 'my api (prod)' });
    // Entra ID v1 takes an application ID (a UUID) as resource, beside App ID URIs: the one value that is no URI.
    await client.clientCredentialsAuthManager.getToken({ resource: '00000003-0000-0000-c000-000000000000' });
    assert.equal(hits, 3);
    hits = 0;
  });

  test('property: an audience holding any control character, or a resource without a scheme, is refused before any I/O', async () => {
    const control = fc.integer({ min: 0, max: 0x9f }).filter((c) => c < 0x20 || c >= 0x7f).map((c) => String.fromCharCode(c));
    const client = make();
    await fc.assert(
      fc.asyncProperty(fc.string(), control, fc.string(), async (before, c, afterText) => {
        const audience = `${before}${c}${afterText}`;
        assert.throws(() => make({ audience }), typed(/audience$/));
        await assert.rejects(client.clientCredentialsAuthManager.getToken({ audience }), typed(/^audience$/));
      }),
      { numRuns: 200 },
    );
    await fc.assert(
      fc.asyncProperty(fc.webPath(), async (path) => {
        const resource = path === '' ? '/' : path;
        assert.throws(() => make({ resource }), typed(/resource$/));
        await assert.rejects(client.clientCredentialsAuthManager.getToken({ resource }), typed(/^resource$/));
      }),
      { numRuns: 100 },
    );
    await fc.assert(
      fc.asyncProperty(fc.webUrl({ withQueryParameters: true }), async (url) => {
        make({ resource: url });
        assert.doesNotThrow(() => make({ resource: url }));
      }),
      { numRuns: 100 },
    );
    assert.equal(hits, 0);
  });
});
