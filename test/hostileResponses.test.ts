/**
 * A hostile server against the transport's two read paths (the Client's own dispatcher, read in a dispatch handler,
 * and a dispatcher of the caller's, read through undici's body stream): raw TCP servers on 127.0.0.1 that answer what
 * no well-behaved server would. Each attack ends in a typed error within the request's `timeout`, and the Client goes
 * on serving.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { Agent } from 'undici';
import { Client, ResponseTooLargeError, TimeoutError } from '../src/index.js';
import { startScripted, type ScriptedServer } from './helpers/scripted.js';

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

/** Calls `answer` with the path of each request `socket` carries (requests without a body, as these tests send). */
function onRequest(socket: Socket, answer: (path: string) => void): void {
  let buffered = '';
  socket.on('data', (data: Buffer) => {
    buffered += data.toString('latin1');
    for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
      const head = buffered.slice(0, end);
      buffered = buffered.slice(end + 4);
      answer(head.split(' ')[1] ?? '/');
    }
  });
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

/** `body` compressed with `coding` (`identity`: as it is). */
function encode(body: Buffer, coding: Coding): Buffer {
  if (coding === 'gzip') return gzipSync(body);
  if (coding === 'deflate') return deflateSync(body);
  if (coding === 'br') return brotliCompressSync(body);
  return body;
}
type Coding = 'gzip' | 'deflate' | 'br' | 'identity';

describe('a server that compresses answers nobody asked it to compress (RFC 9110 §12.5.3: no Accept-Encoding means any coding)', () => {
  /** What the next answer is: its body, coding, and whether its length is declared. */
  let next: { body: Buffer; coding: Coding; declared: boolean; cuts: number[] } = { body: Buffer.alloc(0), coding: 'identity', declared: true, cuts: [] };
  let server: ScriptedServer;
  before(async () => {
    server = await startScripted(async (req, res) => {
      const body = req.url === '/token' ? Buffer.from(JSON.stringify({ access_token: 'tok-compressed', token_type: 'Bearer', expires_in: 300 })) : next.body;
      const coding = req.url === '/token' ? 'gzip' : next.coding;
      const wire = encode(body, coding);
      const headers: Record<string, string> = { 'content-type': 'application/json', 'content-encoding': coding };
      if (next.declared || req.url === '/token') headers['content-length'] = String(wire.length);
      res.writeHead(200, headers);
      const at = [...new Set(next.cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
      let from = 0;
      for (const cut of [...at, wire.length]) {
        if (cut > from) res.write(wire.subarray(from, cut));
        from = cut;
        await sleep(1);
      }
      res.end();
    });
  });
  after(() => server.close());

  test('a gzip token answer gives the token', async () => {
    const client = new Client({ baseUrl: server.url, tokenUrl: `${server.url}/token`, retry: false, clientCredentialsAuthCredentials: { oAuthClientId: 'c', oAuthClientSecret: 'a-long-enough-secret' } });
    try {
      const token = await client.clientCredentialsAuthManager.fetchToken();
      assert.equal(token.accessToken, 'tok-compressed');
    } finally {
      await client.close();
    }
  });

  test('property: any JSON body in any coding, cut anywhere, reads the same on both paths, as JSON and as bytes', async () => {
    const theirs = new Agent();
    const own = new Client({ baseUrl: server.url, maxResponseBytes: 4096 });
    const caller = new Client({ baseUrl: server.url, maxResponseBytes: 4096, dispatcher: theirs });
    try {
      await fc.assert(
        fc.asyncProperty(fc.json({ maxDepth: 3 }), fc.constantFrom<Coding>('gzip', 'deflate', 'br', 'identity'), fc.boolean(), fc.array(fc.nat(300), { maxLength: 4 }), async (json, coding, declared, cuts) => {
          const body = Buffer.from(json);
          next = { body, coding, declared, cuts };
          for (const client of [own, caller]) {
            const asJson = await client.request({ path: '/x', auth: false });
            assert.deepEqual(asJson.result, JSON.parse(json));
            const asBytes = await client.request({ path: '/x', auth: false, responseType: 'bytes' });
            assert.deepEqual(Buffer.from(asBytes.body as Uint8Array), body);
          }
        }),
        { numRuns: 60 },
      );
    } finally {
      await own.close();
      await caller.close();
      await theirs.close();
    }
  });

  test('a compression bomb (a few kB that expand past maxResponseBytes) is refused: ResponseTooLargeError on both paths', async () => {
    const theirs = new Agent();
    const own = new Client({ baseUrl: server.url, maxResponseBytes: 64 * 1024 });
    const caller = new Client({ baseUrl: server.url, maxResponseBytes: 64 * 1024, dispatcher: theirs });
    try {
      for (const coding of ['gzip', 'deflate', 'br'] as const) {
        next = { body: Buffer.alloc(50 * 1024 * 1024, 0x20), coding, declared: true, cuts: [] };
        for (const client of [own, caller]) {
          const error = await client.request({ path: '/x', auth: false }).then(() => assert.fail('the bomb was read'), (e: unknown) => e);
          assert.ok(error instanceof ResponseTooLargeError, `${coding}: ${String(error)}`);
        }
      }
    } finally {
      await own.close();
      await caller.close();
      await theirs.close();
    }
  });
});

describe('the Content-Length of a HEAD answer is no body past maxResponseBytes', () => {
  let server: ScriptedServer;
  before(async () => {
    server = await startScripted((req, res) => {
      // A HEAD answer declares the length of the representation (RFC 9110 §9.3.2); no body follows.
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '1000000' }).end(req.method === 'HEAD' ? undefined : Buffer.alloc(1_000_000));
    });
  });
  after(() => server.close());

  for (const via of ['the Client\'s own dispatcher', 'a dispatcher of the caller\'s'] as const) {
    test(`via ${via}: HEAD of a resource larger than the cap answers with its headers; a GET of it is still refused`, async () => {
      const theirs = via === 'a dispatcher of the caller\'s' ? new Agent() : undefined;
      const client = new Client({ baseUrl: server.url, maxResponseBytes: 1024, ...(theirs ? { dispatcher: theirs } : {}) });
      try {
        const head = await client.request({ method: 'HEAD', path: '/file', auth: false });
        assert.equal(head.statusCode, 200);
        assert.equal(head.headers['content-length'], '1000000');
        assert.equal(head.body, '');
        await assert.rejects(client.request({ path: '/file', auth: false }), ResponseTooLargeError);
        assert.equal((await client.request({ method: 'head', path: '/file', auth: false })).statusCode, 200);
      } finally {
        await client.close();
        await theirs?.close();
      }
    });
  }
});

