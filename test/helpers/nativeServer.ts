/**
 * Child processes for the servers not written in JavaScript (Glewlwyd, Authlib, django-oauth-toolkit, Apache
 * mod_oauth2): where their programs are, how to start one on a free 127.0.0.1 port and wait until it answers, and how
 * to stop it. Every process started here is killed when the test process exits, whatever happens.
 *
 * A missing program skips that server's tests with a message naming the Debian package, except in CI (`CI=true`),
 * where `.ci/run` installs them and a missing one is an error.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from 'undici';
import { freePort } from './redis.js';

/** Debian's Python, with python3-authlib, python3-flask and python3-django-oauth-toolkit (not a pyenv one on PATH). */
export const DEBIAN_PYTHON = '/usr/bin/python3';

/** The folder of the fixtures (python apps, configuration templates) in the source tree. */
export const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));

/**
 * Whether the files a server needs are there: `undefined` when they are, a skip message naming the Debian packages
 * when they are not. In CI a missing file throws instead, so a server that should run is never skipped silently.
 */
export function nativeSkipReason(server: string, files: string[], packages: string): string | undefined {
  const missing = files.filter((file) => {
    try {
      accessSync(file, constants.R_OK);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return undefined;
  const message = `${server} is not installed here (missing ${missing.join(', ')}): apt-get install ${packages} (.ci/run does this)`;
  if (process.env['CI'] === 'true') throw new Error(`CI: ${message}`);
  return message;
}

/** A running server process. */
export interface NativeProcess {
  readonly port: number;
  /** Its temporary folder (configuration, database), removed by stop(). */
  readonly dir: string;
  /** Milliseconds from spawn to the first good answer. */
  readonly startupMs: number;
  /** Everything it wrote to stdout and stderr (for failure messages). */
  output(): string;
  /** SIGTERM, SIGKILL after 5 s, then removes the temporary folder. */
  stop(): Promise<void>;
}

/** How to start one server. */
export interface NativeStart {
  /** For messages. */
  name: string;
  /** Writes the configuration into `dir` for `port`, returns the command and its arguments. */
  prepare(dir: string, port: number): Promise<{ command: string; args: string[]; env?: Record<string, string>; cwd?: string }> | { command: string; args: string[]; env?: Record<string, string>; cwd?: string };
  /** Resolves true once the server answers as expected (called every 100 ms). */
  ready(port: number): Promise<boolean>;
  /** Overall wait for readiness; generous, the machine is small and busy. Default 60 s. */
  timeoutMs?: number;
}

const children = new Set<ChildProcess>();
let exitHook = false;

/** Signals a server's whole process group (Apache's workers, anything a server forked), ignoring one already gone. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

/** Kills every server still running when the test process exits or is told to stop (a test runner's timeout). */
function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  const killAll = (): void => {
    for (const child of children) signalGroup(child, 'SIGKILL');
  };
  process.on('exit', killAll);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      killAll();
      // The default action, now that this listener is gone.
      process.kill(process.pid, signal);
    });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Where the servers' folders go: /dev/shm when there is one, since their SQLite databases sync every write and on a
 * busy disk that costs seconds (Glewlwyd's schema: 3 s on disk, 30 ms in memory); else the temp folder.
 */
function baseFolder(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

/**
 * Starts a server on a free port and waits until `ready` says yes. If the process exits first (a port taken between
 * the check and the bind is the usual cause), it tries again on another port, three times, then fails with its output.
 */
export async function startNative(options: NativeStart): Promise<NativeProcess> {
  installExitHook();
  const timeoutMs = options.timeoutMs ?? 60_000;
  let lastOutput = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    const dir = mkdtempSync(join(baseFolder(), `cc-${options.name.replace(/\W+/g, '-')}-`));
    const port = await freePort();
    const { command, args, env, cwd } = await options.prepare(dir, port);
    const started = Date.now();
    // Its own process group, so stopping it reaches whatever it forked.
    const child = spawn(command, args, { cwd: cwd ?? dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.add(child);
    let output = '';
    const collect = (chunk: Buffer): void => {
      if (output.length < 64_000) output += chunk.toString('utf8');
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    let exited = false;
    const exit = new Promise<void>((resolve) => {
      const done = (): void => {
        exited = true;
        children.delete(child);
        resolve();
      };
      child.once('exit', done);
      // A program that cannot be started emits 'error' and maybe no 'exit'.
      child.once('error', (error) => {
        output += `\nspawn error: ${error.message}`;
        done();
      });
    });
    const stop = async (): Promise<void> => {
      if (!exited) {
        signalGroup(child, 'SIGTERM');
        const killer = setTimeout(() => signalGroup(child, 'SIGKILL'), 5_000);
        await exit;
        clearTimeout(killer);
      }
      rmSync(dir, { recursive: true, force: true });
    };
    const deadline = started + timeoutMs;
    while (!exited && Date.now() < deadline) {
      if (await options.ready(port).catch(() => false)) {
        const startupMs = Date.now() - started;
        return { port, dir, startupMs, output: () => output, stop };
      }
      await sleep(100);
    }
    lastOutput = output;
    const timedOut = !exited;
    await stop();
    if (timedOut) throw new Error(`${options.name} did not answer within ${timeoutMs} ms on port ${port}; its output:\n${output}`);
  }
  throw new Error(`${options.name} exited before answering (3 attempts); its last output:\n${lastOutput}`);
}

/** Status of a GET (undefined when the connection fails), with an optional TLS trust anchor. */
export async function probe(url: string, ca?: string): Promise<number | undefined> {
  const dispatcher = ca ? new Agent({ connect: { ca } }) : undefined;
  try {
    const res = await fetch(url, { ...(dispatcher ? { dispatcher } : {}), signal: AbortSignal.timeout(5_000) } as RequestInit);
    await res.arrayBuffer();
    return res.status;
  } catch {
    return undefined;
  } finally {
    await dispatcher?.close();
  }
}
