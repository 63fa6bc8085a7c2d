/**
 * The CLI's mTLS, discovery, DPoP and `inspect --verify`, as a subprocess against oidc-provider over HTTPS with
 * RFC 8705 on: `token --auth-method tls_client_auth --cert … --key … --ca …` gets a certificate-bound token,
 * `--issuer` discovers the token endpoint, `--dpop` gets a DPoP token, and `inspect --verify` checks a token's
 * signature against the issuer's JWKS and its RFC 9068 claims, naming the check that failed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOidcProvider, type OidcProviderHandle } from './helpers/oidc.js';
import { certificateThumbprint, testCertificates } from './helpers/certs.js';
import { startDpopApi, type DpopApiHandle } from './helpers/dpopApi.js';
import { runCli, type Run } from './helpers/cliRun.js';
import { Agent } from 'undici';
import { createLocalJWKSet, type JSONWebKeySet } from 'jose';

const SECRET = 'cli-mtls-secret-4d1b9e';
let op: OidcProviderHandle;
let dpopApi: DpopApiHandle;
let work: string;
const files = { cert: '', key: '', ca: '', secret: '' };

before(async () => {
  const certs = testCertificates();
  op = await startOidcProvider({
    mtls: { key: certs.serverKey, cert: certs.serverCert, ca: certs.ca },
    clients: [
      { client_id: 'mtls-a', token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: 'CN=client-a', tls_client_certificate_bound_access_tokens: true },
      { client_id: 'svc', client_secret: SECRET },
      { client_id: 'dpop-svc', client_secret: SECRET, dpop_bound_access_tokens: true },
    ],
  });
  const agent = new Agent({ connect: { ca: certs.ca } });
  const jwks = (await (await fetch(op.jwksUrl, { dispatcher: agent } as unknown as RequestInit)).json()) as JSONWebKeySet;
  await agent.close();
  dpopApi = await startDpopApi({ issuer: op.issuer, audience: op.resource, keySet: createLocalJWKSet(jwks), requireNonce: true });
  work = await mkdtemp(join(tmpdir(), 'cli-mtls-'));
  for (const [name, value] of [['cert', certs.clientCert], ['key', certs.clientKey], ['ca', certs.ca], ['secret', SECRET]] as const) {
    files[name] = join(work, `${name}.pem`);
    await writeFile(files[name], value, { mode: 0o600 });
  }
});
after(async () => {
  await dpopApi?.close();
  await op?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

function cli(args: string[], input = ''): Promise<Run> {
  return runCli(args, { env: { HOME: work, XDG_CACHE_HOME: join(work, 'cache') }, cwd: work, input, timeoutMs: 20_000 });
}

function payloadOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
}

async function svcToken(): Promise<string> {
  const run = await cli(['token', '--issuer', op.issuer, '--client-id', 'svc', '--client-secret-file', files.secret, '--ca', files.ca, '--cache', 'off']);
  assert.equal(run.code, 0, run.stderr);
  return run.stdout.trim();
}

test('token --auth-method tls_client_auth --cert --key --ca gets a certificate-bound token', async () => {
  const run = await cli(['token', '--token-url', op.tokenUrl, '--client-id', 'mtls-a', '--auth-method', 'tls_client_auth', '--cert', files.cert, '--key', files.key, '--ca', files.ca, '--cache', 'off', '--json']);
  assert.equal(run.code, 0, run.stderr);
  const token = JSON.parse(run.stdout) as { accessToken: string; tokenType: string };
  const cnf = payloadOf(token.accessToken)['cnf'] as Record<string, string>;
  assert.equal(cnf['x5t#S256'], certificateThumbprint(testCertificates().clientCert));
  assert.equal(payloadOf(token.accessToken)['client_id'], 'mtls-a');
});

test('the same settings from a config file (cert, key, ca, authMethod, issuer)', async () => {
  const config = join(work, 'mtls.json');
  await writeFile(config, JSON.stringify({ issuer: op.issuer, clientId: 'mtls-a', authMethod: 'tls_client_auth', cert: 'cert.pem', key: 'key.pem', ca: 'ca.pem', cache: false }));
  const run = await cli(['token', '--config', config]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(payloadOf(run.stdout.trim())['client_id'], 'mtls-a');
});

test('tls_client_auth without --cert is a usage error that names the flags', async () => {
  const run = await cli(['token', '--token-url', op.tokenUrl, '--client-id', 'mtls-a', '--auth-method', 'tls_client_auth', '--ca', files.ca, '--cache', 'off']);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /tls_client_auth needs a client certificate/);
  assert.match(run.stderr, /--cert FILE and --key FILE/);
});

test('--cert without --key is a usage error', async () => {
  const run = await cli(['token', '--token-url', op.tokenUrl, '--client-id', 'mtls-a', '--auth-method', 'tls_client_auth', '--cert', files.cert, '--cache', 'off']);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /both --cert and --key/);
});

test('--issuer discovers the token endpoint (client_secret_basic)', async () => {
  const before = op.tokenRequests.length;
  const token = await svcToken();
  assert.equal(payloadOf(token)['client_id'], 'svc');
  assert.equal(op.tokenRequests.length, before + 1);
});

test('--dpop gets a DPoP-bound token (and does not cache it)', async () => {
  const run = await cli(['token', '--issuer', op.issuer, '--client-id', 'dpop-svc', '--client-secret-file', files.secret, '--ca', files.ca, '--dpop', '--json', '--verbose']);
  assert.equal(run.code, 0, run.stderr);
  const token = JSON.parse(run.stdout) as { accessToken: string; tokenType: string };
  assert.equal(token.tokenType, 'DPoP');
  assert.equal(typeof (payloadOf(token.accessToken)['cnf'] as Record<string, string>)['jkt'], 'string');
  assert.match(run.stderr, /not cached between runs/);
});

test('call --dpop: the API verifies the proof, after one nonce round trip', async () => {
  const start = dpopApi.requests.length;
  const run = await cli(['call', 'GET', `${dpopApi.url}/things`, '--issuer', op.issuer, '--client-id', 'dpop-svc', '--client-secret-file', files.secret, '--ca', files.ca, '--dpop']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal((JSON.parse(run.stdout) as { client_id: string }).client_id, 'dpop-svc');
  assert.deepEqual(dpopApi.requests.slice(start).map((r) => r.verdict), ['nonce required', 'ok']);
});

test('inspect --verify: a token from the issuer passes every check', async () => {
  const token = await svcToken();
  const run = await cli(['inspect', '--verify', '--issuer', op.issuer, '--ca', files.ca, '--audience', op.resource, '--json', token]);
  assert.equal(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout) as { verified: boolean; signatureVerified: boolean; checks: { name: string; ok: boolean }[] };
  assert.equal(report.verified, true);
  assert.equal(report.signatureVerified, true);
  assert.deepEqual(report.checks.map((c) => c.name), ['format', 'typ', 'signature', 'iss', 'aud', 'exp', 'iat']);
  assert.ok(!run.stdout.includes(token), 'the token is not printed');

  const text = await cli(['inspect', '--verify', '--issuer', op.issuer, '--ca', files.ca, token]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /verified: signature and RFC 9068 claims/);
});

test('inspect --verify says which check failed: aud, signature, typ/iss/exp/iat', async () => {
  const token = await svcToken();
  const wrongAud = await cli(['inspect', '--verify', '--issuer', op.issuer, '--ca', files.ca, '--audience', 'https://other.example', token]);
  assert.equal(wrongAud.code, 3);
  assert.match(wrongAud.stdout, /verification FAILED: aud\b/);

  // The payload changed, the signature kept: the signature check fails, the claims still read.
  const [h, p, s] = token.split('.') as [string, string, string];
  const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), scope: 'api:admin' })).toString('base64url')}.${s}`;
  const bad = await cli(['inspect', '--verify', '--issuer', op.issuer, '--ca', files.ca, '--json', tampered]);
  assert.equal(bad.code, 3);
  const failed = (JSON.parse(bad.stdout) as { checks: { name: string; ok: boolean }[] }).checks.filter((c) => !c.ok).map((c) => c.name);
  assert.deepEqual(failed, ['signature']);

  // A JWT of another kind, from another issuer, long expired, issued in the future.
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const now = Math.floor(Date.now() / 1000);
  const forged = [{ alg: 'ES256', typ: 'JWT', kid: 'x' }, { iss: 'https://evil.example', aud: 'a', exp: now - 3600, iat: now + 3600 }].map((v) => Buffer.from(JSON.stringify(v)).toString('base64url')).join('.');
  const jws = `${forged}.${sign('sha256', Buffer.from(forged), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  const all = await cli(['inspect', '--verify', '--issuer', op.issuer, '--ca', files.ca, jws]);
  assert.equal(all.code, 3);
  assert.match(all.stdout, /verification FAILED: typ, signature, iss, exp, iat/);
});

test('inspect --verify without an issuer is a usage error', async () => {
  const run = await cli(['inspect', '--verify', 'opaque-token']);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /--verify needs the issuer/);
});

test('inspect --verify of an opaque token fails the format check', async () => {
  const run = await cli(['inspect', '--verify', '--issuer', op.issuer, 'opaque-token-value']);
  assert.equal(run.code, 3);
  assert.match(run.stdout, /verification FAILED: format/);
});
