/**
 * A TCP proxy on 127.0.0.1 in front of a real server (redis-server) that can hold back client → server traffic:
 * `delayMatching(pattern, ms)` delays the next chunk containing `pattern` (e.g. a `SET … NX`) and everything after it
 * on that connection by `ms`, in order, as a slow network or a slow server would.
 */
import net from 'node:net';

/** A running TCP proxy. */
export interface TcpProxyHandle {
  readonly port: number;
  readonly url: string;
  /** Delays the next client chunk containing `pattern` (and what follows it on its connection) by `ms`, `times` times. */
  delayMatching(pattern: string, ms: number, times?: number): void;
  /** How many delays were applied. */
  readonly delayed: number;
  close(): Promise<void>;
}

/** Starts a proxy to `127.0.0.1:targetPort`. */
export async function startTcpProxy(targetPort: number, scheme = 'redis'): Promise<TcpProxyHandle> {
  const rules: { pattern: Buffer; ms: number; times: number }[] = [];
  const sockets = new Set<net.Socket>();
  let delayed = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    sockets.add(client);
    sockets.add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    upstream.on('data', (d) => client.write(d));
    // Client → server: in order; once a chunk is held back, later chunks queue behind it.
    let releaseAt = 0;
    let chain: Promise<void> = Promise.resolve();
    client.on('data', (d: Buffer) => {
      const rule = rules.find((r) => r.times > 0 && d.includes(r.pattern));
      if (rule) {
        rule.times--;
        delayed++;
        releaseAt = Math.max(releaseAt, Date.now() + rule.ms);
      }
      const wait = releaseAt - Date.now();
      chain = chain.then(async () => {
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (!upstream.destroyed) upstream.write(d);
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    delayMatching(pattern, ms, times = 1) {
      rules.push({ pattern: Buffer.from(pattern), ms, times });
    },
    get delayed() {
      return delayed;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
