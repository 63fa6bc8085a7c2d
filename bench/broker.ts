/**
 * S9, the broker scenario (`node dist/bench/run.js --only S9`, or `node dist/bench/broker.js`): requests through
 * `oauth-client-credentials serve` against, side by side in one run and on one Node upstream:
 *   direct   straight to the upstream (no proxy)
 *   floor    a minimal undici pass-through with a fixed Authorization header (the Node floor)
 *   fastify  a minimal Node proxy on @fastify/http-proxy with a token hook (what a Node team would write)
 *   nginx    Debian's nginx, one worker, keep-alive upstream, a fixed Authorization header (the limit of a proxy)
 *   broker   `oauth-client-credentials serve` (the token from its Client, route matching, header filtering)
 * The rates come from two long-lived load generators (one per concurrency, `loadgen` mode) driven slice by slice, as
 * S1's adapter pairs are: a round is `cycles` cycles of one short slice per contender, the order rotating every cycle
 * and round; a round's ratio is one contender's requests over all its slices against the other's, and a target is met
 * when the lower quartile of the per-round ratios clears it. The proxies run pinned to one CPU, the upstream and the
 * load generators to the other (bench/pin.ts). Latency at c=1 comes from a probe that sends one request at a time to
 * each contender in turn, so that every contender's latencies come from the same moments (a burst of other work on
 * the shared machine touches all alike); "added" is a proxy's p99 minus the direct p99 of the same probe, shown for
 * the floor too (what a Node hop costs here before any broker logic).
 *
 * The same file is each child process: `upstream`, `floor`, `fastify`, `loadgen` and `latency` are modes of this
 * script; `instructions` counts the floor's and the broker's instructions per request under valgrind (see
 * countInstructions).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { cpus, tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Pool, type Dispatcher } from 'undici';
import { pin, pinPlan } from './pin.js';
import { median, quartiles, round } from './stats.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/src/cli/main.js');
const PATH = '/api/items/42?view=full';
const FIXED_TOKEN = 'bench-fixed-token-0123456789abcdef';
/** What each load request carries (the direct contender needs a token; the proxies replace it). */
const CALLER_HEADERS = { authorization: `Bearer ${FIXED_TOKEN}`, accept: 'application/json' };

/** Prints the port this child listens on (the orchestrator reads the first stdout line). */
function announce(port: number): void {
  process.stdout.write(`${JSON.stringify({ port })}\n`);
}

function listen(server: ReturnType<typeof createServer>): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

// --- children ------------------------------------------------------------------------------------------------

/** The upstream API (a small JSON answer) and a token endpoint (`POST /token`). */
async function upstreamMode(): Promise<void> {
  const body = Buffer.from(JSON.stringify({ id: 42, name: 'item', tags: ['a', 'b'], price: 12.5, ok: true }));
  let serial = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'POST' && req.url === '/token') {
      req.resume();
      req.on('end', () => {
        const token = JSON.stringify({ access_token: `bench-token-${++serial}-${'x'.repeat(40)}`, token_type: 'Bearer', expires_in: 3600 });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(token) });
        res.end(token);
      });
      return;
    }
    if (!req.headers.authorization) {
      res.writeHead(401).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  announce(await listen(server));
}

/** The minimal undici pass-through: the Node floor. */
async function floorMode(upstreamPort: number): Promise<void> {
  const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 128, keepAliveTimeout: 60_000 });
  const server = createServer((req, res) => {
    const headers: string[] = [];
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      if (name !== 'host' && name !== 'connection' && name !== 'authorization') headers.push(raw[i]!, raw[i + 1]!);
    }
    headers.push('authorization', `Bearer ${FIXED_TOKEN}`);
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart() {},
      onResponseStart(_c, statusCode, h) {
        res.writeHead(statusCode, h as Record<string, string>);
      },
      onResponseData(_c, chunk) {
        res.write(chunk);
      },
      onResponseEnd() {
        res.end();
      },
      onResponseError() {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      },
    };
    pool.dispatch({ path: `/v2${req.url!.slice(4)}`, method: req.method!, headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : req }, handler);
  });
  server.keepAliveTimeout = 60_000;
  process.once('SIGTERM', () => process.exit(0));
  announce(await listen(server));
}

