/**
 * `inspect --verify` (verifyAccessToken): the key must fit the token's `alg` (RFC 7518 §3: ES256 ⇔ P-256, ES384 ⇔
 * P-384, ES512 ⇔ P-521, RS/PS ⇔ RSA of 2048 bits or more, EdDSA ⇔ OKP Ed25519/Ed448, Ed25519 ⇔ Ed25519), the JWK's
 * own `alg`/`use`/`key_ops` must allow it, and a `crit` header (RFC 7515 §4.1.11) we cannot honour fails the check.
 * Real keys from node:crypto, a real JWKS server on 127.0.0.1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { constants, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { verifyAccessToken, type AccessTokenCheck } from '../src/auth/accessTokenVerification.js';
import { createDispatcher, createTransport } from '../src/http/transport.js';
import { closeServer, listenLocal } from './helpers/http.js';

type Keys = { privateKey: KeyObject; publicKey: KeyObject };
const KEYS: Record<string, Keys> = {
  'RSA-2048': generateKeyPairSync('rsa', { modulusLength: 2048 }),
  'RSA-1024': generateKeyPairSync('rsa', { modulusLength: 1024 }),
  'P-256': generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  'P-384': generateKeyPairSync('ec', { namedCurve: 'P-384' }),
  'P-521': generateKeyPairSync('ec', { namedCurve: 'P-521' }),
  Ed25519: generateKeyPairSync('ed25519'),
  Ed448: generateKeyPairSync('ed448'),
};
const ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
/** The pairs RFC 7518 §3 (and RFC 8037, RFC 9864) allow. */
const MATCHES = new Set([
  ...['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'].map((alg) => `${alg}/RSA-2048`),
  'ES256/P-256', 'ES384/P-384', 'ES512/P-521', 'EdDSA/Ed25519', 'EdDSA/Ed448', 'Ed25519/Ed25519',
]);

let issuer = '';
let jwks: unknown[] = [];
let server: http.Server;
let dispatcher: ReturnType<typeof createDispatcher>;
before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/.well-known/oauth-authorization-server') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` }));
    if (req.url === '/jwks') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: jwks }));
    res.writeHead(404).end();
  });
  issuer = await listenLocal(server);
  dispatcher = createDispatcher();
});
after(async () => {
  await dispatcher.close();
  await closeServer(server);
});

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const hashOf = (alg: string): string => (/^[RPE]S\d{3}$/.test(alg) ? `sha${alg.slice(-3)}` : 'sha256');

/** Signs as the key can (whatever the header claims): the test's own signer, not the library's. */
function signToken(header: Record<string, unknown>, key: KeyObject): string {
  const seconds = Math.floor(Date.now() / 1000);
  const input = `${b64(header)}.${b64({ iss: issuer, aud: 'api', sub: 'svc', iat: seconds, exp: seconds + 3600 })}`;
  const alg = String(header['alg']);
  const data = Buffer.from(input);
  let signature: Buffer;
  try {
    signature = signAs(alg, data, key);
  } catch {
    signature = Buffer.alloc(64, 1); // the key cannot make this alg's signature at all (PS512 with 1024 bits)
  }
  return `${input}.${signature.toString('base64url')}`;
}

function signAs(alg: string, data: Buffer, key: KeyObject): Buffer {
  let signature: Buffer;
  if (key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448') signature = sign(null, data, key);
  else if (key.asymmetricKeyType === 'ec') signature = sign(hashOf(alg), data, { key, dsaEncoding: 'ieee-p1363' });
  else if (alg.startsWith('PS')) signature = sign(hashOf(alg), data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) / 8 });
  else signature = sign(hashOf(alg), data, key);
  return signature;
}

async function signatureOf(token: string): Promise<AccessTokenCheck> {
  const checks = await verifyAccessToken(token, { issuer, transport: createTransport(dispatcher), now: Date.now(), timeout: 5_000, userAgent: 'test' });
  return checks.find((c) => c.name === 'signature')!;
}

const publicJwk = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ ...(KEYS[name]!.publicKey.export({ format: 'jwk' }) as Record<string, unknown>), kid: name, ...extra });

