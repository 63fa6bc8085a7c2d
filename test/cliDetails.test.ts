/**
 * CLI details: negative numbers are range errors (not "ambiguous"), misspelled options get a "did you mean",
 * `--timeout` bounds the whole command, a secret from the environment loses its trailing newline (with a warning),
 * `call` writes binary bodies byte for byte, and the proxy environment (HTTP_PROXY, NO_PROXY) is honoured as curl does.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type Stack } from './helpers/fixtures.js';
import { cacheKey } from '../src/cli/cache.js';
import { closeServer, listenLocal } from './helpers/http.js';
import { startHttpProxy, type HttpProxyHandle } from './helpers/httpProxy.js';
import { CLI, runCli, type Run } from './helpers/cliRun.js';

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

let stack: Stack;
let proxy: HttpProxyHandle;
let bytesServer: http.Server;
let bytesUrl: string;
let work: string;

before(async () => {
  stack = await startStack();
  proxy = await startHttpProxy();
  bytesServer = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(ALL_BYTES));
  bytesUrl = await listenLocal(bytesServer);
  work = await mkdtemp(join(tmpdir(), 'cli-details-'));
});
after(async () => {
  await closeServer(bytesServer);
  await proxy.close();
  await stack.close();
  await rm(work, { recursive: true, force: true });
});

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return runCli(args, {
    env: { HOME: work, CLIENT_CREDENTIALS_TOKEN_URL: stack.op.tokenUrl, CLIENT_CREDENTIALS_CLIENT_ID: 'svc', CLIENT_CREDENTIALS_CLIENT_SECRET: 'svc-secret', CLIENT_CREDENTIALS_CACHE: 'off', ...env },
  });
}

test('--retries -1 is a range error, not "argument is ambiguous"', async () => {
  const run = await cli(['token', '--retries', '-1']);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /--retries must be a whole number of retries between 0 and 10, got "-1"/);
  assert.doesNotMatch(run.stderr, /ambiguous/);
});

test('a misspelled option gets a "did you mean"', async () => {
  const cut = await cli(['token', '--retry', '3']);
  assert.equal(cut.code, 2);
  assert.match(cut.stderr, /unknown option '--retry' for token\n.*hint: did you mean --retries\?/);
  const typo = await cli(['call', 'GET', '/x', '--heder', 'a: b']);
  assert.match(typo.stderr, /did you mean --header\?/);
});

test('--timeout bounds the whole command, retries included', async () => {
  stack.proxy.inject({ kind: 'hang' }, 10);
  try {
    // Per attempt this would be 4 attempts of 1 s each plus backoff; the command gives up after 1 s.
    const run = await cli(['token', '--token-url', stack.proxiedTokenUrl, '--timeout', '1', '--retries', '3']);
    assert.equal(run.code, 4);
    assert.match(run.stderr, /gave up after 1 s \(--timeout: the time limit of the whole command\)/);
    assert.ok(run.ms < 3_900, `took ${run.ms} ms`);
  } finally {
    stack.proxy.clear();
  }
});

test('a secret from the environment with a trailing newline is trimmed, with a warning that never shows it', async () => {
  const run = await cli(['token'], { CLIENT_CREDENTIALS_CLIENT_SECRET: 'svc-secret\n' });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /the client secret from \$CLIENT_CREDENTIALS_CLIENT_SECRET starts or ends with whitespace \(a newline\?\); it was removed/);
  assert.doesNotMatch(run.stderr, /svc-secret/);
});

test('call writes a binary body byte for byte', async () => {
  const run = await cli(['call', 'GET', `${bytesUrl}/bytes`]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdoutBytes.length, 256);
  assert.ok(run.stdoutBytes.equals(ALL_BYTES));
});

test('the proxy environment is honoured by default; NO_PROXY and --proxy off go direct; --proxy URL; loopback never via a proxy', async () => {
  // The token endpoint by a `.test` name that only the proxy resolves (to 127.0.0.1): loopback itself goes direct.
  const named = ['--token-url', stack.op.tokenUrl.replace('127.0.0.1', 'auth.test'), '--allow-insecure-http', '--no-cache'];
  let before = proxy.requests.length;
  const viaEnv = await cli(['token', ...named], { HTTP_PROXY: proxy.url });
  assert.equal(viaEnv.code, 0, viaEnv.stderr);
  assert.ok(proxy.requests.length > before, 'HTTP_PROXY used');

  before = proxy.requests.length;
  const exempt = await cli(['token', ...named, '--retries', '0'], { HTTP_PROXY: proxy.url, NO_PROXY: 'auth.test' });
  assert.notEqual(exempt.code, 0, 'NO_PROXY: direct, where the name does not resolve');
  const off = await cli(['token', ...named, '--retries', '0', '--proxy', 'off'], { HTTP_PROXY: proxy.url });
  assert.notEqual(off.code, 0, '--proxy off: direct, where the name does not resolve');
  assert.equal(proxy.requests.length, before, 'NO_PROXY and --proxy off: direct');

  const flag = await cli(['token', ...named, '--proxy', proxy.url]);
  assert.equal(flag.code, 0, flag.stderr);
  assert.ok(proxy.requests.length > before, '--proxy URL used');

  // Plain http to loopback (the default token URL here) never goes through the proxy: it would read the secret.
  before = proxy.requests.length;
  const loopback = await cli(['token', '--no-cache'], { HTTP_PROXY: proxy.url, NO_PROXY: '' });
  assert.equal(loopback.code, 0, loopback.stderr);
  const loopbackFlag = await cli(['token', '--no-cache', '--proxy', proxy.url]);
  assert.equal(loopbackFlag.code, 0, loopbackFlag.stderr);
  assert.equal(proxy.requests.length, before, 'loopback: direct, whatever the proxy settings');

  const bad = await cli(['token', '--proxy', 'socks5://u:pw-secret@h:1']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--proxy must be 'env', 'off' or an http\(s\) URL/);
  assert.doesNotMatch(bad.stderr, /pw-secret/);
});

test('the CLI cache key: runs that start at once on a fresh cache agree on one key (one read a half-written key, replaced it, and two runs used two keys)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cc-key-'));
  try {
    for (let round = 0; round < 30; round++) {
      const keys = await Promise.all(Array.from({ length: 8 }, () => cacheKey(join(dir, `round-${round}`, 'tokens.json'))));
      assert.equal(new Set(keys.map((k) => k.toString('hex'))).size, 1, `round ${round}: ${new Set(keys.map((k) => k.toString('hex'))).size} keys`);
      assert.equal(keys[0]!.length, 32);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('stdout that cannot be written (a full disk: /dev/full) is one error line and exit 2, not a crash with a stack trace; a full stderr does not crash either', async () => {
  const env = { PATH: process.env['PATH'] ?? '', HOME: work, CLIENT_CREDENTIALS_TOKEN_URL: stack.op.tokenUrl, CLIENT_CREDENTIALS_CLIENT_ID: 'svc', CLIENT_CREDENTIALS_CLIENT_SECRET: 'svc-secret', CLIENT_CREDENTIALS_CACHE: 'off' };
  const runWith = (args: string[], stdio: [string, number | 'pipe', number | 'pipe']): Promise<{ code: number | null; stderr: string }> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], { env, stdio: stdio as never });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr }));
    });
  const full = openSync('/dev/full', 'w');
  try {
    for (const args of [['token'], ['token', '--json'], ['call', 'GET', `${stack.api.url}/things`]]) {
      const run = await runWith(args, ['ignore', full, 'pipe']);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /^oauth-client-credentials: error: cannot write to standard output: ENOSPC\n$/);
    }
    // stderr full, stdout full too: nothing can be said, but the exit code still says it failed, without a crash (1).
    const both = await runWith(['token'], ['ignore', full, full]);
    assert.equal(both.code, 2);
    // stderr full with a usage error: the usage exit code, not a crash.
    const usage = await runWith(['token', '--retries', '-1'], ['ignore', 'pipe', full]);
    assert.equal(usage.code, 2);
  } finally {
    closeSync(full);
  }
});
