/**
 * The CLI as a new user meets it (issue 21): a client secret in the environment or on the command line never
 * reaches stdout or stderr, even in a usage error raised before any setting is read; mistyped commands and keys get a
 * "did you mean"; the messages name what is valid. Each run is the built CLI as a subprocess; no server is needed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeServer, listenLocal } from './helpers/http.js';
import { runCli, type Run } from './helpers/cliRun.js';
import fc from 'fast-check';

const SECRET = 'S3CRET-zebra-9f8e7d';

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'cli-review-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

function cli(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<Run> {
  return runCli(args, { env: { HOME: work, NO_COLOR: '1', CLIENT_CREDENTIALS_CACHE: 'off', ...env }, cwd: cwd ?? work });
}

function assertNoSecret(run: Run): void {
  assert.ok(!`${run.stdout}${run.stderr}`.includes(SECRET), `the secret was printed:\n${run.stdout}${run.stderr}`);
  assert.ok(!`${run.stdout}${run.stderr}`.includes('zebra'), 'a piece of the secret was printed');
}

for (const [name, env] of [['O_AUTH_CLIENT_SECRET', { O_AUTH_CLIENT_SECRET: SECRET }], ['CLIENT_CREDENTIALS_CLIENT_SECRET', { CLIENT_CREDENTIALS_CLIENT_SECRET: SECRET }]] as const) {
  test(`a usage error quoting the secret from $${name} shows [redacted]`, async () => {
    const run = await cli(['token', SECRET], env);
    assert.equal(run.code, 2);
    assertNoSecret(run);
    assert.match(run.stderr, /token takes no arguments, got "\[redacted\]"/);
  });
}

/**
 * The in-process CLI's io, with stdout and stderr captured together into `written`: no stdin, no terminal, the test's
 * work folder as HOME and cwd, no token cache, plus `env`.
 */
function capturedIo(env: Record<string, string>) {
  const out = {
    written: '',
    io: {
      stdout: { write: (d: string | Uint8Array) => (out.written += String(d)) },
      stderr: { write: (t: string) => (out.written += t) },
      readStdin: async () => '',
      stdinIsTTY: false,
      env: { HOME: work, CLIENT_CREDENTIALS_CACHE: 'off', ...env },
      cwd: work,
    },
  };
  return out;
}

test('an unreadable --client-secret-file named by the secret itself is not printed', async () => {
  const run = await cli(['token', '--client-secret-file', SECRET], { O_AUTH_CLIENT_SECRET: SECRET });
  assert.equal(run.code, 2);
  assertNoSecret(run);
  assert.match(run.stderr, /cannot read the client secret file .*\[redacted\] \(--client-secret-file\): ENOENT/);
});

test('an unreadable --config named by the secret is not printed', async () => {
  const run = await cli(['token', '--config', SECRET], { O_AUTH_CLIENT_SECRET: SECRET });
  assert.equal(run.code, 2);
  assertNoSecret(run);
  assert.match(run.stderr, /\[redacted\]/);
});

test('--client-secret on the command line is redacted from a usage error raised while parsing', async () => {
  for (const args of [['token', '--client-secret', SECRET, SECRET], ['token', `--client-secret=${SECRET}`, SECRET], ['token', '--client-secret', SECRET, '--bogus-option', SECRET], ['tokn', '--client-secret', SECRET, SECRET]]) {
    const run = await cli(args);
    assert.equal(run.code, 2, args.join(' '));
    assertNoSecret(run);
    assert.match(run.stderr, /error: /);
  }
  const run = await cli(['token', '--client-secret', SECRET, SECRET]);
  assert.match(run.stderr, /token takes no arguments, got "\[redacted\]"/);
});