/** A minimal Node proxy on @fastify/http-proxy with a token hook (a cached token, fetched when missing or old). */
async function fastifyMode(upstreamPort: number): Promise<void> {
  const { default: Fastify } = await import('fastify');
  const { default: proxy } = await import('@fastify/http-proxy');
  const app = Fastify({ logger: false });
  let token: string | undefined;
  let expiresAt = 0;
  const getToken = async (): Promise<string> => {
    if (token && Date.now() < expiresAt) return token;
    const res = await fetch(`http://127.0.0.1:${upstreamPort}/token`, { method: 'POST', body: 'grant_type=client_credentials', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const json = (await res.json()) as { access_token: string; expires_in: number };
    token = json.access_token;
    expiresAt = Date.now() + (json.expires_in - 60) * 1000;
    return token;
  };
  await app.register(proxy, {
    upstream: `http://127.0.0.1:${upstreamPort}`,
    prefix: '/api',
    rewritePrefix: '/v2',
    preHandler: async () => {
      await getToken();
    },
    replyOptions: { rewriteRequestHeaders: (_req, headers) => ({ ...headers, authorization: `Bearer ${token}` }) },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  announce((app.server.address() as AddressInfo).port);
}

/** What one slice of load gave: requests completed inside the measured part, in all (warm-up included), failed. */
export interface SliceResult {
  count: number;
  total: number;
  errors: number;
  elapsedMs: number;
}

/**
 * The load generator: one long-lived process per concurrency, driven slice by slice over stdin/stdout lines
 * (`run <port> <warmupMs> <ms>` → one JSON {@link SliceResult} line). Its connections to every contender (a pool of
 * `concurrency` keep-alive connections per port) live for the whole run, so a slice needs no new process, no new
 * connections and only a short warm-up (the loops restarting), and slices can be short enough to interleave finely.
 */
async function loadgenMode(concurrency: number): Promise<void> {
  const pools = new Map<number, Pool>();
  const slice = async (port: number, warmupMs: number, ms: number): Promise<SliceResult> => {
    let pool = pools.get(port);
    if (pool === undefined) pools.set(port, (pool = new Pool(`http://127.0.0.1:${port}`, { connections: concurrency, pipelining: 1, keepAliveTimeout: 600_000, keepAliveMaxTimeout: 600_000 })));
    const target = pool;
    let phase: 'warmup' | 'measure' | 'done' = 'warmup';
    let count = 0;
    let errors = 0;
    let total = 0;
    const loop = async (): Promise<void> => {
      while (phase !== 'done') {
        let ok = false;
        try {
          const res = await target.request({ path: PATH, method: 'GET', headers: CALLER_HEADERS });
          await res.body.dump();
          ok = res.statusCode === 200;
        } catch {
          // counted below
        }
        if (!ok) {
          if (phase === 'measure') errors++;
          continue;
        }
        total++;
        if (phase === 'measure') count++;
      }
    };
    const loops = Array.from({ length: concurrency }, loop);
    if (warmupMs > 0) await new Promise((r) => setTimeout(r, warmupMs));
    phase = 'measure';
    const start = performance.now();
    await new Promise((r) => setTimeout(r, ms));
    const elapsedMs = performance.now() - start;
    const measured = count;
    phase = 'done';
    await Promise.all(loops);
    return { count: measured, total, errors, elapsedMs };
  };
  for await (const line of createInterface({ input: process.stdin })) {
    const [command, port, warmupMs, ms] = line.trim().split(' ');
    if (command !== 'run') continue;
    process.stdout.write(`${JSON.stringify(await slice(Number(port), Number(warmupMs), Number(ms)))}\n`);
  }
  await Promise.all([...pools.values()].map((pool) => pool.close()));
}

/**
 * The c=1 latency probe: one request at a time, to each of `urls` in turn, for `windowMs` after `warmupMs`; prints
 * { latencies, errors } (one list per URL). Interleaved request by request, the contenders are measured at the same
 * moments, where back-to-back windows would give each its own share of the machine's other work.
 */
async function latencyMode(urls: string[], warmupMs: number, windowMs: number): Promise<void> {
  const pools = urls.map((url) => new Pool(url, { connections: 1, pipelining: 1, keepAliveTimeout: 60_000 }));
  const latencies: number[][] = urls.map(() => []);
  const errors: number[] = urls.map(() => 0);
  const once = async (i: number): Promise<number | undefined> => {
    const t0 = performance.now();
    try {
      const res = await pools[i]!.request({ path: PATH, method: 'GET', headers: CALLER_HEADERS });
      await res.body.dump();
      if (res.statusCode === 200) return performance.now() - t0;
    } catch {
      // counted by the caller
    }
    return undefined;
  };
  const warm = performance.now() + warmupMs;
  for (let i = 0; performance.now() < warm; i = (i + 1) % urls.length) await once(i);
  const end = performance.now() + windowMs;
  for (let i = 0; performance.now() < end; i = (i + 1) % urls.length) {
    const ms = await once(i);
    if (ms === undefined) errors[i]!++;
    else latencies[i]!.push(ms);
  }
  await Promise.all(pools.map((pool) => pool.close()));
  process.stdout.write(`${JSON.stringify({ latencies, errors })}\n`);
}

// --- orchestrator ---------------------------------------------------------------------------------------------

interface Running {
  port: number;
  /** The processes doing the proxy's work, for CPU accounting. */
  pids: number[];
  stop(): Promise<void>;
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', function onData(d: Buffer) {
      text += d.toString();
      const nl = text.indexOf('\n');
      if (nl >= 0) {
        child.stdout!.off('data', onData);
        resolve(text.slice(0, nl));
      }
    });
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before it was ready: ${err.slice(-2000)}`)));
  });
}

async function startChild(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [SELF, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const { port } = JSON.parse(await firstLine(child)) as { port: number };
  child.stdout!.resume();
  return { port, pids: [child.pid!], stop: () => stopProcess(child) };
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 3_000).unref();
  });
}

/** The child processes of `pid` (nginx's worker). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * CPU time used so far by `pids` and all their threads, in µs: the run time in /proc/<pid>/task/<tid>/schedstat (ns,
 * not rounded to 10 ms ticks as /proc/<pid>/stat is, which a 150 ms slice would feel); the ticks where schedstat is
 * missing; 0 off Linux.
 */
function cpuUs(pids: readonly number[]): number {
  let ns = 0;
  for (const pid of pids) {
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      try {
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        ns += (Number(fields[11]) + Number(fields[12])) * 10_000_000;
      } catch {
        // gone
      }
    }
  }
  return ns / 1000;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createNetServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function startBroker(upstreamPort: number, dir: string): Promise<Running> {
  writeFileSync(join(dir, 'secret'), 'bench-secret', { mode: 0o600 });
  writeFileSync(join(dir, 'broker.json'), JSON.stringify({
    listen: '127.0.0.1:0',
    clients: { bench: { tokenUrl: `http://127.0.0.1:${upstreamPort}/token`, clientId: 'bench-client', clientSecretFile: 'secret' } },
    routes: [{ path: '/api/', upstream: `http://127.0.0.1:${upstreamPort}/v2/`, client: 'bench' }],
  }));
  const child = spawn(process.execPath, [CLI, 'serve', '--config', join(dir, 'broker.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const line = JSON.parse(await firstLine(child)) as { listen: string };
  child.stdout!.resume();
  return { port: Number(line.listen.split(':').pop()), pids: [child.pid!], stop: () => stopProcess(child) };
}

async function startNginx(upstreamPort: number, dir: string): Promise<Running> {
  const port = await freePort();
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub), { recursive: true });
  const conf = `worker_processes 1;
daemon off;
${process.getuid?.() === 0 ? 'user root;' : ''}
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  upstream api { server 127.0.0.1:${upstreamPort}; keepalive 128; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${port};
    location /api/ {
      proxy_pass http://api/v2/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer ${FIXED_TOKEN}";
    }
  }
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child = spawn('/usr/sbin/nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${PATH}`);
      await res.arrayBuffer();
      if (res.ok) return { port, pids: [child.pid!, ...childrenOf(child.pid!)], stop: () => stopProcess(child) };
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nginx did not start: ${existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : ''}`);
}

/**
 * One long-lived load generator (see loadgenMode) of one concurrency, asked for one slice at a time.
 */
class LoadGenerator {
  readonly #child: ChildProcess;
  readonly #replies: ((line: string) => void)[] = [];

  constructor(readonly concurrency: number) {
    this.#child = spawn(process.execPath, [SELF, 'loadgen', String(concurrency)], { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.#child.stdout! }).on('line', (line) => this.#replies.shift()?.(line));
  }

  get pid(): number {
    return this.#child.pid!;
  }

  /** `ms` of closed-loop load on `port` after `warmupMs` of unmeasured load. */
  run(port: number, warmupMs: number, ms: number): Promise<SliceResult> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`the load generator exited (${code})`));
      this.#child.once('exit', onExit);
      this.#replies.push((line) => {
        this.#child.off('exit', onExit);
        resolve(JSON.parse(line) as SliceResult);
      });
      this.#child.stdin!.write(`run ${port} ${warmupMs} ${ms}\n`);
    });
  }

  stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return Promise.resolve();
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.stdin!.end();
    setTimeout(() => this.#child.kill('SIGKILL'), 3_000).unref();
    return exited;
  }
}

async function latencyProbe(ports: number[], warmupMs: number, windowMs: number): Promise<{ latencies: number[][]; errors: number[] }> {
  const child = spawn(process.execPath, [SELF, 'latency', ports.map((p) => `http://127.0.0.1:${p}`).join(','), String(warmupMs), String(windowMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  await new Promise((r) => child.once('exit', r));
  return JSON.parse(text) as { latencies: number[][]; errors: number[] };
}

