/**
 * The benchmark client process: it holds one contender and runs what the orchestrator (`run.ts`) asks for over IPC,
 * so that the client under test never shares an event loop with the servers or the orchestrator.
 *
 * Started as `node [--expose-gc] dist/bench/worker.js`; messages are `{ id, type, … }` and each gets one reply
 * `{ id, result }` or `{ id, error }`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, type ClientConfiguration, type TokenStore } from '../src/index.js';
import { contender, type BenchEnv, type Contender, type ContenderName } from './impls.js';
import { percentile } from './stats.js';

/** The outcome of a closed-loop load run. */
export interface LoadResult {
  /** Requests completed inside the measured window. */
  count: number;
  /** Requests that failed inside the measured window. */
  errors: number;
  errorSample?: string;
  elapsedMs: number;
  /** CPU time (user + system) this client process spent per completed request, in microseconds. */
  cpuPerRequestUs: number;
  /** Latency percentiles in ms, when asked for. */
  p50?: number;
  p99?: number;
  max?: number;
  /** Requests slower than `slowMs`, when asked for. */
  slow?: number;
  /** `waits()` of the contender over the window, when it counts them. */
  waits?: number;
}

/** The outcome of an outage run (S7, S8): what happened when, in ms since the epoch, for the orchestrator to place. */
export interface OutageLoadResult {
  /** When the callers started (ms since epoch). */
  startedAt: number;
  /** Calls that succeeded, and that failed. */
  ok: number;
  failed: number;
  /** The first failure's message. */
  errorSample?: string;
  /** How many calls failed with each message (durations in it replaced by N; the first 8 distinct, then "(other messages)"). */
  errorKinds: Record<string, number>;
  /** The milliseconds (since epoch) in which at least one call failed, ascending, and how many failed in each. */
  failureTimes: number[];
  failureCounts: number[];
  /** The milliseconds (since epoch) in which at least one call succeeded, ascending. */
  successTimes: number[];
  /** Calls still unsettled 5 s after the run ended (a contender that hangs). */
  stuck: number;
}

export type WorkerRequest =
  | { type: 'init'; env: BenchEnv; contender: ContenderName; client?: Partial<ClientConfiguration>; redisUrl?: string }
  | { type: 'load'; concurrency: number; warmupMs: number; durationMs: number; latency?: boolean; slowMs?: number }
  | { type: 'outage'; concurrency: number; durationMs: number; pauseMs: number }
  | { type: 'herd'; requests: number }
  | { type: 'recover' }
  | { type: 'waits' }
  | { type: 'keyedMemory'; env: BenchEnv; marks: number[]; concurrency: number }
  | { type: 'soak'; env: BenchEnv; requests: number; concurrency: number; samples: number }
  | { type: 'close' };

let current: Contender | undefined;
let redisClose: (() => Promise<void>) | undefined;

function describe(error: unknown): string {
  const e = error as { name?: string; code?: string; message?: string } | undefined;
  return `${e?.name ?? 'Error'}${e?.code ? ` ${e.code}` : ''}: ${String(e?.message ?? error).slice(0, 200)}`;
}

async function load(target: Contender, request: Extract<WorkerRequest, { type: 'load' }>): Promise<LoadResult> {
  let measuring = false;
  let stop = false;
  let count = 0;
  let errors = 0;
  let errorSample: string | undefined;
  const latencies: number[] = [];
  const record = request.latency === true;
  const loop = async () => {
    while (!stop) {
      const started = performance.now();
      try {
        await target.get();
        if (measuring) {
          count++;
          if (record) latencies.push(performance.now() - started);
        }
      } catch (error) {
        if (measuring) {
          errors++;
          if (record) latencies.push(performance.now() - started);
        }
        errorSample ??= describe(error);
        await sleep(1);
      }
    }
  };
  const loops = Array.from({ length: request.concurrency }, loop);
  if (request.warmupMs > 0) await sleep(request.warmupMs);
  const waitsBefore = target.waits?.();
  measuring = true;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  await sleep(request.durationMs);
  measuring = false;
  const cpu = process.cpuUsage(cpuBefore);
  const elapsedMs = performance.now() - started;
  const waitsAfter = target.waits?.();
  stop = true;
  await Promise.all(loops);
  const result: LoadResult = { count, errors, elapsedMs, cpuPerRequestUs: count > 0 ? (cpu.user + cpu.system) / count : 0 };
  if (errorSample) result.errorSample = errorSample;
  if (record) {
    latencies.sort((a, b) => a - b);
    result.p50 = percentile(latencies, 0.5);
    result.p99 = percentile(latencies, 0.99);
    result.max = latencies[latencies.length - 1] ?? 0;
    result.slow = request.slowMs === undefined ? 0 : latencies.filter((l) => l >= request.slowMs!).length;
  }
  if (waitsBefore !== undefined && waitsAfter !== undefined) result.waits = waitsAfter - waitsBefore;
  return result;
}