test('a mistyped command gets a "did you mean"', async () => {
  for (const [args, expected] of [[['tokn'], '`token`'], [['cal', 'GET', 'http://127.0.0.1/'], '`call`'], [['inspct'], '`inspect`'], [['version'], '`--version`'], [['help', 'tokn'], '`token`']] as const) {
    const run = await cli([...args]);
    assert.equal(run.code, 2, args.join(' '));
    assert.ok(run.stderr.includes(`did you mean ${expected}?`), `${args.join(' ')}:\n${run.stderr}`);
    assert.match(run.stderr, /the commands are token, call, inspect, serve and help/);
  }
  const far = await cli(['frobnicate']);
  assert.equal(far.code, 2);
  assert.doesNotMatch(far.stderr, /did you mean/);
  assert.match(far.stderr, /unknown command 'frobnicate'/);
});

test('an unknown key in the config file gets a "did you mean" ("scopes": "scope", as the broker config says it)', async () => {
  const path = join(work, 'scopes.json');
  await writeFile(path, JSON.stringify({ tokenUrl: 'http://127.0.0.1:1/token', clientId: 'svc', scopes: ['a'] }));
  const run = await cli(['token', '--config', path, '--client-secret', SECRET]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /has an unknown key "scopes"/);
  assert.match(run.stderr, /did you mean "scope"\?/);
  assertNoSecret(run);
  const far = join(work, 'far.json');
  await writeFile(far, JSON.stringify({ zzzzzz: 1 }));
  const other = await cli(['token', '--config', far]);
  assert.equal(other.code, 2);
  assert.doesNotMatch(other.stderr, /did you mean/);
  assert.match(other.stderr, /the keys are tokenUrl/);
});

test("a bad proxy names every valid form, 'off' included, from wherever it came, without repeating the value", async () => {
  for (const [args, env, source] of [
    [['--proxy', 'socks5://u:pw-secret@h:1'], {}, '--proxy'],
    [['--proxy', 'bogus-pw-secret'], {}, '--proxy'],
    [[], { CLIENT_CREDENTIALS_PROXY: 'ftp://pw-secret@h' }, '$CLIENT_CREDENTIALS_PROXY'],
  ] as const) {
    const run = await cli(['token', '--token-url', 'http://127.0.0.1:1/token', '--client-id', 'svc', ...args], { O_AUTH_CLIENT_SECRET: SECRET, ...env });
    assert.equal(run.code, 2);
    assert.ok(run.stderr.includes(`${source} must be 'env', 'off' or an http(s) URL`), run.stderr);
    assert.doesNotMatch(run.stderr, /pw-secret/);
  }
  const off = await cli(['token', '--token-url', 'http://127.0.0.1:1/token', '--client-id', 'svc', '--proxy', 'off', '--retries', '0', '--timeout', '5'], { O_AUTH_CLIENT_SECRET: SECRET });
  assert.equal(off.code, 4, off.stderr);
});

test('a flag whose value was forgotten says it needs a value, not "argument is ambiguous"', async () => {
  const run = await cli(['token', '--client-id', '--client-secret', SECRET]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /--client-id needs a value; got the next flag --client-secret/);
  assert.match(run.stderr, /--client-id=-VALUE/);
  assert.doesNotMatch(run.stderr, /ambiguous/);
  assertNoSecret(run);
  const short = await cli(['call', 'GET', 'http://127.0.0.1:1/', '-H', '--include']);
  assert.equal(short.code, 2);
  assert.match(short.stderr, /-H needs a value; got the next flag --include/);
  assert.match(short.stderr, /--header=-VALUE/);
});

test('--retries: help and docs/cli.md name what is retried, and a 408 and a 429 are retried as they say', async () => {
  const help = await cli(['help', 'token']);
  assert.match(help.stdout, /--retries N +retries of the token endpoint after network errors, timeouts, 408\/429\/5xx/);
  const docs = await readFile(fileURLToPath(new URL('../../docs/cli.md', import.meta.url)), 'utf8');
  assert.match(docs, /Retries of the token endpoint after network errors, timeouts, 408\/429\/5xx/);
  for (const status of [408, 429]) {
    let requests = 0;
    const server = http.createServer((req, res) => {
      requests++;
      req.resume();
      res.writeHead(status, { 'content-type': 'application/json', 'retry-after': '0' }).end('{}');
    });
    const url = await listenLocal(server);
    try {
      const run = await cli(['token', '--token-url', `${url}/token`, '--client-id', 'svc', '--retries', '1'], { O_AUTH_CLIENT_SECRET: SECRET });
      assert.notEqual(run.code, 0);
      assert.equal(requests, 2, `a ${status} is retried once with --retries 1`);
    } finally {
      await closeServer(server);
    }
  }
});

