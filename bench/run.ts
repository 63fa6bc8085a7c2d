/**
 * `npm run bench`: measures oauth-client-credentials against the bare HTTP request (raw `undici.request`, raw `fetch`) and
 * against the peers, in one run, and writes bench/results/<date>.json, bench/results/latest.json, docs/bench.md and
 * docs/bench.svg.
 *
 * The token endpoint and the protected API run in their own child processes (bench/servers.ts), on loopback, with
 * keep-alive; every client under test runs in its own child process too (bench/worker.ts). The machine is shared and
 * noisy, so S1 is measured in rounds that alternate the contenders, and reports the median of each with its ratio to
 * raw undici from the same run.
 *
 * Flags:
 *   --quick             every scenario, briefly; asserts that each ran and that our Client's correctness counts hold
 *                       (no speed is asserted). Results go to the OS temp directory, not bench/results.
 *   --only S1,S3        run only these scenarios (results are not written to bench/results).
 *   --only S9           the broker scenario (bench/broker.ts): `oauth-client-credentials serve` vs direct, nginx, fastify, undici.
 *                       With `--rounds N`: N rounds instead of 15, and bench/results/broker.json and docs/bench.md are
 *                       left as they are (a look at the spread, not a result to publish).
 *   --merge             with --only: put these scenarios' results into bench/results/latest.json in place of theirs,
 *                       keep the other scenarios' figures, and regenerate docs/bench.md and docs/bench.svg.
 *   --contenders a,b    run only these contenders in S1, S2, S3, S4, S7 and S8 (`--quick` runs only ours in S7 and S8); with
 *                       --merge, only these contenders' rows of each scenario are replaced (the others keep theirs).
 *   --runs N            runs of S7 and S8 (default: 5 and 1; `--quick`: 1 and 1).
 *   --rounds N, --pair-rounds N, --pair-cycles N, --window MS
 *                       S1: rounds of the main table, rounds of the adapter pairs, cycles of slices per pair round,
 *                       and the main table's window.
 *   --report            regenerate docs/bench.md and docs/bench.svg from bench/results/latest.json, run nothing.
 *   --profile           run our Client on the S1 load at concurrency 64 under `--cpu-prof`; writes .cpuprofile files
 *                       to the OS temp directory (`--contender=undici`, `--concurrency=1` to change either).
 */
import { keepBrokerSection, runBrokerBench } from './broker.js';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { Child } from './child.js';
import { pin, pinPlan } from './pin.js';
import { hangScenario, hangTargets } from './outageHang.js';
import { ADAPTER_PAIRS, CONTENDERS, TOKEN_CONTENDERS, contender, type BenchEnv, type ContenderName } from './impls.js';
import { renderMarkdown, renderSvg, type BenchResults, type S1Pair, type S1PairCell, type TargetResult } from './report.js';
import { BENCH_CLIENT, type ServerStats, type TokenServerConfig } from './servers.js';
import { median, quartiles, round } from './stats.js';
import type { LoadResult, OutageLoadResult } from './worker.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');

/** The scenario sizes of a full run and of `--quick`. */
function flag(name: string): string | undefined {
  const arg = args.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (!arg) return undefined;
  return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : args[args.indexOf(arg) + 1];
}

const PLAN = quick
  ? { s1: { rounds: 1, warmupMs: 30, windowMs: 150, firstWarmupMs: 100, pairRounds: 1, pairCycles: 1, pairWindowMs: 100, pairWarmupMs: 20, pairFirstWarmupMs: 100 }, s2: { requests: 500, latency: 50 }, s3: { ttl: 2, latency: 100, concurrency: 16, durationMs: 800 }, s5: { marks: [1_000, 3_000], requests: 20_000, samples: 5 }, s6: { processes: 8, ttl: 2, durationMs: 2_000, concurrency: 2 }, s7: { runs: 1 }, s8: { runs: 1 } }
  : { s1: { rounds: 10, warmupMs: 100, windowMs: 300, firstWarmupMs: 600, pairRounds: 12, pairCycles: 8, pairWindowMs: 100, pairWarmupMs: 20, pairFirstWarmupMs: 5_000 }, s2: { requests: 1000, latency: 50 }, s3: { ttl: 2, latency: 100, concurrency: 16, durationMs: 10_000 }, s5: { marks: [1_000, 10_000, 100_000], requests: 1_000_000, samples: 20 }, s6: { processes: 8, ttl: 3, durationMs: 10_000, concurrency: 4 }, s7: { runs: 5 }, s8: { runs: 1 } };

const onlyArg = flag('only');
const only = onlyArg ? new Set(onlyArg.split(',').map((s) => s.trim().toUpperCase())) : undefined;
/** `--only … --merge`: write these scenarios' results into bench/results/latest.json and regenerate the docs. */
const merge = args.includes('--merge') && only !== undefined && !quick;
const s1Contenders = flag('contenders')?.split(',') ?? CONTENDERS.map((s) => s.name);
/** S2, S3: ours and every peer, or those `--contenders` names. */
const tokenContenders = TOKEN_CONTENDERS.filter((s) => !flag('contenders') || s1Contenders.includes(s.name));
/** S7, S8: ours and every peer; `--quick` runs ours only (the peers' outage runs take 20 s each), `--contenders` picks. */
const outageContenders = TOKEN_CONTENDERS.filter((s) => (flag('contenders') ? s1Contenders.includes(s.name) : !quick || s.name === 'ours'));
if (flag('runs')) PLAN.s7.runs = PLAN.s8.runs = Number(flag('runs'));
if (flag('rounds')) PLAN.s1.rounds = Number(flag('rounds'));
if (flag('pair-rounds')) PLAN.s1.pairRounds = Number(flag('pair-rounds'));
if (flag('pair-cycles')) PLAN.s1.pairCycles = Number(flag('pair-cycles'));
if (flag('window')) PLAN.s1.windowMs = Number(flag('window'));
if (flag('pair-warmup')) PLAN.s1.pairFirstWarmupMs = Number(flag('pair-warmup'));

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function wanted(id: string): boolean {
  return !only || only.has(id);
}

interface Servers {
  token: Child;
  /** A second token endpoint for S3's steady-state companion (long TTL), so that its counts stay apart. */
  steadyToken: Child;
  api: Child;
  env: BenchEnv;
  steadyEnv: BenchEnv;
}

async function tokenServer(servers: Servers, message: { type: 'config'; config: Partial<TokenServerConfig> } | { type: 'reset' } | { type: 'stats' }): Promise<ServerStats> {
  const reply = await servers.token.call<{ stats: ServerStats }>(message);
  return reply.stats;
}

