import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** A redis-server child process owned by the test. */
export interface RedisHandle {
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  /** Whether the server process is currently running. */
  readonly running: boolean;
  /** Stops the server (SIGTERM, or SIGKILL with `hard: true`) and waits for the process to exit. */
  stop(options?: { hard?: boolean }): Promise<void>;
  /** (Re)starts the server on the same port and waits until it answers PING. */
  start(): Promise<void>;
  /** Kills the server for good. */
  close(): Promise<void>;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Locates redis-server ($REDIS_SERVER, then PATH, then /usr/bin) or throws a clear error. */
export function findRedisServer(): string {
  const candidates = [
    process.env.REDIS_SERVER,
    ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, 'redis-server')),
    '/usr/bin/redis-server',
  ].filter((c): c is string => Boolean(c));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error('redis-server not found (looked at $REDIS_SERVER, PATH and /usr/bin/redis-server); install it, e.g. `apt-get install redis-server`');
}

/** Finds a free TCP port on 127.0.0.1 (listen on 0, read the port, close). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Sends a raw `PING` and resolves true on `+PONG`. */
function ping(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      buf += d.toString('utf8');
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

/** Spawns `redis-server` on a free 127.0.0.1 port with persistence off and waits until it answers PING. */
export async function startRedis(): Promise<RedisHandle> {
  const bin = findRedisServer();
  const port = await freePort();
  let child: ChildProcess | undefined;
  let closed = false;

  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of running) c.kill('SIGKILL');
    });
  }

  const waitExit = (c: ChildProcess): Promise<void> =>
    c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((resolve) => c.once('exit', () => resolve()));

  const start = async (): Promise<void> => {
    if (closed) throw new Error('redis helper already closed');
    if (child) return;
    const c = spawn(bin, ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (d: Buffer): void => {
      output = (output + d.toString('utf8')).slice(-4000);
    };
    c.stdout?.on('data', collect);
    c.stderr?.on('data', collect);
    let spawnError: Error | undefined;
    c.once('error', (err) => {
      spawnError = err;
    });
    running.add(c);
    c.once('exit', () => {
      running.delete(c);
      if (child === c) child = undefined;
    });
    child = c;

    const deadline = Date.now() + 10_000;
    for (;;) {
      if (spawnError) throw new Error(`could not spawn ${bin}: ${spawnError.message}`);
      if (c.exitCode !== null || c.signalCode !== null) {
        throw new Error(`redis-server exited early (code ${c.exitCode}, signal ${c.signalCode}) on port ${port}:\n${output}`);
      }
      if (await ping(port)) return;
      if (Date.now() > deadline) {
        c.kill('SIGKILL');
        throw new Error(`redis-server did not answer PING on port ${port} within 10 s:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  const stop = async (options: { hard?: boolean } = {}): Promise<void> => {
    const c = child;
    if (!c) return;
    c.kill(options.hard ? 'SIGKILL' : 'SIGTERM');
    await waitExit(c);
  };

  await start();

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get running() {
      return child !== undefined;
    },
    stop,
    start,
    async close() {
      closed = true;
      await stop({ hard: true });
    },
  };
}
