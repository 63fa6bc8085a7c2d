/**
 * The `client-credentials` CLI, driven as a subprocess (the built dist/src/cli/main.js) against real servers:
 * oidc-provider issuing JWT (and opaque) access tokens, and a protected API verifying them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_OIDC_CLIENTS, startOidcProvider, type OidcProviderHandle } from './helpers/oidc.js';
import { startStack, tokenRequestCounter, type Stack } from './helpers/fixtures.js';
import { runCli, spawnCli, type Run } from './helpers/cliRun.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A long, distinctive secret, so that finding it anywhere in the output is never a coincidence. */
const SECRET = 'cli-Secret-9f27c1d0a6b84e3f';
/** A secret with characters that RFC 6749 §2.3.1 encodes, so its encoded forms are checked too. */
const WEIRD_SECRET = 'p+s/s:w%rd';
const ESC = '\u001b[';

let stack: Stack;
let opaqueOp: OidcProviderHandle;
let work: string;
let secretFile: string;
let closedUrl: string;
/** Every run, for the closing check that no secret or token leaked anywhere. */
const runs: Run[] = [];
/** Every access token seen (printed by `token`, or received by the API). */
const tokensSeen = new Set<string>();
let cacheCounter = 0;

const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });

before(async () => {
  const publicJwk = { ...keys.publicKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: 'cli-key' };
  stack = await startStack({
    ttl: 300,
    clients: [
      ...DEFAULT_OIDC_CLIENTS,
      { client_id: 'cli', client_secret: SECRET },
      { client_id: 'keyed', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk as never] } },
    ],
  });
  opaqueOp = await startOidcProvider({ ttl: 300, format: 'opaque', clients: [{ client_id: 'cli', client_secret: SECRET }] });
  work = await mkdtemp(join(tmpdir(), 'cli-test-'));
  secretFile = join(work, 'secret.txt');
  await writeFile(secretFile, `${SECRET}\n`, { mode: 0o600 });
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closedUrl = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