describe('the key must fit the alg', () => {
  test('every alg × every key type, selected by kid: only the pairs RFC 7518 allows verify; the others say why', async () => {
    const failures: string[] = [];
    for (const keyName of Object.keys(KEYS)) {
      jwks = [publicJwk(keyName)];
      for (const alg of ALGS) {
        const check = await signatureOf(signToken({ alg, typ: 'at+jwt', kid: keyName }, KEYS[keyName]!.privateKey));
        const expected = MATCHES.has(`${alg}/${keyName}`);
        if (check.ok !== expected) failures.push(`${alg} with ${keyName}: ok=${check.ok} (${check.detail})`);
        if (!expected && !/needs|not|no /i.test(check.detail)) failures.push(`${alg} with ${keyName}: unclear reason ${check.detail}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  test('ES384 signed with a P-256 key: refused, and the reason names both curves', async () => {
    jwks = [publicJwk('P-256')];
    const check = await signatureOf(signToken({ alg: 'ES384', typ: 'at+jwt', kid: 'P-256' }, KEYS['P-256']!.privateKey));
    assert.equal(check.ok, false);
    assert.match(check.detail, /P-256/);
    assert.match(check.detail, /P-384/);
  });

  test('without a kid, a JWKS holding the right key among wrong ones verifies; one holding only wrong ones does not', async () => {
    const token = signToken({ alg: 'ES384', typ: 'at+jwt' }, KEYS['P-384']!.privateKey);
    jwks = [publicJwk('P-256'), publicJwk('RSA-2048'), publicJwk('P-384')];
    assert.equal((await signatureOf(token)).ok, true);
    const forged = signToken({ alg: 'ES384', typ: 'at+jwt' }, KEYS['P-256']!.privateKey);
    assert.equal((await signatureOf(forged)).ok, false);
  });

  test('RSA below 2048 bits is refused with the size named', async () => {
    jwks = [publicJwk('RSA-1024')];
    const check = await signatureOf(signToken({ alg: 'RS256', typ: 'at+jwt', kid: 'RSA-1024' }, KEYS['RSA-1024']!.privateKey));
    assert.equal(check.ok, false);
    assert.match(check.detail, /1024/);
    assert.match(check.detail, /2048/);
  });

  test('the JWK\'s alg, use and key_ops: any that contradicts the token fails the check (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(['ES256', 'P-256'], ['PS384', 'RSA-2048'], ['EdDSA', 'Ed25519'], ['RS256', 'RSA-2048']),
        fc.option(fc.constantFrom('ES256', 'ES384', 'RS256', 'PS384', 'EdDSA', 'HS256', 'none'), { nil: undefined }),
        fc.option(fc.constantFrom('sig', 'enc', 'SIG', ''), { nil: undefined }),
        fc.option(fc.subarray(['sign', 'verify', 'encrypt', 'wrapKey']), { nil: undefined }),
        async ([alg, keyName], jwkAlg, use, keyOps) => {
          const extra: Record<string, unknown> = {};
          if (jwkAlg !== undefined) extra['alg'] = jwkAlg;
          if (use !== undefined) extra['use'] = use;
          if (keyOps !== undefined) extra['key_ops'] = keyOps;
          jwks = [publicJwk(keyName, extra)];
          const check = await signatureOf(signToken({ alg, typ: 'at+jwt', kid: keyName }, KEYS[keyName]!.privateKey));
          const allowed = (jwkAlg === undefined || jwkAlg === alg) && (use === undefined || use === 'sig') && (keyOps === undefined || keyOps.includes('verify'));
          assert.equal(check.ok, allowed, `${alg} ${JSON.stringify(extra)}: ${check.detail}`);
        },
      ),
      { numRuns: 60 },
    );
  });

  test('alg none and HS256 are refused with a public JWKS, even when the JWKS has an oct key', async () => {
    jwks = [publicJwk('P-256'), { kty: 'oct', k: Buffer.from('secret').toString('base64url'), kid: 'h' }];
    const seconds = Math.floor(Date.now() / 1000);
    const payload = b64({ iss: issuer, aud: 'api', iat: seconds, exp: seconds + 3600 });
    const none = await signatureOf(`${b64({ alg: 'none', typ: 'at+jwt' })}.${payload}.`);
    assert.equal(none.ok, false);
    assert.match(none.detail, /none/);
    const hs = await signatureOf(`${b64({ alg: 'HS256', typ: 'at+jwt', kid: 'h' })}.${payload}.${Buffer.alloc(32).toString('base64url')}`);
    assert.equal(hs.ok, false);
    assert.match(hs.detail, /HS256/);
  });
});

describe('crit (RFC 7515 §4.1.11)', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['an extension we do not understand', { crit: ['exp'], exp: 1 }, /not understood|understand/],
    ['b64 (RFC 7797), which we do not implement', { crit: ['b64'], b64: false }, /understand/],
    ['a name absent from the header', { crit: ['x-ext'] }, /absent|not in the header/],
    ['a registered header parameter', { crit: ['alg'] }, /registered/],
    ['an empty list', { crit: [] }, /non-empty array/],
    ['a string, not an array', { crit: 'x-ext', 'x-ext': 1 }, /non-empty array/],
    ['a number in the list', { crit: [1] }, /strings/],
    ['a duplicate name', { crit: ['x-ext', 'x-ext'], 'x-ext': 1 }, /twice|duplicate|understand/],
  ];
  for (const [name, header, reason] of cases) {
    test(`crit with ${name} fails the signature check, though the signature itself is good`, async () => {
      jwks = [publicJwk('P-256')];
      const check = await signatureOf(signToken({ alg: 'ES256', typ: 'at+jwt', kid: 'P-256', ...header }, KEYS['P-256']!.privateKey));
      assert.equal(check.ok, false, check.detail);
      assert.match(check.detail, /crit/);
      assert.match(check.detail, reason);
    });
  }

  test('without crit the same token verifies (the control)', async () => {
    jwks = [publicJwk('P-256')];
    assert.equal((await signatureOf(signToken({ alg: 'ES256', typ: 'at+jwt', kid: 'P-256' }, KEYS['P-256']!.privateKey))).ok, true);
  });
});
