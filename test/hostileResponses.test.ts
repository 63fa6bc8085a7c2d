/**
 * A hostile server against the transport's two read paths (the Client's own dispatcher, read in a dispatch handler,
 * and a dispatcher of the caller's, read through undici's body stream): raw TCP servers on 127.0.0.1 that answer what
 * no well-behaved server would. Each attack ends in a typed error within the request's `timeout`, and the Client goes
 * on serving.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { Agent } from 'undici';
import { Client, TimeoutError } from '../src/index.js';

/** A raw TCP server on 127.0.0.1 that hands each connection to `onConnection`. */
async function rawServer(onConnection: (socket: Socket) => void): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Reads one request's head from `socket`, then calls `answer`. */
function onRequest(socket: Socket, answer: (path: string) => void): void {
  let head = '';
  const onData = (data: Buffer): void => {
    head += data.toString('latin1');
    if (!head.includes('\r\n\r\n')) return;
    socket.off('data', onData);
    answer(head.split(' ')[1] ?? '/');
  };
  socket.on('data', onData);
}

const OK = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}';

describe('a 1xx flood does not outlast the request\'s timeout', () => {
  let server: { url: string; close(): Promise<void> };
  before(async () => {
    server = await rawServer((socket) =>
      onRequest(socket, (path) => {
        if (path !== '/flood') {
          socket.write(OK);
          return;
        }
        // 103 Early Hints every 100 ms, never a final answer: each one restarts undici's headers timer.
        const timer = setInterval(() => {
          if (socket.destroyed) clearInterval(timer);
          else socket.write('HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n');
        }, 100);
        socket.on('close', () => clearInterval(timer));
      }),
    );
  });
  after(() => server.close());

  for (const via of ['the Client\'s own dispatcher', 'a dispatcher of the caller\'s'] as const) {
    test(`via ${via}: TimeoutError near the timeout, and the Client goes on serving`, async () => {
      const theirs = via === 'a dispatcher of the caller\'s' ? new Agent() : undefined;
      const client = new Client({ baseUrl: server.url, ...(theirs ? { dispatcher: theirs } : {}) });
      try {
        const started = Date.now();
        // Without a bound the request would wait for undici's default of 300 s; the test's own cap makes that a failure.
        const cap = AbortSignal.timeout(8_000);
        const error = await client.request({ path: '/flood', auth: false, timeout: 600, signal: cap }).then(
          () => assert.fail('the flood was answered'),
          (e: unknown) => e,
        );
        assert.ok(error instanceof TimeoutError, `${(error as Error).name}: ${(error as Error).message}`);
        assert.ok(Date.now() - started < 6_000, `took ${Date.now() - started} ms`);
        const response = await client.request({ path: '/ok', auth: false, timeout: 5_000 });
        assert.deepEqual(response.result, { ok: true });
      } finally {
        await client.close();
        await theirs?.close();
      }
    });
  }
});
