/**
 * The benchmark's servers, each run in its own child process (`node dist/bench/servers.js token|api`), so that they
 * never share an event loop with the client being measured.
 *
 * - token: a tiny OAuth 2.0 token endpoint (`POST /token`, client_secret_basic or client_secret_post) that issues
 *   HS256-signed JWT access tokens with a configurable TTL and latency, can fail its next N calls with a 503, can go
 *   down (503 to every call) for a window of time measured from the first token it issued, and records when each token
 *   request arrived.
 * - api: a protected API (`GET /things`) that accepts a token when its signature is good and its `exp` is in the
 *   future, and answers a small JSON document; 401 otherwise.
 *
 * Both talk to the orchestrator over IPC: `{ type: 'config' | 'stats' | 'reset' }` messages, answered with `{ id, … }`.
 * The tokens are JWTs only so that undici-oidc-interceptor (which reads `exp`) can work; the other clients treat them
 * as opaque strings.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The shared HMAC key of the token server and the API (a benchmark fixture, not a secret). */
const SIGNING_KEY = process.env.BENCH_SIGNING_KEY ?? 'bench-signing-key';
/** The only client the token server knows. */
export const BENCH_CLIENT = { id: 'bench-client', secret: 'bench-secret' } as const;

/** Settings of the token server, changed between scenarios over IPC. */
export interface TokenServerConfig {
  /** Token lifetime in seconds (`expires_in`, and the JWT's exact `exp`). */
  ttl: number;
  /** Milliseconds the token endpoint waits before answering. */
  latency: number;
  /** How many of the next token requests fail with 503 `temporarily_unavailable`. */
  failNext: number;
  /**
   * An outage: every token request that arrives from `fromMs` to `toMs` after the first token issued since the last
   * `reset` is answered 503 `temporarily_unavailable` (a real outage of the endpoint, seen by every client alike).
   * Null: none. With `hang`, those requests are accepted and never answered instead (a black-holed route, a stalled
   * load balancer), even after the window.
   */
  outage: { fromMs: number; toMs: number; hang?: boolean } | null;
}

/** Counters a server reports over IPC. */
export interface ServerStats {
  /** Token server: token POSTs received, and when (ms since epoch). API: authenticated GETs, and 401s. */
  requests: number;
  rejected: number;
  times: number[];
  /** TCP connections accepted (API): with keep-alive, about one per concurrent caller. */
  connections?: number;
  /** CPU time the server process spent, in microseconds (user + system), since the last reset. */
  cpuUs?: number;
  /** Token server: when the first token since the last reset was issued (ms since epoch), if one was. */
  firstTokenAt?: number;
  /** Token server: token requests answered 503 because they arrived during the configured outage. */
  outageRejected?: number;
}

type Message = { id: number; type: 'config'; config: Partial<TokenServerConfig> } | { id: number; type: 'stats' } | { id: number; type: 'reset' };

const b64url = (data: string | Buffer): string => Buffer.from(data).toString('base64url');
const HEADER = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));

function sign(input: string): string {
  return createHmac('sha256', SIGNING_KEY).update(input).digest('base64url');
}

/** Issues a signed token that expires `ttl` seconds from now (to the millisecond: `exp` may be fractional). */
function issue(clientId: string, scope: string | undefined, ttl: number, serial: number): string {
  const claims: Record<string, unknown> = { sub: clientId, exp: (Date.now() + ttl * 1000) / 1000, jti: serial.toString(36) };
  if (scope) claims.scope = scope;
  const body = `${HEADER}.${b64url(JSON.stringify(claims))}`;
  return `${body}.${sign(body)}`;
}

/** The expiry in ms of a well-signed token, or undefined. */
function verify(token: string): number | undefined {
  const dot = token.lastIndexOf('.');
  if (dot < 0) return undefined;
  const expected = Buffer.from(sign(token.slice(0, dot)));
  const given = Buffer.from(token.slice(dot + 1));
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, value: unknown, extra: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...extra });
  res.end(body);
}

/** The client id and secret of a token request (Basic header, RFC 6749 §2.3.1 form-decoded; or the body). */
function clientOf(req: IncomingMessage, form: URLSearchParams): { id: string | null; secret: string | null } {
  const header = req.headers.authorization;
  if (header?.startsWith('Basic ')) {
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const dec = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
    return { id: dec(decoded.slice(0, colon)), secret: dec(decoded.slice(colon + 1)) };
  }
  return { id: form.get('client_id'), secret: form.get('client_secret') };
}