function percentile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** One contender's figures. */
export interface BrokerBenchRow {
  name: string;
  label: string;
  /** Requests per second: the median over rounds of the contender's rate over all its slices of the round. */
  c1: number;
  c64: number;
  p50: number;
  p99: number;
  /** The p99 minus the direct p99 (same probe), in ms; null for the direct calls. */
  p99Added: number | null;
  /** CPU time of the proxy's processes per request served (warm-ups included), in µs; null for the direct calls. */
  cpuUs1: number | null;
  cpuUs64: number | null;
  /**
   * CPUs' worth of time the upstream and the load generator used during the contender's slices (1 = one CPU kept
   * busy): near 1 when they are pinned to one CPU, they, not the proxy, set the contender's rate.
   */
  loadBusy1: number;
  loadBusy64: number;
  errors: number;
}

/** The per-round ratios of one pair at one concurrency: their median and quartiles, and each round's. */
export interface RatioCell {
  median: number;
  q1: number;
  q3: number;
  rounds: number[];
}

/** The S9 results. */
export interface BrokerBenchResults {
  date: string;
  command: string;
  machine: string;
  cores: number;
  /** The 1, 5 and 15-minute load averages sampled before the bench started any process. */
  loadAverageAtStart: number[];
  /** The share of the machine's CPU time (all cores) that processes other than the bench's used during the run. */
  otherWork: number;
  /** Whether the machine counted as busy (see {@link machineBusy}). */
  busy: boolean;
  /** `proxy CPU n, upstream and load CPU m`, or false when nothing was pinned. */
  pinned: string | false;
  /** Largest max/min of one contender's per-round rates. */
  swing: number;
  rounds: number;
  cycles: number;
  sliceMs: number;
  warmupMs: number;
  /** Per contender and round, the c=1 latency probe's share (ms). */
  probeMs: number;
  rows: BrokerBenchRow[];
  /** Each round's rate per contender, in run order of rounds. */
  perRound: Record<string, { c1: number[]; c64: number[] }>;
  /** `broker/floor`, `broker/fastify`, `broker/nginx`, `floor/nginx`: the per-round rate ratios. */
  ratios: Record<string, { c1: RatioCell; c64: RatioCell }>;
  /** `met` null: a reference figure with no target. */
  targets: { target: string; value: string; met: boolean | null }[];
}

