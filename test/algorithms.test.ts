/**
 * Client assertion algorithms (RFC 7523): client_secret_jwt with HS256/384/512 and private_key_jwt with every
 * algorithm each key type supports, each against an oidc-provider client pinned to that one algorithm
 * (`token_endpoint_auth_signing_alg`), so a wrong `alg` is refused with invalid_client. Unsupported choices fail at
 * construction with InvalidOptionError.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import { assertionAlgorithm, clientAssertion } from '../src/auth/clientAuthentication.js';
import { Client, InvalidOptionError, type ClientConfiguration, type PrivateKeyAlgorithm } from '../src/index.js';
import { startOidcProvider, type OidcClient, type OidcProviderHandle } from './helpers/oidc.js';

const SECRET = 'client-secret-jwt-shared-secret-0123456789abcdef-0123456789abcdef';
const keys = {
  rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  pss: generateKeyPairSync('rsa-pss', { modulusLength: 2048 }),
  p256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  p384: generateKeyPairSync('ec', { namedCurve: 'P-384' }),
  p521: generateKeyPairSync('ec', { namedCurve: 'P-521' }),
  ed: generateKeyPairSync('ed25519'),
};
type KeyName = keyof typeof keys;
const jwk = (key: KeyObject, kid: string) => ({ ...key.export({ format: 'jwk' }), kid, use: 'sig' });

/** Each pinned key case: the oidc-provider client `pk-<key>-<alg>` accepts only `alg`. */
const KEY_CASES: { key: KeyName; alg: PrivateKeyAlgorithm }[] = [
  ...(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const).map((alg) => ({ key: 'rsa' as const, alg })),
  { key: 'p256', alg: 'ES256' },
  { key: 'p384', alg: 'ES384' },
  { key: 'p521', alg: 'ES512' },
  { key: 'ed', alg: 'EdDSA' },
  { key: 'ed', alg: 'Ed25519' },
];

let op: OidcProviderHandle;
const clients: Client[] = [];

before(async () => {
  const registered: OidcClient[] = [
    ...(['HS256', 'HS384', 'HS512'] as const).map((alg) => ({
      client_id: `hs-${alg}`, client_secret: SECRET, token_endpoint_auth_method: 'client_secret_jwt' as const, token_endpoint_auth_signing_alg: alg,
    })),
    ...KEY_CASES.map(({ key, alg }) => ({
      client_id: `pk-${key}-${alg}`,
      token_endpoint_auth_method: 'private_key_jwt' as const,
      token_endpoint_auth_signing_alg: alg,
      jwks: { keys: [jwk(keys[key].publicKey, `${key}-1`)] },
    })),
  ];
  op = await startOidcProvider({ clients: registered });
});
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await op.close();
});

function makeClient(credentials: NonNullable<ClientConfiguration['clientCredentialsAuthCredentials']>): Client {
  const client = new Client({ tokenUrl: op.tokenUrl, retry: false, clientCredentialsAuthCredentials: credentials });
  clients.push(client);
  return client;
}

function sentAlg(): string {
  const assertion = new URLSearchParams(op.tokenRequests.at(-1)!.body).get('client_assertion')!;
  return (JSON.parse(Buffer.from(assertion.split('.')[0]!, 'base64url').toString()) as { alg: string }).alg;
}

describe('client_secret_jwt', () => {
  for (const alg of ['HS256', 'HS384', 'HS512'] as const) {
    test(`privateKeyAlgorithm ${alg} is honoured: a client pinned to ${alg} gets a token`, async () => {
      const client = makeClient({ oAuthClientId: `hs-${alg}`, oAuthClientSecret: SECRET, clientAuthMethod: 'client_secret_jwt', privateKeyAlgorithm: alg });
      const token = await client.clientCredentialsAuthManager.fetchToken();
      assert.ok(token.accessToken);
      assert.equal(sentAlg(), alg);
    });
  }

  test('without privateKeyAlgorithm, HS256; a server pinned to HS512 refuses it with invalid_client', async () => {
    const client = makeClient({ oAuthClientId: 'hs-HS512', oAuthClientSecret: SECRET, clientAuthMethod: 'client_secret_jwt' });
    await assert.rejects(client.clientCredentialsAuthManager.fetchToken(), { code: 'ERR_OAUTH_PROVIDER', error: 'invalid_client' });
    assert.equal(sentAlg(), 'HS256');
  });

  test('an asymmetric algorithm is an InvalidOptionError at construction', () => {
    assert.throws(
      () => new Client({ tokenUrl: 'https://as.example/token', clientCredentialsAuthCredentials: { oAuthClientId: 'a', oAuthClientSecret: SECRET, clientAuthMethod: 'client_secret_jwt', privateKeyAlgorithm: 'RS256' } }),
      (e: unknown) => e instanceof InvalidOptionError && e.option === 'clientCredentialsAuthCredentials.privateKeyAlgorithm' && /HS256, HS384, HS512/.test(e.message),
    );
  });
});

