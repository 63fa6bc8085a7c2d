/**
 * Runs `oauth-client-credentials serve` as a child process from a config object, and an upstream node:http server that
 * records what reaches it. For the broker's end-to-end tests and its bench scenario.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeServer, listenLocal } from './http.js';

/** The CLI entry point in dist/. */
export const CLI_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** A fresh private temp folder. */
export function tempDir(prefix = 'broker-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A running broker child process. */
export interface BrokerProcess {
  readonly child: ChildProcess;
  readonly configPath: string;
  /** `http://127.0.0.1:PORT` of the proxy. */
  readonly url: string;
  /** `http://127.0.0.1:PORT` of the admin server, when configured. */
  readonly adminUrl: string | undefined;
  /** `http://127.0.0.1:PORT` of the TCP token API, when configured. */
  readonly tokenApiUrl: string | undefined;
  /** Every stdout line, parsed. */
  readonly logs: Record<string, unknown>[];
  /** Raw stdout and stderr text. */
  output(): string;
  /** Resolves with the first log line (from now on, or already seen when `seen`) with `event`. */
  waitFor(event: string, timeoutMs?: number, from?: number): Promise<Record<string, unknown>>;
  /** Sends `signal` and waits for the exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  /** Resolves with the exit code when the process exits. */
  readonly exited: Promise<number | null>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Writes `config` to `dir/broker.json` and starts `serve` on it; resolves once it listens. */
export async function startBrokerProcess(config: unknown, dir: string, env: Record<string, string> = {}, file = 'broker.json'): Promise<BrokerProcess> {
  const configPath = join(dir, file);
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const child = spawn(process.execPath, [CLI_MAIN, 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  running.add(child);
  const logs: Record<string, unknown>[] = [];
  let text = '';
  let pending = '';
  const waiters: { event: string; from: number; resolve: (line: Record<string, unknown>) => void }[] = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
    pending += chunk.toString('utf8');
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!line.trim()) continue;
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        parsed = { event: '(not json)', line };
      }
      logs.push(parsed);
      for (const w of [...waiters]) {
        if (parsed['event'] === w.event && logs.length - 1 >= w.from) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(parsed);
        }
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    running.delete(child);
    resolve(code);
  }));
  const waitFor = (event: string, timeoutMs = 20_000, from = logs.length): Promise<Record<string, unknown>> => {
    const seen = logs.slice(from).find((l) => l['event'] === event);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${event}" log line within ${timeoutMs} ms; output:\n${text}`)), timeoutMs);
      waiters.push({ event, from, resolve: (l) => {
        clearTimeout(timer);
        resolve(l);
      } });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`the broker exited before "${event}"; output:\n${text}`));
      });
    });
  };
  const listening = await waitFor('listening', 30_000, 0);
  const http = (address: unknown): string | undefined => (typeof address === 'string' && !address.startsWith('unix:') ? `http://${address}` : undefined);
  return {
    child,
    configPath,
    url: http(listening['listen'])!,
    adminUrl: http(listening['admin']),
    tokenApiUrl: http(listening['tokenApiListen']),
    logs,
    output: () => text,
    waitFor,
    exited,
    async stop(signal = 'SIGTERM', timeoutMs = 20_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** One request as the upstream saw it. */
export interface UpstreamRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  bodyBytes: number;
  bodySha256: string;
}

/** A recording upstream. */
export interface Upstream {
  readonly url: string;
  readonly port: number;
  readonly requests: UpstreamRequest[];
  close(): Promise<void>;
}

/**
 * An upstream on 127.0.0.1:0. `respond` answers each request after its body was read (default: 200 with the
 * request's method, url, authorization and body digest as JSON). Paths ending in `/echo` stream the body back as it
 * arrives.
 */
export async function startUpstream(respond?: (req: UpstreamRequest, res: ServerResponse, body: Buffer) => void): Promise<Upstream> {
  const requests: UpstreamRequest[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const hash = createHash('sha256');
    let bytes = 0;
    const echo = (req.url ?? '').split('?')[0]!.endsWith('/echo');
    const chunks: Buffer[] = [];
    if (echo) res.writeHead(200, { 'content-type': 'application/octet-stream' });
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
      if (echo) res.write(chunk);
      else if (bytes <= 1_048_576) chunks.push(chunk);
    });
    req.on('end', () => {
      const record: UpstreamRequest = { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes: bytes, bodySha256: hash.digest('hex') };
      requests.push(record);
      if (echo) return void res.end();
      if (respond) return respond(record, res, Buffer.concat(chunks));
      const body = JSON.stringify({ method: record.method, url: record.url, authorization: record.headers.authorization ?? null, bodySha256: record.bodySha256, bodyBytes: bytes });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    });
  });
  const url = await listenLocal(server);
  return { url, port: Number(new URL(url).port), requests, close: () => closeServer(server) };
}

/** Writes `text` to `dir/name` with mode 0600 and returns the path. */
export function secretFile(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}