const LABELS: Record<string, string> = {
  direct: 'straight to the upstream (no proxy)',
  broker: '`oauth-client-credentials serve`',
  floor: 'minimal undici pass-through, fixed header (Node floor)',
  fastify: '@fastify/http-proxy with a token hook',
  nginx: 'nginx 1 worker, keep-alive upstream, fixed header',
};

/**
 * The contenders of cycle `cycle` of round `round`, in the order their slices run: the order rotates every cycle and
 * every round, so that over a run each contender runs as often in each place (after each of the others).
 */
export function sliceOrder(names: readonly string[], round: number, cycle: number): string[] {
  return names.map((_, i) => names[(i + cycle + round) % names.length]!);
}

/** A round's rate ratio: `a`'s requests over all its slices per ms of them, against `b`'s. */
export function roundRatio(a: { count: number; ms: number }, b: { count: number; ms: number }): number {
  return a.count / a.ms / (b.count / b.ms);
}

/**
 * Whether other work shared the machine: other processes used 5 % or more of its CPU time during the run (measured,
 * the bench's own processes left out). The load average before the start is reported, not judged: a 1-minute
 * average decays over minutes, so it still counts a build that ended just before the bench.
 */
export function machineBusy(otherWork: number): boolean {
  return otherWork >= 0.05;
}

/** The machine's busy CPU time so far (all cores, user + nice + system + irq + softirq, from /proc/stat), in µs. */
function machineCpuUs(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]!) * 10_000;
  } catch {
    return Number.NaN;
  }
}

