/**
 * The CLI loads what the command needs and no more: `--help`, `--version`, a usage error and `inspect` (without
 * `--verify`) never load undici or the Client, and `token` never loads the broker. Each run is the built
 * dist/src/cli/main.js as a subprocess, with a module-loading hook (node:module `register`) that appends every URL
 * Node loads to a file, so the check sees what Node really loaded, dynamic imports included.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startOidcProvider, type OidcProviderHandle } from './helpers/oidc.js';
import { CLI, runCli } from './helpers/cliRun.js';

let work: string;
let op: OidcProviderHandle;
let secretFile: string;
let registerFile: string;
let runs = 0;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'cli-startup-'));
  op = await startOidcProvider({ ttl: 300 });
  secretFile = join(work, 'secret');
  await writeFile(secretFile, 'svc-secret', { mode: 0o600 });
  const hook = join(work, 'hook.mjs');
  await writeFile(
    hook,
    [
      "import { appendFileSync } from 'node:fs';",
      'let log;',
      'export function initialize(data) { log = data.log; }',
      'export async function load(url, context, next) { appendFileSync(log, `${url}\\n`); return next(url, context); }',
    ].join('\n'),
  );
  registerFile = join(work, 'register.mjs');
  await writeFile(
    registerFile,
    [
      "import { register } from 'node:module';",
      `register(${JSON.stringify(pathToFileURL(hook).href)}, { data: { log: process.env.LOAD_LOG } });`,
    ].join('\n'),
  );
});

after(async () => {
  await op.close();
  await rm(work, { recursive: true, force: true });
});

/** Runs the CLI with `args`; resolves with its exit code and the files of ours and of node_modules it loaded. */
async function loaded(args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string; files: string[] }> {
  const log = join(work, `load-${runs++}.log`);
  await writeFile(log, '');
  const env = { LOAD_LOG: log, XDG_CACHE_HOME: join(work, 'cache'), NO_COLOR: '1' };
  const { code, stdout, stderr } = await runCli(args, { env, input, nodeArgs: ['--import', pathToFileURL(registerFile).href] });
  const files = (await readFile(log, 'utf8'))
    .split('\n')
    .filter((url) => url.startsWith('file:'))
    .map((url) => fileURLToPath(url));
  return { code, stdout, stderr, files };
}

const isUndici = (file: string) => /[\\/]node_modules[\\/]undici[\\/]/.test(file);
const isClient = (file: string) => /[\\/]dist[\\/]src[\\/]client\.js$/.test(file);
const isBroker = (file: string) => /[\\/]dist[\\/]src[\\/]broker[\\/]/.test(file);

/** A JWT (not signed by anyone: `inspect` without --verify only decodes it). */
const JWT = [
  Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'at+jwt' })).toString('base64url'),
  Buffer.from(JSON.stringify({ sub: 'svc', exp: 4_102_444_800 })).toString('base64url'),
  'c2lnbmF0dXJl',
].join('.');

describe('what the CLI loads', () => {
  test('the hook sees what a command loads, dynamic imports included: `token` loads the Client and undici', async () => {
    const run = await loaded(['token', '--token-url', op.tokenUrl, '--client-id', 'svc', '--client-secret-file', secretFile, '--allow-insecure-http', '--no-cache']);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.trim().split('.').length === 3, 'a JWT access token was printed');
    assert.ok(run.files.some(isClient), 'the Client was loaded');
    assert.ok(run.files.some(isUndici), 'undici was loaded');
    assert.deepEqual(run.files.filter(isBroker), [], '`token` does not load the broker');
  });

  for (const args of [['--help'], ['--version'], ['help', 'call'], ['token', '--no-such-flag'], []]) {
    test(`\`${['client-credentials', ...args].join(' ')}\` loads neither undici nor the Client`, async () => {
      const run = await loaded(args);
      assert.ok(run.files.some((f) => f === CLI), 'the hook saw the CLI itself');
      assert.deepEqual(run.files.filter((f) => isUndici(f) || isClient(f) || isBroker(f)), []);
    });
  }

  test('`inspect -` (no --verify) decodes a token without loading undici or the Client', async () => {
    const run = await loaded(['inspect', '-'], JWT);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /signature NOT verified/);
    assert.match(run.stdout, /sub\s+svc/);
    assert.deepEqual(run.files.filter((f) => isUndici(f) || isClient(f) || isBroker(f)), []);
  });
});