after(async () => {
  await stack?.close();
  await opaqueOp?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

/** A fresh, empty cache folder (used as XDG_CACHE_HOME). */
function freshCache(): string {
  return join(work, `cache-${++cacheCounter}`);
}

interface CliOptions {
  env?: Record<string, string>;
  input?: string;
  cache?: string;
  /** Do not add the usual connection settings to the environment. */
  bare?: boolean;
}

/** Runs the built CLI with a clean environment (nothing inherited but PATH), and records the run. */
async function cli(args: string[], options: CliOptions = {}): Promise<Run> {
  const env: Record<string, string> = {
    HOME: work,
    XDG_CACHE_HOME: options.cache ?? freshCache(),
    ...(options.bare ? {} : { CLIENT_CREDENTIALS_TOKEN_URL: stack.op.tokenUrl, CLIENT_CREDENTIALS_BASE_URL: stack.api.url, O_AUTH_CLIENT_ID: 'cli', CLIENT_CREDENTIALS_CLIENT_SECRET_FILE: secretFile }),
    ...options.env,
  };
  const run = await runCli(args, { env, cwd: work, input: options.input ?? '', timeoutMs: 20_000 });
  runs.push(run);
  return run;
}

/** Access tokens the API has received. */
function apiTokens(): string[] {
  return stack.api.requests.map((r) => /^Bearer (.+)$/.exec(r.headers.authorization ?? '')?.[1]).filter((t): t is string => t !== undefined);
}

/** The forms a secret takes on the wire: raw, form-encoded, in a Basic header. */
function secretForms(id: string, secret: string): string[] {
  const encode = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return [secret, encode(secret), Buffer.from(`${encode(id)}:${encode(secret)}`).toString('base64')];
}

function assertNoSecret(run: Run): void {
  for (const form of [...secretForms('cli', SECRET), ...secretForms('weird', WEIRD_SECRET)]) {
    assert.ok(!run.stdout.includes(form), `stdout of \`${run.args.join(' ')}\` holds the secret`);
    assert.ok(!run.stderr.includes(form), `stderr of \`${run.args.join(' ')}\` holds the secret`);
  }
}

function assertNoToken(run: Run, streams: ('stdout' | 'stderr')[], tokens: Iterable<string> = tokensSeen): void {
  for (const token of tokens) {
    for (const stream of streams) assert.ok(!run[stream].includes(token), `${stream} of \`${run.args.join(' ')}\` holds an access token`);
  }
}

async function getToken(cache: string, extra: string[] = []): Promise<string> {
  const run = await cli(['token', ...extra], { cache });
  assert.equal(run.code, 0, run.stderr);
  const token = run.stdout.trim();
  tokensSeen.add(token);
  return token;
}

/** A JWT with the given claims and a fake signature (inspect never verifies). */
function fakeJwt(claims: Record<string, unknown>): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'at+jwt', kid: 'k1' })}.${part(claims)}.${Buffer.from('not-a-real-signature-0123456789').toString('base64url')}`;
}

test('help, --help and --version print to stdout and exit 0', async () => {
  const version = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const v = await cli(['--version'], { bare: true });
  assert.equal(v.code, 0);
  assert.equal(v.stdout, `${version}\n`);
  assert.equal(v.stderr, '');

  const help = await cli(['help'], { bare: true });
  assert.equal(help.code, 0);
  for (const word of ['token', 'call METHOD URL', 'inspect', 'O_AUTH_CLIENT_ID', 'O_AUTH_CLOCK_SKEW', 'CLIENT_CREDENTIALS_TOKEN_URL', 'Exit codes']) {
    assert.ok(help.stdout.includes(word), `help mentions ${word}`);
  }
  assert.equal(help.stderr, '');

  const tokenHelp = await cli(['token', '--help'], { bare: true });
  assert.equal(tokenHelp.code, 0);
  assert.match(tokenHelp.stdout, /Usage: oauth-client-credentials token/);
  const callHelp = await cli(['help', 'call'], { bare: true });
  assert.match(callHelp.stdout, /Usage: oauth-client-credentials call METHOD URL/);
  assert.match(callHelp.stdout, /-H, --header/);
});

test('`npm exec client-credentials` runs the bin of package.json', async () => {
  const run = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
    const child = spawn('npm', ['exec', '--offline', '--yes', 'oauth-client-credentials', '--', '--version'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], shell: process.platform === 'win32' });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
  assert.equal(run.code, 0);
  assert.match(run.stdout, /^\d+\.\d+\.\d+/);
});

test('usage errors exit 2 with a cause and a hint, and nothing on stdout', async () => {
  const cases: { args: string[]; bare?: boolean; cause: RegExp }[] = [
    { args: [], cause: /no command given/ },
    { args: ['fetch'], cause: /unknown command 'fetch'/ },
    { args: ['token', '--bogus'], cause: /unknown option '--bogus'/ },
    { args: ['token'], bare: true, cause: /no token URL is set/ },
    { args: ['call', 'GET'], cause: /call takes a METHOD and a URL/ },
    { args: ['call', 'GET', '/echo', '-H', 'no colon here'], cause: /is not a header/ },
    { args: ['call', 'POST', '/echo', '--json', '{not json'], cause: /--json is not valid JSON/ },
    { args: ['call', 'POST', '/echo', '--json', '{}', '--data', 'a=b'], cause: /--data or --json, not both/ },
    { args: ['token', '--auth-method', 'carrier_pigeon'], cause: /must be one of client_secret_basic/ },
    { args: ['token', '--client-secret-file', '/nonexistent/secret'], cause: /cannot read the client secret file/ },
    { args: ['token', '--client-secret', 'x', '--client-secret-stdin'], cause: /one way only/ },
  ];
  for (const c of cases) {
    const run = await cli(c.args, { bare: c.bare });
    assert.equal(run.code, 2, `${c.args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, c.cause);
    assert.match(run.stderr, /^oauth-client-credentials: error: /m);
    assert.match(run.stderr, /^ {2}(hint|help): /m, `${c.args.join(' ')} gives a hint`);
    assert.equal(run.stdout, '');
  }
});

test('token prints only the access token, and 3 runs make exactly 1 token request (file cache)', async () => {
  const cache = freshCache();
  const tokenRequests = tokenRequestCounter(stack.op);
  const outputs: string[] = [];
  for (let i = 0; i < 3; i++) {
    const run = await cli(['token'], { cache });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '');
    assert.match(run.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, 'stdout is the token and a newline, nothing else');
    outputs.push(run.stdout.trim());
    assertNoSecret(run);
  }
  outputs.forEach((t) => tokensSeen.add(t));
  assert.equal(tokenRequests(), 1, 'one token request for three runs');
  assert.equal(new Set(outputs).size, 1, 'the same token each time');

  const file = join(cache, 'client-credentials', 'tokens.json');
  if (process.platform !== 'win32') assert.equal((await stat(file)).mode & 0o777, 0o600, 'the cache file is private');

  // The token works at the API.
  const res = await fetch(`${stack.api.url}/things`, { headers: { authorization: `Bearer ${outputs[0]}` } });
  assert.equal(res.status, 200);
});

