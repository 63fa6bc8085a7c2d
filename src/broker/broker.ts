/**
 * The broker's composition root: reads the configuration, opens the clients and the token store, starts the proxy,
 * admin and token API servers, re-reads secret and key files when they change, reloads the configuration on demand
 * (a bad one keeps the old and logs why), and shuts down draining in-flight requests within a grace period.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { jsonSyntaxProblem } from '../cli/failure.js';
import { InvalidOptionError } from '../errors.js';
import { fileReadProblem, MAX_FILE_BYTES, readSmallRegularFile } from '../io/smallFile.js';
import { Redactor } from '../redaction.js';
import type { TokenStore } from '../stores/tokenStore.js';
import { createAdminHandler } from './admin.js';
import { openBrokerClient, type BrokerClient } from './clients.js';
import { parseBrokerConfig, type BrokerConfig } from './config.js';
import { describeEndpoint, type Endpoint } from './endpoint.js';
import { createLog, describeError, type Log } from './log.js';
import { BrokerMetrics } from './metrics.js';
import { createProxyHandler, MAX_HEADER_FIELDS, refuseTunnel, type ProxyState } from './proxy.js';
import { compileRoutes } from './routes.js';
import { ApiKeys, createTokenApiHandler } from './tokenApi.js';
import { UpstreamPools } from './upstreams.js';
import { FileWatcher } from './watch.js';

/** How to start a broker. */
export interface BrokerOptions {
  /** The JSON configuration file (absolute). */
  readonly configPath: string;
  /** Where `${ENV}` references are looked up. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Receives each log line (JSON, newline-terminated). */
  readonly write: (line: string) => void;
  readonly userAgent: string;
}

/** A running broker. */
export interface Broker {
  /** The addresses listened on, as `host:port` or `unix:/path` (ports resolved when 0 was asked). */
  readonly addresses: Readonly<Record<'listen' | 'admin' | 'tokenApiSocket' | 'tokenApiListen', string | undefined>>;
  /** Reloads the configuration file; false (and the old configuration kept) when it is bad. */
  reload(): Promise<boolean>;
  /** Stops accepting, waits for in-flight requests up to the grace period, then closes everything. */
  shutdown(): Promise<void>;
}

