/**
 * Listening addresses of the broker: `host:port`, `[v6]:port`, or a Unix socket (`unix:/path` or `/path`). Pure.
 */

/** Where a server of the broker listens. */
export type Endpoint = { readonly kind: 'tcp'; readonly host: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string };

/**
 * Parses a listening address.
 * @throws Error with a one-line reason (the config layer wraps it with the JSON path).
 */
export function parseEndpoint(text: string): Endpoint {
  if (text.startsWith('unix:')) text = text.slice(5);
  if (text.startsWith('/')) return { kind: 'unix', path: text };
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  if (!match) throw new Error(`must be "host:port", "[v6]:port" or a Unix socket path, got "${text}"`);
  const port = Number(match[2]);
  if (port > 65_535) throw new Error(`has port ${port}, above 65535`);
  const host = match[1]!.startsWith('[') ? match[1]!.slice(1, -1) : match[1]!;
  return { kind: 'tcp', host, port };
}

/** Whether only this machine can connect: a Unix socket, or a loopback host. */
export function isLoopbackEndpoint(endpoint: Endpoint): boolean {
  if (endpoint.kind === 'unix') return true;
  const host = endpoint.host.toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The address as written in logs: `127.0.0.1:8080`, `[::1]:8080`, `unix:/run/broker.sock`. */
export function describeEndpoint(endpoint: Endpoint, port?: number): string {
  if (endpoint.kind === 'unix') return `unix:${endpoint.path}`;
  const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
  return `${host}:${port ?? endpoint.port}`;
}
