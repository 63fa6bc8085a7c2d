/**
 * The fleet soak (`npm run soak -- --minutes N`, not part of `npm test`): 8 processes (node-redis and ioredis mixed)
 * share short-lived tokens through a real redis-server while Redis is restarted every 30 s and a random lease holder
 * is SIGKILLed every 20 s (and replaced). Prints failed requests (target 0), token requests per token window (target
 * 1, plus at most 1 per fault injected in that window) and the workers' RSS over time (target: flat).
 *
 * Options: --minutes N (default 10), --processes N (8), --ttl S (token lifetime, 10), --restart S (30), --kill S (20).
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { startFaultProxy } from '../test/helpers/faultProxy.js';
import { startStack } from '../test/helpers/fixtures.js';
import { spawnWorker, stopWorkers, type RunReport, type Worker, type WorkerConfig } from '../test/helpers/fleet.js';
import { startRedis } from '../test/helpers/redis.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    processes: { type: 'string', default: '8' },
    ttl: { type: 'string', default: '10' },
    restart: { type: 'string', default: '30' },
    kill: { type: 'string', default: '20' },
  },
});
const minutes = Number(values.minutes);
const processes = Number(values.processes);
const ttl = Number(values.ttl);
const restartEvery = Number(values.restart) * 1_000;
const killEvery = Number(values.kill) * 1_000;
for (const [name, value] of Object.entries({ minutes, processes, ttl, restartEvery, killEvery })) {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`soak: --${name} must be a positive number`);
}

interface Snapshot extends Omit<RunReport, 'type'> {
  type: 'snapshot';
  rss: number;
  /** Heap used after a forced collection: what a leak would grow. */
  heap: number;
}

const LEASE = 1_500;
const log = (line: string): void => console.log(line);
const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);

const redis = await startRedis();
const stack = await startStack({ ttl });
// Token requests go through a proxy that holds each one back 300 ms, so that a lease is held long enough to be killed.
const proxy = await startFaultProxy(stack.op.issuer);
proxy.inject({ kind: 'delay', ms: 300 }, 1_000_000);
const inspector = createClient({ url: redis.url, socket: { reconnectStrategy: () => 100 } });
inspector.on('error', () => undefined);
await inspector.connect();

const prefix = 'soak:';
let spawned = 0;
const config = (): WorkerConfig => ({
  store: spawned++ % 2 ? 'ioredis' : 'node-redis',
  redisUrl: redis.url,
  prefix,
  tokenUrl: `${proxy.url}/token`,
  apiUrl: stack.api.url,
  leaseTtl: LEASE,
  leaseWait: 10_000,
  storeTimeout: 1_000, // the Client's default tokenStoreTimeout
});

async function startWorker(): Promise<Worker> {
  const worker = await spawnWorker(config());
  const loading = worker.next('loading');
  worker.send({ type: 'load', concurrency: 2, pauseMs: 20 });
  await loading;
  return worker;
}

const fleet: Worker[] = await Promise.all(Array.from({ length: processes }, () => startWorker()));
const t0 = Date.now();
const end = t0 + minutes * 60_000;
const firstRequest = stack.op.tokenRequests.length;
const faults: { at: number; kind: 'restart' | 'kill' }[] = [];
let ok = 0;
let failed = 0;
let storeErrors = 0;
const storeErrorsSeen = new Map<number, number>();
const errors: string[] = [];
const rssRows: { t: number; min: number; median: number; max: number; oldest: number; oldestHeap: number }[] = [];
const oldestPid = fleet[0]!.pid;
const oldestRss: number[] = [];
const oldestHeap: number[] = [];

log(`soak: ${processes} processes (node-redis and ioredis), token lifetime ${ttl} s, lease ${LEASE} ms, token requests delayed 300 ms; Redis restarted every ${restartEvery / 1000} s, a lease holder SIGKILLed every ${killEvery / 1000} s; ${minutes} min`);

