/**
 * client.request on the Client's own dispatcher reads bodies in an undici dispatch handler (src/http/bodyCollector.ts),
 * not through undici's body stream. What the stream did for free is pinned here against real servers: a body split
 * anywhere (inside a UTF-8 sequence too) arrives whole; 1xx answers are skipped; the caller's signal, the request's
 * timeout, the size cap and a connection reset end a body that is still arriving, each with its typed error, and the
 * Client goes on serving.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { Agent } from 'undici';
import { AbortError, ApiError, Client, ClientCredentialsError, NetworkError, ResponseTooLargeError, TimeoutError } from '../src/index.js';
import { startScripted, type ScriptedServer } from './helpers/scripted.js';

/** What the next request to `/split` is answered with: these byte chunks, each written on its own. */
let pieces: Buffer[] = [];

/** The error `promise` rejects with. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  let caught: unknown;
  await assert.rejects(promise, (error) => ((caught = error), true));
  return caught as Error;
}

/** Splits `bytes` at `cuts` (positions, any order, duplicates allowed). */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const cut of [...at, bytes.length]) {
    if (cut > from) out.push(bytes.subarray(from, cut));
    from = cut;
  }
  return out;
}

describe('client.request reads bodies in its dispatch handler', () => {
  let server: ScriptedServer;
  let client: Client;
  before(async () => {
    server = await startScripted(async (req, res) => {
      if (req.url === '/split') {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        for (const piece of pieces) {
          res.write(piece);
          await sleep(1);
        }
        res.end();
      } else if (req.url === '/hints') {
        res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
        await sleep(20);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"final":true}');
      } else if (req.url === '/drip') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"a":"');
        // One byte every 50 ms until the client goes (or 30 s).
        for (let i = 0; i < 600 && !res.destroyed; i++) {
          res.write('x');
          await sleep(50);
        }
        res.end('"}');
      } else if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        for (let i = 0; i < 64 && !res.destroyed; i++) {
          res.write(Buffer.alloc(1024, 7));
          await sleep(1);
        }
        res.end();
      } else if (req.url === '/cut') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
        res.write('{"partial":');
        await sleep(20);
        res.socket?.destroy();
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      }
    });
    client = new Client({ baseUrl: server.url, maxResponseBytes: 16 * 1024 });
  });
  after(async () => {
    await client.close();
    await server.close();
  });

  const stillServing = async (): Promise<void> => {
    const response = await client.request({ path: '/ok', auth: false });
    assert.deepEqual(response.result, { ok: true });
  };

  test('property: a UTF-8 body cut anywhere (inside a character too) arrives whole, as text and as bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.array(fc.nat(400), { maxLength: 8 }), fc.boolean(), async (text, cuts, bom) => {
        const bytes = Buffer.concat([bom ? Buffer.from([0xef, 0xbb, 0xbf]) : Buffer.alloc(0), Buffer.from(text, 'utf8')]);
        pieces = split(bytes, cuts);
        const asText = await client.request({ path: '/split', auth: false, responseType: 'text' });
        // A byte order mark is dropped from text, as undici's text() drops it.
        assert.equal(asText.body, text);
        pieces = split(bytes, cuts);
        const asBytes = await client.request({ path: '/split', auth: false, responseType: 'bytes' });
        assert.deepEqual(Buffer.from(asBytes.body as Uint8Array), bytes);
      }),
      { numRuns: 40 },
    );
  });

  test('a 103 Early Hints answer is skipped: the caller gets the final one', async () => {
    const response = await client.request({ path: '/hints', auth: false });
    assert.equal(response.statusCode, 200);
    assert.deepEqual(response.result, { final: true });
  });

  test('the caller\'s signal ends a body still arriving: AbortError at once, and the Client goes on serving', async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('caller gave up')), 200);
    const error = await rejection(client.request({ path: '/drip', auth: false, signal: controller.signal }));
    assert.ok(error instanceof AbortError, String(error));
    assert.ok(Date.now() - started < 10_000);
    await stillServing();
  });

  test('the request\'s timeout ends a body still arriving: TimeoutError, and the Client goes on serving', async () => {
    const started = Date.now();
    const error = await rejection(client.request({ path: '/drip', auth: false, timeout: 300 }));
    assert.ok(error instanceof TimeoutError, String(error));
    assert.equal((error as TimeoutError).timeout, 300);
    assert.ok(Date.now() - started < 10_000);
    await stillServing();
  });

  test('a chunked body past maxResponseBytes is refused as it arrives: ResponseTooLargeError, and the Client goes on serving', async () => {
    const error = await rejection(client.request({ path: '/big', auth: false, responseType: 'bytes' }));
    assert.ok(error instanceof ResponseTooLargeError, String(error));
    assert.equal((error as ResponseTooLargeError).limit, 16 * 1024);
    await stillServing();
  });

  test('a connection reset mid-body is a typed error (never a hang or a crash), and the Client goes on serving', async () => {
    const error = await rejection(client.request({ path: '/cut', auth: false }));
    assert.ok(error instanceof ClientCredentialsError, String(error));
    assert.ok(error instanceof NetworkError || error instanceof AbortError, `${error.name}: ${error.message}`);
    await stillServing();
  });
});