/**
 * S7, S8: `concurrency` callers on a fresh contender, from its first call, for `durationMs`; each caller pauses
 * `pauseMs` after every call (a steady load that leaves the shared machine some CPU). Records, to the millisecond,
 * when calls failed and when they succeeded.
 */
async function outageLoad(target: Contender, request: Extract<WorkerRequest, { type: 'outage' }>): Promise<OutageLoadResult> {
  let stop = false;
  let ok = 0;
  let failed = 0;
  let errorSample: string | undefined;
  const failureTimes: number[] = [];
  const successTimes: number[] = [];
  const failureCounts: number[] = [];
  const errorKinds: Record<string, number> = {};
  const mark = (times: number[], counts?: number[]) => {
    const now = Date.now();
    if (times[times.length - 1] !== now) {
      times.push(now);
      counts?.push(0);
    }
    if (counts) counts[counts.length - 1]!++;
  };
  let running = 0;
  const loop = async () => {
    running++;
    try {
      while (!stop) {
        try {
          await target.get();
          if (stop) break;
          ok++;
          mark(successTimes);
        } catch (error) {
          if (stop) break;
          failed++;
          mark(failureTimes, failureCounts);
          const message = describe(error);
          errorSample ??= message;
          // Durations in a message ("the next trial request goes out in 489 ms") would make each message distinct.
          let kind = message.replace(/\b\d+(?:\.\d+)? ?(ms|s)\b/g, 'N $1');
          if (errorKinds[kind] === undefined && Object.keys(errorKinds).length >= 8) kind = '(other messages)';
          errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
        }
        await sleep(request.pauseMs);
      }
    } finally {
      running--;
    }
  };
  const startedAt = Date.now();
  const loops = Promise.all(Array.from({ length: request.concurrency }, loop));
  await sleep(request.durationMs);
  stop = true;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([loops, new Promise<void>((resolve) => (timer = setTimeout(resolve, 5_000)))]);
  clearTimeout(timer);
  const result: OutageLoadResult = { startedAt, ok, failed, errorKinds, failureTimes, failureCounts, successTimes, stuck: running };
  if (errorSample) result.errorSample = errorSample;
  return result;
}

/** S2: `requests` concurrent calls on a fresh contender. */
async function herd(target: Contender, requests: number): Promise<{ ok: number; failed: number; errorSample?: string; waits?: number }> {
  const outcomes = await Promise.allSettled(Array.from({ length: requests }, () => target.get()));
  const failed = outcomes.filter((o) => o.status === 'rejected') as PromiseRejectedResult[];
  const result: { ok: number; failed: number; errorSample?: string; waits?: number } = { ok: requests - failed.length, failed: failed.length };
  if (failed[0]) result.errorSample = describe(failed[0].reason);
  const waits = target.waits?.();
  if (waits !== undefined) result.waits = waits;
  return result;
}

/** S4: one call while the token endpoint fails, then the next call. */
async function recover(target: Contender): Promise<{ first: string; next: string }> {
  const attempt = async () => {
    try {
      await target.get();
      return 'ok';
    } catch (error) {
      return `failed (${describe(error)})`;
    }
  };
  const first = await attempt();
  const next = await attempt();
  return { first, next };
}

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) throw new Error('the memory scenario needs node --expose-gc');
  for (let i = 0; i < 4; i++) collect();
}

