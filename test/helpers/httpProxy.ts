import http from 'node:http';
import net from 'node:net';
import { closeServer, listenLocal } from './http.js';

/** What the proxy was asked to do: `CONNECT host:port` (a tunnel) or a forwarded `GET http://host/path`. */
export interface ProxiedRequest {
  method: string;
  /** `host:port` for CONNECT, the absolute URL otherwise. */
  target: string;
  /** The Proxy-Authorization header, if any. */
  proxyAuthorization: string | undefined;
}

/** A running forward proxy. */
export interface HttpProxyHandle {
  url: string;
  requests: ProxiedRequest[];
  close(): Promise<void>;
}

/** Where the proxy connects for `host`: names under `.test` (RFC 2606, never real) are this machine. */
function upstreamHost(host: string): string {
  return host.toLowerCase().endsWith('.test') ? '127.0.0.1' : host;
}

/**
 * A small real forward proxy on 127.0.0.1: CONNECT tunnels (as undici's ProxyAgent uses for every request) and
 * plain absolute-URI HTTP forwarding (as curl uses for http:// URLs). With `auth`, it wants that Basic value.
 * Names under `.test` (`auth.test:8080`) reach 127.0.0.1: a Client sends requests to loopback direct, never through
 * a proxy, so tests address loopback servers by such a name to go through it.
 */
export async function startHttpProxy(options: { auth?: string } = {}): Promise<HttpProxyHandle> {
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<net.Socket>();
  const refused = (auth: string | undefined) => options.auth !== undefined && auth !== `Basic ${Buffer.from(options.auth).toString('base64')}`;
  const server = http.createServer((req, res) => {
    const proxyAuthorization = req.headers['proxy-authorization'];
    requests.push({ method: req.method!, target: req.url!, proxyAuthorization });
    if (refused(proxyAuthorization)) return void res.writeHead(407).end();
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const target = new URL(req.url!);
    const upstream = http.request({ host: upstreamHost(target.hostname), port: target.port, path: `${target.pathname}${target.search}`, method: req.method, headers }, (up) => {
      res.writeHead(up.statusCode!, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const proxyAuthorization = req.headers['proxy-authorization'];
    requests.push({ method: 'CONNECT', target: req.url!, proxyAuthorization });
    if (refused(proxyAuthorization)) return void client.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n');
    const [host, port] = req.url!.split(':');
    const upstream = net.connect(Number(port), upstreamHost(host!), () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => (socket === client ? upstream : client).destroy());
    }
  });
  const url = await listenLocal(server);
  return {
    url,
    requests,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await closeServer(server);
    },
  };
}