async function snapshot(): Promise<void> {
  const alive = fleet.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
  const replies = await Promise.all(
    alive.map((w) => {
      const reply = w.next<Snapshot>('snapshot');
      w.send({ type: 'snapshot' });
      return Promise.race([reply, sleep(5_000).then(() => undefined)]);
    }),
  );
  const rss: number[] = [];
  for (const [i, r] of replies.entries()) {
    if (!r) continue;
    ok += r.ok;
    failed += r.failed;
    // A worker's storeErrors is its Client's running total: count what is new since its last snapshot.
    storeErrors += r.storeErrors - (storeErrorsSeen.get(alive[i]!.pid) ?? 0);
    storeErrorsSeen.set(alive[i]!.pid, r.storeErrors);
    for (const e of r.errors) if (errors.length < 20) errors.push(e);
    rss.push(r.rss);
    if (alive[i]!.pid === oldestPid) {
      oldestRss.push(r.rss);
      oldestHeap.push(r.heap);
    }
  }
  rss.sort((a, b) => a - b);
  if (rss.length) rssRows.push({ t: Math.round((Date.now() - t0) / 1000), min: rss[0]!, median: rss[Math.floor(rss.length / 2)]!, max: rss[rss.length - 1]!, oldest: oldestRss.at(-1) ?? NaN, oldestHeap: oldestHeap.at(-1) ?? NaN });
}

async function killLeaseHolder(): Promise<void> {
  const deadline = Date.now() + ttl * 1_000 * 2;
  while (Date.now() < deadline) {
    const keys = await inspector.keys(`${prefix}*:lease`).catch(() => [] as string[]);
    for (const key of keys) {
      const owner = await inspector.get(key).catch(() => null);
      const pid = Number(owner?.split(':')[1]);
      const index = fleet.findIndex((w) => w.pid === pid);
      if (index < 0) continue;
      const victim = fleet[index]!;
      if (victim.pid === oldestPid) continue; // keep one long-lived process for the RSS trend
      victim.child.kill('SIGKILL');
      faults.push({ at: Date.now(), kind: 'kill' });
      fleet[index] = await startWorker();
      return;
    }
    await sleep(10);
  }
}

let nextRestart = t0 + restartEvery;
let nextKill = t0 + killEvery;
let nextSnapshot = t0 + 10_000;
let nextLine = t0 + 60_000;
let lastLineRequests = firstRequest;
while (Date.now() < end) {
  const now = Date.now();
  if (now >= nextRestart) {
    nextRestart += restartEvery;
    await redis.stop();
    faults.push({ at: Date.now(), kind: 'restart' });
    await redis.start();
  }
  if (now >= nextKill) {
    nextKill += killEvery;
    await killLeaseHolder();
  }
  if (now >= nextSnapshot) {
    nextSnapshot += 10_000;
    await snapshot();
  }
  if (now >= nextLine) {
    nextLine += 60_000;
    const row = rssRows.at(-1);
    const tokenRequests = stack.op.tokenRequests.length - lastLineRequests;
    lastLineRequests = stack.op.tokenRequests.length;
    log(`t=${Math.round((now - t0) / 1000)}s requests ok ${ok}, failed ${failed}; store errors ${storeErrors}; token requests this minute ${tokenRequests}; RSS MB min/median/max ${row ? `${mb(row.min)}/${mb(row.median)}/${mb(row.max)}` : '-'}, longest-lived worker ${row ? `${mb(row.oldest)} (heap after GC ${mb(row.oldestHeap)})` : '-'}`);
  }
  await sleep(50);
}

await snapshot();
const stopped = fleet.map((w) => w.next<RunReport>('report').catch(() => undefined));
for (const w of fleet) if (w.child.connected) w.send({ type: 'stopLoad' });
for (const r of await Promise.all(stopped)) {
  if (!r) continue;
  ok += r.ok;
  failed += r.failed;
  for (const e of r.errors) if (errors.length < 20) errors.push(e);
}
const elapsed = Date.now() - t0;

