/**
 * Child-process fleets for tests and the soak: spawns test/fixtures/fleetWorker.js workers, sends them commands over
 * IPC and sums their reports. Shared by test/fleet.test.ts, the Redis deployment tests and the soak.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { OidcProviderHandle } from './oidc.js';
import type { GotToken, RunReport, WorkerCommand, WorkerConfig } from '../fixtures/fleetWorker.js';

export type { GotToken, RunReport, WorkerCommand, WorkerConfig };

const WORKER = fileURLToPath(new URL('../fixtures/fleetWorker.js', import.meta.url));
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** A spawned worker process. */
export interface Worker {
  pid: number;
  child: ChildProcess;
  send(command: WorkerCommand): void;
  next<T>(type: string): Promise<T>;
}

export async function spawnWorker(config: WorkerConfig): Promise<Worker> {
  // --expose-gc lets a snapshot measure the live heap after a collection (the soak's leak check).
  const child = fork(WORKER, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...process.execArgv, '--expose-gc'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  // Never let a forgotten worker keep this test process alive: the servers keep it alive while tests run, and the
  // exit hook above kills whatever is left.
  child.unref();
  (child.channel as { unref?: () => void } | undefined)?.unref?.();
  const inbox: { type: string }[] = [];
  const waiting: { type: string; resolve: (m: unknown) => void; reject: (e: Error) => void }[] = [];
  child.on('message', (message: { type: string }) => {
    const index = waiting.findIndex((w) => w.type === message.type);
    if (index >= 0) waiting.splice(index, 1)[0]!.resolve(message);
    else inbox.push(message);
  });
  child.once('exit', (code, signal) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`worker ${child.pid} exited (${code ?? signal}) while we waited for ${w.type}`));
  });
  const worker: Worker = {
    pid: child.pid!,
    child,
    send: (command) => child.send(command),
    next<T>(type: string): Promise<T> {
      const index = inbox.findIndex((m) => m.type === type);
      if (index >= 0) return Promise.resolve(inbox.splice(index, 1)[0] as T);
      return new Promise<T>((resolve, reject) => {
        waiting.push({ type, resolve: resolve as (m: unknown) => void, reject });
      });
    },
  };
  await worker.next('ready');
  return worker;
}

export async function stopWorkers(workers: Worker[]): Promise<void> {
  await Promise.all(
    workers.map(async (w) => {
      if (w.child.exitCode !== null || w.child.signalCode !== null) return;
      const exited = new Promise((resolve) => w.child.once('exit', resolve));
      if (w.child.connected) w.send({ type: 'exit' });
      const timer = setTimeout(() => w.child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(timer);
    }),
  );
}

/** What one burst across the fleet showed. */
export interface Burst {
  /** Token requests at the server from the start of the burst until every process had its token. */
  untilEveryoneHadAToken: number;
  /** Token requests at the server during the whole burst (a slow burst may outlive the token's fresh time). */
  total: number;
  /** The token each process got first (hash). */
  firstTokens: Set<string>;
  /** Milliseconds until every process had its token, and until the burst ended. */
  tokenMs: number;
  ms: number;
  reports: RunReport[];
}

/** Every worker sends `n` concurrent API requests at once. */
export async function burst(workers: Worker[], n: number, op: OidcProviderHandle): Promise<Burst> {
  const got = workers.map((w) => w.next<GotToken>('gotToken'));
  const replies = workers.map((w) => w.next<RunReport>('report'));
  const before = op.tokenRequests.length;
  const t0 = Date.now();
  for (const w of workers) w.send({ type: 'burst', n });
  const first = await Promise.all(got);
  const untilEveryoneHadAToken = op.tokenRequests.length - before;
  const tokenMs = Date.now() - t0;
  const reports = await Promise.all(replies);
  return { untilEveryoneHadAToken, total: op.tokenRequests.length - before, firstTokens: new Set(first.map((g) => g.token)), tokenMs, ms: Date.now() - t0, reports };
}

export function sum(reports: RunReport[], field: 'ok' | 'failed' | 'tokenRequests' | 'storeErrors'): number {
  return reports.reduce((total, r) => total + r[field], 0);
}

export function distinctTokens(reports: RunReport[]): Set<string> {
  return new Set(reports.flatMap((r) => r.tokens));
}

export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