test('call checks its arguments before the settings: `call GET` with no URL is a usage error, not "no token URL is set"', async () => {
  for (const [args, expected] of [
    [['call', 'GET'], /call takes a METHOD and a URL, got 1 argument/],
    [['call'], /call takes a METHOD and a URL/],
    [['call', 'G3T', 'http://127.0.0.1:1/'], /"G3T" is not an HTTP method/],
    [['call', 'GET', 'http://127.0.0.1:1/', '-H', 'no-colon'], /-H "no-colon" is not a header/],
    [['call', 'POST', 'http://127.0.0.1:1/', '--data', 'a', '--json', '{}'], /give --data or --json, not both/],
  ] as const) {
    const run = await cli([...args]);
    assert.equal(run.code, 2, args.join(' '));
    assert.match(run.stderr, expected);
    assert.doesNotMatch(run.stderr, /no token URL is set|no client/);
  }
});

test('serve refuses a FIFO as its --config, or as a file the configuration names, at once instead of hanging', async () => {
  const fifo = join(work, 'broker.fifo');
  execFileSync('mkfifo', [fifo]);
  for (const args of [['serve', '--config', fifo], ['serve', '--check', '--config', fifo]]) {
    const started = Date.now();
    const run = await cli(args);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /--config` names a file that cannot be read \(.*broker\.fifo: not a regular file/);
    assert.ok(Date.now() - started < 20_000);
  }
  const secretFifo = join(work, 'secret.fifo');
  execFileSync('mkfifo', [secretFifo]);
  const config = join(work, 'broker.json');
  await writeFile(config, JSON.stringify({
    listen: '127.0.0.1:0',
    clients: { crm: { tokenUrl: 'https://auth.example.com/oauth2/token', clientId: 'svc', clientSecretFile: secretFifo, scopes: ['crm.read'] } },
    routes: [{ path: '/crm/', upstream: 'https://api.example.com/v2/', client: 'crm' }],
  }));
  const run = await cli(['serve', '--check', '--config', config]);
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /clientSecretFile.*names a file that cannot be read \(.*secret\.fifo: not a regular file/);
});

test("every line on stderr starts with the package's bin name, oauth-client-credentials:", async () => {
  const run = await cli(['tokn']);
  assert.match(run.stderr, /^oauth-client-credentials: error: unknown command 'tokn'$/m);
  assert.doesNotMatch(run.stderr, /^client-credentials:/m);
});

test('a command or help topic named like an Object.prototype member is an unknown command, not a crash (found by the property below)', async () => {
  for (const args of [['help', 'isPrototypeOf'], ['constructor'], ['toString', '--help'], ['help', '__proto__']]) {
    const run = await cli(args);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, /^oauth-client-credentials: error: (unknown command|no help on) '/m, args.join(' '));
    assert.doesNotMatch(run.stderr, /TypeError|at \w+ \(/, args.join(' '));
  }
});

test('property: whatever the misuse, a client secret from the environment or the command line is never printed', async () => {
  const { run } = await import('../src/cli/run.js');
  const secret = fc.stringMatching(/^[A-Za-z0-9._~+\/=-]{12,40}$/);
  const misuse = fc.constantFrom(
    (s: string) => ['token', s],
    (s: string) => [s],
    (s: string) => ['help', s],
    (s: string) => ['token', '--client-secret-file', s],
    (s: string) => ['token', '--config', s],
    (s: string) => ['serve', '--config', s],
    (s: string) => ['call', 'GET', s, s],
    (s: string) => ['inspect', '--timeout', s],
    (s: string) => ['token', '--retries', s],
    (s: string) => ['token', '--proxy', s],
  );
  await fc.assert(
    fc.asyncProperty(secret, misuse, fc.boolean(), async (s, make, onLine) => {
      const out = capturedIo(onLine ? {} : { O_AUTH_CLIENT_SECRET: s });
      const argv = make(s);
      const code = await run(onLine ? [...argv, '--client-secret', s] : argv, out.io);
      assert.notEqual(code, 0);
      assert.ok(!out.written.includes(s), `${argv.join(' ')} printed the secret:\n${out.written}`);
    }),
    { numRuns: 60 },
  );
});

test('a config key or a JWT alg named like an Object.prototype member is unknown (not read through the prototype)', async () => {
  const path = join(work, 'proto.json');
  await writeFile(path, JSON.stringify({ tokenUrl: 'http://127.0.0.1:1/token', clientId: 'svc', constructor: 'x' }));
  const run = await cli(['token', '--config', path, '--client-secret', SECRET]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /has an unknown key "constructor"/);

  const { verifyAccessToken } = await import('../src/auth/accessTokenVerification.js');
  const { createDispatcher, createTransport } = await import('../src/http/transport.js');
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const token = `${part({ alg: 'constructor', typ: 'at+jwt' })}.${part({ iss: 'http://127.0.0.1:9' })}.c2ln`;
  const dispatcher = createDispatcher();
  try {
    // Nothing listens on the issuer: the alg is refused before any request, as an unknown alg is.
    const checks = await verifyAccessToken(token, { issuer: 'http://127.0.0.1:9', transport: createTransport(dispatcher), now: Date.now(), timeout: 2_000, userAgent: 'test' });
    const signature = checks.find((c) => c.name === 'signature')!;
    assert.equal(signature.ok, false);
    assert.match(signature.detail, /^alg constructor cannot be verified/);
  } finally {
    await dispatcher.close();
  }
});

test('--resource that is not an absolute URI and --audience (or its variable) with a control character: exit 2 naming the flag, nothing sent', async () => {
  let hits = 0;
  const server = http.createServer((_req, res) => {
    hits++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"tok-cli-resource-0001","token_type":"Bearer","expires_in":300}');
  });
  const url = await listenLocal(server);
  try {
    const base = ['token', '--token-url', `${url}/token`, '--client-id', 'id'];
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['--resource', '/relative'], {}, /--resource .*absolute URI/],
      [['--resource', 'https://api.example.com/#x'], {}, /--resource .*fragment/],
      [['--audience', 'api\r\nX-Injected: 1'], {}, /--audience .*control character/],
      [[], { CLIENT_CREDENTIALS_AUDIENCE: 'api\n' }, /--audience .*control character/],
      [[], { CLIENT_CREDENTIALS_RESOURCE: 'api' }, /--resource .*absolute URI/],
    ];
    for (const [args, env, message] of cases) {
      const run = await cli([...base, ...args], { O_AUTH_CLIENT_SECRET: SECRET, ...env });
      assert.equal(run.code, 2, `${args.join(' ')} ${JSON.stringify(env)}\n${run.stderr}`);
      assert.match(run.stderr, message);
      assert.equal(run.stdout, '');
      assertNoSecret(run);
    }
    assert.equal(hits, 0);
  } finally {
    await closeServer(server);
  }
});

test('token --json: members the server added to its answer that echo the client secret (a debug endpoint) are redacted; the token itself is printed as it is', async () => {
  const { run } = await import('../src/cli/run.js');
  const { variantsOf } = await import('../src/redaction.js');
  const secret = 'p+s/s:w%rd~ünï "q" <x>&y=z-0123';
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      const basic = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        access_token: 'tok-json-echo-0001', token_type: 'Bearer', expires_in: 300, scope: 'read',
        debug: { body, authorization: req.headers.authorization, basic, decoded: decodeURIComponent(basic.slice(basic.indexOf(':') + 1).replace(/\+/g, ' ')) },
      }));
    });
  });
  const url = await listenLocal(server);
  try {
    for (const method of ['client_secret_basic', 'client_secret_post']) {
      const out = capturedIo({ O_AUTH_CLIENT_SECRET: secret });
      const code = await run(['token', '--json', '--token-url', `${url}/token`, '--client-id', 'id', '--auth-method', method], out.io);
      const { written } = out;
      assert.equal(code, 0, written);
      const printed = JSON.parse(written) as Record<string, unknown>;
      assert.equal(printed['accessToken'], 'tok-json-echo-0001');
      assert.equal(printed['scope'], 'read');
      for (const form of [...variantsOf(secret), Buffer.from(`id:${secret}`).toString('base64')]) {
        assert.ok(!written.includes(form), `${method}: the secret was printed as ${form}:\n${written}`);
      }
    }
  } finally {
    await closeServer(server);
  }
});

test('--token-param naming a parameter the library sets is refused in the CLI\'s words (the flag and the option to use), not the library\'s option paths', async () => {
  const cases: [string, RegExp][] = [
    ['client_secret=x', /error: --token-param client_secret is set by the library; use --client-secret-file, --client-secret-stdin or \$O_AUTH_CLIENT_SECRET\n/],
    ['SCOPE=x', /error: --token-param SCOPE is set by the library; use --scope\n/],
    ['grant_type=x', /error: --token-param grant_type is set by the library; use --grant-type\n/],
    ['client_assertion=x', /error: --token-param client_assertion is set by the library; use --client-assertion-file or --private-key-file\n/],
  ];
  for (const [param, message] of cases) {
    const run = await cli(['token', '--token-url', 'http://127.0.0.1:9/token', '--client-id', 'id', '--token-param', param], { O_AUTH_CLIENT_SECRET: SECRET });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, message);
    assert.doesNotMatch(run.stderr, /clientCredentialsAuthCredentials|oAuth/);
  }
});

test('--verbose never prints the password of a URL given with user:password@ (token URL, base URL, issuer, the URL of call), long or short', async () => {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(req.url === '/token' ? '{"access_token":"tok-userinfo-0001","token_type":"Bearer","expires_in":300}' : '{"ok":true}');
  });
  const url = await listenLocal(server);
  try {
    for (const password of ['p4ssw0rd-userinfo-long', 'pw', 'p%7eword-x']) {
      const withUser = (u: string, path: string) => u.replace('http://', `http://user:${password}@`) + path;
      for (const args of [
        ['token', '--token-url', withUser(url, '/token')],
        ['call', 'GET', withUser(url, '/api'), '--token-url', `${url}/token`],
        ['call', 'GET', '/api', '--base-url', withUser(url, ''), '--token-url', `${url}/token`],
        ['token', '--issuer', withUser('http://127.0.0.1:9', '')],
      ]) {
        const run = await cli([...args, '--client-id', 'id', '--verbose', '--retries', '0'], { O_AUTH_CLIENT_SECRET: SECRET });
        const printed = `${run.stdout}${run.stderr}`;
        assert.ok(!printed.includes(`:${password}@`) && (password.length < 8 || !printed.includes(decodeURIComponent(password))), `${args.join(' ')} printed the password:\n${printed}`);
        assert.match(run.stderr, /\* /, 'verbose lines were printed');
      }
    }
  } finally {
    await closeServer(server);
  }
});

test('inspect of a JWT whose times are beyond any date (exp 1e400, iat -1e20): no NaN dates, in text or --json', async () => {
  const part = (value: string) => Buffer.from(value).toString('base64url');
  const jwt = `${part('{"alg":"RS256","typ":"at+jwt"}')}.${part('{"exp":1e400,"iat":-1e20,"nbf":8.7e15}')}.c2ln`;
  for (const args of [['inspect', jwt], ['inspect', '--json', jwt]]) {
    const run = await cli(args);
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stdout, /NaN/, run.stdout);
    assert.match(run.stdout, /out of range/);
  }
});