// Token requests per window. A window is one token generation: the requests of one refresh (or one cold fetch).
// Generations are half a usable lifetime apart (the stale point), so, as in the bench's S6, a gap longer than a
// quarter of the lifetime between two token requests starts a new window. Each window is judged against the faults
// injected since the window before it began (a fault's effect lands in the next refresh).
const times = stack.op.tokenRequests.slice(firstRequest).map((r) => r.at).sort((a, b) => a - b);
const groups: { start: number; count: number; times: number[] }[] = [];
for (const at of times) {
  const last = groups.at(-1);
  if (last && at - last.times.at(-1)! <= (ttl * 1_000) / 4) {
    last.count++;
    last.times.push(at);
  } else groups.push({ start: at, count: 1, times: [at] });
}
const gaps = groups.slice(1).map((g, i) => g.start - groups[i]!.start).sort((a, b) => a - b);
const faultsFor = groups.map((g, i) => {
  const from = i > 0 ? groups[i - 1]!.start : t0;
  const to = g.start + (ttl * 1_000) / 2;
  return faults.filter((f) => f.at >= from && f.at < to).length;
});
const windows = groups.length;
const perWindow = groups.map((g) => g.count);
const histogram = new Map<number, number>();
for (const n of perWindow) histogram.set(n, (histogram.get(n) ?? 0) + 1);
const quiet = perWindow.filter((_, i) => faultsFor[i] === 0);
const over = perWindow.filter((n, i) => n > 1 + faultsFor[i]!).length;
const restarts = faults.filter((f) => f.kind === 'restart').length;
const kills = faults.filter((f) => f.kind === 'kill').length;

log('');
log(`summary after ${(elapsed / 60_000).toFixed(1)} min:`);
log(`  requests: ${ok} ok, ${failed} failed${errors.length ? ` (${errors.slice(0, 5).join('; ')})` : ''}`);
log(`  faults: ${restarts} Redis restarts, ${kills} lease holders SIGKILLed`);
log(`  token requests: ${times.length} in ${windows} windows (token generations); per window ${[...histogram.entries()].sort((a, b) => a[0] - b[0]).map(([n, c]) => `${n}: ${c}x`).join(', ')}`);
log(`  time between windows: min ${((gaps[0] ?? 0) / 1000).toFixed(2)} s, median ${((gaps[Math.floor(gaps.length / 2)] ?? 0) / 1000).toFixed(2)} s, max ${((gaps.at(-1) ?? 0) / 1000).toFixed(2)} s`);
log(`  windows without a fault: ${quiet.length}, max ${Math.max(0, ...quiet)} token request(s) in one; windows over 1 + their faults: ${over}`);
for (const [i, g] of groups.entries()) {
  if (g.count <= 1 + faultsFor[i]!) continue;
  const near = faults.filter((f) => Math.abs(f.at - g.start) < 3_000).map((f) => `${f.kind} ${((f.at - g.start) / 1000).toFixed(1)} s`);
  log(`    window at t=${((g.start - t0) / 1000).toFixed(1)} s: ${g.count} token requests (at +${g.times.map((t) => ((t - g.start) / 1000).toFixed(2)).join(', +')} s); faults within 3 s: ${near.join(', ') || 'none'}`);
}
log(`  store errors reported by the workers: ${storeErrors}`);
log(`  RSS (MB) every 10 s, t / min / median / max / longest-lived worker / its heap after GC:`);
for (const row of rssRows) log(`    ${String(row.t).padStart(4)} s  ${mb(row.min).padStart(6)} ${mb(row.median).padStart(6)} ${mb(row.max).padStart(6)} ${mb(row.oldest).padStart(6)} ${mb(row.oldestHeap).padStart(6)}`);

await stopWorkers(fleet);
inspector.destroy();
await proxy.close();
await stack.close();
await redis.close();
process.exit(failed === 0 && over === 0 ? 0 : 1);