test('4 `token` runs started at once on a cold cache make 1 token request between them (the file store\'s lease)', async () => {
  const cache = freshCache();
  const tokenRequests = tokenRequestCounter(stack.op);
  const results = await Promise.all(Array.from({ length: 4 }, () => cli(['token'], { cache })));
  for (const run of results) assert.equal(run.code, 0, run.stderr);
  const printed = new Set(results.map((r) => r.stdout.trim()));
  printed.forEach((t) => tokensSeen.add(t));
  assert.equal(printed.size, 1, 'all four print the same token');
  assert.equal(tokenRequests(), 1);
});

test('--no-cache gets a new token, which then replaces the cached one', async () => {
  const cache = freshCache();
  const first = await getToken(cache);
  const tokenRequests = tokenRequestCounter(stack.op);
  const forced = await getToken(cache, ['--no-cache']);
  assert.equal(tokenRequests(), 1);
  assert.notEqual(forced, first);
  const again = await getToken(cache);
  assert.equal(again, forced, 'the forced token is the cached one now');
  assert.equal(tokenRequests(), 1, 'and reusing it makes no request');

  const off = freshCache();
  const tokenRequestsOff = tokenRequestCounter(stack.op);
  await getToken(off, ['--cache', 'off']);
  await getToken(off, ['--cache', 'off']);
  assert.equal(tokenRequestsOff(), 2, '--cache off caches nothing');
});

test('a changed secret never reuses a token cached with the old one', async () => {
  const cache = freshCache();
  await getToken(cache);
  const run = await cli(['token', '--client-secret-stdin'], { cache, input: 'wrong-secret\n' });
  assert.equal(run.code, 3, run.stderr);
});

test('token --json prints the whole OAuthToken; --scope is requested', async () => {
  const tokenRequests = tokenRequestCounter(stack.op);
  const run = await cli(['token', '--json', '--scope', 'api:read']);
  assert.equal(run.code, 0, run.stderr);
  const token = JSON.parse(run.stdout) as Record<string, unknown>;
  tokensSeen.add(token['accessToken'] as string);
  assert.equal(typeof token['accessToken'], 'string');
  assert.equal(token['tokenType'], 'Bearer');
  assert.equal(token['expiresIn'], 300);
  assert.equal(token['scope'], 'api:read');
  const expiry = token['expiry'] as number;
  assert.ok(Math.abs(expiry - (Date.now() / 1000 + 300)) < 10, 'expiry is about now + 300 s');
  assert.equal(tokenRequests(), 1);
  assert.match(stack.op.tokenRequests.at(-1)!.body, /scope=api%3Aread/);
  assert.equal(run.stderr, '');
  assertNoSecret(run);
});

test('settings: flags beat the environment, which beats the config file; O_AUTH_* names work', async () => {
  const configDir = join(work, 'config');
  await rm(configDir, { recursive: true, force: true });
  await import('node:fs/promises').then((fs) => fs.mkdir(configDir));
  await writeFile(join(configDir, 'secret'), SECRET, { mode: 0o600 });
  const config = join(configDir, 'cc.json');
  // The config file points at a closed port; its relative secret file resolves against the config's folder.
  await writeFile(config, JSON.stringify({ tokenUrl: `${closedUrl}/token`, clientId: 'cli', clientSecretFile: 'secret', retries: 0 }));

  const fromConfig = await cli(['token', '--config', config], { bare: true });
  assert.equal(fromConfig.code, 4, 'the config file alone is used: its token URL is closed');
  assert.match(fromConfig.stderr, /could not reach the token endpoint/);

  const envBeatsConfig = await cli(['token', '--config', config], { bare: true, env: { CLIENT_CREDENTIALS_TOKEN_URL: stack.op.tokenUrl } });
  assert.equal(envBeatsConfig.code, 0, envBeatsConfig.stderr);
  tokensSeen.add(envBeatsConfig.stdout.trim());

  const flagBeatsEnv = await cli(['token', '--config', config, '--token-url', `${closedUrl}/token`], { bare: true, env: { CLIENT_CREDENTIALS_TOKEN_URL: stack.op.tokenUrl } });
  assert.equal(flagBeatsEnv.code, 4);

  // The reference SDK's names.
  const sdkNames = await cli(['token'], { bare: true, env: { CLIENT_CREDENTIALS_TOKEN_URL: stack.op.tokenUrl, O_AUTH_CLIENT_ID: 'cli', O_AUTH_CLIENT_SECRET: SECRET } });
  assert.equal(sdkNames.code, 0, sdkNames.stderr);
  tokensSeen.add(sdkNames.stdout.trim());
  const skew = await cli(['token'], { env: { O_AUTH_CLOCK_SKEW: 'soon' } });
  assert.equal(skew.code, 2);
  assert.match(skew.stderr, /\$O_AUTH_CLOCK_SKEW must be a number of seconds/);

  const badKey = join(configDir, 'bad.json');
  await writeFile(badKey, JSON.stringify({ tokenURL: 'x' }));
  const typo = await cli(['token', '--config', badKey]);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /unknown key "tokenURL"/);
  for (const run of [fromConfig, envBeatsConfig, flagBeatsEnv, sdkNames, skew, typo]) assertNoSecret(run);
});