/** This process's CPU time and its reaped children's (the latency probes), in µs. */
function ownCpuUs(): number {
  let reaped = 0;
  try {
    const fields = readFileSync(`/proc/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    reaped = (Number(fields[13]) + Number(fields[14])) * 10_000;
  } catch {
    // not Linux
  }
  return cpuUs([process.pid]) + reaped;
}

/** Runs S9 and writes bench/results/broker.json and the broker section of docs/bench.md. */
export async function runBrokerBench(options: { quick?: boolean; write?: boolean; rounds?: number } = {}): Promise<BrokerBenchResults> {
  const quick = options.quick === true;
  // Slices of 150 ms after a 25 ms warm-up (the loops restarting on connections already open), 8 cycles a round:
  // a round holds 1.2 s of each contender, so its ratio moves less with the machine.
  const plan = quick
    ? { rounds: 2, cycles: 1, sliceMs: 60, warmupMs: 20, probeMs: 150, firstWarmupMs: 200 }
    : { rounds: options.rounds ?? 15, cycles: 8, sliceMs: 150, warmupMs: 25, probeMs: 500, firstWarmupMs: 4_000 };
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  // Sampled before any process of the bench runs, so that it tells of other work only.
  const loadAverageAtStart = loadavg().map((l) => Number(l.toFixed(2)));
  const started = performance.now();
  const machineAtStart = machineCpuUs();
  const ownAtStart = ownCpuUs();
  log(`S9 broker: direct, floor, fastify, nginx, broker × c=1,64 × ${plan.rounds} rounds of ${plan.cycles} cycles of ${plan.sliceMs} ms slices (load average ${loadAverageAtStart.join(', ')} before the start)`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-broker-'));
  const upstream = await startChild(['upstream']);
  const running: Record<string, Running> = { direct: { port: upstream.port, pids: [], stop: async () => undefined } };
  const stops: { stop(): Promise<void> }[] = [upstream];
  const generators = new Map<1 | 64, LoadGenerator>();
  try {
    running['floor'] = await startChild(['floor', String(upstream.port)]);
    running['fastify'] = await startChild(['fastify', String(upstream.port)]);
    running['broker'] = await startBroker(upstream.port, dir);
    try {
      running['nginx'] = await startNginx(upstream.port, join(dir, 'nginx'));
    } catch (error) {
      log(`  nginx unavailable: ${(error as Error).message.split('\n')[0]}`);
    }
    stops.push(...Object.values(running));
    for (const c of [1, 64] as const) {
      const generator = new LoadGenerator(c);
      generators.set(c, generator);
      stops.push(generator);
    }
    const names = Object.keys(running);
    const proxyPids = names.flatMap((n) => running[n]!.pids);
    // The proxies on one CPU, the upstream and the load generators on the other (bench/pin.ts; BENCH_PIN=0: off).
    const pins = pinPlan();
    const loadSidePids = [upstream.pids[0], ...[...generators.values()].map((g) => g.pid)];
    /** Pins the proxies to `proxyCpu` and the load side to `loadCpu` (undefined: every CPU); false when taskset refused. */
    const pinAll = (proxyCpu: number | undefined, loadCpu: number | undefined): boolean => proxyPids.every((pid) => pin(pid, proxyCpu)) && loadSidePids.every((pid) => pin(pid, loadCpu));
    const pinned = pins !== undefined && pinAll(pins.client, pins.server);
    // Half-pinned is worse than not pinned: when taskset refused one process, every process runs anywhere again.
    if (pins !== undefined && !pinned) pinAll(undefined, undefined);
    const pinnedText = pinned ? `proxy CPU ${pins!.client}, upstream and load CPU ${pins!.server}` : false;
    log(pinned ? `  pinned: ${pinnedText}` : '  not pinned (no taskset, one CPU, or BENCH_PIN=0)');
    const rps: Record<string, { c1: number[]; c64: number[] }> = {};
    const lat: Record<string, number[]> = {};
    const errors: Record<string, number> = {};
    const cpu: Record<string, { c1: { us: number; requests: number }; c64: { us: number; requests: number } }> = {};
    /** The upstream's and the load generator's CPU time over each contender's slices, and the slices' wall time. */
    const loadSide: Record<string, { c1: { us: number; wallUs: number }; c64: { us: number; wallUs: number } }> = {};
    for (const n of names) {
      rps[n] = { c1: [], c64: [] };
      lat[n] = [];
      errors[n] = 0;
      cpu[n] = { c1: { us: 0, requests: 0 }, c64: { us: 0, requests: 0 } };
      loadSide[n] = { c1: { us: 0, wallUs: 0 }, c64: { us: 0, wallUs: 0 } };
    }
    const pairs = ([['broker', 'floor'], ['broker', 'fastify'], ['broker', 'nginx'], ['floor', 'nginx']] as const).filter(([a, b]) => running[a] && running[b]);
    const ratioRounds: Record<string, { c1: number[]; c64: number[] }> = Object.fromEntries(pairs.map(([a, b]) => [`${a}/${b}`, { c1: [], c64: [] }]));
    // Each contender warmed (JIT, connections of both load generators, the broker's first token) before any round: 4 s
    // at c=64, as after 1.5 s the broker, a larger program than the floor, still spent up to 13 % more user CPU time per
    // request (V8 still compiling), and after 8 s the same as the floor.
    for (const n of names) for (const generator of generators.values()) await generator.run(running[n]!.port, 0, generator.concurrency === 1 ? plan.firstWarmupMs / 4 : plan.firstWarmupMs);
    for (let round = 0; round < plan.rounds; round++) {
      for (const c of [1, 64] as const) {
        const key = c === 1 ? 'c1' : 'c64';
        const generator = generators.get(c)!;
        const loadPids = [upstream.pids[0]!, generator.pid];
        const totals = new Map(names.map((n) => [n, { count: 0, ms: 0 }]));
        for (let cycle = 0; cycle < plan.cycles; cycle++) {
          for (const n of sliceOrder(names, round, cycle)) {
            const pids = running[n]!.pids;
            const before = cpuUs(pids);
            const loadBefore = cpuUs(loadPids);
            const t0 = performance.now();
            const r = await generator.run(running[n]!.port, plan.warmupMs, plan.sliceMs);
            loadSide[n]![key].wallUs += (performance.now() - t0) * 1000;
            loadSide[n]![key].us += cpuUs(loadPids) - loadBefore;
            cpu[n]![key].us += cpuUs(pids) - before;
            cpu[n]![key].requests += r.total;
            errors[n]! += r.errors;
            const total = totals.get(n)!;
            total.count += r.count;
            total.ms += r.elapsedMs;
          }
        }
        for (const n of names) rps[n]![key].push((totals.get(n)!.count / totals.get(n)!.ms) * 1000);
        for (const [a, b] of pairs) ratioRounds[`${a}/${b}`]![key].push(roundRatio(totals.get(a)!, totals.get(b)!));
      }
      // c=1 latency: every contender in turn, request by request (the order rotates with the rounds too), with nothing
      // pinned, as the p99 target was set: pinned, the direct calls stay on one CPU where every proxied call crosses
      // between the two, and the added p99 would measure that.
      const order = sliceOrder(names, round, 0);
      if (pinned) pinAll(undefined, undefined);
      const probe = await latencyProbe(order.map((n) => running[n]!.port), 100, plan.probeMs * order.length);
      if (pinned) pinAll(pins!.client, pins!.server);
      order.forEach((n, i) => {
        lat[n]!.push(...probe.latencies[i]!);
        errors[n]! += probe.errors[i]!;
      });
      log(`  round ${round + 1}/${plan.rounds}: ${names.map((n) => `${n} ${Math.round(rps[n]!.c1.at(-1)!)}/${Math.round(rps[n]!.c64.at(-1)!)}`).join(', ')} req/s (c=1/c=64); broker/floor ${ratioRounds['broker/floor']!.c1.at(-1)!.toFixed(3)}/${ratioRounds['broker/floor']!.c64.at(-1)!.toFixed(3)}`);
    }
    const own = ownCpuUs() - ownAtStart + cpuUs([...proxyPids, ...upstream.pids, ...[...generators.values()].map((g) => g.pid)]);
    const wallUs = (performance.now() - started) * 1000;
    const otherWork = Math.max(0, Number(((machineCpuUs() - machineAtStart - own) / (wallUs * cpus().length)).toFixed(3)));
    const directP99 = percentile(lat['direct']!, 0.99);
    const perRequest = (n: string, key: 'c1' | 'c64'): number | null => (n === 'direct' ? null : Math.round(cpu[n]![key].us / Math.max(1, cpu[n]![key].requests)));
    const rows: BrokerBenchRow[] = names.map((n) => ({
      name: n,
      label: LABELS[n]!,
      c1: Math.round(median(rps[n]!.c1)),
      c64: Math.round(median(rps[n]!.c64)),
      p50: Number(percentile(lat[n]!, 0.5).toFixed(3)),
      p99: Number(percentile(lat[n]!, 0.99).toFixed(3)),
      p99Added: n === 'direct' ? null : Number((percentile(lat[n]!, 0.99) - directP99).toFixed(3)),
      cpuUs1: perRequest(n, 'c1'),
      cpuUs64: perRequest(n, 'c64'),
      loadBusy1: Number((loadSide[n]!.c1.us / loadSide[n]!.c1.wallUs).toFixed(2)),
      loadBusy64: Number((loadSide[n]!.c64.us / loadSide[n]!.c64.wallUs).toFixed(2)),
      errors: errors[n]!,
    }));
    const ratios: BrokerBenchResults['ratios'] = {};
    for (const [pair, byC] of Object.entries(ratioRounds)) {
      const cell = (values: number[]): RatioCell => {
        const q = quartiles(values);
        return { median: round(q.median, 3), q1: round(q.q1, 3), q3: round(q.q3, 3), rounds: values.map((v) => round(v, 3)) };
      };
      ratios[pair] = { c1: cell(byC.c1), c64: cell(byC.c64) };
    }
    const row = (n: string): BrokerBenchRow | undefined => rows.find((r) => r.name === n);
    const broker = row('broker')!;
    const targets: BrokerBenchResults['targets'] = [];
    const spread = (r: RatioCell, unit = ''): string => `${r.median}${unit} [IQR ${r.q1}–${r.q3}]`;
    for (const c of ['c1', 'c64'] as const) {
      const at = c === 'c1' ? 'c=1' : 'c=64';
      const floor = ratios['broker/floor']![c];
      targets.push({ target: `${at}: ≥ 0.95 of the minimal undici proxy`, value: spread(floor), met: floor.q1 >= 0.95 });
      const fastify = ratios['broker/fastify']![c];
      targets.push({ target: `${at}: ahead of the fastify proxy`, value: spread(fastify, '×'), met: fastify.q1 > 1 });
      const nginx = ratios['broker/nginx']?.[c];
      if (nginx) {
        const want = c === 'c1' ? 0.7 : 0.9;
        targets.push({ target: `${at}: ≥ ${want} of nginx`, value: spread(nginx), met: nginx.q1 >= want });
        const floorNginx = ratios['floor/nginx']![c];
        targets.push({ target: `${at}: the Node floor against nginx (for reference: what a minimal Node proxy reaches here)`, value: spread(floorNginx), met: null });
      }
    }
    const added = broker.p99Added!;
    targets.push({ target: 'c=1: p99 latency added by the broker ≤ 1 ms', value: `${added} ms (p99 ${broker.p99} vs ${row('direct')!.p99} ms direct; the floor adds ${row('floor')!.p99Added} ms)`, met: added <= 1 });
    const results: BrokerBenchResults = {
      date: new Date().toISOString(),
      command: quick ? 'node dist/bench/run.js --only S9 --quick' : `node dist/bench/run.js --only S9${options.rounds !== undefined ? ` --rounds ${options.rounds}` : ''}`,
      machine: `${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
      cores: cpus().length,
      loadAverageAtStart,
      otherWork,
      busy: machineBusy(otherWork),
      pinned: pinnedText,
      swing: Number(Math.max(...names.flatMap((n) => [rps[n]!.c1, rps[n]!.c64].map((v) => Math.max(...v) / Math.min(...v)))).toFixed(2)),
      rounds: plan.rounds,
      cycles: plan.cycles,
      sliceMs: plan.sliceMs,
      warmupMs: plan.warmupMs,
      probeMs: plan.probeMs,
      rows,
      perRound: Object.fromEntries(names.map((n) => [n, { c1: rps[n]!.c1.map(Math.round), c64: rps[n]!.c64.map(Math.round) }])),
      ratios,
      targets,
    };
    for (const r of rows) log(`  ${r.name}: ${r.c1}/${r.c64} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms (added ${r.p99Added ?? '-'}), CPU ${r.cpuUs1 ?? '-'}/${r.cpuUs64 ?? '-'} µs/request (c=1/c=64), upstream + load ${r.loadBusy1}/${r.loadBusy64} CPUs busy, ${r.errors} errors`);
    for (const t of targets) log(`  ${t.met === null ? 'reference' : t.met ? 'met' : 'MISSED'}: ${t.target}: ${t.value}`);
    log(`  other work on the machine during the run: ${(otherWork * 100).toFixed(1)} % of its CPU time; rates swung up to ${results.swing}× between rounds`);
    if (options.write !== false && !quick) {
      writeFileSync(join(ROOT, 'bench/results/broker.json'), `${JSON.stringify(results, null, 2)}\n`);
      const docs = join(ROOT, 'docs/bench.md');
      writeFileSync(docs, withBrokerSection(readFileSync(docs, 'utf8'), renderBrokerSection(results)));
      log('  wrote bench/results/broker.json and the S9 section of docs/bench.md');
    }
    return results;
  } finally {
    await Promise.all(stops.map((s) => s.stop()));
  }
}

/**
 * The instructions of a callgrind dump spent in V8's optimizing compiler (functions of `v8::internal::compiler`, as
 * `callgrind_annotate` lists them; 0 when it cannot be run): a third of the count under valgrind, even after a long
 * warm-up, and not the proxy's work.
 */
function compilerInstructions(file: string): number {
  let text: string;
  try {
    text = execFileSync('callgrind_annotate', ['--threshold=100', file], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  } catch {
    return 0;
  }
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line);
    if (m && m[2]!.includes('v8::internal::compiler::')) sum += Number(m[1]!.replace(/,/g, ''));
  }
  return sum;
}

