/**
 * S9, the broker scenario (`node dist/bench/run.js --only S9`, or `node dist/bench/broker.js`): requests through
 * `client-credentials serve` against, side by side in one run and on one Node upstream:
 *   direct   straight to the upstream (no proxy)
 *   floor    a minimal undici pass-through with a fixed Authorization header (the Node floor)
 *   fastify  a minimal Node proxy on @fastify/http-proxy with a token hook (what a Node team would write)
 *   nginx    Debian's nginx, one worker, keep-alive upstream, a fixed Authorization header (the limit of a proxy)
 *   broker   `client-credentials serve` (the token from its Client, route matching, header filtering)
 * Rounds alternate the contenders; each rate is the median of its rounds. Latency at c=1 comes from a probe that sends
 * one request at a time to each contender in turn, so that every contender's latencies come from the same moments
 * (a burst of other work on the shared machine touches all alike); "added" is a proxy's p99 minus the direct p99 of
 * the same probe, shown for the floor too (what a Node hop costs here before any broker logic).
 *
 * The same file is each child process: `upstream`, `floor`, `fastify`, `load` and `latency` are modes of this script;
 * `instructions` counts the floor's and the broker's instructions per request under valgrind (see countInstructions).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { cpus, tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Pool, type Dispatcher } from 'undici';

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

/** The load generator: `concurrency` loops of GET for `windowMs` after `warmupMs`; prints { rps, errors, total }. */
async function loadMode(url: string, concurrency: number, warmupMs: number, windowMs: number): Promise<void> {
  const pool = new Pool(url, { connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
  let phase: 'warmup' | 'measure' | 'done' = 'warmup';
  let count = 0;
  let errors = 0;
  let total = 0;
  const loop = async (): Promise<void> => {
    while (phase !== 'done') {
      let ok = false;
      try {
        const res = await pool.request({ path: PATH, method: 'GET', headers: CALLER_HEADERS });
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
  await new Promise((r) => setTimeout(r, warmupMs));
  phase = 'measure';
  const start = performance.now();
  await new Promise((r) => setTimeout(r, windowMs));
  const elapsed = performance.now() - start;
  const measured = count;
  phase = 'done';
  await Promise.all(loops);
  await pool.close();
  process.stdout.write(`${JSON.stringify({ rps: (measured / elapsed) * 1000, errors, total })}\n`);
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

/** CPU time used so far by `pids`, in ms (Linux /proc; 0 elsewhere). */
function cpuMs(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks * 10;
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

async function load(port: number, concurrency: number, warmupMs: number, windowMs: number): Promise<{ rps: number; errors: number; total: number }> {
  const child = spawn(process.execPath, [SELF, 'load', `http://127.0.0.1:${port}`, String(concurrency), String(warmupMs), String(windowMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  await new Promise((r) => child.once('exit', r));
  return JSON.parse(text) as { rps: number; errors: number; total: number };
}

async function latencyProbe(ports: number[], warmupMs: number, windowMs: number): Promise<{ latencies: number[][]; errors: number[] }> {
  const child = spawn(process.execPath, [SELF, 'latency', ports.map((p) => `http://127.0.0.1:${p}`).join(','), String(warmupMs), String(windowMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  await new Promise((r) => child.once('exit', r));
  return JSON.parse(text) as { latencies: number[][]; errors: number[] };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function percentile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** One contender's figures. */
export interface BrokerBenchRow {
  name: string;
  label: string;
  c1: number;
  c64: number;
  p50: number;
  p99: number;
  /** The p99 minus the direct p99 (same probe), in ms; null for the direct calls. */
  p99Added: number | null;
  /** CPU time of the proxy's processes per request, in µs (warm-up included); null for the direct calls. */
  cpuUs: number | null;
  errors: number;
}

/** The S9 results. */
export interface BrokerBenchResults {
  date: string;
  command: string;
  machine: string;
  loadAverage: number[];
  cores: number;
  /** Largest max/min of one contender's per-round rates. */
  swing: number;
  rounds: number;
  windowMs: number;
  rows: BrokerBenchRow[];
  /** Each round's rate per contender, in run order of rounds. */
  perRound: Record<string, { c1: number[]; c64: number[] }>;
  targets: { target: string; value: string; met: boolean }[];
}

const LABELS: Record<string, string> = {
  direct: 'straight to the upstream (no proxy)',
  broker: '`client-credentials serve`',
  floor: 'minimal undici pass-through, fixed header (Node floor)',
  fastify: '@fastify/http-proxy with a token hook',
  nginx: 'nginx 1 worker, keep-alive upstream, fixed header',
};

/** Runs S9 and writes bench/results/broker.json and the broker section of docs/bench.md. */
export async function runBrokerBench(options: { quick?: boolean; write?: boolean } = {}): Promise<BrokerBenchResults> {
  const rounds = options.quick ? 1 : 7;
  const windowMs = options.quick ? 400 : 1_000;
  const warmupMs = options.quick ? 200 : 400;
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  log(`S9 broker: direct, floor, fastify, nginx, broker × c=1,64 × ${rounds} rounds of ${windowMs} ms`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-broker-'));
  const upstream = await startChild(['upstream']);
  const running: Record<string, Running> = { direct: { port: upstream.port, pids: [], stop: async () => undefined } };
  const stops: Running[] = [upstream];
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
    const names = Object.keys(running);
    const rps: Record<string, { c1: number[]; c64: number[] }> = {};
    const lat: Record<string, number[]> = {};
    const errors: Record<string, number> = {};
    const cpu: Record<string, { ms: number; requests: number }> = {};
    for (const n of names) {
      rps[n] = { c1: [], c64: [] };
      lat[n] = [];
      errors[n] = 0;
      cpu[n] = { ms: 0, requests: 0 };
    }
    // Each contender warmed (JIT, pools, the broker's first token) before any measured round.
    for (const n of names) await load(running[n]!.port, 64, 0, options.quick ? 200 : 1_000);
    for (let round = 0; round < rounds; round++) {
      const order = names.map((_, i) => names[(i + round) % names.length]!);
      for (const c of [1, 64] as const) {
        for (const n of order) {
          const pids = running[n]!.pids;
          const before = cpuMs(pids);
          const r = await load(running[n]!.port, c, warmupMs, windowMs);
          cpu[n]!.ms += cpuMs(pids) - before;
          cpu[n]!.requests += r.total;
          rps[n]![c === 1 ? 'c1' : 'c64'].push(r.rps);
          errors[n]! += r.errors;
        }
      }
      // c=1 latency: every contender in turn, request by request (the order rotates with the rounds too).
      const probe = await latencyProbe(order.map((n) => running[n]!.port), warmupMs, windowMs * order.length);
      order.forEach((n, i) => {
        lat[n]!.push(...probe.latencies[i]!);
        errors[n]! += probe.errors[i]!;
      });
      log(`  round ${round + 1}/${rounds}: ${names.map((n) => `${n} ${Math.round(rps[n]!.c1.at(-1)!)}/${Math.round(rps[n]!.c64.at(-1)!)}`).join(', ')} req/s (c=1/c=64)`);
    }
    const directP99 = percentile(lat['direct']!, 0.99);
    const rows: BrokerBenchRow[] = names.map((n) => ({
      name: n,
      label: LABELS[n]!,
      c1: Math.round(median(rps[n]!.c1)),
      c64: Math.round(median(rps[n]!.c64)),
      p50: Number(percentile(lat[n]!, 0.5).toFixed(3)),
      p99: Number(percentile(lat[n]!, 0.99).toFixed(3)),
      p99Added: n === 'direct' ? null : Number((percentile(lat[n]!, 0.99) - directP99).toFixed(3)),
      cpuUs: n === 'direct' ? null : Math.round((cpu[n]!.ms * 1000) / Math.max(1, cpu[n]!.requests)),
      errors: errors[n]!,
    }));
    const row = (n: string): BrokerBenchRow | undefined => rows.find((r) => r.name === n);
    const broker = row('broker')!;
    const targets: BrokerBenchResults['targets'] = [];
    /** The median over rounds of the broker's rate over `other`'s in the same round (back to back). */
    const pairRatio = (other: string, c: 'c1' | 'c64'): number => Number(median(rps['broker']![c].map((v, i) => v / rps[other]![c][i]!)).toFixed(3));
    for (const c of ['c1', 'c64'] as const) {
      const at = c === 'c1' ? 'c=1' : 'c=64';
      const floor = pairRatio('floor', c);
      targets.push({ target: `${at}: ≥ 0.95 of the minimal undici proxy`, value: `${floor} (median of ${rounds} same-round ratios)`, met: floor >= 0.95 });
      const fastify = pairRatio('fastify', c);
      targets.push({ target: `${at}: ahead of the fastify proxy`, value: `${fastify}×`, met: fastify > 1 });
      if (row('nginx')) {
        const nginx = pairRatio('nginx', c);
        targets.push({ target: `${at}: ≥ ${c === 'c1' ? '0.7' : '0.9'} of nginx`, value: String(nginx), met: nginx >= (c === 'c1' ? 0.7 : 0.9) });
      }
    }
    const added = broker.p99Added!;
    targets.push({ target: 'c=1: p99 latency added by the broker ≤ 1 ms', value: `${added} ms (p99 ${broker.p99} vs ${row('direct')!.p99} ms direct; the floor adds ${row('floor')!.p99Added} ms)`, met: added <= 1 });
    const results: BrokerBenchResults = {
      date: new Date().toISOString(),
      command: options.quick ? 'node dist/bench/run.js --only S9 --quick' : 'node dist/bench/run.js --only S9',
      machine: `${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
      loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
      cores: cpus().length,
      swing: Number(Math.max(...names.flatMap((n) => [rps[n]!.c1, rps[n]!.c64].map((v) => Math.max(...v) / Math.min(...v)))).toFixed(1)),
      rounds,
      windowMs,
      rows,
      perRound: Object.fromEntries(names.map((n) => [n, { c1: rps[n]!.c1.map(Math.round), c64: rps[n]!.c64.map(Math.round) }])),
      targets,
    };
    for (const row of rows) log(`  ${row.name}: ${row.c1}/${row.c64} req/s, p50 ${row.p50} ms, p99 ${row.p99} ms (added ${row.p99Added ?? '-'}), CPU ${row.cpuUs ?? '-'} µs/request, ${row.errors} errors`);
    for (const t of targets) log(`  ${t.met ? 'met' : 'MISSED'}: ${t.target}: ${t.value}`);
    if (options.write !== false && !options.quick) {
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
 * User-space instructions per proxied request, counted by valgrind's callgrind (`node dist/bench/broker.js
 * instructions [requests]`): the floor and the broker, each started under callgrind with counting off, warmed with
 * 10,000 requests at c=8, then counted over `requests` more. Unlike CPU time, an instruction count hardly moves with
 * the other work on a shared machine; the kernel's share (the same syscalls for both, under `strace -c`) is not in it.
 */
async function countInstructions(requests: number): Promise<void> {
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
      await drive(port, 10_000);
      const control = (...a: string[]): void => void execFileSync('callgrind_control', [...a, String(child.pid)], { stdio: 'ignore' });
      control('--instr=on');
      await drive(port, requests);
      control('--dump');
      control('--instr=off');
      await stopProcess(child);
      const dump = readdirSync(dir).filter((f) => f.startsWith(`${name}.callgrind`)).sort().at(-1)!;
      const total = Number(/^(?:summary|totals): (\d+)/m.exec(readFileSync(join(dir, dump), 'utf8'))?.[1]);
      process.stdout.write(`${name}: ${Math.round(total / requests)} instructions per request (${total} over ${requests})\n`);
    }
  } finally {
    await upstream.stop();
  }
}

const START = '<!-- S9 broker: generated by bench/broker.ts; kept by bench/run.ts -->';
const END = '<!-- /S9 broker -->';

/** The S9 section of docs/bench.md. */
export function renderBrokerSection(r: BrokerBenchResults): string {
  const lines = [
    START,
    '## S9: the token broker (`client-credentials serve`) as a reverse proxy',
    '',
    `Measured ${r.date.slice(0, 10)} with \`${r.command}\` on ${r.machine} (load average ${r.loadAverage.join(', ')} at the end: other work shared the machine).`,
    `One Node upstream answering a small JSON body; each proxy forwards \`GET /api/items/42\` to it over keep-alive connections; the load generator is a separate process. ${r.rounds} rounds alternate the contenders; each rate is the median of the rounds (${r.windowMs} ms windows), each target ratio the median of the same-round ratios (back to back, so a burst of load elsewhere hits both sides); latencies come from a c=1 probe that sends one request at a time to each contender in turn (${r.rounds} × ${(r.windowMs * r.rows.length) / 1000} s), so that all are measured at the same moments, and "p99 added" is a contender's p99 minus the direct p99 of that probe; CPU is the proxy processes' user+system time (from /proc) per request served.`,
    ...(r.loadAverage[0]! > r.cores
      ? [
          '',
          `**The machine was loaded** (load average ${r.loadAverage[0]} on ${r.cores} cores, from other engineers' builds and tests): a contender's rate swung up to ${r.swing}× between rounds (\`perRound\` in bench/results/broker.json). The rates and ratios below say more about the load than about the code; the CPU column (the proxy's own CPU time per request) is the steadier comparison. Re-run on a quiet machine before quoting a ratio.`,
        ]
      : []),
    '',
    '| contender | c=1 req/s | c=64 req/s | c=1 p50 ms | c=1 p99 ms | c=1 p99 added ms | proxy CPU µs/request | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...r.rows.map((row) => `| ${row.label} | ${row.c1} | ${row.c64} | ${row.p50} | ${row.p99} | ${row.p99Added ?? '–'} | ${row.cpuUs ?? '–'} | ${row.errors} |`),
    '',
    '| target | measured | met |',
    '|---|---|---|',
    ...r.targets.map((t) => `| ${t.target} | ${t.value} | ${t.met ? 'yes' : '**no**'} |`),
    '',
    'The broker does per request what the floor does (one undici dispatch, headers copied once) plus route matching, the',
    'path safety check, hop-by-hop filtering, and the token from its Client\'s lifecycle (a cached-token read); nginx',
    'and the floor send a fixed header and hold no token logic at all. CPU time and rates move with the other work on',
    'this shared machine; `node dist/bench/broker.js instructions` counts user-space instructions per request under',
    'valgrind instead, which it hardly moves (docs/broker.md, Performance).',
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
  else if (mode === 'load') await loadMode(rest[0]!, Number(rest[1]), Number(rest[2]), Number(rest[3]));
  else if (mode === 'instructions') await countInstructions(Number(rest[0] ?? 5_000));
  else if (mode === 'latency') await latencyMode(rest[0]!.split(','), Number(rest[1]), Number(rest[2]));
  else {
    await runBrokerBench({ quick: process.argv.includes('--quick') });
    process.exit(0);
  }
}