test('a config file that is not JSON is reported without quoting any of it (it may hold the secret)', async () => {
  const unquoted = join(work, 'unquoted.json');
  await writeFile(unquoted, `{"clientId": "cli", "clientSecret": ${SECRET}}`, { mode: 0o600 });
  const short = join(work, 'short.json');
  await writeFile(short, '{"clientSecret": s3cr}', { mode: 0o600 });
  const cut = join(work, 'cut.json');
  await writeFile(cut, `{"clientSecret": "${SECRET}`, { mode: 0o600 });
  for (const [file, parts] of [[unquoted, ['Secret-9f', '4e3f']], [short, ['s3cr']], [cut, ['Secret-9f', '4e3f']]] as const) {
    const run = await cli(['token', '--config', file], { bare: true });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /the config file .* is not valid JSON: (unexpected character|unterminated string)/);
    // V8 quotes up to ten characters either side of a syntax error: half a secret, which no redactor recognises.
    for (const part of parts) assert.ok(!run.stderr.includes(part), `stderr holds part of the secret: ${run.stderr}`);
    assert.equal(run.stdout, '');
  }
  const body = await cli(['call', 'POST', '/echo', '--json', '{"password": hunter2}']);
  assert.equal(body.code, 2);
  assert.match(body.stderr, /--json is not valid JSON: unexpected character/);
  assert.ok(!body.stderr.includes('hunter'));
});

test('a secret in --client-secret works but warns that it shows in the process list; --quiet hides the warning', async () => {
  const flag = await cli(['token', '--client-secret', SECRET], { env: { CLIENT_CREDENTIALS_CLIENT_SECRET_FILE: '' } });
  assert.equal(flag.code, 0, flag.stderr);
  tokensSeen.add(flag.stdout.trim());
  assert.match(flag.stderr, /warning: .*visible to other users in the process list/);
  assertNoSecret(flag);

  const quiet = await cli(['token', '--client-secret', SECRET, '--quiet']);
  assert.equal(quiet.code, 0);
  tokensSeen.add(quiet.stdout.trim());
  assert.equal(quiet.stderr, '');

  const stdin = await cli(['token', '--client-secret-stdin'], { input: `${SECRET}\n` });
  assert.equal(stdin.code, 0, stdin.stderr);
  tokensSeen.add(stdin.stdout.trim());
  assert.equal(stdin.stderr, '', 'no warning for a secret from stdin');
});

test('call GET prints the body; -i adds the status line and headers; --scope reaches the token request', async () => {
  const tokenRequests = tokenRequestCounter(stack.op);
  const run = await cli(['call', 'GET', '/things', '--scope', 'api:read']);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { items: [1, 2, 3], client_id: 'cli', scope: 'api:read' });
  assert.equal(run.stderr, '');
  assert.match(stack.op.tokenRequests.at(-1)!.body, /scope=api%3Aread/);
  assert.equal(tokenRequests(), 1);

  const include = await cli(['call', 'get', `${stack.api.url}/things`, '-i']);
  assert.equal(include.code, 0, include.stderr);
  const [head, body] = include.stdout.split('\n\n');
  assert.match(head!, /^HTTP\/1\.1 200 OK\n/);
  assert.match(head!, /^content-type: application\/json$/m);
  assert.deepEqual(JSON.parse(body!), { items: [1, 2, 3], client_id: 'cli', scope: null });
  apiTokens().forEach((t) => tokensSeen.add(t));
  for (const r of [run, include]) {
    assertNoSecret(r);
    assertNoToken(r, ['stdout', 'stderr']);
  }
});