function baseClient(env: BenchEnv, extra: Partial<ClientConfiguration> = {}): Client {
  return new Client({
    baseUrl: env.apiUrl,
    tokenUrl: env.tokenUrl,
    clientCredentialsAuthCredentials: { oAuthClientId: env.clientId, oAuthClientSecret: env.clientSecret },
    ...extra,
  });
}

/** What S5a measures: a Client's fixed heap, and the heap per cached token as a slope. */
export interface KeyedMemoryResult {
  /** The last mark: tokens cached with distinct scope sets. */
  tokens: number;
  cachedTokens: number;
  tokenRequests: number;
  /** Heap after GC at each mark, less the heap before the Client was made. */
  points: { tokens: number; heapUsed: number }[];
  /** Heap after GC at the first and the last mark (absolute). */
  heapBefore: number;
  heapAfter: number;
  /** The slope of heap over tokens between the first and the last mark: what one more cached token costs. */
  bytesPerToken: number;
  /** The heap a new Client holds with its first token and one connection (the code already compiled by a warm-up Client). */
  fixedBytes: number;
  /** What the line through the marks has at 0 tokens beyond `fixedBytes`: the connections opened at `concurrency`, map tables. */
  interceptBytes: number;
  concurrency: number;
  accessTokenChars: number;
  elapsedMs: number;
}

/**
 * S5a: the heap a Client costs. A throwaway Client first runs the same path (so that compiled code, which the
 * process keeps whatever the number of Clients, does not count); then, after forced GCs, a new Client with its first
 * token gives the fixed cost, and tokens with distinct `scopes` (fetched from the token endpoint at `concurrency`, so
 * that the connections are open at every mark) give the heap at each of `marks`. The cost per token is the slope
 * between the first mark and the last, the redactor's share included.
 */
async function keyedMemory(env: BenchEnv, marks: readonly number[], concurrency: number): Promise<KeyedMemoryResult> {
  // Heap after forced GCs, repeated (with a turn of the event loop between) until it settles within 4 KB: what a
  // closed Client's sockets release comes a little later than its close().
  const heap = async (): Promise<number> => {
    let last = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 10; i++) {
      gc();
      await sleep(20);
      const now = process.memoryUsage().heapUsed;
      if (Math.abs(now - last) < 4_096) return now;
      last = now;
    }
    return last;
  };
  const fill = async (client: Client, from: number, to: number, prefix: string): Promise<void> => {
    let next = from;
    const loop = async () => {
      while (next < to) await client.clientCredentialsAuthManager.getToken({ scopes: `${prefix}-${next++}` });
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
  };
  {
    const warm = baseClient(env, { maxCachedTokens: 8_192 });
    await warm.get('/things');
    await fill(warm, 0, Math.min(marks[0]! * 2, 4_000), 'warm-up');
    await warm.close();
    // Its sockets finish closing, and what they hold becomes garbage, before the empty heap is measured.
    await sleep(500);
  }
  let empty = await heap();
  const last = marks[marks.length - 1]!;
  // The fixed cost: the mean over 100 Clients, each with its first token (and so one connection), measured after a
  // first batch of 10 (the heap moves by a few hundred KB on its own while the warm-up's leftovers settle).
  const make = (): Client => baseClient(env, { maxCachedTokens: last * 2 });
  const clients: Client[] = [];
  for (let i = 0; i < 110; i++) {
    const each = make();
    await each.clientCredentialsAuthManager.getToken();
    clients.push(each);
    if (i === 9) empty = await heap();
  }
  const fixedBytes = ((await heap()) - empty) / 100;
  const client = clients[0]!;
  for (const other of clients.slice(1)) await other.close();
  clients.length = 0;
  // The marks are measured over the heap without the 109 other Clients.
  await sleep(500);
  empty = (await heap()) - fixedBytes;
  const started = performance.now();
  const points: { tokens: number; heapUsed: number }[] = [];
  let done = 0;
  for (const mark of marks) {
    await fill(client, done, mark, 'scope');
    done = mark;
    points.push({ tokens: mark, heapUsed: (await heap()) - empty });
  }
  const elapsedMs = performance.now() - started;
  const first = points[0]!;
  const end = points[points.length - 1]!;
  const bytesPerToken = (end.heapUsed - first.heapUsed) / (end.tokens - first.tokens);
  const stats = client.stats();
  const sample = await client.clientCredentialsAuthManager.getToken({ scopes: 'scope-0' });
  await client.close();
  return {
    tokens: last,
    cachedTokens: stats.cachedTokens,
    tokenRequests: stats.tokenRequests,
    points,
    heapBefore: first.heapUsed + empty,
    heapAfter: end.heapUsed + empty,
    bytesPerToken,
    fixedBytes,
    interceptBytes: first.heapUsed - first.tokens * bytesPerToken - fixedBytes,
    concurrency,
    accessTokenChars: sample.accessToken.length,
    elapsedMs,
  };
}

