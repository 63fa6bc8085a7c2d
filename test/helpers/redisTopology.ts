/**
 * Redis as people deploy it, for real on 127.0.0.1 with Debian's binaries: a Redis Cluster of three primaries
 * (`redis-cli --cluster create`), a Sentinel group (a primary, a replica, three sentinels) and a TLS server with a
 * local CA made with openssl. Every server runs on ephemeral ports in its own temporary folder and is stopped by
 * `close()` (and SIGKILLed if the test process exits first).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { findRedisServer, freePort } from './redis.js';

const run = promisify(execFile);
const children = new Set<ChildProcess>();
let hooked = false;

/** One redis-server (or sentinel) process. */
export interface RedisNodeHandle {
  readonly port: number;
  readonly running: boolean;
  /** SIGTERM (or SIGKILL with hard), then waits for the exit. */
  stop(options?: { hard?: boolean }): Promise<void>;
  /** Starts it again with the same arguments (and the config file it rewrote). */
  start(): Promise<void>;
}

/** Spawns `redis-server args…` in `cwd` and waits until its log says it is ready. */
async function spawnNode(args: string[], cwd: string, port: number, ready: RegExp): Promise<RedisNodeHandle> {
  const bin = findRedisServer();
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const c of children) c.kill('SIGKILL');
    });
  }
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    if (child) return;
    const c = spawn(bin, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    children.add(c);
    let output = '';
    let resolveReady: () => void = () => undefined;
    const isReady = new Promise<void>((resolve) => (resolveReady = resolve));
    const collect = (d: Buffer): void => {
      output = (output + d.toString('utf8')).slice(-8000);
      if (ready.test(output)) resolveReady();
    };
    c.stdout?.on('data', collect);
    c.stderr?.on('data', collect);
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.once('exit', () => {
      children.delete(c);
      if (child === c) child = undefined;
    });
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      isReady.then(() => 'ready' as const),
      exited.then(() => 'exited' as const),
      new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 15_000))),
    ]);
    clearTimeout(timer);
    if (outcome !== 'ready') {
      c.kill('SIGKILL');
      throw new Error(`redis-server ${args.join(' ')} ${outcome} on port ${port}:\n${output}`);
    }
  };
  const stop = async (options: { hard?: boolean } = {}): Promise<void> => {
    const c = child;
    if (!c) return;
    const exited = new Promise((resolve) => c.once('exit', resolve));
    c.kill(options.hard ? 'SIGKILL' : 'SIGTERM');
    await exited;
  };
  await start();
  return {
    port,
    get running() {
      return child !== undefined;
    },
    stop,
    start,
  };
}

const BASE = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'];
const READY = /Ready to accept connections/;

/** A Redis Cluster of three primaries (no replicas) on 127.0.0.1. */
export interface RedisClusterHandle {
  /** The primaries, as `{ host, port }` seeds for node-redis `createCluster({ rootNodes })` / ioredis `new Cluster(nodes)`. */
  readonly nodes: { host: string; port: number }[];
  close(): Promise<void>;
}