test('call sends -H headers, --data and --json bodies and the query; an echoed token is redacted', async () => {
  interface Echo { method: string; path: string; query: Record<string, string>; headers: Record<string, string>; body: string }
  const headers = await cli(['call', 'PUT', '/echo?a=1&b=two', '-H', 'X-One: 1', '-H', 'x-two:  second value', '--data', 'k=v&x=y']);
  assert.equal(headers.code, 0, headers.stderr);
  const echoed = JSON.parse(headers.stdout) as Echo;
  assert.equal(echoed.method, 'PUT');
  assert.deepEqual(echoed.query, { a: '1', b: 'two' });
  assert.equal(echoed.headers['x-one'], '1');
  assert.equal(echoed.headers['x-two'], 'second value');
  assert.match(echoed.headers['user-agent'] ?? '', /^oauth-client-credentials-cli\/\d+\.\d+\.\d+/, 'the CLI names itself by the package name');
  assert.equal(echoed.headers['content-type'], 'application/x-www-form-urlencoded');
  assert.equal(echoed.body, 'k=v&x=y');
  assert.equal(echoed.headers['authorization'], 'Bearer [redacted]', 'the API echoed the token; the CLI shows it redacted');

  const json = await cli(['call', 'POST', '/echo', '--json', '{"name":"widget","n":2}']);
  assert.equal(json.code, 0, json.stderr);
  const echoedJson = JSON.parse(json.stdout) as Echo;
  assert.equal(echoedJson.method, 'POST');
  assert.equal(echoedJson.headers['content-type'], 'application/json');
  assert.equal(echoedJson.headers['accept'], 'application/json');
  assert.deepEqual(JSON.parse(echoedJson.body), { name: 'widget', n: 2 });

  const bodyFile = join(work, 'body.json');
  await writeFile(bodyFile, '{"from":"file"}');
  const fromFile = await cli(['call', 'PATCH', '/echo', '--json', `@${bodyFile}`, '-H', 'Content-Type: application/merge-patch+json']);
  const echoedFile = JSON.parse(fromFile.stdout) as Echo;
  assert.equal(echoedFile.body, '{"from":"file"}');
  assert.equal(echoedFile.headers['content-type'], 'application/merge-patch+json', '-H wins over the --json default');

  const fromStdin = await cli(['call', 'POST', '/echo', '--data', '@-'], { input: 'piped body' });
  assert.equal((JSON.parse(fromStdin.stdout) as Echo).body, 'piped body');

  apiTokens().forEach((t) => tokensSeen.add(t));
  for (const r of [headers, json, fromFile, fromStdin]) {
    assertNoSecret(r);
    assertNoToken(r, ['stdout', 'stderr']);
  }
});

test('call exits 1 on HTTP >= 400, with the body on stdout and the status on stderr', async () => {
  const notFound = await cli(['call', 'GET', '/status/404']);
  assert.equal(notFound.code, 1);
  assert.deepEqual(JSON.parse(notFound.stdout), { status: 404 });
  assert.match(notFound.stderr, /error: GET http:\/\/127\.0\.0\.1:\d+\/status\/404 answered 404 Not Found/);
  assert.match(notFound.stderr, /hint: check the URL/);

  const serverError = await cli(['call', 'GET', '/status/503', '-i']);
  assert.equal(serverError.code, 1);
  assert.match(serverError.stdout, /^HTTP\/1\.1 503 Service Unavailable\n/);

  const ok = await cli(['call', 'GET', '/status/202']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), { status: 202 });
  for (const r of [notFound, serverError, ok]) assertNoSecret(r);
});

test('a token the API revoked is replaced through the library\'s 401 recovery, and the cache learns the new one', async () => {
  const cache = freshCache();
  const revoked = await getToken(cache);
  stack.api.revoke(revoked);
  const tokenRequests = tokenRequestCounter(stack.op);
  const run = await cli(['call', 'GET', '/things', '--verbose'], { cache });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual((JSON.parse(run.stdout) as { items: number[] }).items, [1, 2, 3]);
  assert.equal(tokenRequests(), 1, 'one new token');
  assert.match(run.stderr, /tokenInvalidated: .*401/);
  assert.match(run.stderr, /unauthorizedRetried/);
  const now = await getToken(cache);
  assert.notEqual(now, revoked);
  assert.equal(tokenRequests(), 1, 'the new token was cached');
  apiTokens().forEach((t) => tokensSeen.add(t));
  assertNoSecret(run);
  assertNoToken(run, ['stdout', 'stderr']);
});

