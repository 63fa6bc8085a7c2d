/**
 * Runs the built CLI (dist/src/cli/main.js), or any Node program, as a subprocess and collects what it printed:
 * the one way the CLI tests drive the command-line tool.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built CLI's entry point, dist/src/cli/main.js. */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** How to run a subprocess. Nothing of this process's environment is inherited but `PATH`. */
export interface RunOptions {
  /** Environment variables, added to `PATH` (which they may replace). */
  env?: Record<string, string | undefined>;
  /** Working directory; this process's when absent. */
  cwd?: string;
  /**
   * Text written to stdin, which is then closed. When absent, stdin is `/dev/null` (`'ignore'`), so a program that
   * reads it sees end of file at once.
   */
  input?: string;
  /** Milliseconds after which the child is killed with SIGKILL (and `killed` is true). Default 30 000. */
  timeoutMs?: number;
  /** Options for `node` itself, before the CLI (e.g. `['--import', hookUrl]`); for {@link runCli} and {@link spawnCli} only. */
  nodeArgs?: string[];
}

/** What a finished subprocess did. */
export interface Run {
  /** The CLI's arguments (for {@link runCli}), or node's whole argv (for {@link runNode}). */
  args: string[];
  /** Exit code; null when a signal ended it. */
  code: number | null;
  /** Standard output, decoded as UTF-8. */
  stdout: string;
  /** Standard output as the bytes written, for binary output. */
  stdoutBytes: Buffer;
  /** Standard error, decoded as UTF-8. */
  stderr: string;
  /** True when the timeout killed it (a hang, not an answer). */
  killed: boolean;
  /** Milliseconds from spawn to close. */
  ms: number;
}

/** A started subprocess, for a test that acts on it while it runs (a signal, say), and its result. */
export interface Running {
  child: ChildProcess;
  /** Settles when the child has closed its streams and exited; rejects if it could not be spawned. */
  result: Promise<Run>;
}

/** Starts `node` with `argv` (its options, the program, the program's arguments) and collects its output. */
export function spawnNode(argv: string[], options: RunOptions = {}, args: string[] = argv): Running {
  const started = Date.now();
  const child = spawn(process.execPath, argv, {
    env: { PATH: process.env['PATH'] ?? '', ...options.env },
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const result = new Promise<Run>((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let killed = false;
    child.stdout!.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr!.on('data', (chunk: Buffer) => err.push(chunk));
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 30_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ args, code, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr: Buffer.concat(err).toString('utf8'), killed, ms: Date.now() - started });
    });
  });
  if (options.input !== undefined) {
    // A child that exits without reading its stdin must not crash the test with EPIPE.
    child.stdin!.on('error', () => {});
    child.stdin!.end(options.input);
  }
  return { child, result };
}

/** Runs `node` with `argv` to the end; see {@link spawnNode}. */
export function runNode(argv: string[], options: RunOptions = {}): Promise<Run> {
  return spawnNode(argv, options).result;
}

/**
 * Starts the built CLI with `args`, for a test that acts on it while it runs.
 *
 * @example
 * const { child, result } = spawnCli(['token'], { env: { HOME: work } });
 * child.kill('SIGINT');
 * assert.equal((await result).code, 130);
 */
export function spawnCli(args: string[], options: RunOptions = {}): Running {
  return spawnNode([...(options.nodeArgs ?? []), CLI, ...args], options, args);
}

/**
 * Runs the built CLI with `args` to the end, with only `PATH` and `options.env` in its environment.
 *
 * @example
 * const run = await runCli(['token', '--client-id', 'svc'], { env: { HOME: work, CLIENT_CREDENTIALS_CACHE: 'off' } });
 * assert.equal(run.code, 0, run.stderr);
 */
export function runCli(args: string[], options: RunOptions = {}): Promise<Run> {
  return spawnCli(args, options).result;
}