async function startServers(): Promise<Servers> {
  const token = new Child('./servers.js', ['token']);
  const steadyToken = new Child('./servers.js', ['token']);
  const api = new Child('./servers.js', ['api']);
  const [t, a, st] = await Promise.all([token.ready, api.ready, steadyToken.ready]);
  const tokenUrl = `${t.url as string}/token`;
  const apiUrl = a.url as string;
  // The baselines carry one fixed, long-lived token, fetched once here.
  await token.call({ type: 'config', config: { ttl: 7 * 24 * 3600, latency: 0, failNext: 0 } });
  const basic = Buffer.from(`${BENCH_CLIENT.id}:${BENCH_CLIENT.secret}`).toString('base64');
  const res = await request(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` }, body: 'grant_type=client_credentials' });
  const { access_token: fixedToken } = (await res.body.json()) as { access_token: string };
  await token.call({ type: 'config', config: { ttl: 3600 } });
  const env = { apiUrl, tokenUrl, clientId: BENCH_CLIENT.id, clientSecret: BENCH_CLIENT.secret, fixedToken };
  return { token, steadyToken, api, env, steadyEnv: { ...env, tokenUrl: `${st.url as string}/token` } };
}

async function startWorker(execArgv: string[] = []): Promise<Child> {
  const worker = new Child('./worker.js', [], execArgv);
  await worker.ready;
  return worker;
}

async function withWorker<T>(fn: (worker: Child) => Promise<T>, execArgv: string[] = []): Promise<T> {
  const worker = await startWorker(execArgv);
  try {
    return await fn(worker);
  } finally {
    await worker.call({ type: 'close' }).catch(() => {});
    await worker.stop();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// S1: hot path

function emptyPairCell(): S1PairCell {
  return { ratio: Number.NaN, ratios: [], cpuRatio: Number.NaN, cpuRatios: [], peerRatios: [] };
}

async function s1(servers: Servers): Promise<NonNullable<BenchResults['s1']>> {
  const plan = PLAN.s1;
  const specs = CONTENDERS.filter((s) => s1Contenders.includes(s.name));
  log(`S1 hot path: ${specs.length} contenders × c=1,64 × ${plan.rounds} rounds of ${plan.windowMs} ms`);
  await tokenServer(servers, { type: 'config', config: { ttl: 3600, latency: 0, failNext: 0 } });
  const workers = new Map<ContenderName, Child>();
  for (const spec of specs) {
    const worker = await startWorker();
    await worker.call({ type: 'init', env: servers.env, contender: spec.name });
    workers.set(spec.name, worker);
  }
  // The clients on one CPU, the API server on another (bench/pin.ts): S1 measures the clients' own cost.
  const pins = pinPlan();
  const pinned = pins !== undefined && pin(servers.api.pid, pins.server) && [...workers.values()].every((w) => pin(w.pid, pins.client));
  log(pinned ? `  pinned: clients on CPU ${pins!.client}, API server on CPU ${pins!.server}` : '  not pinned (no taskset, one CPU, or BENCH_PIN=0)');
  const concurrencies = [1, 64] as const;
  const samples: Record<string, Record<string, number[]>> = { c1: {}, c64: {} };
  const cpu: Record<string, Record<string, number[]>> = { c1: {}, c64: {} };
  const errors: Record<string, number> = {};
  const pairs: S1Pair[] = [];
  try {
    for (const spec of specs) {
      // JIT warm-up, connections and the first token, outside the measured rounds.
      await workers.get(spec.name)!.call({ type: 'load', concurrency: 64, warmupMs: 0, durationMs: plan.firstWarmupMs });
    }
    for (let roundNo = 0; roundNo < plan.rounds; roundNo++) {
      const order = specs.map((_, i) => specs[(i + roundNo) % specs.length]!);
      for (const c of concurrencies) {
        for (const spec of order) {
          const result = await workers.get(spec.name)!.call<LoadResult>({ type: 'load', concurrency: c, warmupMs: plan.warmupMs, durationMs: plan.windowMs });
          (samples[`c${c}`]![spec.name] ??= []).push((result.count / result.elapsedMs) * 1000);
          (cpu[`c${c}`]![spec.name] ??= []).push(result.cpuPerRequestUs);
          if (result.errors > 0) {
            errors[spec.name] = (errors[spec.name] ?? 0) + result.errors;
            log(`  ${spec.name} c=${c}: ${result.errors} errors (${result.errorSample})`);
          }
        }
      }
      log(`  round ${roundNo + 1}/${plan.rounds}: ` + specs.map((s) => `${s.name} ${Math.round(samples.c64![s.name]!.at(-1)!)}`).join(', ') + ' req/s at c=64');
    }
    // The adapter targets: each of ours, and its peer, against its bare client. A round is `pairCycles` cycles of
    // short slices (bare, ours, peer), the order rotating every cycle so that each runs as often in each place; the
    // round's ratio is ours' requests per second over all its slices against the bare client's over all of its. A
    // machine that slows down for a moment moves every contender of the cycle alike, and a long round averages the
    // moments out; the figures are the median and quartiles of the per-round ratios.
    // Each round runs in fresh worker processes (started, pinned and warmed up for it): one process of a contender
    // can stay faster or slower than another of the same code for its whole life (where V8 happened to inline and
    // optimise), by up to 20 % here, so a ratio from one long-lived process per contender can be off by that much in a
    // way no number of rounds shows. Fresh processes make that part of the spread between rounds.
    // Each is warmed up for `pairFirstWarmupMs` at c=64 first: V8 goes on compiling a hot path for seconds, and the
    // contender with more code on it pays for that longer (with 1 s the axios adapter measured 0.89 of axios at c=1 with
    // 18 % more CPU per request; with 8 s, 0.99 with the same CPU). The targets are about the steady state.
    const freshWorker = async (name: ContenderName): Promise<Child> => {
      const worker = await startWorker();
      await worker.call({ type: 'init', env: servers.env, contender: name });
      if (pinned) pin(worker.pid, pins!.client);
      await worker.call({ type: 'load', concurrency: 64, warmupMs: 0, durationMs: plan.pairFirstWarmupMs });
      return worker;
    };
    const retire = async (worker: Child): Promise<void> => {
      await worker.call({ type: 'close' }).catch(() => {});
      await worker.stop();
    };
    for (const pair of ADAPTER_PAIRS) {
      if (!workers.has(pair.ours) || !workers.has(pair.bare)) continue;
      const peer = pair.peer && workers.has(pair.peer) ? pair.peer : undefined;
      const row: S1Pair = { ours: pair.ours, bare: pair.bare, ...(peer ? { peer } : {}), c1: emptyPairCell(), c64: emptyPairCell() };
      const raw = { c1: { ours: [] as number[], bare: [] as number[], cpuOurs: [] as number[], cpuBare: [] as number[], cpuPeer: [] as number[] }, c64: { ours: [] as number[], bare: [] as number[], cpuOurs: [] as number[], cpuBare: [] as number[], cpuPeer: [] as number[] } };
      const lineup: ContenderName[] = peer ? [pair.bare, pair.ours, peer] : [pair.bare, pair.ours];
      for (let roundNo = 0; roundNo < plan.pairRounds; roundNo++) {
        const roundWorkers = new Map<ContenderName, Child>();
        for (const name of lineup) roundWorkers.set(name, await freshWorker(name));
        try {
          for (const c of concurrencies) {
            const totals = new Map<ContenderName, { count: number; ms: number; cpuUs: number }>(lineup.map((name) => [name, { count: 0, ms: 0, cpuUs: 0 }]));
            for (let cycle = 0; cycle < plan.pairCycles; cycle++) {
              for (let i = 0; i < lineup.length; i++) {
                const name = lineup[(i + cycle + roundNo) % lineup.length]!;
                const result = await roundWorkers.get(name)!.call<LoadResult>({ type: 'load', concurrency: c, warmupMs: plan.pairWarmupMs, durationMs: plan.pairWindowMs });
                if (result.errors > 0) errors[name] = (errors[name] ?? 0) + result.errors;
                const total = totals.get(name)!;
                total.count += result.count;
                total.ms += result.elapsedMs;
                total.cpuUs += result.cpuPerRequestUs * result.count;
              }
            }
            const rate = (name: ContenderName): { rps: number; cpuUs: number } => {
              const total = totals.get(name)!;
              return { rps: (total.count / total.ms) * 1000, cpuUs: total.count > 0 ? total.cpuUs / total.count : Number.NaN };
            };
            const bare = rate(pair.bare);
            const relative: Record<string, { rps: number; cpu: number }> = {};
            for (const name of lineup.slice(1)) {
              const measured = rate(name);
              relative[name] = { rps: measured.rps / bare.rps, cpu: bare.cpuUs / measured.cpuUs };
              if (name === pair.ours) {
                raw[`c${c}`].ours.push(measured.rps);
                raw[`c${c}`].bare.push(bare.rps);
                raw[`c${c}`].cpuOurs.push(measured.cpuUs);
                raw[`c${c}`].cpuBare.push(bare.cpuUs);
              } else raw[`c${c}`].cpuPeer.push(measured.cpuUs);
            }
            const cell = row[`c${c}`];
            cell.ratios.push(round(relative[pair.ours]!.rps, 3));
            cell.cpuRatios!.push(round(relative[pair.ours]!.cpu, 3));
            if (peer) cell.peerRatios!.push(round(relative[pair.ours]!.rps / relative[peer]!.rps, 3));
          }
        } finally {
          await Promise.all([...roundWorkers.values()].map(retire));
        }
      }
      for (const c of concurrencies) {
        const cell = row[`c${c}`];
        const r = quartiles(cell.ratios);
        const cpuQ = quartiles(cell.cpuRatios!);
        Object.assign(cell, {
          ratio: round(r.median, 3), ratioQ1: round(r.q1, 3), ratioQ3: round(r.q3, 3),
          cpuRatio: round(cpuQ.median, 3), cpuRatioQ1: round(cpuQ.q1, 3), cpuRatioQ3: round(cpuQ.q3, 3),
          cpuUsOurs: round(median(raw[`c${c}`].cpuOurs), 1), cpuUsBare: round(median(raw[`c${c}`].cpuBare), 1),
          rpsOurs: round(median(raw[`c${c}`].ours), 0), rpsBare: round(median(raw[`c${c}`].bare), 0),
          target: (pair.targets ?? ['c1', 'c64']).includes(`c${c}`),
        });
        if (peer) {
          const p = quartiles(cell.peerRatios!);
          Object.assign(cell, { cpuUsPeer: round(median(raw[`c${c}`].cpuPeer), 1), peerRatio: round(p.median, 3), peerRatioQ1: round(p.q1, 3), peerRatioQ3: round(p.q3, 3) });
        } else delete cell.peerRatios;
      }
      pairs.push(row);
      const fmt = (cell: S1PairCell): string => `${cell.ratio} [${cell.ratioQ1}–${cell.ratioQ3}] (CPU ${cell.cpuUsOurs} vs ${cell.cpuUsBare} µs/req)${peer ? `, vs ${peer} ${cell.peerRatio} [${cell.peerRatioQ1}–${cell.peerRatioQ3}] (its CPU ${cell.cpuUsPeer} µs/req)` : ''}`;
      log(`  pair ${pair.ours}/${pair.bare}: c=1 ${fmt(row.c1)}; c=64 ${fmt(row.c64)}`);
    }
  } finally {
    if (pinned) pin(servers.api.pid, undefined);
    await Promise.all([...workers.values()].map(async (w) => {
      await w.call({ type: 'close' }).catch(() => {});
      await w.stop();
    }));
  }
  const table: NonNullable<BenchResults['s1']>['results'] = {};
  for (const c of concurrencies) {
    const baseline = samples[`c${c}`]!['undici'];
    const base = baseline ? median(baseline) : Number.NaN;
    for (const spec of specs) {
      const rps = samples[`c${c}`]![spec.name]!;
      const m = median(rps);
      const roundRatios = baseline ? rps.map((v, i) => v / baseline[i]!) : [];
      (table[spec.name] ??= {} as NonNullable<BenchResults['s1']>['results'][string])[`c${c}`] = {
        rps: rps.map((v) => round(v, 0)),
        median: round(m, 0),
        ratio: round(m / base, 3),
        medianRoundRatio: round(median(roundRatios), 3),
        cpuPerRequestUs: round(median(cpu[`c${c}`]![spec.name]!), 1),
      };
    }
  }
  for (const spec of specs) table[spec.name]!.errors = errors[spec.name] ?? 0;
  return { rounds: plan.rounds, windowMs: plan.windowMs, warmupMs: plan.warmupMs, results: table, pairRounds: plan.pairRounds, pairCycles: plan.pairCycles, pairWindowMs: plan.pairWindowMs, pairFreshWorkers: true, pairFirstWarmupMs: plan.pairFirstWarmupMs, pinned, pairs };
}

// ---------------------------------------------------------------------------------------------------------------
// S2: cold herd

async function s2(servers: Servers): Promise<NonNullable<BenchResults['s2']>> {
  const plan = PLAN.s2;
  log(`S2 cold herd: ${plan.requests} concurrent requests on a fresh client, token endpoint latency ${plan.latency} ms`);
  const rows: NonNullable<BenchResults['s2']>['results'] = [];
  // Hour-long tokens here: a contender's longer-token variant would be the same run again.
  for (const spec of tokenContenders.filter((s) => !s.tokenTtlExtraSeconds)) {
    const row = await withWorker(async (worker) => {
      await tokenServer(servers, { type: 'config', config: { ttl: 3600, latency: plan.latency, failNext: 0 } });
      await tokenServer(servers, { type: 'reset' });
      await worker.call({ type: 'init', env: servers.env, contender: spec.name });
      const started = performance.now();
      const result = await worker.call<{ ok: number; failed: number; errorSample?: string }>({ type: 'herd', requests: plan.requests });
      const elapsedMs = performance.now() - started;
      const stats = await tokenServer(servers, { type: 'stats' });
      return { name: spec.name, tokenRequests: stats.requests, ok: result.ok, failed: result.failed, elapsedMs: round(elapsedMs, 0), ...(result.errorSample ? { errorSample: result.errorSample } : {}) };
    });
    log(`  ${spec.name}: ${row.tokenRequests} token requests, ${row.ok}/${plan.requests} ok`);
    rows.push(row);
  }
  return { requests: plan.requests, tokenLatencyMs: plan.latency, results: rows };
}

// ---------------------------------------------------------------------------------------------------------------
// S3: rollover

type S3Row = NonNullable<BenchResults['s3']>['results'][number];

function s3Row(name: ContenderName, ttl: number, r: LoadResult, tokenRequests: number): S3Row {
  const row: S3Row = {
    name,
    ttl,
    requests: r.count,
    failures: r.errors,
    p50: round(r.p50 ?? 0, 2),
    p99: round(r.p99 ?? 0, 2),
    max: round(r.max ?? 0, 1),
    slowRequests: r.slow ?? 0,
    tokenRequests,
  };
  if (r.waits !== undefined) row.waits = r.waits;
  if (r.errorSample) row.errorSample = r.errorSample;
  return row;
}

/**
 * One S3 run: `name` on the short TTL, and at the same moment, in another process, our Client on a long TTL (the
 * steady-state companion) under the same load. Measured side by side, both see the same noise of a shared machine,
 * so the ratio of their p99s is the effect of the rollover alone.
 */
async function s3Run(servers: Servers, name: ContenderName): Promise<S3Row> {
  const plan = PLAN.s3;
  return withWorker((worker) => withWorker(async (companion) => {
    await tokenServer(servers, { type: 'config', config: { ttl: plan.ttl + (contender(name).tokenTtlExtraSeconds ?? 0), latency: plan.latency, failNext: 0 } });
    await servers.steadyToken.call({ type: 'config', config: { ttl: 3600, latency: plan.latency, failNext: 0 } });
    await worker.call({ type: 'init', env: servers.env, contender: name });
    await companion.call({ type: 'init', env: servers.steadyEnv, contender: 'ours' });
    // The first token of each, outside the measured window.
    await Promise.all([worker, companion].map((w) => w.call({ type: 'load', concurrency: 1, warmupMs: 0, durationMs: 50 })));
    await tokenServer(servers, { type: 'reset' });
    await servers.steadyToken.call({ type: 'reset' });
    const load = { type: 'load', concurrency: plan.concurrency, warmupMs: 0, durationMs: plan.durationMs, latency: true, slowMs: plan.latency };
    const [r, c] = await Promise.all([worker.call<LoadResult>(load), companion.call<LoadResult>(load)]);
    const stats = await tokenServer(servers, { type: 'stats' });
    const steadyStats = (await servers.steadyToken.call<{ stats: ServerStats }>({ type: 'stats' })).stats;
    return { ...s3Row(name, plan.ttl + (contender(name).tokenTtlExtraSeconds ?? 0), r, stats.requests), steady: s3Row('ours', 3600, c, steadyStats.requests) };
  }));
}

async function s3(servers: Servers): Promise<NonNullable<BenchResults['s3']>> {
  const plan = PLAN.s3;
  log(`S3 rollover: TTL ${plan.ttl} s, token latency ${plan.latency} ms, concurrency ${plan.concurrency} for ${plan.durationMs / 1000} s, each beside a steady-state companion`);
  const rows: S3Row[] = [];
  for (const spec of tokenContenders) {
    const row = await s3Run(servers, spec.name);
    log(`  ${spec.name}: p50 ${row.p50} ms, p99 ${row.p99} ms (steady companion p99 ${row.steady!.p99} ms), ${row.slowRequests} requests ≥ ${plan.latency} ms${row.waits !== undefined ? `, ${row.waits} waits` : ''}, ${row.failures} failures, ${row.tokenRequests} token requests`);
    rows.push(row);
  }
  return { ttl: plan.ttl, tokenLatencyMs: plan.latency, concurrency: plan.concurrency, durationMs: plan.durationMs, results: rows };
}

// ---------------------------------------------------------------------------------------------------------------
// S4: recovery

async function s4(servers: Servers): Promise<NonNullable<BenchResults['s4']>> {
  log('S4 recovery: the token endpoint fails its first call (503 temporarily_unavailable)');
  type Run = { name: ContenderName; label?: string; client?: Record<string, unknown> };
  const runs = ([
    { name: 'ours' },
    { name: 'ours', label: 'ours, retry: false', client: { retry: false } },
    ...TOKEN_CONTENDERS.filter((s) => s.kind === 'peer' && !s.tokenTtlExtraSeconds).map((s) => ({ name: s.name })),
  ] satisfies Run[] as Run[]).filter((run) => !flag('contenders') || s1Contenders.includes(run.name));
  const rows: NonNullable<BenchResults['s4']>['results'] = [];
  for (const run of runs) {
    const row = await withWorker(async (worker) => {
      await tokenServer(servers, { type: 'config', config: { ttl: 3600, latency: 0, failNext: 1 } });
      await tokenServer(servers, { type: 'reset' });
      await worker.call({ type: 'init', env: servers.env, contender: run.name, ...(run.client ? { client: run.client } : {}) });
      const result = await worker.call<{ first: string; next: string }>({ type: 'recover' });
      const stats = await tokenServer(servers, { type: 'stats' });
      return { name: run.name, variant: run.label ?? contender(run.name).label, first: result.first, next: result.next, recovered: result.next === 'ok', tokenRequests: stats.requests };
    });
    log(`  ${row.variant}: first ${row.first}; next ${row.next}`);
    rows.push(row);
  }
  await tokenServer(servers, { type: 'config', config: { failNext: 0 } });
  return { results: rows };
}

// ---------------------------------------------------------------------------------------------------------------
// S5: memory

async function s5(servers: Servers): Promise<NonNullable<BenchResults['s5']>> {
  const plan = PLAN.s5;
  log(`S5 memory: a Client's fixed heap, and heap per cached token between ${plan.marks[0]} and ${plan.marks.at(-1)} tokens; RSS over ${plan.requests} requests`);
  await tokenServer(servers, { type: 'config', config: { ttl: 3600, latency: 0, failNext: 0 } });
  // Without bytecode flushing: V8 drops the bytecode of idle functions after a few GCs, which would shrink the heap
  // between the forced collections of one measurement and the next.
  const keyed = await withWorker((worker) => worker.call<NonNullable<BenchResults['s5']>['keyed']>({ type: 'keyedMemory', env: servers.env, marks: plan.marks, concurrency: 64 }), ['--expose-gc', '--no-flush-bytecode']);
  log(`  a Client with its first token: ${round((keyed.fixedBytes ?? 0) / 1024, 0)} KB; ${keyed.cachedTokens} cached tokens: ${round(keyed.bytesPerToken, 0)} bytes of heap each (slope ${plan.marks[0]}→${plan.marks.at(-1)}; access tokens are ${keyed.accessTokenChars} characters); ${round((keyed.interceptBytes ?? 0) / 1024, 0)} KB more at ${keyed.concurrency} connections (${round(keyed.elapsedMs / 1000, 1)} s)`);
  const soak = await withWorker((worker) => worker.call<NonNullable<BenchResults['s5']>['soak']>({ type: 'soak', env: servers.env, requests: plan.requests, concurrency: 64, samples: plan.samples }), ['--expose-gc']);
  const from = soak.samples[Math.min(1, soak.samples.length - 1)]!;
  const to = soak.samples[soak.samples.length - 1]!;
  soak.heapGrowth = to.heapUsed - from.heapUsed;
  soak.rssGrowth = to.rss - from.rss;
  log(`  ${to.requests} requests: heap ${mb(from.heapUsed)} → ${mb(to.heapUsed)} MB, RSS ${mb(from.rss)} → ${mb(to.rss)} MB, ${soak.errors} errors`);
  return { keyed, soak };
}

function mb(bytes: number): number {
  return round(bytes / 1024 / 1024, 1);
}

// ---------------------------------------------------------------------------------------------------------------
// S6: fleet

/** Groups token request times into expiry windows: a gap longer than a quarter of the TTL starts a new window. */
function windows(times: number[], ttlSeconds: number): number[] {
  const sorted = [...times].sort((a, b) => a - b);
  const groups: number[] = [];
  let last = -Infinity;
  for (const t of sorted) {
    if (t - last > (ttlSeconds * 1000) / 4) groups.push(0);
    groups[groups.length - 1]!++;
    last = t;
  }
  return groups;
}

async function fleet(servers: Servers, redisUrl: string | undefined): Promise<NonNullable<BenchResults['s6']>['results'][number]> {
  const plan = PLAN.s6;
  const workers = await Promise.all(Array.from({ length: plan.processes }, () => startWorker()));
  try {
    await tokenServer(servers, { type: 'config', config: { ttl: plan.ttl, latency: 100, failNext: 0 } });
    await Promise.all(workers.map((w) => w.call({ type: 'init', env: servers.env, contender: 'ours', ...(redisUrl ? { redisUrl } : {}) })));
    await tokenServer(servers, { type: 'reset' });
    const results = await Promise.all(workers.map((w) => w.call<LoadResult>({ type: 'load', concurrency: plan.concurrency, warmupMs: 0, durationMs: plan.durationMs })));
    const stats = await tokenServer(servers, { type: 'stats' });
    const groups = windows(stats.times, plan.ttl);
    return {
      store: redisUrl ? 'redis' : 'none (in-process cache only)',
      processes: plan.processes,
      requests: results.reduce((n, r) => n + r.count, 0),
      failures: results.reduce((n, r) => n + r.errors, 0),
      tokenRequests: stats.requests,
      windows: groups.length,
      perWindow: round(stats.requests / Math.max(groups.length, 1), 2),
      maxInWindow: Math.max(0, ...groups),
      ...(results.find((r) => r.errorSample) ? { errorSample: results.find((r) => r.errorSample)!.errorSample! } : {}),
    };
  } finally {
    await Promise.all(workers.map(async (w) => {
      await w.call({ type: 'close' }).catch(() => {});
      await w.stop();
    }));
  }
}

async function s6(servers: Servers): Promise<NonNullable<BenchResults['s6']>> {
  const plan = PLAN.s6;
  log(`S6 fleet: ${plan.processes} processes, TTL ${plan.ttl} s, token latency 100 ms, ${plan.durationMs / 1000} s`);
  if (!existsSync(join(ROOT, 'dist/src/stores/redis.js'))) {
    log('  skipped: src/stores/redis.ts (RedisTokenStore) does not exist yet');
    return { ttl: plan.ttl, durationMs: plan.durationMs, skipped: 'RedisTokenStore (src/stores/redis.ts) was not available when this ran', results: [] };
  }
  const { startRedis } = await import('../test/helpers/redis.js');
  const redis = await startRedis();
  try {
    // The fleet without a store is the contrast for the report; --quick checks only that the Redis fleet works.
    const rows = quick ? [await fleet(servers, redis.url)] : [await fleet(servers, redis.url), await fleet(servers, undefined)];
    for (const row of rows) log(`  store ${row.store}: ${row.tokenRequests} token requests in ${row.windows} windows (${row.perWindow} per window, at most ${row.maxInWindow}), ${row.failures} failures`);
    return { ttl: plan.ttl, durationMs: plan.durationMs, results: rows };
  } finally {
    await redis.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// S7, S8: token endpoint outages

/**
 * The outage scenarios of issue 9: tokens live 4 s; from `fromMs` to `toMs` after the first token the token endpoint
 * answers every request 503 `temporarily_unavailable` (the token server itself is down: every client sees the same
 * outage, and nothing of ours is mocked). 16 callers per contender, each in a fresh process.
 */
const OUTAGE = {
  ttl: 4,
  tokenLatencyMs: 50,
  concurrency: 16,
  /** Each caller pauses this long after every call: a steady load (a few thousand calls a second) that leaves the shared machine some CPU. */
  pauseMs: 2,
  s7: { fromMs: 2_500, toMs: 4_500, durationMs: 8_000 },
  s8: { fromMs: 2_500, toMs: 7_000, durationMs: 14_000 },
} as const;

type OutageScenario = NonNullable<BenchResults['s7']>;
type OutageRow = OutageScenario['results'][number];

async function outageRun(servers: Servers, name: ContenderName, shape: { fromMs: number; toMs: number; durationMs: number; hang?: boolean }, run: number): Promise<OutageRow> {
  await tokenServer(servers, { type: 'config', config: { ttl: OUTAGE.ttl + (contender(name).tokenTtlExtraSeconds ?? 0), latency: OUTAGE.tokenLatencyMs, failNext: 0, outage: { fromMs: shape.fromMs, toMs: shape.toMs, hang: shape.hang === true } } });
  const worker = await startWorker();
  try {
    await worker.call({ type: 'init', env: servers.env, contender: name });
    await tokenServer(servers, { type: 'reset' });
    const r = await worker.call<OutageLoadResult>({ type: 'outage', concurrency: OUTAGE.concurrency, durationMs: shape.durationMs, pauseMs: OUTAGE.pauseMs });
    const stats = await tokenServer(servers, { type: 'stats' });
    const base = stats.firstTokenAt;
    const row: OutageRow = {
      name,
      run,
      calls: r.ok + r.failed,
      failed: r.failed,
      tokenRequests: stats.requests,
      tokenRequestsRefused: stats.outageRejected ?? 0,
      firstTokenMs: base === undefined ? null : base - r.startedAt,
    };
    if (base !== undefined && r.failed > 0) {
      row.firstFailureMs = r.failureTimes[0]! - base;
      row.lastFailureMs = r.failureTimes[r.failureTimes.length - 1]! - base;
      const end = base + shape.toMs;
      const back = r.successTimes.find((t) => t >= end);
      row.recoveryLagMs = back === undefined ? null : back - end;
      // Failures once calls succeed again after the outage (a peer's 401s when the next token expires, S3's race).
      row.failedAfterRecovery = back === undefined ? 0 : r.failureTimes.reduce((n, t, i) => (t > back ? n + r.failureCounts[i]! : n), 0);
    }
    if (shape.hang && base !== undefined) row.firstSuccessAfterEndMs = ((t) => (t === undefined ? null : t - base - shape.toMs))(r.successTimes.find((t) => t >= base + shape.toMs));
    if (r.errorSample) row.errorSample = r.errorSample;
    if (r.failed > 0) row.errors = r.errorKinds;
    if (r.stuck > 0) row.stuck = r.stuck;
    return row;
  } finally {
    await Promise.race([worker.call({ type: 'close' }).catch(() => {}), sleep(2_000)]);
    await worker.stop();
    await tokenServer(servers, { type: 'config', config: { outage: null } });
  }
}

const seconds = (ms: number | undefined | null) => (ms === undefined || ms === null ? '–' : (ms / 1000).toFixed(2));

async function outageScenario(servers: Servers, id: 'S7' | 'S8', runs: number): Promise<OutageScenario> {
  const shape = id === 'S7' ? OUTAGE.s7 : OUTAGE.s8;
  log(`${id} ${id === 'S7' ? 'brief' : 'long'} outage: ${OUTAGE.ttl} s tokens, token endpoint down ${shape.fromMs / 1000}–${shape.toMs / 1000} s after the first token, ` +
    `${OUTAGE.concurrency} callers for ${shape.durationMs / 1000} s; ${outageContenders.length} contenders × ${runs} runs`);
  const rows: OutageRow[] = [];
  for (let run = 1; run <= runs; run++) {
    for (const spec of outageContenders) {
      const row = await outageRun(servers, spec.name, shape, run);
      rows.push(row);
      const window = row.failed > 0 ? `, failing ${seconds(row.firstFailureMs)}–${seconds(row.lastFailureMs)} s, recovery lag ${row.recoveryLagMs === null ? 'never' : `${row.recoveryLagMs} ms`}` : '';
      log(`  run ${run} ${spec.name}: ${row.failed}/${row.calls} failed${window}; ${row.tokenRequests} token requests (${row.tokenRequestsRefused} refused)${row.stuck ? `; ${row.stuck} calls stuck` : ''}`);
    }
  }
  return { ttl: OUTAGE.ttl, tokenLatencyMs: OUTAGE.tokenLatencyMs, concurrency: OUTAGE.concurrency, pauseMs: OUTAGE.pauseMs, outageFromMs: shape.fromMs, outageToMs: shape.toMs, durationMs: shape.durationMs, runs, results: rows };
}

// ---------------------------------------------------------------------------------------------------------------
// Targets

function targets(r: BenchResults): TargetResult[] {
  const out: TargetResult[] = [];
  if (r.s1?.results['ours'] && r.s1.results['undici']) {
    const ours = r.s1.results['ours'];
    const peers = CONTENDERS.filter((s) => s.kind === 'peer' && r.s1!.results[s.name]);
    const best = Math.max(...peers.map((p) => r.s1!.results[p.name]!.c64.ratio));
    out.push({ id: 'S1', target: 'c=64: ≥ 0.95 of raw undici', value: `${ours.c64.ratio}`, met: ours.c64.ratio >= 0.95 });
    out.push({ id: 'S1', target: 'c=64: ahead of every peer', value: `${ours.c64.ratio} vs best peer ${best}`, met: ours.c64.ratio > best });
  }
  if (r.s1) {
    // Issue 12: each adapter against its bare client with a fixed token, and the peer of its kind, from the same run.
    const res = r.s1.results;
    for (const pair of r.s1.pairs ?? []) {
      for (const c of ['c1', 'c64'] as const) {
        const cell = pair[c];
        const at = c === 'c1' ? 'c=1' : 'c=64';
        // Met only when the lower quartile of the per-round ratios clears the target, not the median alone.
        const q1 = cell.ratioQ1 ?? cell.ratio;
        const iqr = cell.ratioQ1 !== undefined ? ` [IQR ${cell.ratioQ1}–${cell.ratioQ3}]` : '';
        if (cell.target !== false) out.push({ id: 'S1', target: `${at}: ${pair.ours} ≥ 0.95 of ${pair.bare} (lower quartile)`, value: `${cell.ratio}${iqr} (${cell.ratios.length} interleaved rounds; CPU ${cell.cpuUsOurs ?? '?'} vs ${cell.cpuUsBare ?? '?'} µs/req)`, met: q1 >= 0.95 });
        if (pair.peer && cell.peerRatio !== undefined) {
          const pq1 = cell.peerRatioQ1 ?? cell.peerRatio;
          out.push({ id: 'S1', target: `${at}: ${pair.ours} ahead of ${pair.peer} (lower quartile > 1)`, value: `${cell.peerRatio}×${cell.peerRatioQ1 !== undefined ? ` [IQR ${cell.peerRatioQ1}–${cell.peerRatioQ3}]` : ''} (${cell.peerRatios!.length} rounds)`, met: pq1 > 1 });
        }
      }
    }
    for (const pair of r.s1.pairs?.length ? [] : ADAPTER_PAIRS) {
      const o = res[pair.ours];
      const b = res[pair.bare];
      if (!o || !b) continue;
      for (const c of ['c1', 'c64'] as const) {
        const ratio = round(o[c].median / b[c].median, 3);
        out.push({ id: 'S1', target: `${c === 'c1' ? 'c=1' : 'c=64'}: ${pair.ours} ≥ 0.95 of ${pair.bare}`, value: `${ratio} (${o[c].median} vs ${b[c].median} req/s)`, met: ratio >= 0.95 });
        const p = pair.peer ? res[pair.peer] : undefined;
        if (p) out.push({ id: 'S1', target: `${c === 'c1' ? 'c=1' : 'c=64'}: ${pair.ours} ahead of ${pair.peer}`, value: `${o[c].median} vs ${p[c].median} req/s`, met: o[c].median > p[c].median });
      }
    }
  }
  const s2Ours = r.s2?.results.find((x) => x.name === 'ours');
  if (r.s2 && s2Ours) {
    const ours = s2Ours;
    out.push({ id: 'S2', target: 'exactly 1 token request', value: `${ours.tokenRequests} (${ours.ok}/${r.s2.requests} ok)`, met: ours.tokenRequests === 1 && ours.ok === r.s2.requests });
  }
  const s3Ours = r.s3?.results.find((x) => x.name === 'ours');
  if (r.s3 && s3Ours) {
    const ours = s3Ours;
    out.push({ id: 'S3', target: '0 waits after the first token', value: `${ours.waits}`, met: ours.waits === 0 });
    const ratio = round(ours.p99 / ours.steady!.p99, 2);
    out.push({ id: 'S3', target: 'p99 ≤ 1.2× steady-state p99', value: `${ours.p99} ms vs ${ours.steady!.p99} ms (${ratio}×)`, met: ratio <= 1.2 });
    out.push({ id: 'S3', target: '0 failures', value: `${ours.failures}`, met: ours.failures === 0 });
  }
  if (r.s5) {
    const k = r.s5.keyed;
    const span = k.points ? ` (slope ${k.points[0]!.tokens.toLocaleString('en-US')}→${k.tokens.toLocaleString('en-US')} tokens)` : '';
    out.push({ id: 'S5', target: '≤ 1 KB heap per cached token, redactor included', value: `${round(k.bytesPerToken, 0)} B${span}`, met: k.bytesPerToken <= 1024 });
    if (k.fixedBytes !== undefined) out.push({ id: 'S5', target: 'a Client\'s fixed heap ≤ 300 KB', value: `${round(k.fixedBytes / 1024, 0)} KB (with its first token and one connection)`, met: k.fixedBytes <= 300 * 1024 });
    const growth = r.s5.soak.heapGrowth ?? 0;
    out.push({ id: 'S5', target: `no heap growth over ${r.s5.soak.samples.at(-1)!.requests.toLocaleString('en-US')} requests (< 1 MB after GC)`, value: `${round(growth / 1024, 0)} KB heap, ${round((r.s5.soak.rssGrowth ?? 0) / 1024 / 1024, 1)} MB RSS`, met: growth < 1024 * 1024 });
  }
  if (r.s6) {
    const redis = r.s6.results.find((x) => x.store === 'redis');
    if (redis) out.push({ id: 'S6', target: '1 token request per expiry window', value: `${redis.perWindow} (at most ${redis.maxInWindow} in a window)`, met: redis.maxInWindow === 1 });
    else out.push({ id: 'S6', target: '1 token request per expiry window', value: 'not measured', met: false });
  }
  if (r.s7) {
    const ours = r.s7.results.filter((x) => x.name === 'ours');
    const failed = ours.map((x) => x.failed);
    out.push({ id: 'S7', target: 'brief outage: 0 failed requests in every one of 5 runs', value: ours.length === 0 ? 'not measured' : `${failed.join(', ')} failed (${ours.length} run${ours.length === 1 ? '' : 's'})`, met: ours.length >= 5 && failed.every((n) => n === 0) });
  }
  if (r.s8) {
    const ours = r.s8.results.filter((x) => x.name === 'ours');
    const lags = ours.map((x) => (x.failed === 0 ? 0 : x.recoveryLagMs ?? Number.POSITIVE_INFINITY));
    const worst = Math.max(...lags);
    out.push({ id: 'S8', target: 'long outage: recovery lag ≤ 1 s', value: ours.length === 0 ? 'not measured' : `${lags.map((l) => (Number.isFinite(l) ? `${l} ms` : 'never')).join(', ')}`, met: ours.length > 0 && worst <= 1_000 });
    const most = Math.max(...ours.map((x) => x.tokenRequests));
    out.push({ id: 'S8', target: 'long outage: ≤ 15 token requests', value: ours.length === 0 ? 'not measured' : ours.map((x) => x.tokenRequests).join(', '), met: ours.length > 0 && most <= 15 });
  }
  out.push(...hangTargets(r));
  return out;
}

/** `--quick`: the correctness counts of our Client that must hold however noisy the machine is. */
function correctness(r: BenchResults): string[] {
  const problems: string[] = [];
  if (r.s1) {
    for (const spec of CONTENDERS.filter((c) => s1Contenders.includes(c.name))) if (!r.s1.results[spec.name] || !(r.s1.results[spec.name]!.c64.median > 0)) problems.push(`S1: ${spec.name} completed no requests`);
    if ((r.s1.results['ours']?.errors ?? 0) > 0) problems.push(`S1: our Client had ${r.s1.results['ours']!.errors} failed requests`);
  }
  if (r.s2) {
    const ours = r.s2.results.find((x) => x.name === 'ours')!;
    if (ours.tokenRequests !== 1) problems.push(`S2: our Client made ${ours.tokenRequests} token requests for a cold herd (expected 1)`);
    if (ours.ok !== r.s2.requests) problems.push(`S2: ${ours.failed} of our requests failed`);
  }
  if (r.s3) {
    const ours = r.s3.results.find((x) => x.name === 'ours')!;
    if (ours.failures > 0) problems.push(`S3: our Client had ${ours.failures} failures during rollover (${ours.errorSample})`);
    for (const row of r.s3.results) if (row.steady!.failures > 0) problems.push(`S3: our steady-state companion had ${row.steady!.failures} failures beside ${row.name}`);
    if (ours.requests === 0) problems.push('S3: our Client completed no requests');
  }
  if (r.s4) {
    for (const row of r.s4.results.filter((x) => x.name === 'ours')) if (!row.recovered) problems.push(`S4: ${row.variant} did not recover (${row.next})`);
  }
  if (r.s5) {
    if (r.s5.keyed.cachedTokens !== r.s5.keyed.tokens + 1) problems.push(`S5: ${r.s5.keyed.cachedTokens} tokens cached, expected ${r.s5.keyed.tokens + 1}`);
    if (r.s5.soak.errors > 0) problems.push(`S5: ${r.s5.soak.errors} requests failed during the soak`);
  }
  if (r.s6 && !r.s6.skipped) {
    const redis = r.s6.results.find((x) => x.store === 'redis');
    if (redis && redis.failures > 0) problems.push(`S6: ${redis.failures} failures in the fleet`);
    if (redis && redis.tokenRequests === 0) problems.push('S6: the fleet made no token requests');
    // A count, not a speed: the fleet's single flight holds however slow the machine is (test/fleet.test.ts asserts it too).
    if (redis && redis.maxInWindow > 1) problems.push(`S6: the Redis fleet made ${redis.maxInWindow} token requests in one expiry window (expected 1)`);
  }
  // S7, S8: that they ran, and the guarantee (a count, not a time): the brief outage costs our Client 0 failed requests.
  for (const id of ['s7', 's8'] as const) {
    if (!wanted(id.toUpperCase())) continue;
    const ours = r[id]?.results.filter((x) => x.name === 'ours') ?? [];
    if (ours.length === 0 || ours.some((x) => x.calls === 0)) problems.push(`${id.toUpperCase()}: our Client did not run`);
  }
  for (const row of r.s7?.results.filter((x) => x.name === 'ours') ?? []) {
    if (row.failed > 0) problems.push(`S7: our Client had ${row.failed} failed requests in the brief outage (run ${row.run}: ${row.errorSample})`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------

async function profile(): Promise<void> {
  const dir = join(tmpdir(), 'client-credentials-profiles');
  mkdirSync(dir, { recursive: true });
  const servers = await startServers();
  const name = (args.find((a) => a.startsWith('--contender=')) ?? '--contender=ours').split('=')[1] as ContenderName;
  try {
    await withWorker(async (worker) => {
      await worker.call({ type: 'init', env: servers.env, contender: name });
      const concurrency = Number(flag('concurrency') ?? 64);
      const r = await worker.call<LoadResult>({ type: 'load', concurrency, warmupMs: 1_000, durationMs: 5_000 });
      log(`profile ${name}: ${Math.round((r.count / r.elapsedMs) * 1000)} req/s at c=${concurrency}, ${r.cpuPerRequestUs.toFixed(1)} µs CPU per request; profile in ${dir}`);
    }, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  } finally {
    await Promise.all([servers.token.stop(), servers.steadyToken.stop(), servers.api.stop()]);
  }
}

function writeReports(results: BenchResults): void {
  writeFileSync(join(ROOT, 'docs/bench.md'), keepBrokerSection(renderMarkdown(results)));
  writeFileSync(join(ROOT, 'docs/bench.svg'), renderSvg(results));
}

async function main(): Promise<void> {
  if (args.includes('--report')) {
    const saved = JSON.parse(readFileSync(join(ROOT, 'bench/results/latest.json'), 'utf8')) as BenchResults;
    saved.targets = targets(saved); // the same verdicts, in the current wording
    writeReports(saved);
    log('wrote docs/bench.md and docs/bench.svg from bench/results/latest.json');
    return;
  }
  if (args.includes('--profile')) return profile();
  // S9, the broker (bench/broker.ts): its own processes and its own section of docs/bench.md; only with --only S9.
  if (only?.has('S9')) {
    const rounds = flag('rounds');
    await runBrokerBench(rounds === undefined ? { quick } : { quick, rounds: Number(rounds), write: false });
    if (only.size === 1) return;
  }
  const started = Date.now();
  const loadAtStart = loadavg()[0]!;
  const servers = await startServers();
  const results: BenchResults = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    command: quick ? 'npm run bench -- --quick' : 'npm run bench',
    machine: { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', platform: `${process.platform} ${process.arch}` },
    contenders: CONTENDERS.map((s) => ({ name: s.name, label: s.label, kind: s.kind, idiom: s.idiom })),
    durationMs: 0,
    targets: [],
  };
  const crashed: string[] = [];
  const scenarios: [string, () => Promise<void>][] = [
    ['S1', async () => void (results.s1 = await s1(servers))],
    ['S2', async () => void (results.s2 = await s2(servers))],
    ['S3', async () => void (results.s3 = await s3(servers))],
    ['S4', async () => void (results.s4 = await s4(servers))],
    ['S5', async () => void (results.s5 = await s5(servers))],
    ['S6', async () => void (results.s6 = await s6(servers))],
    ['S7', async () => void (results.s7 = await outageScenario(servers, 'S7', PLAN.s7.runs))],
    ['S8', async () => void (results.s8 = await outageScenario(servers, 'S8', PLAN.s8.runs))],
    ['S7H', async () => void (results.s7h = await hangScenario('S7H', PLAN.s7.runs, outageContenders.map((c) => c.name), OUTAGE, (n, shape, run) => outageRun(servers, n, shape, run), log))],
    ['S8H', async () => void (results.s8h = await hangScenario('S8H', PLAN.s8.runs, outageContenders.map((c) => c.name), OUTAGE, (n, shape, run) => outageRun(servers, n, shape, run), log))],
  ];
  try {
    for (const [id, run] of scenarios) {
      if (!wanted(id)) continue;
      const t0 = Date.now();
      try {
        await run();
      } catch (error) {
        crashed.push(`${id} crashed: ${(error as Error).stack ?? String(error)}`);
        log(`${id} crashed: ${(error as Error).message}`);
      }
      log(`  (${id}: ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }
  } finally {
    await Promise.all([servers.token.stop(), servers.steadyToken.stop(), servers.api.stop()]);
  }
  results.durationMs = Date.now() - started;
  results.targets = targets(results);
  const json = `${JSON.stringify(results, null, 2)}\n`;
  if (merge) {
    // --only … --merge: these scenarios replace theirs in bench/results/latest.json; the others keep their figures.
    const file = join(ROOT, 'bench/results/latest.json');
    const saved = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
    const ids = [...only!].filter((id) => /^S[1-8]H?$/.test(id));
    const into = saved as unknown as Record<string, unknown>;
    const from = results as unknown as Record<string, unknown>;
    // With --contenders, only those contenders' rows are replaced; the scenario's other rows and settings stay.
    const picked = flag('contenders') ? s1Contenders : undefined;
    const order = (name: string) => CONTENDERS.findIndex((c) => c.name === name);
    for (const id of ids) {
      const key = id.toLowerCase();
      const fresh = from[key] as { results?: { name: string; run?: number }[] } | undefined;
      const old = into[key] as { results?: { name: string; run?: number }[] } | undefined;
      if (fresh === undefined) continue;
      if (!picked || !old?.results || !fresh.results || key === 's1') into[key] = fresh;
      else old.results = [...old.results.filter((x) => !picked.includes(x.name)), ...fresh.results].sort((a, b) => (a.run ?? 0) - (b.run ?? 0) || order(a.name) - order(b.name));
    }
    if (picked) saved.contenders = [...saved.contenders.filter((c) => !picked.includes(c.name)), ...results.contenders.filter((c) => picked.includes(c.name))].sort((a, b) => order(a.name) - order(b.name));
    const same = (x: { contenders?: string[] }) => (x.contenders ?? []).join(',') === (picked ?? []).join(',');
    const earlier = (saved.reruns ?? []).map((x) => ({ ...x, scenarios: x.scenarios.filter((id) => !ids.includes(id) || (picked !== undefined && !same(x))) })).filter((x) => x.scenarios.length > 0);
    const loadAverage = [round(loadAtStart, 1), round(loadavg()[0]!, 1)];
    saved.reruns = [...earlier, { scenarios: ids, ...(picked ? { contenders: picked } : {}), date: results.date, command: `node dist/bench/run.js ${args.join(' ')}`, durationMs: results.durationMs, machine: results.machine, loadAverage }];
    saved.targets = targets(saved);
    writeFileSync(file, `${JSON.stringify(saved, null, 2)}\n`);
    writeReports(saved);
    results.targets = saved.targets.filter((t) => ids.includes(t.id));
    log(`results: ${ids.join(', ')} merged into bench/results/latest.json; docs/bench.md and docs/bench.svg regenerated`);
  } else if (quick || only) {
    const file = join(tmpdir(), `client-credentials-bench-${quick ? 'quick' : 'partial'}.json`);
    writeFileSync(file, json);
    log(`results: ${file}`);
  } else {
    const dir = join(ROOT, 'bench/results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${results.date.slice(0, 10)}.json`), json);
    writeFileSync(join(dir, 'latest.json'), json);
    writeReports(results);
    log(`results: bench/results/${results.date.slice(0, 10)}.json, bench/results/latest.json, docs/bench.md, docs/bench.svg`);
  }
  for (const t of results.targets) log(`${t.met ? 'met   ' : 'MISSED'} ${t.id} ${t.target}: ${t.value}`);
  log(`total ${(results.durationMs / 1000).toFixed(1)} s`);
  const problems = [...crashed, ...(quick ? correctness(results) : [])];
  if (problems.length > 0) {
    for (const p of problems) log(`bench: ${p}`);
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  log(`bench failed: ${(error as Error).stack ?? String(error)}`);
  process.exitCode = 1;
});