describe('odd framing from a raw server: a typed answer or a typed error, and the Client goes on serving', () => {
  /** Raw answers by path; `null`: write nothing and close. */
  const answers: Record<string, { wire: string; expect: 'ok' | 'error'; body?: string }> = {
    '/trailers': { wire: 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\ntrailer: x-sum\r\n\r\n5\r\n{"a":\r\n2\r\n1}\r\n0\r\nx-sum: 7\r\n\r\n', expect: 'ok', body: '{"a":1}' },
    // undici sends no Expect: 100-continue, and refuses a 100 as a bad response.
    '/continue': { wire: `HTTP/1.1 100 Continue\r\n\r\n${OK}`, expect: 'error' },
    '/switch': { wire: 'HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\nconnection: upgrade\r\n\r\n', expect: 'error' },
    '/two-lengths': { wire: 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}', expect: 'error' },
    '/short': { wire: 'HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n{"a":1}', expect: 'error' },
    '/garbage': { wire: 'HTTX/9 OK\r\n\r\n', expect: 'error' },
    '/nothing': { wire: '', expect: 'error' },
  };
  let server: { url: string; close(): Promise<void> };
  before(async () => {
    server = await rawServer((socket) =>
      onRequest(socket, (path) => {
        const answer = answers[path];
        if (answer === undefined) socket.write(OK);
        else if (path === '/short' || path === '/nothing') socket.end(answer.wire);
        else socket.write(answer.wire);
      }),
    );
  });
  after(() => server.close());

  for (const via of ['the Client\'s own dispatcher', 'a dispatcher of the caller\'s'] as const) {
    test(`via ${via}`, async () => {
      const theirs = via === 'a dispatcher of the caller\'s' ? new Agent() : undefined;
      // No retries: each answer is seen once, and an error is its own, not the timeout of a retry loop.
      const client = new Client({ baseUrl: server.url, retry: false, ...(theirs ? { dispatcher: theirs } : {}) });
      try {
        for (const [path, answer] of Object.entries(answers)) {
          const outcome = await client.request({ path, auth: false, responseType: 'text', timeout: 3_000 }).then(
            (r) => ({ ok: true, body: r.body as string }),
            (e: { code?: string; name: string }) => ({ ok: false, code: e.code, name: e.name }),
          );
          if (answer.expect === 'ok') assert.deepEqual(outcome, { ok: true, body: answer.body }, path);
          else {
            assert.equal(outcome.ok, false, path);
            assert.match(String((outcome as { code?: string }).code), /^ERR_/, `${path}: ${JSON.stringify(outcome)}`);
            assert.notEqual((outcome as { code?: string }).code, 'ERR_TIMEOUT', `${path} hung until the timeout`);
          }
          assert.deepEqual((await client.request({ path: '/ok', auth: false, timeout: 3_000 })).result, { ok: true }, `after ${path}`);
        }
      } finally {
        await client.close();
        await theirs?.close();
      }
    });
  }
});

test('a request waiting for a connection (all 128 taken by a server that never answers) rejects at once when its signal aborts, or at its timeout', async () => {
  const server = await rawServer(() => undefined);
  const client = new Client({ baseUrl: server.url, retry: false, closeTimeout: 100 });
  try {
    const hung = Array.from({ length: 128 }, () => client.request({ path: '/hang', auth: false }).catch((e: unknown) => e));
    await sleep(300);
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('caller gave up')), 100);
    const call = client.request({ path: '/queued', auth: false, signal: controller.signal }).then(() => assert.fail('answered'), (e: unknown) => e);
    // undici's own bound is its 300 s headers timeout of the requests ahead.
    const error = await Promise.race([call, sleep(8_000).then(() => new Error('still waiting after 8 s'))]);
    assert.equal((error as Error).name, 'AbortError', String(error));
    assert.ok(Date.now() - started < 3_000, `rejected after ${Date.now() - started} ms`);
    // And its timeout bounds the wait as well (undici's headers timer starts only once a request is sent).
    const timed = client.request({ path: '/queued', auth: false, timeout: 300 }).then(() => assert.fail('answered'), (e: unknown) => e);
    const timeout = await Promise.race([timed, sleep(8_000).then(() => new Error('still waiting after 8 s'))]);
    assert.equal((timeout as Error).name, 'TimeoutError', String(timeout));
    await client.close();
    for (const outcome of await Promise.all(hung)) assert.equal((outcome as Error).name, 'AbortError');
  } finally {
    await client.close();
    await server.close();
  }
});
