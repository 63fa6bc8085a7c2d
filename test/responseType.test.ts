/**
 * `responseType`: bytes come back byte for byte (they used to be decoded as UTF-8: 256 bytes 0x00–0xFF became 512),
 * a stream is a web ReadableStream read as it arrives, text is never parsed, json parses whatever the content-type,
 * and a JSON content-type with a body that is not JSON fails with ResponseParseError instead of `result: undefined`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { ApiError, Client, ErrorCode, InvalidOptionError, ResponseParseError, type ApiResponse } from '../src/index.js';
import { closeServer, listenLocal } from './helpers/http.js';
import { SVC_CREDENTIALS, startStack, type Stack } from './helpers/fixtures.js';

const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);
const BIG = 1024 * 1024;
let server: http.Server;
let client: Client;
let stack: Stack;

before(async () => {
  server = http.createServer((req, res) => {
    switch (req.url) {
      case '/bytes':
        return void res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(ALL_BYTES);
      case '/big':
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        for (let i = 0; i < 16; i++) res.write(Buffer.alloc(BIG / 16, i));
        return void res.end();
      case '/not-json':
        return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"truncated": ');
      case '/plain-json':
        return void res.writeHead(200, { 'content-type': 'text/plain' }).end('{"a":1}');
      case '/error':
        return void res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"busy"}');
      default:
        return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    }
  });
  client = new Client({ baseUrl: await listenLocal(server) });
  stack = await startStack();
});
after(async () => {
  await client.close();
  await closeServer(server);
  await stack.close();
});

test("responseType 'bytes': 256 bytes 0x00-0xFF come back intact as a Uint8Array", async () => {
  const response = await client.get('/bytes', { auth: false, responseType: 'bytes' });
  const body: Uint8Array = response.body;
  assert.ok(body instanceof Uint8Array);
  assert.equal(body.byteLength, 256);
  assert.deepEqual([...body], [...ALL_BYTES]);
  assert.equal(response.result, undefined);
});

test("responseType 'stream': a web ReadableStream, read chunk by chunk", async () => {
  const response = await client.get('/big', { auth: false, responseType: 'stream' });
  const stream: ReadableStream<Uint8Array> = response.body;
  assert.ok(stream instanceof ReadableStream);
  let size = 0;
  let chunks = 0;
  for await (const chunk of stream) {
    size += chunk.byteLength;
    chunks++;
  }
  assert.equal(size, BIG);
  assert.ok(chunks > 1, 'more than one chunk');
});

test("responseType 'text' never parses; 'json' parses whatever the content-type", async () => {
  const text = await client.get('/', { auth: false, responseType: 'text' });
  assert.equal(text.body, '{"ok":true}');
  assert.equal(text.result, undefined);
  const json = await client.get<{ a: number }>('/plain-json', { auth: false, responseType: 'json' });
  assert.deepEqual(json.result, { a: 1 });
  const plain = await client.get('/plain-json', { auth: false });
  assert.equal(plain.result, undefined, 'no responseType: only a JSON content-type is parsed');
});

test('a JSON content-type with a body that does not parse is a ResponseParseError (body kept, not quoted)', async () => {
  const error = await client.get('/not-json', { auth: false }).then(() => assert.fail('resolved'), (e: unknown) => e);
  assert.ok(error instanceof ResponseParseError);
  assert.equal(error.code, ErrorCode.ResponseParse);
  assert.equal(error.statusCode, 200);
  assert.equal(error.body, '{"truncated": ');
  assert.ok(error.cause instanceof SyntaxError);
  assert.doesNotMatch(error.message, /truncated/);
  const text = await client.get('/not-json', { auth: false, responseType: 'text' });
  assert.equal(text.body, '{"truncated": ');
});

test('a non-2xx status is an ApiError with the body as text, whatever the responseType', async () => {
  for (const responseType of ['bytes', 'stream', 'text', 'json'] as const) {
    const error = await client.get('/error', { auth: false, responseType }).then(() => assert.fail('resolved'), (e: unknown) => e);
    assert.ok(error instanceof ApiError, responseType);
    assert.equal(error.statusCode, 503);
    assert.equal(error.body, '{"error":"busy"}');
    assert.deepEqual(error.result, { error: 'busy' });
  }
});

test('an unknown responseType is an InvalidOptionError before any request', async () => {
  await assert.rejects(client.get('/', { auth: false, responseType: 'blob' as 'text' }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'responseType');
});

test('a streamed request recovers from a 401 like any other (the refused response is cancelled)', async () => {
  const authed = new Client({
    baseUrl: stack.api.url,
    tokenUrl: stack.op.tokenUrl,
    clientCredentialsAuthCredentials: { ...SVC_CREDENTIALS, oAuthToken: { accessToken: 'refused', tokenType: 'Bearer', expiresIn: 3600 } },
  });
  try {
    const response = await authed.get('/things', { responseType: 'stream' });
    const text = await new Response(response.body).text();
    assert.equal((JSON.parse(text) as { client_id: string }).client_id, 'svc');
    assert.equal(authed.stats().unauthorizedRetries, 1);
  } finally {
    await authed.close();
  }
});

test('types: body follows responseType, result is unknown unless named', async () => {
  const plain: ApiResponse = await client.get('/', { auth: false });
  const result: unknown = plain.result;
  // @ts-expect-error result is unknown, not any
  const notAny: string = plain.result;
  const bytes = await client.request({ path: '/bytes', auth: false, responseType: 'bytes' });
  // @ts-expect-error a bytes body is not a string
  const notText: string = bytes.body;
  // @ts-expect-error a named result type means JSON: bytes would be typed wrong
  await client.get<{ ok: boolean }>('/bytes', { auth: false, responseType: 'bytes' }).catch(() => undefined);
  const named = await client.get<{ ok: boolean }>('/', { auth: false });
  const ok: boolean = named.result.ok;
  assert.equal(ok, true);
  void result;
  void notAny;
  void notText;
});
