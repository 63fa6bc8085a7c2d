import type { IncomingHttpHeaders, IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One HTTP request as received by a helper server (raw body kept for assertions). */
export interface RecordedRequest {
  method: string;
  /** Path and query exactly as received (e.g. `/token`). */
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** Date.now() when the request line arrived. */
  at: number;
}

/** Listens on 127.0.0.1:0 and resolves to the base URL (`http://127.0.0.1:PORT`). */
export async function listenLocal(server: Server | import("node:https").Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', onError);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

/** Closes a server and destroys every open socket (keep-alive included), resolving when done. */
export async function closeServer(server: Server | import("node:https").Server): Promise<void> {
  if (!server.listening) return;
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Buffers a request body into a UTF-8 string. */
export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