/** Starts three `--cluster-enabled yes` servers, joins them with `redis-cli --cluster create` and waits for `cluster_state:ok`. */
export async function startRedisCluster(): Promise<RedisClusterHandle> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cc-cluster-'));
  const handles: RedisNodeHandle[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const bus = await freePort();
      handles.push(
        await spawnNode(
          [...BASE, '--port', String(port), '--cluster-enabled', 'yes', '--cluster-port', String(bus), '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000'],
          dir,
          port,
          READY,
        ),
      );
    }
    await run('redis-cli', ['--cluster', 'create', ...handles.map((h) => `127.0.0.1:${h.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    const deadline = Date.now() + 20_000;
    for (const h of handles) {
      for (;;) {
        const { stdout } = await run('redis-cli', ['-p', String(h.port), 'cluster', 'info']);
        if (/cluster_state:ok/.test(stdout)) break;
        if (Date.now() > deadline) throw new Error(`cluster node ${h.port} not ok: ${stdout}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (error) {
    await Promise.all(handles.map((h) => h.stop({ hard: true })));
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    nodes: handles.map((h) => ({ host: '127.0.0.1', port: h.port })),
    async close() {
      await Promise.all(handles.map((h) => h.stop({ hard: true })));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A Sentinel group: a primary, a replica and three sentinels watching `name`. */
export interface RedisSentinelHandle {
  readonly name: string;
  readonly primary: RedisNodeHandle;
  readonly replica: RedisNodeHandle;
  /** The sentinels, as `{ host, port }` for node-redis `createSentinel({ sentinelRootNodes })` / ioredis `{ sentinels }`. */
  readonly sentinels: { host: string; port: number }[];
  /** The port of the current primary, as the sentinels see it. */
  currentPrimaryPort(): Promise<number>;
  close(): Promise<void>;
}

/** Starts a primary, a replica of it and three sentinels (quorum 2, down after 1 s); waits until all see the replica. */
export async function startRedisSentinel(name = 'cc-primary'): Promise<RedisSentinelHandle> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cc-sentinel-'));
  const nodes: RedisNodeHandle[] = [];
  try {
    const primaryPort = await freePort();
    const primary = await spawnNode([...BASE, '--port', String(primaryPort)], dir, primaryPort, READY);
    nodes.push(primary);
    const replicaPort = await freePort();
    const replica = await spawnNode([...BASE, '--port', String(replicaPort), '--replicaof', '127.0.0.1', String(primaryPort)], dir, replicaPort, READY);
    nodes.push(replica);
    const sentinelPorts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = path.join(dir, `sentinel-${port}.conf`);
      await writeFile(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          'protected-mode no',
          `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 5000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      nodes.push(await spawnNode([conf, '--sentinel'], dir, port, /monitor master/));
      sentinelPorts.push(port);
    }
    // Wait until the replica is in sync and every sentinel knows the replica and the other sentinels.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const infos = await Promise.all(
        sentinelPorts.map((p) => run('redis-cli', ['-p', String(p), 'sentinel', 'master', name]).then((r) => r.stdout, () => '')),
      );
      const { stdout: repl } = await run('redis-cli', ['-p', String(replicaPort), 'info', 'replication']);
      const ok = /master_link_status:up/.test(repl) && infos.every((info) => /num-slaves\n1\n/.test(info) && /num-other-sentinels\n2\n/.test(info));
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`sentinel group not ready:\n${infos.join('\n---\n')}\n${repl}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return {
      name,
      primary,
      replica,
      sentinels: sentinelPorts.map((port) => ({ host: '127.0.0.1', port })),
      async currentPrimaryPort() {
        const { stdout } = await run('redis-cli', ['-p', String(sentinelPorts[0]), 'sentinel', 'get-master-addr-by-name', name]);
        return Number(stdout.trim().split('\n')[1]);
      },
      async close() {
        await Promise.all(nodes.map((n) => n.stop({ hard: true })));
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await Promise.all(nodes.map((n) => n.stop({ hard: true })));
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** A redis-server that only speaks TLS, with a CA of its own. */
export interface RedisTlsHandle {
  readonly port: number;
  /** `rediss://127.0.0.1:PORT` */
  readonly url: string;
  /** The CA certificate (PEM) the server's certificate chains to. */
  readonly ca: string;
  close(): Promise<void>;
}

/** Makes a CA and a server certificate for 127.0.0.1 with openssl, and starts redis-server with `--tls-port` only. */
export async function startRedisTls(): Promise<RedisTlsHandle> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cc-tls-'));
  const f = (name: string): string => path.join(dir, name);
  const ssl = (args: string[]): Promise<unknown> => run('openssl', args, { cwd: dir, timeout: 30_000 });
  try {
    await ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=cc-test-ca']);
    await ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
    await writeFile(f('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    await ssl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '2', '-extfile', f('san.ext')]);
    const port = await freePort();
    const node = await spawnNode(
      [...BASE, '--port', '0', '--tls-port', String(port), '--tls-cert-file', f('server.crt'), '--tls-key-file', f('server.key'), '--tls-ca-cert-file', f('ca.crt'), '--tls-auth-clients', 'no'],
      dir,
      port,
      READY,
    );
    const ca = await readFile(f('ca.crt'), 'utf8');
    return {
      port,
      url: `rediss://127.0.0.1:${port}`,
      ca,
      async close() {
        await node.stop({ hard: true });
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