/** Reads and validates the configuration file. @throws InvalidOptionError naming the JSON path. */
export async function loadBrokerConfig(path: string, env: Readonly<Record<string, string | undefined>>): Promise<BrokerConfig> {
  let text: string;
  try {
    text = await readSmallRegularFile(path, MAX_FILE_BYTES.config);
  } catch (error) {
    throw new InvalidOptionError('--config', `names a file that cannot be read (${path}: ${fileReadProblem(error)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    // Never V8's message as it is: it quotes the text around the error, an inline secret included.
    throw new InvalidOptionError('--config', `names a file that is not valid JSON (${path}: ${jsonSyntaxProblem(error)})`);
  }
  return parseBrokerConfig(json, env);
}

interface State extends ProxyState {
  readonly config: BrokerConfig;
}

/**
 * Whether a process accepts connections on the Unix socket at `path`. Only a refused connection (a socket file left
 * by a process that ended) says it is free: a socket that cannot be probed is not taken either.
 */
function socketInUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code !== 'ECONNREFUSED' && error.code !== 'ENOENT'));
  });
}

/** Listens on `endpoint` (the value of config `option`); a Unix socket file is replaced only when no process uses it. */
async function listen(server: Server, endpoint: Endpoint, option: string, mode?: number): Promise<string> {
  if (endpoint.kind === 'unix' && lstatSync(endpoint.path, { throwIfNoEntry: false })?.isSocket()) {
    if (await socketInUse(endpoint.path)) throw new InvalidOptionError(option, `names ${endpoint.path}, a socket in use by a running process (another broker?): stop it, or choose another path`);
    try {
      unlinkSync(endpoint.path);
    } catch {
      // listen reports the real problem
    }
  }
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    if (endpoint.kind === 'unix') {
      // The socket is created under this umask, so it is never reachable by others, even for a moment.
      const previous = mode !== undefined ? process.umask(0o777 & ~mode) : undefined;
      try {
        server.listen(endpoint.path, () => {
          server.off('error', reject);
          if (mode !== undefined) chmodSync(endpoint.path, mode);
          resolve(describeEndpoint(endpoint));
        });
      } finally {
        if (previous !== undefined) process.umask(previous);
      }
      return;
    }
    server.listen(endpoint.port, endpoint.host, () => {
      server.off('error', reject);
      resolve(describeEndpoint(endpoint, (server.address() as AddressInfo).port));
    });
  });
}

/** The status of a request Node's parser refuses, by its error code (as Node's own default answers); else 400. */
const CLIENT_ERROR_STATUS: Readonly<Record<string, string>> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Payload Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 60_000 }, handler);
  server.maxHeadersCount = MAX_HEADER_FIELDS;
  server.on('connect', (_req, socket) => refuseTunnel(socket, 405));
  server.on('upgrade', (_req, socket) => refuseTunnel(socket, 501));
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (socket.writable) socket.end(`HTTP/1.1 ${CLIENT_ERROR_STATUS[error.code ?? ''] ?? '400 Bad Request'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    else socket.destroy();
  });
  return server;
}

async function openStore(url: string, log: Log): Promise<{ store: TokenStore | undefined; close(): Promise<void> }> {
  if (url === 'memory') return { store: undefined, close: async () => undefined };
  const [{ createClient }, { RedisTokenStore }] = await Promise.all([import('redis'), import('../stores/redis.js')]);
  const redis = createClient({ url });
  redis.on('error', (error: unknown) => log('warn', 'token_store_error', { error: describeError(error) }));
  await redis.connect();
  const store = new RedisTokenStore({ client: redis });
  return {
    store,
    close: async () => {
      await store.close?.();
      await redis.close().catch(() => undefined);
    },
  };
}

const CLIENT_EVENTS = ['tokenFetched', 'tokenRefreshed', 'refreshFailed', 'tokenInvalidated', 'circuitOpen', 'circuitClosed', 'storeError'] as const;

/** Logs a client's lifecycle events (they carry no secret and no token). */
function logEvents(client: BrokerClient, log: Log): void {
  for (const name of CLIENT_EVENTS) {
    client.client.on(name, (event) => {
      const e = event as unknown as Record<string, unknown>;
      const fields: Record<string, unknown> = { client: client.name };
      if (typeof e['source'] === 'string') fields['source'] = e['source'];
      if (typeof e['expiresAtMs'] === 'number') fields['expiresAt'] = new Date(e['expiresAtMs']).toISOString();
      if (typeof e['reason'] === 'string') fields['reason'] = e['reason'];
      if (e['error'] !== undefined) fields['error'] = describeError(e['error']);
      if (typeof e['failures'] === 'number') fields['failures'] = e['failures'];
      log(name === 'refreshFailed' || name === 'circuitOpen' || name === 'storeError' ? 'warn' : 'info', name, fields);
    });
  }
}

/** Closes clients (and their own upstream pools) a little later, so that requests that already hold them finish. */
function retire(clients: Iterable<BrokerClient>, afterMs: number, upstreams: UpstreamPools): void {
  const list = [...clients];
  if (list.length === 0) return;
  setTimeout(() => void Promise.all(list.flatMap((c) => [c.client.close(), upstreams.release(c.upstreamTls)])), afterMs).unref();
}

/**
 * Starts a broker from its configuration file.
 * @throws InvalidOptionError for a bad configuration (naming the JSON path) or a file that cannot be read.
 */
export async function startBroker(options: BrokerOptions): Promise<Broker> {
  const redactor = new Redactor();
  const log = createLog(options.write, Date.now, redactor);
  const baseDir = dirname(options.configPath);
  const config = await loadBrokerConfig(options.configPath, options.env);
  const metrics = new BrokerMetrics();
  const storeHandle = await openStore(config.tokenStore, log);

  const open = async (cfg: BrokerConfig, previous?: ReadonlyMap<string, BrokerClient>): Promise<{ clients: Map<string, BrokerClient>; fresh: BrokerClient[]; kept: Set<string> }> => {
    const clients = new Map<string, BrokerClient>();
    const fresh: BrokerClient[] = [];
    const kept = new Set<string>();
    try {
      for (const clientConfig of cfg.clients.values()) {
        const old = previous?.get(clientConfig.name);
        const opened = await openBrokerClient(clientConfig, { baseDir, tokenStore: storeHandle.store, userAgent: options.userAgent, dpopKey: old?.dpopKey, presetToken: undefined });
        if (old && old.fingerprint === opened.fingerprint) {
          void opened.client.close();
          clients.set(old.name, old);
          kept.add(old.name);
        } else {
          fresh.push(opened);
          clients.set(opened.name, opened);
        }
      }
    } catch (error) {
      await Promise.all(fresh.map((c) => c.client.close()));
      throw error;
    }
    for (const c of fresh) {
      for (const secret of c.secrets) redactor.add(secret);
      logEvents(c, log);
    }
    return { clients, fresh, kept };
  };

  const keys = config.tokenApi?.listen?.kind === 'tcp' ? new ApiKeys() : undefined;
  const keyPath = config.tokenApi?.keyFile === undefined ? undefined : config.tokenApi.keyFile.startsWith('/') ? config.tokenApi.keyFile : `${baseDir}/${config.tokenApi.keyFile}`;
  const loadKeys = async (): Promise<void> => {
    if (!keys || keyPath === undefined) return;
    let text: string;
    try {
      text = await readSmallRegularFile(keyPath, MAX_FILE_BYTES.config);
    } catch (error) {
      throw new InvalidOptionError('tokenApi.keyFile', `names a file that cannot be read (${keyPath}: ${fileReadProblem(error)})`);
    }
    if (keys.load(text) === 0) throw new InvalidOptionError('tokenApi.keyFile', `names a file with no key (${keyPath})`);
  };
  await loadKeys();

  let state: State;
  {
    const { clients } = await open(config);
    state = { config, clients, routes: compileRoutes(config.routes), upstreamTimeoutMs: config.upstreamTimeoutMs };
  }
  let draining = false;
  const upstreams = new UpstreamPools({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connect: { timeout: 10_000 } });

  // Reloads and rotated files are taken in one at a time, each from the state the previous one left: two at once
  // would each build on the state they started from, and the later to finish would undo the other.
  let changing: Promise<unknown> = Promise.resolve();
  const oneAtATime = <T>(change: () => Promise<T>): Promise<T> => {
    const done = changing.then(change, change);
    changing = done.catch(() => undefined);
    return done;
  };
  const watcher = new FileWatcher(config.watchIntervalMs, (paths) => void oneAtATime(() => filesChanged(paths)));
  const watchAll = (): Promise<void> => watcher.watch([...[...state.clients.values()].flatMap((c) => c.files), ...(keyPath !== undefined ? [keyPath] : [])]);

  /** Re-opens the clients built from a changed file, each starting with the token its predecessor held. */
  async function filesChanged(paths: string[]): Promise<void> {
    if (draining) return;
    const changed = new Set(paths);
    if (keyPath !== undefined && changed.has(keyPath)) {
      try {
        await loadKeys();
        log('info', 'keys_reloaded', { file: keyPath });
      } catch (error) {
        log('error', 'keys_reload_failed', { file: keyPath, error: describeError(error) });
      }
    }
    const clients = new Map(state.clients);
    const retired: BrokerClient[] = [];
    for (const old of state.clients.values()) {
      if (!old.files.some((f) => changed.has(f))) continue;
      try {
        const opened = await openBrokerClient(old.config, { baseDir, tokenStore: storeHandle.store, userAgent: options.userAgent, dpopKey: old.dpopKey, presetToken: old.access.peek(old.key) });
        for (const secret of opened.secrets) redactor.add(secret);
        logEvents(opened, log);
        clients.set(old.name, opened);
        retired.push(old);
        log('info', 'client_files_reloaded', { client: old.name, files: old.files.filter((f) => changed.has(f)) });
      } catch (error) {
        log('error', 'client_files_reload_failed', { client: old.name, error: describeError(error) });
      }
    }
    if (retired.length) {
      state = { ...state, clients };
      retire(retired, state.upstreamTimeoutMs, upstreams);
    }
    await watchAll();
  }

  const proxy = httpServer(createProxyHandler({ state: () => state, upstreams, metrics, log, draining: () => draining, via: `oauth-broker-${randomBytes(4).toString('hex')}` }));
  const servers: Server[] = [proxy];
  const addresses: Record<'listen' | 'admin' | 'tokenApiSocket' | 'tokenApiListen', string | undefined> = { listen: undefined, admin: undefined, tokenApiSocket: undefined, tokenApiListen: undefined };
  try {
    addresses.listen = await listen(proxy, config.listen, 'listen', config.listen.kind === 'unix' ? 0o600 : undefined);
    if (config.admin) {
      const admin = httpServer(createAdminHandler({ clients: () => state.clients, metrics, readyTimeoutMs: 10_000, draining: () => draining }));
      servers.push(admin);
      addresses.admin = await listen(admin, config.admin, 'admin', config.admin.kind === 'unix' ? 0o600 : undefined);
    }
    if (config.tokenApi?.socket !== undefined) {
      const api = httpServer(createTokenApiHandler({ clients: () => state.clients, keys: undefined, metrics, log, now: Date.now }));
      servers.push(api);
      addresses.tokenApiSocket = await listen(api, { kind: 'unix', path: config.tokenApi.socket }, 'tokenApi.socket', 0o600);
    }
    if (config.tokenApi?.listen !== undefined) {
      const tcp = config.tokenApi.listen;
      const api = httpServer(createTokenApiHandler({ clients: () => state.clients, keys: tcp.kind === 'tcp' ? keys : undefined, metrics, log, now: Date.now }));
      servers.push(api);
      addresses.tokenApiListen = await listen(api, tcp, 'tokenApi.listen', tcp.kind === 'unix' ? 0o600 : undefined);
    }
  } catch (error) {
    for (const server of servers) server.close();
    await Promise.all([...state.clients.values()].map((c) => c.client.close()));
    await storeHandle.close();
    watcher.close();
    throw error;
  }
  await watchAll();
  log('info', 'listening', { ...addresses, clients: [...state.clients.keys()], routes: config.routes.map((r) => r.path), tokenStore: config.tokenStore === 'memory' ? 'memory' : 'redis' });

  const reloadNow = async (): Promise<boolean> => {
    if (draining) return false;
    let next: BrokerConfig;
    let opened;
    try {
      next = await loadBrokerConfig(options.configPath, options.env);
      opened = await open(next, state.clients);
    } catch (error) {
      metrics.reloaded(false);
      log('error', 'reload_failed', { reason: describeError(error), kept: 'the previous configuration' });
      return false;
    }
    const unchanged = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
    // Settings read once at start, by their names in the file.
    const needsRestart = (['listen', 'admin', 'tokenApi', 'tokenStore', 'allowRemote', 'watchIntervalMs'] as const)
      .filter((k) => !unchanged(config[k], next[k]))
      .map((k) => (k === 'watchIntervalMs' ? 'watchIntervalSeconds' : k));
    if (needsRestart.length) log('warn', 'restart_needed', { settings: needsRestart, note: 'these settings take effect at the next start' });
    const retired = [...state.clients.values()].filter((c) => !opened.kept.has(c.name));
    const previousTimeoutMs = state.upstreamTimeoutMs;
    state = { config: next, clients: opened.clients, routes: compileRoutes(next.routes), upstreamTimeoutMs: next.upstreamTimeoutMs };
    retire(retired, Math.max(previousTimeoutMs, next.upstreamTimeoutMs), upstreams);
    await watchAll();
    metrics.reloaded(true);
    log('info', 'reloaded', { clients: [...opened.clients.keys()], reopened: opened.fresh.map((c) => c.name), routes: next.routes.map((r) => r.path) });
    return true;
  };

  let shutting: Promise<void> | undefined;
  const shutdown = (): Promise<void> =>
    (shutting ??= (async () => {
      draining = true;
      const graceMs = state.config.shutdownGraceMs;
      log('info', 'draining', { graceSeconds: graceMs / 1000 });
      watcher.close();
      const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      const idle = setInterval(() => servers.forEach((s) => s.closeIdleConnections()), 50);
      let timer: NodeJS.Timeout | undefined;
      const expired = await Promise.race([closed.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)))]);
      clearInterval(idle);
      clearTimeout(timer);
      if (expired) {
        log('warn', 'grace_expired', { note: 'connections still open were closed' });
        servers.forEach((s) => s.closeAllConnections());
      }
      await Promise.all([...state.clients.values()].map((c) => c.client.close()));
      await upstreams.close().catch(() => undefined);
      await storeHandle.close();
      log('info', 'stopped', {});
    })());

  return { addresses, reload: () => oneAtATime(reloadNow), shutdown };
}