test('a dispatcher of the caller\'s: a body declared past maxResponseBytes is refused without an uncaught error (the body stream destroyed unread emitted one)', async () => {
  const server = await startScripted((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' }).end(Buffer.alloc(100, 97));
  });
  const theirs = new Agent();
  const client = new Client({ baseUrl: server.url, maxResponseBytes: 64, dispatcher: theirs });
  try {
    for (let i = 0; i < 5; i++) {
      const error = await rejection(client.request({ path: '/x', auth: false }));
      assert.ok(error instanceof ResponseTooLargeError, String(error));
    }
    // The stream's error came a tick or more later, as an uncaught exception (which fails this test).
    await sleep(200);
  } finally {
    await client.close();
    await theirs.close();
    await server.close();
  }
});

/** One answer of the differential test's server. */
interface Answer {
  status: number;
  contentType: string | undefined;
  /** A header sent twice (its values joined by the Client). */
  repeated: boolean;
  body: Buffer;
  /** Content-Length declared (else chunked). */
  declared: boolean;
  /** Where the body is cut into writes. */
  cuts: number[];
}

const answerArb: fc.Arbitrary<Answer> = fc.record({
  status: fc.constantFrom(200, 201, 404, 500),
  contentType: fc.constantFrom(undefined, 'application/json', 'application/problem+json', 'text/plain; charset=utf-8', 'application/octet-stream'),
  repeated: fc.boolean(),
  body: fc.oneof(
    fc.json({ maxDepth: 2 }).map((text) => Buffer.from(text)),
    fc.string({ unit: 'grapheme', maxLength: 60 }).map((text) => Buffer.from(text)),
    fc.uint8Array({ maxLength: 120 }).map((bytes) => Buffer.from(bytes)),
  ),
  declared: fc.boolean(),
  cuts: fc.array(fc.nat(200), { maxLength: 4 }),
});

/** What a call came to, in a form two paths can be compared by. */
async function outcome(call: Promise<{ statusCode: number; headers: Record<string, string>; body: unknown; result: unknown }>): Promise<unknown> {
  try {
    const { statusCode, headers, body, result } = await call;
    return { ok: true, statusCode, headers: comparable(headers), body: body instanceof Uint8Array ? [...body] : body, result };
  } catch (error) {
    const e = error as ClientCredentialsError & Partial<ApiError>;
    return { ok: false, name: e.name, code: e.code, statusCode: e.statusCode, body: e.body, result: e.result, headers: e.headers && comparable(e.headers) };
  }
}

/** Headers without the ones that differ from one answer to the next. */
function comparable(headers: Record<string, string>): Record<string, string> {
  const { date: _date, connection: _connection, 'keep-alive': _keepAlive, ...rest } = headers;
  return rest;
}

test('property: the handler path (the Client\'s own dispatcher) and the body-stream path (a dispatcher of the caller\'s) give the same response or the same error, for any answer', async () => {
  let next: Answer | undefined;
  const server = await startScripted(async (_req, res) => {
    const answer = next!;
    const headers: Record<string, string | string[]> = { 'x-kind': 'differential' };
    if (answer.contentType !== undefined) headers['content-type'] = answer.contentType;
    if (answer.repeated) headers['x-repeated'] = ['one', 'two'];
    if (answer.declared) headers['content-length'] = String(answer.body.length);
    res.writeHead(answer.status, headers);
    for (const piece of split(answer.body, answer.cuts)) {
      res.write(piece);
      await sleep(1);
    }
    res.end();
  });
  const theirs = new Agent();
  const handlerPath = new Client({ baseUrl: server.url, maxResponseBytes: 64 });
  const streamPath = new Client({ baseUrl: server.url, maxResponseBytes: 64, dispatcher: theirs });
  try {
    await fc.assert(
      fc.asyncProperty(answerArb, fc.constantFrom(undefined, 'json', 'text', 'bytes'), async (answer, responseType) => {
        next = answer;
        const viaHandler = await outcome(handlerPath.request({ path: '/x', auth: false, ...(responseType ? { responseType } : {}) }) as never);
        const viaStream = await outcome(streamPath.request({ path: '/x', auth: false, ...(responseType ? { responseType } : {}) }) as never);
        assert.deepEqual(viaHandler, viaStream);
      }),
      { numRuns: 150 },
    );
  } finally {
    await handlerPath.close();
    await streamPath.close();
    await theirs.close();
    await server.close();
  }
});