/**
 * User-space instructions per proxied request, counted by valgrind's callgrind (`node dist/bench/broker.js
 * instructions [requests] [warm-up]`): the floor and the broker, each started under callgrind with counting off, warmed
 * with `warmup` requests (25,000) at c=8, then counted over `requests` (3,000) more. After 10,000 the broker, a larger
 * program, still had more in V8's lower tiers and compiler than the floor (+21 % instructions, +11 % without the
 * compiler's own); after 25,000 both are as warm as they get here (+0.7 %, +1.6 %). Unlike CPU time, an instruction count hardly moves with
 * the other work on a shared machine; the kernel's share (the same syscalls for both, under `strace -c`) is not in it.
 */
async function countInstructions(requests: number, warmup: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-broker-callgrind-'));
  const upstream = await startChild(['upstream']);
  const valgrind = (name: string): string[] => ['--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', `--callgrind-out-file=${join(dir, `${name}.callgrind`)}`, process.execPath];
  const drive = async (port: number, n: number): Promise<void> => {
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 8 });
    let left = n;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (left-- > 0) await (await pool.request({ path: PATH, method: 'GET', headers: CALLER_HEADERS })).body.dump();
    }));
    await pool.close();
  };
  try {
    for (const name of ['floor', 'broker']) {
      let args: string[];
      if (name === 'floor') args = [SELF, 'floor', String(upstream.port)];
      else {
        writeFileSync(join(dir, 'secret'), 'bench-secret', { mode: 0o600 });
        writeFileSync(join(dir, 'broker.json'), JSON.stringify({ listen: '127.0.0.1:0', clients: { bench: { tokenUrl: `http://127.0.0.1:${upstream.port}/token`, clientId: 'bench-client', clientSecretFile: 'secret' } }, routes: [{ path: '/api/', upstream: `http://127.0.0.1:${upstream.port}/v2/`, client: 'bench' }] }));
        args = [CLI, 'serve', '--config', join(dir, 'broker.json')];
      }
      const child = spawn('valgrind', [...valgrind(name), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      const line = JSON.parse(await firstLine(child)) as { port?: number; listen?: string };
      child.stdout!.resume();
      const port = line.port ?? Number(line.listen!.split(':').pop());
      await drive(port, warmup);
      const control = (...a: string[]): void => void execFileSync('callgrind_control', [...a, String(child.pid)], { stdio: 'ignore' });
      control('--instr=on');
      await drive(port, requests);
      control('--dump');
      control('--instr=off');
      await stopProcess(child);
      const dump = readdirSync(dir).filter((f) => f.startsWith(`${name}.callgrind`)).sort().at(-1)!;
      const total = Number(/^(?:summary|totals): (\d+)/m.exec(readFileSync(join(dir, dump), 'utf8'))?.[1]);
      const compiling = compilerInstructions(join(dir, dump));
      process.stdout.write(`${name}: ${Math.round(total / requests)} instructions per request (${total} over ${requests}); without V8's optimizing compiler still at work (${Math.round(compiling / requests)} per request): ${Math.round((total - compiling) / requests)}\n`);
    }
  } finally {
    await upstream.stop();
  }
}

const START = '<!-- S9 broker: generated by bench/broker.ts; kept by bench/run.ts -->';
const END = '<!-- /S9 broker -->';

/** Why S9 pins its processes (docs/bench.md). */
const PIN_REASON = [
  'With the proxy under test on a CPU of its own, the upstream and the load generator never take turns on its core, so a',
  "proxy's rate follows its own cost and the ratios spread less: in two pairs of 8-round runs on this machine",
  '(2026-12-07; the first pair with 19 and 29 % of its CPU time taken by other work, the second with none), the',
  'broker/floor interquartile range was 0.07 and 0.03 wide at c=1 and 0.09 and 0.09 at c=64 pinned, against 0.17 and',
  '0.10 at c=1 and 0.13 and 0.20 at c=64 unpinned. The',
  'price: the upstream and the load generator share one CPU, which can bound the cheapest contenders (the last',
  'column: near 1 CPU busy, the load side and not the proxy set the rate). A ratio against a contender so bounded',
  'overstates the slower side: read the nginx ratios at c=64 with that column.',
].join(' ');

/** What the table compares, under it in docs/bench.md. */
const NOTES = [
  'The broker does per request what the floor does (one undici dispatch, headers copied once) plus route matching, the',
  'path safety check, hop-by-hop filtering, metrics, and the token from its Client\'s lifecycle (a cached-token read);',
  'nginx and the floor send a fixed header and hold no token logic at all. `node dist/bench/broker.js instructions`',
  'counts user-space instructions per request under valgrind, which the machine\'s other work hardly moves',
  '(docs/broker.md, Performance).',
];

/** The S9 section of docs/bench.md. */
export function renderBrokerSection(r: BrokerBenchResults): string {
  const s = (ms: number): string => `${ms / 1000} s`;
  const lines = [
    START,
    '## S9: the token broker (`oauth-client-credentials serve`) as a reverse proxy',
    '',
    `Measured ${r.date.slice(0, 10)} with \`${r.command}\` on ${r.machine}; load average before the bench started ${r.loadAverageAtStart.join(', ')} (1, 5, 15 min); processes other than the bench's used ${(r.otherWork * 100).toFixed(1)} % of the machine's CPU time during it.`,
    '',
    `One Node upstream answering a small JSON body; each proxy forwards \`GET /api/items/42\` to it over keep-alive connections. The load comes from two long-lived processes, one per concurrency, whose connections to every contender stay open for the whole run; the bench drives them slice by slice. A round is ${r.cycles} cycles of one ${r.sliceMs} ms slice per contender (after a ${r.warmupMs} ms warm-up of the slice's loops), the order rotating every cycle and every round, so that each contender runs as often in each place; a round's ratio is a contender's requests over all its slices (per ms) against the other's over all of theirs. A machine that slows down for a moment slows every contender of a cycle alike, and ${r.rounds} rounds give the median and quartiles of the ratio: a target is met only when the ratio's lower quartile clears it. Each rate in the table is the median of the contender's per-round rates. Latencies come from a c=1 probe that sends one request at a time to each contender in turn (${r.rounds} × ${s(r.probeMs * r.rows.length)}, nothing pinned meanwhile), so that all are measured at the same moments; "p99 added" is a contender's p99 minus the direct p99 of that probe. CPU is the proxy processes' user+system time (from /proc schedstat, all threads) over its slices, per request served.`,
    '',
    r.pinned
      ? `Pinned (\`taskset\`, bench/pin.ts): ${r.pinned}. ${PIN_REASON}`
      : 'Not pinned (no `taskset`, one CPU, or `BENCH_PIN=0`): every process may run on either CPU.',
    ...(r.busy
      ? [
          '',
          `**Other work shared the machine** (other processes used ${(r.otherWork * 100).toFixed(1)} % of its CPU time during the run): rates swung up to ${r.swing}× between rounds (\`perRound\` in bench/results/broker.json), and ratios spread wider. Re-run on a quiet machine before quoting a figure.`,
        ]
      : []),
    '',
    '| contender | c=1 req/s | c=64 req/s | c=1 p50 ms | c=1 p99 ms | c=1 p99 added ms | proxy CPU µs/request c=1 | c=64 | errors | upstream + load generator, CPUs busy c=1 / c=64 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...r.rows.map((row) => `| ${row.label} | ${row.c1} | ${row.c64} | ${row.p50} | ${row.p99} | ${row.p99Added ?? '–'} | ${row.cpuUs1 ?? '–'} | ${row.cpuUs64 ?? '–'} | ${row.errors} | ${row.loadBusy1} / ${row.loadBusy64} |`),
    '',
    `| target (ratios: median [interquartile range] of ${r.rounds} rounds; met when the lower quartile clears it) | measured | met |`,
    '|---|---|---|',
    ...r.targets.map((t) => `| ${t.target} | ${t.value} | ${t.met === null ? '–' : t.met ? 'yes' : '**no**'} |`),
    '',
    ...NOTES,
    END,
  ];
  return `${lines.join('\n')}\n`;
}

/** `markdown` with its S9 section replaced by `section` (appended when it has none). */
export function withBrokerSection(markdown: string, section: string | undefined): string {
  const start = markdown.indexOf(START);
  const end = markdown.indexOf(END);
  const without = start >= 0 && end > start ? markdown.slice(0, start).trimEnd() + '\n' + markdown.slice(end + END.length).replace(/^\n+/, '\n') : markdown;
  if (section === undefined) return without;
  return `${without.trimEnd()}\n\n${section}`;
}

/** The S9 section currently in `markdown`, for a regeneration of the rest of the file to keep. */
export function brokerSectionOf(markdown: string): string | undefined {
  const start = markdown.indexOf(START);
  const end = markdown.indexOf(END);
  return start >= 0 && end > start ? `${markdown.slice(start, end + END.length)}\n` : undefined;
}

/** `markdown` (a regenerated docs/bench.md) with the S9 section the current docs/bench.md holds, kept. */
export function keepBrokerSection(markdown: string): string {
  const docs = join(ROOT, 'docs/bench.md');
  const section = existsSync(docs) ? brokerSectionOf(readFileSync(docs, 'utf8')) : undefined;
  return section === undefined ? markdown : withBrokerSection(markdown, section);
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === 'upstream') await upstreamMode();
  else if (mode === 'floor') await floorMode(Number(rest[0]));
  else if (mode === 'fastify') await fastifyMode(Number(rest[0]));
  else if (mode === 'loadgen') await loadgenMode(Number(rest[0]));
  else if (mode === 'instructions') await countInstructions(Number(rest[0] ?? 3_000), Number(rest[1] ?? 25_000));
  else if (mode === 'latency') await latencyMode(rest[0]!.split(','), Number(rest[1]), Number(rest[2]));
  else {
    await runBrokerBench({ quick: process.argv.includes('--quick') });
    process.exit(0);
  }
}