/** S5b: `requests` authenticated GETs at `concurrency`, sampling RSS and the heap after a GC along the way. */
async function soak(env: BenchEnv, requests: number, concurrency: number, samples: number): Promise<{ samples: { requests: number; rss: number; heapUsed: number }[]; errors: number; elapsedMs: number; tokenRequests: number }> {
  const client = baseClient(env);
  await client.get('/things');
  const every = Math.max(1, Math.floor(requests / samples));
  const points: { requests: number; rss: number; heapUsed: number }[] = [];
  let started = 0;
  let done = 0;
  let errors = 0;
  const sample = () => {
    gc();
    const m = process.memoryUsage();
    points.push({ requests: done, rss: m.rss, heapUsed: m.heapUsed });
  };
  sample();
  const loop = async () => {
    while (started < requests) {
      started++;
      try {
        await client.get('/things');
      } catch {
        errors++;
      }
      done++;
      if (done % every === 0) sample();
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsedMs = performance.now() - t0;
  if (points[points.length - 1]!.requests !== done) sample();
  const tokenRequests = client.stats().tokenRequests;
  await client.close();
  return { samples: points, errors, elapsedMs, tokenRequests };
}

async function init(request: Extract<WorkerRequest, { type: 'init' }>): Promise<{ ready: true }> {
  const spec = contender(request.contender);
  let client = request.client;
  if (request.redisUrl) {
    // RedisTokenStore as its README teaches: a connected node-redis client that the application owns.
    const { createClient } = await import('redis');
    const module = '../src/stores/redis.js'; // resolved at run time: another engineer's file, still moving
    const { RedisTokenStore } = (await import(module)) as { RedisTokenStore: new (options: { client: unknown }) => TokenStore & { close?(): Promise<void> } };
    const redis = createClient({ url: request.redisUrl });
    redis.on('error', () => {});
    await redis.connect();
    const store = new RedisTokenStore({ client: redis });
    redisClose = async () => {
      await store.close?.();
      await redis.quit();
    };
    client = { ...client, tokenStore: store };
  }
  current = await spec.create(request.env, client === undefined ? undefined : { client });
  return { ready: true };
}

async function handle(request: WorkerRequest): Promise<unknown> {
  switch (request.type) {
    case 'init':
      return init(request);
    case 'load':
      return load(current!, request);
    case 'outage':
      return outageLoad(current!, request);
    case 'herd':
      return herd(current!, request.requests);
    case 'recover':
      return recover(current!);
    case 'waits':
      return { waits: current?.waits?.() };
    case 'keyedMemory':
      return keyedMemory(request.env, request.marks, request.concurrency);
    case 'soak':
      return soak(request.env, request.requests, request.concurrency, request.samples);
    case 'close':
      await current?.close();
      await redisClose?.();
      current = undefined;
      return { closed: true };
  }
}

process.on('message', (message: WorkerRequest & { id: number }) => {
  const reply = (payload: Record<string, unknown>) => {
    if (process.connected) process.send!({ id: message.id, ...payload });
  };
  handle(message).then(
    (result) => reply({ result }),
    (error: unknown) => reply({ error: `${describe(error)}\n${String((error as Error)?.stack ?? '')}` }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true });
