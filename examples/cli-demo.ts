/**
 * The command-line tool at work, for `npm start`: runs the built `client-credentials` CLI a few times against the
 * given servers and prints each command with its output. The secret is passed in a private file and never printed;
 * tokens are shortened.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the demo points the CLI. */
export interface CliDemoOptions {
  tokenUrl: string;
  baseUrl: string;
  clientId: string;
  clientSecret: string;
}

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function runCli(args: string[], env: Record<string, string>, input = ''): Promise<Result> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
    child.stdin.end(input);
  });
}

/** A token shortened for display: its first 16 and last 4 characters. */
export function shortenToken(token: string): string {
  return token.length <= 24 ? `${token.slice(0, 4)}…` : `${token.slice(0, 16)}…${token.slice(-4)}`;
}

/**
 * Spawns the built CLI against `tokenUrl` and `baseUrl`: `token` twice (the second from the file cache),
 * `token --json | inspect -`, `call GET /things` and a call answered 404, then prints each command and its output
 * through `print`, in that order (line by line; the caller may keep the lines and show them later). After the first
 * `token`, the cache commands and the calls run side by side, each lane in order.
 */
export async function runCliDemo(options: CliDemoOptions, print: (line: string) => void = console.log): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'client-credentials-cli-demo-'));
  const secretFile = join(dir, 'client-secret');
  await writeFile(secretFile, options.clientSecret, { mode: 0o600 });
  const env = {
    XDG_CACHE_HOME: join(dir, 'cache'),
    NO_COLOR: '1',
    CLIENT_CREDENTIALS_TOKEN_URL: options.tokenUrl,
    CLIENT_CREDENTIALS_BASE_URL: options.baseUrl,
    O_AUTH_CLIENT_ID: options.clientId,
    CLIENT_CREDENTIALS_CLIENT_SECRET_FILE: secretFile,
    // The same scope as the library demo's Client asks for: without it the token has no scope claim, and the API's
    // echo shows "scope": null.
    CLIENT_CREDENTIALS_SCOPE: 'api:read',
  };
  const tokens = new Set<string>();
  const scrub = (text: string): string => {
    let out = text.split(options.clientSecret).join('[secret]');
    for (const token of tokens) out = out.split(token).join(shortenToken(token));
    return out;
  };
  const show = (text: string) => {
    for (const line of scrub(text).trimEnd().split('\n')) print(`     ${line}`);
  };
  try {
    print(`   $ export CLIENT_CREDENTIALS_TOKEN_URL=${options.tokenUrl} CLIENT_CREDENTIALS_BASE_URL=${options.baseUrl}`);
    print(`   $ export O_AUTH_CLIENT_ID=${options.clientId} CLIENT_CREDENTIALS_CLIENT_SECRET_FILE=./client-secret CLIENT_CREDENTIALS_SCOPE=api:read`);

    const first = await runCli(['token'], env);
    // The rest in two lanes (the cache, then the API), each in order; printed below in the order of the commands.
    const [[second, json, inspect], [call, missing]] = await Promise.all([
      (async () => {
        const cachedRun = await runCli(['token', '--verbose'], env);
        const jsonRun = await runCli(['token', '--json'], env);
        return [cachedRun, jsonRun, await runCli(['inspect', '-'], env, jsonRun.stdout)] as const;
      })(),
      (async () => {
        const callRun = await runCli(['call', 'GET', '/things', '-i'], env);
        return [callRun, await runCli(['call', 'GET', '/status/404'], env)] as const;
      })(),
    ]);
    tokens.add(first.stdout.trim());
    tokens.add(second.stdout.trim());
    try {
      tokens.add((JSON.parse(json.stdout) as { accessToken: string }).accessToken);
    } catch {
      // shown as it is below
    }

    print(`   $ npx oauth-client-credentials token                  # exit ${first.code}, ${first.ms} ms: fetched`);
    show(first.stdout + first.stderr);

    const cached = second.stdout.trim() === first.stdout.trim();
    print(`   $ npx oauth-client-credentials token --verbose        # exit ${second.code}, ${second.ms} ms: ${cached ? 'the same token, from the file cache, no request' : 'a new token'}`);
    show(second.stdout + second.stderr.split('\n').filter((line) => line.includes('cache: ')).join('\n'));

    print(`   $ npx oauth-client-credentials token --json | npx oauth-client-credentials inspect -   # exit ${inspect.code}`);
    show(inspect.stdout + inspect.stderr);

    print(`   $ npx oauth-client-credentials call GET /things -i    # exit ${call.code}, ${call.ms} ms`);
    show(call.stdout + call.stderr);

    print(`   $ npx oauth-client-credentials call GET /status/404   # exit ${missing.code}`);
    show(missing.stdout + (missing.stdout.endsWith('\n') ? '' : '\n') + missing.stderr);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
