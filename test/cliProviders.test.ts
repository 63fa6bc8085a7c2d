/**
 * The CLI flags of issue 19 against real servers: `--client-assertion-file` (read for each token request, redacted),
 * `--key-id`, `--cert` as the private key's certificate with `private_key_jwt`, a key without `--auth-method`,
 * `--basic-encoding`, `--grant-type` with `--token-param`, and the hint for a bare 403 from the token endpoint.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { startOidcProvider, type OidcProviderHandle } from './helpers/oidc.js';
import { startNodeOAuthServer, type NodeOAuthHandle } from './helpers/nodeoauth.js';
import { sendJson, startScripted, type ScriptedServer } from './helpers/scripted.js';
import { testCertificates } from './helpers/certs.js';
import { runCli, type Run } from './helpers/cliRun.js';

const ODD_SECRET = 'p+s/s:w%rd ~x';
const publicJwk = (key: KeyObject, kid: string) => ({ ...key.export({ format: 'jwk' }), kid, use: 'sig' });
const assertionHeader = (body: string): Record<string, unknown> => JSON.parse(Buffer.from(new URLSearchParams(body).get('client_assertion')!.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;

describe('CLI flags for providers', () => {
  let op: OidcProviderHandle;
  let nodeOAuth: NodeOAuthHandle;
  let scripted: ScriptedServer;
  let work: string;
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const certs = testCertificates();

  before(async () => {
    op = await startOidcProvider({
      clients: [
        { client_id: 'pk', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk(key.publicKey, 'k-one')] } },
        { client_id: 'cert', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk(new X509Certificate(certs.clientCert).publicKey, 'c1')] } },
      ],
    });
    nodeOAuth = await startNodeOAuthServer({ clients: [{ client_id: 'odd', client_secret: ODD_SECRET }] });
    scripted = await startScripted((req, res) => {
      if (req.url === '/forbidden') return void res.writeHead(403).end();
      sendJson(res, 200, { access_token: 'zoom-like-token-value', token_type: 'bearer', expires_in: 3599 });
    });
    work = await mkdtemp(join(tmpdir(), 'cli-providers-'));
    await writeFile(join(work, 'key.pem'), key.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
    await writeFile(join(work, 'key.jwk'), JSON.stringify({ ...key.privateKey.export({ format: 'jwk' }), kid: 'k-one' }));
    await writeFile(join(work, 'cert-key.pem'), certs.clientKey);
    await writeFile(join(work, 'cert.pem'), certs.clientCert);
  });
  after(async () => {
    await op.close();
    await nodeOAuth.close();
    await scripted.close();
    await rm(work, { recursive: true, force: true });
  });

  function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
    return runCli(args, { env: { HOME: work, CLIENT_CREDENTIALS_CACHE: 'off', ...env } });
  }

  test('--client-assertion-file: the platform\'s assertion is sent with no secret, and never shown in --verbose output', async () => {
    const assertion = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k-one' }).setIssuer('pk').setSubject('pk').setAudience(op.tokenUrl)
      .setJti(`cli-${Date.now()}`).setIssuedAt().setExpirationTime('5m').sign(key.privateKey);
    const file = join(work, 'assertion.jwt');
    await writeFile(file, `${assertion}\n`);
    const run = await cli(['token', '--verbose', '--token-url', op.tokenUrl, '--client-id', 'pk', '--client-assertion-file', file]);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.trim().length > 10);
    const form = new URLSearchParams(op.tokenRequests.at(-1)!.body);
    assert.equal(form.get('client_assertion'), assertion);
    assert.equal(form.has('client_secret'), false);
    assert.ok(!run.stderr.includes(assertion) && !run.stderr.includes(assertion.split('.')[2]!), run.stderr);
    assert.match(run.stderr, /private_key_jwt/);
    const missing = await cli(['token', '--token-url', op.tokenUrl, '--client-id', 'pk', '--client-assertion-file', join(work, 'nope.jwt')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read the client assertion file/);
  });

  test('--client-assertion-file that is a FIFO with no writer, a device (/dev/zero), a directory or too large: exit 2 at once, no request', async () => {
    const fifo = join(work, 'assertion.fifo');
    execFileSync('mkfifo', [fifo]);
    const big = join(work, 'big.jwt');
    await writeFile(big, 'a'.repeat(200_000));
    const before = op.tokenRequests.length;
    for (const file of [fifo, '/dev/zero', work, big]) {
      const run = await cli(['token', '--token-url', op.tokenUrl, '--client-id', 'pk', '--client-assertion-file', file]);
      assert.equal(run.code, 2, `${file}: ${run.stderr}`);
      assert.match(run.stderr, /cannot read the client assertion file .*(not a regular file|larger than)/, file);
    }
    assert.equal(op.tokenRequests.length, before);
  });

  test('a key without --auth-method is private_key_jwt; --key-id sets the kid; a JWK\'s own kid is used', async () => {
    const pem = await cli(['token', '--token-url', op.tokenUrl, '--client-id', 'pk', '--private-key-file', join(work, 'key.pem'), '--key-id', 'k-one']);
    assert.equal(pem.code, 0, pem.stderr);
    assert.equal(assertionHeader(op.tokenRequests.at(-1)!.body)['kid'], 'k-one');
    const jwk = await cli(['token', '--token-url', op.tokenUrl, '--client-id', 'pk', '--private-key-file', join(work, 'key.jwk')]);
    assert.equal(jwk.code, 0, jwk.stderr);
    assert.equal(assertionHeader(op.tokenRequests.at(-1)!.body)['kid'], 'k-one');
  });

  test('--cert without --key, with private_key_jwt: the certificate\'s x5t#S256 goes in the assertion header', async () => {
    const run = await cli(['token', '--token-url', op.tokenUrl, '--client-id', 'cert', '--private-key-file', join(work, 'cert-key.pem'), '--cert', join(work, 'cert.pem')]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(assertionHeader(op.tokenRequests.at(-1)!.body)['x5t#S256'], createHash('sha256').update(new X509Certificate(certs.clientCert).raw).digest('base64url'));
    const mismatch = await cli(['token', '--token-url', op.tokenUrl, '--client-id', 'pk', '--private-key-file', join(work, 'key.pem'), '--cert', join(work, 'cert.pem')]);
    assert.equal(mismatch.code, 2);
    assert.match(mismatch.stderr, /--cert/);
  });

  test('--basic-encoding: automatic works with a server that compares raw (two requests), raw pins it (one)', async () => {
    const env = { CLIENT_CREDENTIALS_CLIENT_SECRET: ODD_SECRET };
    let before = nodeOAuth.tokenRequests.length;
    const auto = await cli(['token', '--token-url', nodeOAuth.tokenUrl, '--client-id', 'odd'], env);
    assert.equal(auto.code, 0, auto.stderr);
    assert.equal(nodeOAuth.tokenRequests.length - before, 2);
    before = nodeOAuth.tokenRequests.length;
    const raw = await cli(['token', '--token-url', nodeOAuth.tokenUrl, '--client-id', 'odd', '--basic-encoding', 'raw'], env);
    assert.equal(raw.code, 0, raw.stderr);
    assert.equal(nodeOAuth.tokenRequests.length - before, 1);
    const bad = await cli(['token', '--token-url', nodeOAuth.tokenUrl, '--client-id', 'odd', '--basic-encoding', 'auto'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--basic-encoding must be rfc6749 or raw/);
  });

  test('--grant-type and --token-param (Zoom); a reserved parameter is a usage error', async () => {
    const env = { CLIENT_CREDENTIALS_CLIENT_SECRET: 'zoom-secret-value' };
    const run = await cli(['token', '--token-url', `${scripted.url}/oauth/token`, '--client-id', 'z', '--grant-type', 'account_credentials', '--token-param', 'account_id=acc-1'], env);
    assert.equal(run.code, 0, run.stderr);
    const form = new URLSearchParams(scripted.requests.at(-1)!.body);
    assert.equal(form.get('grant_type'), 'account_credentials');
    assert.equal(form.get('account_id'), 'acc-1');
    const reserved = await cli(['token', '--token-url', `${scripted.url}/oauth/token`, '--client-id', 'z', '--token-param', 'grant_type=x'], env);
    assert.equal(reserved.code, 2);
    assert.match(reserved.stderr, /grantType|grant-type/);
    const noValue = await cli(['token', '--token-url', `${scripted.url}/oauth/token`, '--client-id', 'z', '--token-param', 'account_id'], env);
    assert.equal(noValue.code, 2);
    assert.match(noValue.stderr, /NAME=VALUE/);
  });

  test('a bare 403 from the token endpoint: the hint says the server refused the client', async () => {
    const run = await cli(['token', '--token-url', `${scripted.url}/forbidden`, '--client-id', 'z', '--retries', '0'], { CLIENT_CREDENTIALS_CLIENT_SECRET: 'plain-secret-value' });
    assert.equal(run.code, 3);
    assert.match(run.stderr, /refused the client/);
    assert.ok(!/the authorization server failed/.test(run.stderr), run.stderr);
  });
});
