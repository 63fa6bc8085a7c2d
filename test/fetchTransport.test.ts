/**
 * The fetch-based transport the Client uses where undici is a stub (Bun), exercised here on Node's own fetch against
 * a real HTTP server: status, headers and body, redirects not followed, timeouts, body caps, network errors, aborts.
 * `npm run test:runtimes` runs the Client on it under Bun.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { AbortError, NetworkError, TimeoutError } from '../src/index.js';
import { createFetchTransport, undiciIsUsable } from '../src/http/fetchTransport.js';
import { BodyTooLargeError } from '../src/http/transport.js';
import { closeServer, listenLocal } from './helpers/http.js';

let server: http.Server;
let url: string;

before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/redirect') return void res.writeHead(302, { location: '/elsewhere' }).end();
    if (req.url === '/slow') return void setTimeout(() => res.end('late'), 5_000).unref();
    if (req.url === '/big') return void res.end('x'.repeat(10_000));
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.setHeader('constructor', 'c');
    res.writeHead(201, { 'content-type': 'text/plain', 'x-method': req.method! });
    req.on('data', () => undefined).on('end', () => res.end(`héllo ${req.headers.authorization ?? ''}`));
  });
  url = await listenLocal(server);
});
after(() => closeServer(server));

const send = createFetchTransport();

test('undici is usable on Node (the fetch transport is for Bun only)', () => {
  assert.equal(undiciIsUsable(), true);
});

test('status, lower-cased headers (repeats joined) and a UTF-8 body', async () => {
  const res = await send({ method: 'POST', url: `${url}/x`, headers: { authorization: 'Bearer t' }, body: 'a=1' });
  assert.equal(res.statusCode, 201);
  assert.equal(res.headers['x-method'], 'POST');
  assert.equal(res.headers['set-cookie'], 'a=1, b=2');
  // A header named like an Object.prototype member is a header, not joined onto the prototype's function.
  assert.equal(res.headers['constructor'], 'c');
  assert.equal(res.body, 'héllo Bearer t');
});

test('a redirect is returned, not followed (so the token never goes elsewhere)', async () => {
  const res = await send({ method: 'GET', url: `${url}/redirect`, headers: {} });
  assert.equal(res.statusCode, 302);
  assert.equal(res.headers.location, '/elsewhere');
});

test('timeout, body cap, refused connection and abort map to typed errors', async () => {
  await assert.rejects(send({ method: 'GET', url: `${url}/slow`, headers: {}, timeout: 200 }), TimeoutError);
  await assert.rejects(send({ method: 'GET', url: `${url}/big`, headers: {}, maxBodyBytes: 1_000 }), BodyTooLargeError);
  const closed = http.createServer();
  const closedUrl = await listenLocal(closed);
  await closeServer(closed);
  await assert.rejects(send({ method: 'GET', url: closedUrl, headers: {} }), NetworkError);
  const controller = new AbortController();
  const pending = send({ method: 'GET', url: `${url}/slow`, headers: {}, signal: controller.signal });
  controller.abort();
  await assert.rejects(pending, AbortError);
});