describe('private_key_jwt: every algorithm the key supports', () => {
  for (const { key, alg } of KEY_CASES) {
    test(`${key} key signs ${alg} for a client pinned to ${alg}`, async () => {
      const client = makeClient({ oAuthClientId: `pk-${key}-${alg}`, clientAuthMethod: 'private_key_jwt', privateKey: keys[key].privateKey, keyId: `${key}-1`, privateKeyAlgorithm: alg });
      const token = await client.clientCredentialsAuthManager.fetchToken();
      assert.ok(token.accessToken);
      assert.equal(sentAlg(), alg);
    });
  }

  test("without privateKeyAlgorithm, the key's default: RS256 (RSA), PS256 (RSA-PSS), ES384 (P-384), EdDSA (Ed25519)", async () => {
    for (const [key, alg] of [['rsa', 'RS256'], ['p384', 'ES384'], ['ed', 'EdDSA']] as const) {
      const client = makeClient({ oAuthClientId: `pk-${key}-${alg}`, clientAuthMethod: 'private_key_jwt', privateKey: keys[key].privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, keyId: `${key}-1` });
      assert.ok((await client.clientCredentialsAuthManager.fetchToken()).accessToken);
      assert.equal(sentAlg(), alg);
    }
  });

  test('an RSA-PSS key (which Node cannot export as a JWK for the server) defaults to PS256 and signs a PSS signature', () => {
    const input = { method: 'private_key_jwt' as const, clientId: 'a', clientSecret: undefined, privateKey: keys.pss.privateKey };
    assert.equal(assertionAlgorithm(input), 'PS256');
    assert.equal(assertionAlgorithm({ ...input, algorithm: 'PS512' }), 'PS512');
    const jws = clientAssertion({ ...input, algorithm: 'PS384' }, 'https://as.example/token', Date.now());
    const [h, p, sig] = jws.split('.') as [string, string, string];
    assert.ok(verify('sha384', Buffer.from(`${h}.${p}`), { key: keys.pss.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 }, Buffer.from(sig, 'base64url')));
  });

  test("the server's metadata chooses among the key's algorithms when no option is set, the key's default first", () => {
    const rsa = { method: 'private_key_jwt' as const, clientId: 'a', clientSecret: undefined, privateKey: keys.rsa.privateKey };
    assert.equal(assertionAlgorithm(rsa, ['ES256', 'PS384', 'RS512']), 'PS384');
    assert.equal(assertionAlgorithm(rsa, ['RS512', 'RS256']), 'RS256');
    assert.equal(assertionAlgorithm(rsa, ['ES256']), 'RS256', 'nothing in common: the key default (the server will say no)');
    assert.equal(assertionAlgorithm({ ...rsa, algorithm: 'RS384' }, ['RS512']), 'RS384', 'the option wins');
    const hs = { method: 'client_secret_jwt' as const, clientId: 'a', clientSecret: SECRET };
    assert.equal(assertionAlgorithm(hs, ['HS512', 'RS256']), 'HS512');
    assert.equal(assertionAlgorithm(hs), 'HS256');
  });

  test('a server pinned to RS512 refuses the default RS256 (the pin is real)', async () => {
    const client = makeClient({ oAuthClientId: 'pk-rsa-RS512', clientAuthMethod: 'private_key_jwt', privateKey: keys.rsa.privateKey, keyId: 'rsa-1' });
    await assert.rejects(client.clientCredentialsAuthManager.fetchToken(), { code: 'ERR_OAUTH_PROVIDER', error: 'invalid_client' });
  });

  const unsupported: [string, KeyObject, string][] = [
    ['ES256 with an RSA key', keys.rsa.privateKey, 'ES256'],
    ['RS256 with an RSA-PSS key', keys.pss.privateKey, 'RS256'],
    ['ES256 with a P-384 key', keys.p384.privateKey, 'ES256'],
    ['HS256 with an Ed25519 key', keys.ed.privateKey, 'HS256'],
    ['an unknown algorithm', keys.rsa.privateKey, 'RS999'],
  ];
  for (const [name, privateKey, alg] of unsupported) {
    test(`${name} is an InvalidOptionError at construction`, () => {
      assert.throws(
        () => new Client({ tokenUrl: 'https://as.example/token', clientCredentialsAuthCredentials: { oAuthClientId: 'a', clientAuthMethod: 'private_key_jwt', privateKey, privateKeyAlgorithm: alg as PrivateKeyAlgorithm } }),
        (e: unknown) => e instanceof InvalidOptionError && e.option === 'clientCredentialsAuthCredentials.privateKeyAlgorithm',
      );
    });
  }

  test('a key no JWS algorithm covers (secp256k1) is an InvalidOptionError naming privateKey', () => {
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey;
    assert.throws(
      () => new Client({ tokenUrl: 'https://as.example/token', clientCredentialsAuthCredentials: { oAuthClientId: 'a', clientAuthMethod: 'private_key_jwt', privateKey: k1 } }),
      (e: unknown) => e instanceof InvalidOptionError && e.option === 'clientCredentialsAuthCredentials.privateKey' && /secp256k1/.test(e.message),
    );
  });
});