function startTokenServer(): ReturnType<typeof createServer> {
  const config: TokenServerConfig = { ttl: 3600, latency: 0, failNext: 0, outage: null };
  const stats: ServerStats = { requests: 0, rejected: 0, times: [], outageRejected: 0 };
  let serial = 0;
  const server = createServer(async (req, res) => {
    // The path alone: MSAL Node adds `?client-request-id=…` to every token request.
    if (req.method !== 'POST' || req.url?.split('?')[0] !== '/token') return json(res, 404, { error: 'not_found' });
    const form = new URLSearchParams(await readBody(req));
    stats.requests++;
    const now = Date.now();
    stats.times.push(now);
    const { outage } = config;
    if (outage && stats.firstTokenAt !== undefined && now >= stats.firstTokenAt + outage.fromMs && now < stats.firstTokenAt + outage.toMs) {
      stats.rejected++;
      stats.outageRejected!++;
      if (outage.hang) return; // never answered
      return json(res, 503, { error: 'temporarily_unavailable', error_description: 'the token endpoint is down (benchmark outage)' });
    }
    if (config.failNext > 0) {
      config.failNext--;
      stats.rejected++;
      return json(res, 503, { error: 'temporarily_unavailable', error_description: 'the benchmark asked for a failure' });
    }
    const client = clientOf(req, form);
    if (client.id !== BENCH_CLIENT.id || client.secret !== BENCH_CLIENT.secret) {
      stats.rejected++;
      return json(res, 401, { error: 'invalid_client' }, { 'www-authenticate': 'Basic realm="bench"' });
    }
    if (form.get('grant_type') !== 'client_credentials') return json(res, 400, { error: 'unsupported_grant_type' });
    const scope = form.get('scope') ?? undefined;
    const ttl = config.ttl;
    const answer = () => {
      stats.firstTokenAt ??= Date.now();
      const response: Record<string, unknown> = { access_token: issue(client.id!, scope, ttl, ++serial), token_type: 'Bearer', expires_in: ttl };
      if (scope) response.scope = scope;
      json(res, 200, response);
    };
    if (config.latency > 0) setTimeout(answer, config.latency);
    else answer();
  });
  process.on('message', (message: Message) => {
    if (message.type === 'config') Object.assign(config, message.config);
    if (message.type === 'reset') {
      stats.requests = 0;
      stats.rejected = 0;
      stats.times = [];
      stats.outageRejected = 0;
      delete stats.firstTokenAt;
    }
    process.send!({ id: message.id, config, stats });
  });
  return server;
}

const THINGS = JSON.stringify({ items: [{ id: 1, name: 'one' }, { id: 2, name: 'two' }], next: null });

function startApi(): ReturnType<typeof createServer> {
  const stats: ServerStats = { requests: 0, rejected: 0, times: [] };
  /** Verified tokens and their expiry: the signature is checked once per token, the expiry on every request. */
  const verified = new Map<string, number>();
  const server = createServer((req, res) => {
    stats.requests++;
    const header = req.headers.authorization;
    let ok = false;
    if (header !== undefined && header.startsWith('Bearer ')) {
      const token = header.slice(7);
      let exp = verified.get(token);
      if (exp === undefined) {
        exp = verify(token) ?? 0;
        if (verified.size > 50_000) verified.clear();
        verified.set(token, exp);
      }
      ok = Date.now() < exp;
    }
    if (!ok) {
      stats.rejected++;
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' });
      res.end('{"error":"invalid_token"}');
      return;
    }
    if (req.url !== '/things' && !req.url?.startsWith('/things?')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not_found"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(THINGS) });
    res.end(THINGS);
  });
  let connections = 0;
  let cpuSince = process.cpuUsage();
  server.on('connection', () => connections++);
  process.on('message', (message: Message) => {
    if (message.type === 'reset') {
      stats.requests = 0;
      stats.rejected = 0;
      connections = 0;
      cpuSince = process.cpuUsage();
    }
    const cpu = process.cpuUsage(cpuSince);
    process.send!({ id: message.id, stats: { requests: stats.requests, rejected: stats.rejected, times: [], connections, cpuUs: cpu.user + cpu.system } });
  });
  return server;
}

/** Child process entry: start the server named in argv[2], listen on 127.0.0.1:0, report the port. */
function main(): void {
  const kind = process.argv[2];
  const server = kind === 'token' ? startTokenServer() : kind === 'api' ? startApi() : undefined;
  if (!server || !process.send) {
    console.error('usage: node dist/bench/servers.js token|api (as a child process with IPC)');
    process.exit(2);
  }
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  server.maxRequestsPerSocket = 0;
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    process.send!({ ready: true, url: `http://127.0.0.1:${port}` });
  });
  process.on('disconnect', () => process.exit(0));
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) main();