test('a bad secret exits 3 with the cause, the hint and what the server said', async () => {
  const badFile = join(work, 'bad-secret');
  await writeFile(badFile, 'not-the-secret', { mode: 0o600 }); // 0600: a file others may read gets a warning line first
  const run = await cli(['token', '--client-secret-file', badFile]);
  assert.equal(run.code, 3);
  assert.equal(run.stdout, '');
  const lines = run.stderr.trimEnd().split('\n');
  assert.match(lines[0]!, /^oauth-client-credentials: error: the authorization server refused the token request \(401 Unauthorized invalid_client\)/);
  assert.equal(lines[1], '  hint: check the client id and secret and the authentication method (--auth-method)');
  assert.match(lines[2]!, /^ {2}server said: invalid_client/);
  assert.ok(!run.stderr.includes('not-the-secret'), 'the wrong secret is not shown either');

  const json = await cli(['token', '--json', '--client-secret-file', badFile]);
  assert.equal(json.code, 3);
  assert.equal(json.stdout, '', '--json: an error is never printed as a result');
  assert.match(json.stderr, /invalid_client/);

  const call = await cli(['call', 'GET', '/things', '--client-secret-file', badFile]);
  assert.equal(call.code, 3, 'call: a token failure is an auth failure, not an HTTP one');
  assert.ok(!call.stderr.includes('not-the-secret'));

  // A secret that RFC 6749 §2.3.1 encodes: neither it nor its encoded forms show, in a verbose success or a failure.
  const weird = await cli(['token', '--client-id', 'weird', '--client-secret-stdin', '--verbose'], { input: WEIRD_SECRET });
  assert.equal(weird.code, 0, weird.stderr);
  tokensSeen.add(weird.stdout.trim());
  const weirdBad = await cli(['call', 'GET', '/things', '--client-id', 'weird', '--client-secret-stdin', '--verbose'], { input: `${WEIRD_SECRET}x` });
  assert.equal(weirdBad.code, 3);
  assert.ok(!weirdBad.stderr.includes(`${WEIRD_SECRET}x`));
  for (const r of [run, json, call, weird, weirdBad]) assertNoSecret(r);
});

test('private_key_jwt: the key comes from --private-key-file, and no secret is needed', async () => {
  const keyFile = join(work, 'key.pem');
  await writeFile(keyFile, keys.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  const tokenRequests = tokenRequestCounter(stack.op);
  const run = await cli(['token', '--client-id', 'keyed', '--auth-method', 'private_key_jwt', '--private-key-file', keyFile], { env: { CLIENT_CREDENTIALS_CLIENT_SECRET_FILE: '' } });
  assert.equal(run.code, 0, run.stderr);
  tokensSeen.add(run.stdout.trim());
  assert.equal(tokenRequests(), 1);
  assert.match(stack.op.tokenRequests.at(-1)!.body, /client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer/);
  const missing = await cli(['token', '--client-id', 'keyed', '--auth-method', 'private_key_jwt'], { env: { CLIENT_CREDENTIALS_CLIENT_SECRET_FILE: '' } });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /private_key_jwt needs a private key/);
});

test('network failures exit 4 with a hint to check the URL; a timeout too', async () => {
  const token = await cli(['token', '--token-url', `${closedUrl}/token`, '--no-cache']);
  assert.equal(token.code, 4);
  assert.match(token.stderr, /could not reach the token endpoint \(after 4 attempts\): POST http:\/\/127\.0\.0\.1:\d+\/token failed: ECONNREFUSED/);
  assert.match(token.stderr, /hint: check --token-url/);

  const call = await cli(['call', 'GET', `${closedUrl}/things`], { env: { CLIENT_CREDENTIALS_BASE_URL: '' } });
  assert.equal(call.code, 4);
  assert.match(call.stderr, /could not reach the API/);
  assert.match(call.stderr, /hint: check the URL/);

  stack.proxy.inject({ kind: 'hang' }, 1);
  const started = Date.now();
  const slow = await cli(['token', '--token-url', stack.proxiedTokenUrl, '--timeout', '0.5', '--retries', '0', '--no-cache']);
  assert.equal(slow.code, 4);
  assert.match(slow.stderr, /the token endpoint did not answer in time/);
  assert.match(slow.stderr, /hint: .*--timeout/);
  assert.ok(Date.now() - started < 20_000, 'bounded by --timeout, not by the 30 s default (room for a loaded machine)');
  stack.proxy.clear();
  for (const r of [token, call, slow]) assertNoSecret(r);
});

test('a 503 with a Retry-After beyond the retry budget is told as one attempt (singular), exit 3', async () => {
  stack.proxy.inject({ kind: 'json', status: 503, body: { error: 'temporarily_unavailable' }, headers: { 'retry-after': '3600' } }, 1);
  const run = await cli(['token', '--token-url', stack.proxiedTokenUrl, '--no-cache']);
  stack.proxy.clear();
  assert.equal(run.code, 3, run.stderr);
  assert.match(run.stderr, /^oauth-client-credentials: error: the authorization server refused the token request \(503 Service Unavailable temporarily_unavailable\) \(after 1 attempt\)$/m);
  assert.equal(run.stdout, '');
});

test('Ctrl-C (SIGINT) while the token request hangs exits 130 with "interrupted", at once', async () => {
  for (const command of [['token'], ['call', 'GET', '/things']]) {
    stack.proxy.inject({ kind: 'hang' }, 1);
    const sent = stack.proxy.requests;
    const args = [...command, '--token-url', stack.proxiedTokenUrl, '--no-cache'];
    const { child, result } = spawnCli(args, {
      env: { HOME: work, XDG_CACHE_HOME: freshCache(), CLIENT_CREDENTIALS_BASE_URL: stack.api.url, O_AUTH_CLIENT_ID: 'cli', CLIENT_CREDENTIALS_CLIENT_SECRET_FILE: secretFile },
      cwd: work,
    });
    const started = Date.now();
    while (stack.proxy.requests === sent && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 10));
    assert.equal(stack.proxy.requests, sent + 1, 'the token request reached the (hanging) proxy');
    const interruptedAt = Date.now();
    child.kill('SIGINT');
    const run = await result;
    runs.push(run);
    const { code, stdout, stderr } = run;
    assert.equal(code, 130, stderr);
    assert.equal(stderr, 'oauth-client-credentials: error: interrupted\n');
    assert.equal(stdout, '');
    assert.ok(Date.now() - interruptedAt < 5_000, 'it did not wait for the 30 s timeout');
    stack.proxy.clear();
  }
});

test('inspect decodes a JWT: header, claims, local times, "expires in", and says the signature was not verified', async () => {
  const token = await getToken(freshCache());
  const run = await cli(['inspect', token], { bare: true });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /signature NOT verified/);
  assert.match(run.stdout, /^ {2}alg +RS256$/m);
  assert.match(run.stdout, /^ {2}typ +at\+jwt$/m);
  assert.match(run.stdout, /^ {2}client_id +cli$/m);
  assert.match(run.stdout, /^ {2}exp +\d+ {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d {2}\(expires in 4 min\)$/m);
  assert.match(run.stdout, /^ {2}iat +\d+ {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d {2}\([\d.]+ s ago\)$/m);
  assert.ok(!run.stdout.includes(token), 'the token itself is not printed');
  assert.ok(!run.stdout.includes(token.split('.')[2]!), 'nor its signature');
  assert.equal(run.stderr, '');

  const fromStdin = await cli(['inspect', '-'], { bare: true, input: `${token}\n` });
  assert.equal(fromStdin.code, 0);
  const settle = (text: string) => text.replace(/\([\d.]+ s ago\)/g, '(N s ago)');
  assert.equal(settle(fromStdin.stdout), settle(run.stdout), 'the same report from stdin');

  const json = await cli(['token', '--json']);
  tokensSeen.add((JSON.parse(json.stdout) as { accessToken: string }).accessToken);
  const piped = await cli(['inspect', '--json'], { bare: true, input: json.stdout });
  assert.equal(piped.code, 0, piped.stderr);
  const report = JSON.parse(piped.stdout) as { format: string; signatureVerified: boolean; claims: Record<string, unknown>; expired: boolean; times: Record<string, { relative: string }> };
  assert.equal(report.format, 'jwt');
  assert.equal(report.signatureVerified, false);
  assert.equal(report.claims['client_id'], 'cli');
  assert.equal(report.expired, false);
  assert.match(report.times['exp']!.relative, /^in 4 min$/);

  const bearer = await cli(['inspect', `Bearer ${token}`], { bare: true });
  assert.match(bearer.stdout, /client_id +cli/);
  for (const r of [run, fromStdin, piped, bearer]) {
    assertNoSecret(r);
    assertNoToken(r, ['stdout', 'stderr']);
  }
});

test('inspect shows an expired token as expired, and a not-yet-valid one', async () => {
  const now = Math.floor(Date.now() / 1000);
  const run = await cli(['inspect', fakeJwt({ sub: 'x', iat: now - 600, nbf: now + 90, exp: now - 200 })], { bare: true });
  assert.equal(run.code, 0);
  assert.match(run.stdout, /expired 3 min ago/);
  assert.match(run.stdout, /not valid before/);
  assert.match(run.stdout, /^ {2}iat +\d+ .*\(10 min ago\)$/m);
});

test('inspect says plainly that an opaque token cannot be decoded', async () => {
  const run = await cli(['token', '--token-url', opaqueOp.tokenUrl]);
  assert.equal(run.code, 0, run.stderr);
  const opaque = run.stdout.trim();
  tokensSeen.add(opaque);
  assert.ok(!opaque.includes('.'), 'the server issued an opaque token');
  const inspect = await cli(['inspect', '-'], { bare: true, input: opaque });
  assert.equal(inspect.code, 0);
  assert.match(inspect.stdout, /^This is an opaque token \(\d+ characters\), not a JWT: there is nothing in it to decode\./);
  assert.ok(!inspect.stdout.includes(opaque));
  // `--` ends the options: an opaque token may start with '-'.
  const json = await cli(['inspect', '--json', '--', opaque], { bare: true });
  assert.deepEqual(JSON.parse(json.stdout), { format: 'opaque', length: opaque.length });
  const empty = await cli(['inspect', '-'], { bare: true, input: '\n' });
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /no token given/);
});

test('no colour without a terminal or with NO_COLOR; FORCE_COLOR shows the colour path exists', async () => {
  const token = fakeJwt({ sub: 'x', exp: Math.floor(Date.now() / 1000) + 300 });
  const plain = await cli(['inspect', token], { bare: true });
  assert.ok(!plain.stdout.includes(ESC) && !plain.stderr.includes(ESC));
  const forced = await cli(['inspect', token], { bare: true, env: { FORCE_COLOR: '1' } });
  assert.ok(forced.stdout.includes(ESC), 'FORCE_COLOR colours');
  const noColor = await cli(['inspect', token], { bare: true, env: { FORCE_COLOR: '1', NO_COLOR: '1' } });
  assert.ok(!noColor.stdout.includes(ESC), 'NO_COLOR wins');
  const flag = await cli(['inspect', token, '--no-color'], { bare: true, env: { FORCE_COLOR: '1' } });
  assert.ok(!flag.stdout.includes(ESC));
  const error = await cli(['token', '--token-url', `${closedUrl}/token`, '--retries', '0'], { env: { NO_COLOR: '1' } });
  assert.equal(error.code, 4);
  assert.ok(!error.stderr.includes(ESC));
});

test('--verbose prints settings, cache use and lifecycle events on stderr, with no secret and no token', async () => {
  const cache = freshCache();
  const first = await cli(['token', '--verbose'], { cache });
  assert.equal(first.code, 0, first.stderr);
  tokensSeen.add(first.stdout.trim());
  assert.match(first.stderr, /client secret from \$CLIENT_CREDENTIALS_CLIENT_SECRET_FILE .* \(not shown\)/);
  assert.match(first.stderr, /cache: no token cached/);
  assert.match(first.stderr, /tokenFetched: token from the token endpoint, expires in 4 min/);
  const second = await cli(['token', '-v'], { cache });
  assert.match(second.stderr, /cache: reusing the cached token/);
  assert.match(second.stderr, /tokenFetched: token from the cache/);
  const call = await cli(['call', 'POST', '/echo', '-v', '--json', '{}'], { cache });
  assert.equal(call.code, 0, call.stderr);
  assert.match(call.stderr, /> POST \/echo/);
  assert.match(call.stderr, /< 200 OK in \d+ ms/);
  for (const r of [first, second, call]) {
    assertNoSecret(r);
    assertNoToken(r, ['stderr']);
  }
  assertNoToken(call, ['stdout']);
});

test('a config file holding the secret that others can read gets a warning', async () => {
  const config = join(work, 'open.json');
  await writeFile(config, JSON.stringify({ clientSecret: SECRET }));
  await chmod(config, 0o644);
  const run = await cli(['token', '--config', config], { env: { CLIENT_CREDENTIALS_CLIENT_SECRET_FILE: '' } });
  assert.equal(run.code, 0, run.stderr);
  tokensSeen.add(run.stdout.trim());
  assert.match(run.stderr, /other users may read it; run: chmod 600/);
  assertNoSecret(run);
});

test('no run of any command put the secret on stdout or stderr, nor a token on stderr, nor on stdout but for `token`', () => {
  apiTokens().forEach((t) => tokensSeen.add(t));
  assert.ok(runs.length > 40);
  assert.ok(tokensSeen.size > 5);
  const commands = new Set<string>();
  for (const run of runs) {
    commands.add(run.args.find((a) => !a.startsWith('-')) ?? '(none)');
    assertNoSecret(run);
    assertNoToken(run, run.args[0] === 'token' ? ['stderr'] : ['stdout', 'stderr']);
  }
  for (const command of ['token', 'call', 'inspect', 'help', '(none)']) assert.ok(commands.has(command), `${command} was run`);
});
