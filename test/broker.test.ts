/**
 * The token broker end to end (`client-credentials serve`): the broker runs as a child process from its config file,
 * in front of real node:http upstreams, with oidc-provider as the token endpoint, real redis-server for the fleet,
 * and a Python standard-library client calling through it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startDpopApi } from './helpers/dpopApi.js';
import { startFaultProxy, type FaultProxyHandle } from './helpers/faultProxy.js';
import { startOidcProvider, type OidcProviderHandle } from './helpers/oidc.js';
import { startRedis } from './helpers/redis.js';
import { secretFile, startBrokerProcess, startUpstream, tempDir, type BrokerProcess, type Upstream } from './helpers/broker.js';
import { parsePrometheus } from './helpers/prometheus.js';

const run = promisify(execFile);

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request with node:http (a new connection unless `agent` says otherwise). */
function call(url: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer | string; socketPath?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers, ...(options.socketPath ? { socketPath: options.socketPath } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Sends `text` on a raw TCP connection and resolves with everything the server wrote until it closed (or 3 s). */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => socket.destroy(), 3_000);
    socket.on('data', (d) => (out += d.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    socket.on('error', reject);
    socket.write(text);
  });
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

describe('serve: one broker, one token endpoint, one upstream', () => {
  let op: OidcProviderHandle;
  let upstream: Upstream;
  let broker: BrokerProcess;
  let dir: string;
  let rejectOnce: Set<string>;
  let keyPath: string;
  let rotatingSecret: string;
  let config: Record<string, unknown>;
  const tokensSeen = new Set<string>();

  before(async () => {
    op = await startOidcProvider({ ttl: 300 });
    rejectOnce = new Set();
    upstream = await startUpstream((req, res) => {
      const auth = req.headers.authorization ?? '';
      if (auth.startsWith('Bearer ')) tokensSeen.add(auth.slice(7));
      // The first request to each /reject-first URL is refused, whatever its token.
      if (req.url.includes('/reject-first') && !rejectOnce.has(req.url)) {
        rejectOnce.add(req.url);
        res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
        return void res.end('{"error":"invalid_token"}');
      }
      if (req.url.includes('/slow')) {
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('slow done');
        }, 1_500);
        return;
      }
      const body = JSON.stringify({ method: req.method, url: req.url, authorization: auth || null, bodySha256: req.bodySha256, bodyBytes: req.bodyBytes });
      res.writeHead(200, { 'content-type': 'application/json', connection: 'x-upstream-hop', 'x-upstream-hop': 'dropped', 'x-kept': 'yes' });
      res.end(body);
    });
    dir = tempDir();
    secretFile(dir, 'svc.secret', 'svc-secret\n');
    rotatingSecret = secretFile(dir, 'post.secret', 'not-the-secret\n');
    keyPath = secretFile(dir, 'api.keys', 'first-key-0123456789\nsecond-key-9876543210\n');
    config = {
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      tokenApi: { socket: join(dir, 'broker.sock'), listen: '127.0.0.1:0', keyFile: 'api.keys' },
      watchIntervalSeconds: 0.2,
      shutdownGraceSeconds: 10,
      clients: {
        svc: { tokenUrl: '${TOKEN_URL}', clientId: 'svc', clientSecretFile: 'svc.secret', scopes: ['api:read'] },
        post: { tokenUrl: '${TOKEN_URL}', clientId: 'postclient', authMethod: 'client_secret_post', clientSecretFile: 'post.secret' },
      },
      routes: [
        { path: '/api/', upstream: `${upstream.url}/v2/`, client: 'svc' },
        { path: '/pass/', upstream: `${upstream.url}/v2/`, client: 'svc', passAuthorization: true },
        { path: '/post/', upstream: `${upstream.url}/v3/`, client: 'post' },
      ],
    };
    broker = await startBrokerProcess(config, dir, { TOKEN_URL: op.tokenUrl });
  });

  after(async () => {
    await broker?.stop('SIGKILL');
    await upstream?.close();
    await op?.close();
  });

  test('200 concurrent cold requests make 1 token request, and all succeed with the same token', async () => {
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => call(`${broker.url}/api/herd/${i}`)));
    assert.deepEqual(replies.map((r) => r.status), Array(200).fill(200));
    assert.equal(op.tokenRequests.length, 1);
    const auths = new Set(replies.map((r) => (JSON.parse(r.body.toString()) as { authorization: string }).authorization));
    assert.equal(auths.size, 1);
    assert.match([...auths][0]!, /^Bearer [\w.-]+$/);
    assert.equal((JSON.parse(replies[7]!.body.toString()) as { url: string }).url, '/v2/herd/7');
  });

  test('prefix replaced, query kept; hop-by-hop headers dropped both ways; caller Authorization replaced', async () => {
    const before = upstream.requests.length;
    const reply = await call(`${broker.url}/api/things/a%20b?x=1&y=%2F`, { headers: { authorization: 'Bearer caller-token', connection: 'x-hop', 'x-hop': '1', te: 'trailers', 'x-end-to-end': 'kept', dpop: 'caller-proof' } });
    assert.equal(reply.status, 200);
    const seen = upstream.requests[before]!;
    assert.equal(seen.url, '/v2/things/a%20b?x=1&y=%2F');
    assert.notEqual(seen.headers.authorization, 'Bearer caller-token');
    assert.match(seen.headers.authorization!, /^Bearer /);
    assert.equal(seen.headers['x-hop'], undefined);
    assert.equal(seen.headers.te, undefined);
    assert.equal(seen.headers.dpop, undefined);
    assert.equal(seen.headers['x-end-to-end'], 'kept');
    assert.equal(seen.headers.host, `127.0.0.1:${upstream.port}`);
    assert.equal(reply.headers['x-upstream-hop'], undefined);
    assert.equal(reply.headers['x-kept'], 'yes');
  });

  test('a route with passAuthorization keeps the caller\'s Authorization, and sends the token when there is none', async () => {
    const before = upstream.requests.length;
    assert.equal((await call(`${broker.url}/pass/x`, { headers: { authorization: 'Bearer caller-token' } })).status, 200);
    assert.equal(upstream.requests[before]!.headers.authorization, 'Bearer caller-token');
    assert.equal((await call(`${broker.url}/pass/y`)).status, 200);
    assert.match(upstream.requests[before + 1]!.headers.authorization!, /^Bearer ey/);
  });

  test('10 MB bodies go through byte for byte, both ways', async () => {
    const payload = randomBytes(10 * 1024 * 1024);
    const before = upstream.requests.length;
    const reply = await call(`${broker.url}/api/echo`, { method: 'POST', body: payload, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(reply.status, 200);
    assert.equal(upstream.requests[before]!.bodyBytes, payload.length);
    assert.equal(upstream.requests[before]!.bodySha256, createHash('sha256').update(payload).digest('hex'));
    assert.equal(reply.body.length, payload.length);
    assert.ok(reply.body.equals(payload));
    // Chunked upload (no content-length) too.
    const chunked = await new Promise<Buffer>((resolve, reject) => {
      const req = httpRequest(`${broker.url}/api/echo`, { method: 'PUT' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      });
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write(payload.subarray(i * 1_048_576, (i + 1) * 1_048_576));
      req.end();
    });
    assert.ok(chunked.equals(payload));
  });

  test('a 401 from the upstream drops the token and replays the request once with a new one (body included)', async () => {
    const tokenRequests = op.tokenRequests.length;
    const before = upstream.requests.length;
    const reply = await call(`${broker.url}/api/reject-first`, { method: 'POST', body: '{"small":true}', headers: { 'content-type': 'application/json' } });
    assert.equal(reply.status, 200);
    assert.equal(op.tokenRequests.length, tokenRequests + 1);
    const [first, second] = upstream.requests.slice(before);
    assert.notEqual(first!.headers.authorization, second!.headers.authorization);
    assert.equal(first!.bodySha256, second!.bodySha256);
    assert.equal(second!.bodyBytes, 14);
  });

  test('a 401 to a body too large to keep is passed to the caller, not replayed', async () => {
    const before = upstream.requests.length;
    const tokenRequests = op.tokenRequests.length;
    const reply = await call(`${broker.url}/api/reject-first/big`, { method: 'POST', body: randomBytes(200_000) });
    assert.equal(reply.status, 401);
    assert.equal(upstream.requests.length, before + 1);
    // The token was refused moments after the previous one: the library's refusal throttle keeps it (no new request).
    assert.equal(op.tokenRequests.length, tokenRequests);
  });

  test('never an open proxy: absolute-form, CONNECT, unknown paths and dot segments reach nothing', async () => {
    const port = portOf(broker.url);
    const before = upstream.requests.length;
    const absolute = await raw(port, `GET http://127.0.0.1:${upstream.port}/v2/x HTTP/1.1\r\nhost: 127.0.0.1:${upstream.port}\r\nconnection: close\r\n\r\n`);
    assert.match(absolute, /^HTTP\/1\.1 400 /);
    const connectReply = await raw(port, `CONNECT 127.0.0.1:${upstream.port} HTTP/1.1\r\nhost: 127.0.0.1:${upstream.port}\r\n\r\n`);
    assert.match(connectReply, /^HTTP\/1\.1 405 /);
    for (const path of ['/nothing', '/', '/apix/1', '/ap', '/API/x']) {
      const r = await raw(port, `GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
      assert.match(r, /^HTTP\/1\.1 404 /, path);
    }
    for (const path of ['/api/../pass/x', '/api/./x', '/api/%2e%2e/x', '/api/%2E%2e/x', '/api/a%2f..%2fb', '/api/..%5cx', '/api/a\\..\\b', '//127.0.0.1/api/x', '/api/x/..', '*']) {
      const r = await raw(port, `GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
      assert.match(r, /^HTTP\/1\.1 400 /, path);
    }
    const upgrade = await raw(port, 'GET /api/ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n');
    assert.match(upgrade, /^HTTP\/1\.1 501 /);
    assert.equal(upstream.requests.length, before);
  });

  test('callers that go away mid-request (waiting for the upstream, mid-upload) leave the broker serving', async () => {
    const port = portOf(broker.url);
    const waiting = connect(port, '127.0.0.1');
    waiting.on('error', () => undefined);
    waiting.write('GET /api/slow HTTP/1.1\r\nhost: x\r\n\r\n');
    const uploading = connect(port, '127.0.0.1');
    uploading.on('error', () => undefined);
    uploading.write('POST /api/echo HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000\r\n\r\n');
    uploading.write(randomBytes(1_000_000));
    const small = connect(port, '127.0.0.1');
    small.on('error', () => undefined);
    small.write('POST /api/x HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nonly part');
    await sleep(300);
    waiting.destroy();
    uploading.destroy();
    small.destroy();
    await sleep(1_500);
    assert.equal(broker.child.exitCode, null);
    assert.equal((await call(`${broker.url}/api/after-aborts`)).status, 200);
  });

  test('token API on the Unix socket: mode 0600, the token as JSON, no-store', async () => {
    const socketPath = join(dir, 'broker.sock');
    assert.equal(statSync(socketPath).mode & 0o777, 0o600);
    const reply = await call('http://broker/v1/token/svc', { socketPath });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['cache-control'], 'no-store');
    const body = JSON.parse(reply.body.toString()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['access_token', 'expires_in', 'token_type']);
    assert.equal(body['token_type'], 'Bearer');
    assert.ok((body['expires_in'] as number) > 200 && (body['expires_in'] as number) <= 300);
    assert.equal((await call('http://broker/v1/token/nobody', { socketPath })).status, 404);
    assert.equal((await call('http://broker/v1/token/svc', { socketPath, method: 'POST' })).status, 405);
  });

  test('token API on TCP wants a key from the key file (either line), compared whole', async () => {
    const url = `${broker.tokenApiUrl}/v1/token/svc`;
    assert.equal((await call(url)).status, 401);
    assert.equal((await call(url, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await call(url, { headers: { authorization: 'Bearer first-key-012345678' } })).status, 401);
    assert.equal((await call(url, { headers: { authorization: 'Bearer first-key-0123456789x' } })).status, 401);
    const ok = await call(url, { headers: { authorization: 'Bearer second-key-9876543210' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['cache-control'], 'no-store');
  });

  test('an emptied key file keeps the keys in force (and says so); a new one replaces them', async () => {
    const url = `${broker.tokenApiUrl}/v1/token/svc`;
    let from = broker.logs.length;
    writeFileSync(keyPath, '\n');
    await broker.waitFor('keys_reload_failed', 20_000, from);
    // Before: the keys were cleared while the log said the reload failed: every caller got 401.
    assert.equal((await call(url, { headers: { authorization: 'Bearer second-key-9876543210' } })).status, 200);
    from = broker.logs.length;
    writeFileSync(keyPath, 'third-key-5555555555\r\n');
    await broker.waitFor('keys_reloaded', 20_000, from);
    assert.equal((await call(url, { headers: { authorization: 'Bearer second-key-9876543210' } })).status, 401);
    assert.equal((await call(url, { headers: { authorization: 'Bearer third-key-5555555555' } })).status, 200);
  });

  test('a Python standard-library client calls through the broker and the token API', async () => {
    const script = [
      'import json, sys, socket, urllib.request, http.client',
      'base, sock = sys.argv[1], sys.argv[2]',
      'with urllib.request.urlopen(base + "/api/from-python?lang=py") as r:',
      '    print(r.status, json.loads(r.read())["url"])',
      'class UnixConnection(http.client.HTTPConnection):',
      '    def connect(self):',
      '        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
      '        self.sock.connect(sock)',
      'c = UnixConnection("localhost")',
      'c.request("GET", "/v1/token/svc")',
      'r = c.getresponse()',
      'print(r.status, json.loads(r.read())["token_type"])',
    ].join('\n');
    const { stdout } = await run('/usr/bin/python3', ['-c', script, broker.url, join(dir, 'broker.sock')]);
    assert.equal(stdout, '200 /v2/from-python?lang=py\n200 Bearer\n');
  });

  test('admin: /healthz, /readyz, and /metrics in strict Prometheus text format', async () => {
    assert.equal((await call(`${broker.adminUrl}/healthz`)).status, 200);
    const metrics = await call(`${broker.adminUrl}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(String(metrics.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const families = parsePrometheus(metrics.body.toString());
    const sample = (name: string, labels: Record<string, string>): number | undefined =>
      families.get(name.replace(/_(bucket|sum|count)$/, ''))?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    assert.equal(families.get('broker_token_requests_total')?.type, 'counter');
    assert.ok(sample('broker_token_requests_total', { client: 'svc' })! >= 2);
    assert.ok(sample('broker_proxied_requests_total', { route: '/api/', status: '200' })! >= 200);
    assert.equal(sample('broker_proxied_requests_total', { route: '/api/', status: '401' }), 1);
    assert.equal(families.get('broker_upstream_latency_seconds')?.type, 'histogram');
    assert.ok(sample('broker_upstream_latency_seconds_count', { route: '/api/' })! >= 200);
    assert.equal(sample('broker_circuit_open', { client: 'svc' }), 0);
    assert.ok(sample('broker_token_cache_hits_total', { client: 'svc' })! >= 5, String(sample('broker_token_cache_hits_total', { client: 'svc' })));
    assert.ok(sample('broker_token_waits_total', { client: 'svc' })! >= 1);
    assert.ok(sample('broker_refused_requests_total', {})! >= 10);
    // readyz: the post client has a wrong secret, so the broker is not ready.
    const ready = await call(`${broker.adminUrl}/readyz`);
    assert.equal(ready.status, 503);
    const clients = (JSON.parse(ready.body.toString()) as { clients: { client: string; ready: boolean }[] }).clients;
    assert.deepEqual(clients.map((c) => [c.client, c.ready]), [['svc', true], ['post', false]]);
  });

  test('a rotated secret file is picked up without a restart', async () => {
    const failing = await call(`${broker.url}/post/x`);
    assert.equal(failing.status, 503);
    assert.equal((JSON.parse(failing.body.toString()) as { error: string }).error, 'token_unavailable');
    const from = broker.logs.length;
    writeFileSync(rotatingSecret, 'post-secret\n');
    await broker.waitFor('client_files_reloaded', 20_000, from);
    const ok = await call(`${broker.url}/post/x`);
    assert.equal(ok.status, 200);
    assert.equal((JSON.parse(ok.body.toString()) as { url: string }).url, '/v3/x');
    assert.equal((await call(`${broker.adminUrl}/readyz`)).status, 200);
  });

  test('SIGHUP with a bad config keeps the old one and says why; a good one is taken', async () => {
    let from = broker.logs.length;
    writeFileSync(broker.configPath, JSON.stringify({ ...config, routes: [{ path: '/api/', upstream: `${upstream.url}/v2/`, clinet: 'svc' }] }));
    broker.child.kill('SIGHUP');
    const failed = await broker.waitFor('reload_failed', 20_000, from);
    assert.match(JSON.stringify(failed), /routes\[0\]\.clinet/);
    assert.match(JSON.stringify(failed), /did you mean \\"client\\"/);
    assert.equal((await call(`${broker.url}/api/still`)).status, 200);
    from = broker.logs.length;
    const routes = [...(config['routes'] as object[]), { path: '/new', upstream: `${upstream.url}/v4`, client: 'svc' }];
    writeFileSync(broker.configPath, JSON.stringify({ ...config, routes }));
    broker.child.kill('SIGHUP');
    const reloaded = await broker.waitFor('reloaded', 20_000, from);
    assert.deepEqual(reloaded['reopened'], []);
    const r = await call(`${broker.url}/new/thing`);
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body.toString()) as { url: string }).url, '/v4/thing');
  });

  test('no log line holds a secret, a key or a token', () => {
    const text = broker.output();
    assert.ok(tokensSeen.size >= 2);
    for (const secret of ['svc-secret', 'post-secret', 'first-key-0123456789', 'second-key-9876543210', 'third-key-5555555555', ...tokensSeen]) assert.ok(!text.includes(secret), 'a secret or token in the log');
    for (const line of text.trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line), line);
  });

  test('SIGTERM: stops accepting, finishes the request in flight, exits 0', async () => {
    const slow = call(`${broker.url}/api/slow?drain`);
    // SIGTERM once the request is in flight at the upstream (however slow the machine).
    for (let i = 0; i < 400 && !upstream.requests.some((r) => r.url === '/v2/slow?drain'); i++) await sleep(25);
    assert.ok(upstream.requests.some((r) => r.url === '/v2/slow?drain'));
    const exited = broker.stop('SIGTERM');
    await broker.waitFor('draining', 10_000, 0);
    await sleep(100);
    await assert.rejects(call(`${broker.url}/api/after`), /ECONNREFUSED|ECONNRESET|socket hang up/);
    const reply = await slow;
    assert.equal(reply.status, 200);
    assert.equal(reply.body.toString(), 'slow done');
    assert.equal(await exited, 0);
  });
});

describe('serve: outages and fleets', () => {
  let op: OidcProviderHandle;
  let upstream: Upstream;

  before(async () => {
    op = await startOidcProvider({ ttl: 10 });
    upstream = await startUpstream();
  });

  after(async () => {
    await upstream?.close();
    await op?.close();
  });

  test('token endpoint down while a valid token is held: 0 failed proxied requests', async () => {
    const fault: FaultProxyHandle = await startFaultProxy(op.tokenUrl.replace(/\/token$/, ''));
    const dir = tempDir();
    secretFile(dir, 's', 'svc-secret');
    const broker = await startBrokerProcess({
      listen: '127.0.0.1:0',
      clients: { svc: { tokenUrl: `${fault.url}/token`, clientId: 'svc', clientSecretFile: 's' } },
      routes: [{ path: '/', upstream: upstream.url, client: 'svc' }],
    }, dir);
    try {
      assert.equal((await call(`${broker.url}/warm`)).status, 200);
      const obtained = Date.now();
      fault.setDown(true);
      const statuses: number[] = [];
      // The 10 s token goes stale at 5 s (background refreshes fail against the outage) but stays valid: serve it.
      while (Date.now() - obtained < 7_000) {
        statuses.push(...(await Promise.all(Array.from({ length: 5 }, () => call(`${broker.url}/during`)))).map((r) => r.status));
        await sleep(50);
      }
      assert.ok(statuses.length > 50);
      assert.deepEqual(statuses.filter((s) => s !== 200), []);
      assert.ok(fault.requests > 1, 'the broker tried to refresh during the outage');
    } finally {
      fault.setDown(false);
      await broker.stop('SIGKILL');
      await fault.close();
    }
  });

  test('a token endpoint that accepts and never answers: a request with no token held gets 503 within the client\'s tokenTimeoutSeconds, on the proxy and the token API', async () => {
    const fault: FaultProxyHandle = await startFaultProxy(op.tokenUrl.replace(/\/token$/, ''));
    await fault.setShape({ kind: 'hang' });
    const dir = tempDir();
    secretFile(dir, 's', 'svc-secret');
    const socketPath = join(dir, 'broker.sock');
    const broker = await startBrokerProcess({
      listen: '127.0.0.1:0',
      tokenApi: { socket: socketPath },
      clients: { svc: { tokenUrl: `${fault.url}/token`, clientId: 'svc', clientSecretFile: 's', tokenTimeoutSeconds: 1.5 } },
      routes: [{ path: '/', upstream: upstream.url, client: 'svc' }],
    }, dir);
    try {
      // Without the bound this took the token request's 30 s, then a retry's (about 60 s before a 503).
      const started = Date.now();
      const [proxied, token] = await Promise.all([call(`${broker.url}/during`), call('http://broker/v1/token/svc', { socketPath })]);
      const took = Date.now() - started;
      assert.equal(proxied.status, 503);
      assert.equal(token.status, 503);
      assert.ok(took >= 1_400 && took < 15_000, `answered after ${took} ms`);
      assert.ok(fault.hanging >= 1, 'the token request went out and hung');
      // The endpoint back: the next request gets a token.
      await fault.setShape(undefined);
      assert.equal((await call(`${broker.url}/after`)).status, 200);
    } finally {
      await fault.setShape(undefined);
      await broker.stop('SIGKILL');
      await fault.close();
    }
  });

  test('two brokers on one Redis make one token request between them', async () => {
    // No skip without redis-server: .ci/run installs it, and a test that skips itself proves nothing.
    const redis = await startRedis();
    const fresh = await startOidcProvider({ ttl: 300 });
    const dir = tempDir();
    secretFile(dir, 's', 'svc-secret');
    const config = {
      listen: '127.0.0.1:0',
      tokenStore: redis.url,
      clients: { svc: { tokenUrl: fresh.tokenUrl, clientId: 'svc', clientSecretFile: 's' } },
      routes: [{ path: '/', upstream: upstream.url, client: 'svc' }],
    };
    const [a, b] = await Promise.all([startBrokerProcess(config, dir, {}, 'a.json'), startBrokerProcess(config, dir, {}, 'b.json')]);
    try {
      const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => call(`${(i % 2 ? a : b).url}/fleet/${i}`)));
      assert.deepEqual(replies.map((r) => r.status), Array(100).fill(200));
      assert.equal(fresh.tokenRequests.length, 1);
      const auths = new Set(replies.map((r) => (JSON.parse(r.body.toString()) as { authorization: string }).authorization));
      assert.equal(auths.size, 1);
    } finally {
      await Promise.all([a.stop('SIGKILL'), b.stop('SIGKILL')]);
      await fresh.close();
      await redis.close();
    }
  });
});

describe('serve: DPoP', () => {
  test('a DPoP client gets a proof per request (nonces honoured at both servers) that a jose-verifying API accepts', async () => {
    const op = await startOidcProvider({ dpop: 'nonce', clients: [{ client_id: 'dpop-svc', client_secret: 'dpop-secret', dpop_bound_access_tokens: true }] });
    const api = await startDpopApi({ issuer: op.issuer, jwksUrl: op.jwksUrl, audience: op.resource, requireNonce: true });
    const dir = tempDir();
    secretFile(dir, 's', 'dpop-secret');
    const broker = await startBrokerProcess({
      listen: '127.0.0.1:0',
      tokenApi: { socket: join(dir, 't.sock') },
      clients: { d: { tokenUrl: op.tokenUrl, clientId: 'dpop-svc', clientSecretFile: 's', dpop: true } },
      routes: [{ path: '/dpop/', upstream: api.url, client: 'd' }],
    }, dir);
    try {
      const first = await call(`${broker.url}/dpop/things?x=1`);
      assert.equal(first.status, 200, first.body.toString());
      for (let i = 0; i < 3; i++) assert.equal((await call(`${broker.url}/dpop/things`, { method: 'POST', body: `{"i":${i}}`, headers: { 'content-type': 'application/json' } })).status, 200);
      const accepted = api.requests.filter((r) => r.verdict === 'ok');
      assert.equal(accepted.length, 4);
      assert.equal(accepted[0]!.proof!['htu'], `${api.url}/things`);
      assert.equal(accepted[1]!.proof!['htm'], 'POST');
      assert.equal(new Set(accepted.map((r) => r.proof!['jti'])).size, 4);
      assert.match(String(accepted[0]!.headers.authorization), /^DPoP /);
      assert.equal(op.tokenRequests.length >= 1 && op.tokenRequests.length <= 2, true, 'one token (after at most one nonce round trip)');
      // The API rotates its nonce: requests sent together with the stale one are each replayed with the new one,
      // and no good token is dropped for it.
      api.rotateNonce();
      const tokens = op.tokenRequests.length;
      const before = api.requests.length;
      const together = await Promise.all(Array.from({ length: 6 }, () => call(`${broker.url}/dpop/things`)));
      const verdicts = api.requests.slice(before).map((r) => r.verdict);
      assert.deepEqual(together.map((r) => r.status), Array(6).fill(200), verdicts.join(', '));
      assert.equal(op.tokenRequests.length, tokens, `no token fetched again: ${verdicts.join(', ')}`);
      // The token API does not hand out a token bound to the broker's key.
      const viaApi = await call('http://broker/v1/token/d', { socketPath: join(dir, 't.sock') });
      assert.equal(viaApi.status, 409);
      assert.ok(!viaApi.body.toString().includes('eyJ'));
    } finally {
      await broker.stop('SIGKILL');
      await api.close();
      await op.close();
    }
  });
});

describe('serve: hostile callers', () => {
  let op: OidcProviderHandle;
  let upstream: Upstream;
  let broker: BrokerProcess;
  let port: number;

  let bigClosedEarly = false;

  before(async () => {
    op = await startOidcProvider({ ttl: 300 });
    upstream = await startUpstream((req, res) => {
      if (req.url.endsWith('/early')) {
        res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      }
      if (req.url.endsWith('/big')) {
        // 64 MiB, written as fast as the broker takes it.
        const chunk = Buffer.alloc(1 << 20, 97);
        let sent = 0;
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(64 * chunk.length) });
        res.on('close', () => (bigClosedEarly = !res.writableFinished));
        const more = (): void => {
          while (sent < 64 && !res.destroyed) {
            sent++;
            if (!res.write(chunk)) return void res.once('drain', more);
          }
          res.end();
        };
        return more();
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ url: req.url }));
    });
    const dir = tempDir();
    secretFile(dir, 's', 'svc-secret');
    broker = await startBrokerProcess({
      listen: '127.0.0.1:0',
      upstreamTimeoutSeconds: 2,
      clients: { svc: { tokenUrl: op.tokenUrl, clientId: 'svc', clientSecretFile: 's' } },
      routes: [
        { path: '/api/', upstream: `${upstream.url}/v2/`, client: 'svc' },
        { path: '/bare', upstream: upstream.url, client: 'svc' },
      ],
    }, dir);
    port = portOf(broker.url);
    assert.equal((await call(`${broker.url}/api/warm`)).status, 200);
  });

  after(async () => {
    await broker?.stop('SIGKILL');
    await upstream?.close();
    await op?.close();
  });

  test('`..;` (Tomcat, Jetty), double-encoded dots and slashes, and a `//` upstream path are refused', async () => {
    const before = upstream.requests.length;
    for (const path of ['/api/..;/admin', '/api/..;jsessionid=x/admin', '/api/%2e%2e;/admin', '/api/%252e%252e/admin', '/api/a%252f..%252fb', '/bare//evil.example/x']) {
      const r = await raw(port, `GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
      assert.match(r, /^HTTP\/1\.1 400 /, path);
      assert.match(r, /"unsafe_path"/, path);
    }
    assert.equal(upstream.requests.length, before);
    assert.equal((await call(`${broker.url}/bare/x;v=1`)).status, 200);
    assert.equal(upstream.requests.at(-1)!.url, '/x;v=1');
  });

  test('a transfer coding other than chunked gets 501: its body would reach the upstream still coded', async () => {
    const before = upstream.requests.length;
    const r = await raw(port, 'POST /api/coded HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    assert.match(r, /^HTTP\/1\.1 501 /);
    assert.match(r, /"unsupported_transfer_coding"/);
    await sleep(100);
    assert.equal(upstream.requests.length, before);
    const chunked = await raw(port, 'POST /api/plain HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    assert.match(chunked, /^HTTP\/1\.1 200 /);
    assert.equal(upstream.requests.at(-1)!.bodyBytes, 3);
  });

  test('a request with as many header fields as Node keeps is refused (431), not forwarded without the ones cut', async () => {
    const filler = (n: number): string => Array.from({ length: n }, (_, i) => `x-f${i % 10}: 1\r\n`).join('');
    const before = upstream.requests.length;
    // Node keeps 2000 fields and drops the rest silently: here Content-Length, so the body would be lost.
    const r = await raw(port, `POST /api/many HTTP/1.1\r\nhost: x\r\n${filler(1999)}content-length: 5\r\nconnection: close\r\n\r\nhello`);
    assert.match(r, /^HTTP\/1\.1 431 /);
    await sleep(100);
    assert.equal(upstream.requests.length, before);
    const ok = await raw(port, `POST /api/some HTTP/1.1\r\nhost: x\r\n${filler(1990)}content-length: 5\r\nconnection: close\r\n\r\nhello`);
    assert.match(ok, /^HTTP\/1\.1 200 /);
    assert.equal(upstream.requests.at(-1)!.bodyBytes, 5);
    // Headers over Node's 16 KiB: 431 too (Node's parser refuses them; the broker answered a bare 400).
    const big = await raw(port, `GET /api/big-header HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match(big, /^HTTP\/1\.1 431 /);
  });

  test('a caller that stops sending mid-body is disconnected after upstreamTimeoutSeconds, its upstream request aborted', async () => {
    const before = upstream.requests.length;
    const closed = (body: number): Promise<number> => new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      const started = Date.now();
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(Date.now() - started));
      // Streamed (over replayBodyBytes) and kept in memory (under it): both hold a connection until the body ends.
      socket.write(`POST /api/stalled HTTP/1.1\r\nhost: x\r\ncontent-length: ${body}\r\n\r\n`);
      socket.write(Buffer.alloc(1_000, 120));
      // Without a bound the socket stays open for good: the test gives up after 15 s.
      setTimeout(() => socket.destroy(), 15_000).unref();
    });
    const [streamed, kept] = await Promise.all([closed(500_000), closed(10_000)]);
    assert.ok(streamed < 12_000, `streamed: closed after ${streamed} ms`);
    assert.ok(kept < 12_000, `kept: closed after ${kept} ms`);
    await sleep(200);
    assert.equal(upstream.requests.length, before, 'no stalled request reached the upstream whole');
    assert.equal(broker.child.exitCode, null);
    assert.equal((await call(`${broker.url}/api/after-stall`)).status, 200);
  });

  test('an interim response (103 Early Hints) from the upstream is skipped, the final one forwarded', async () => {
    // Before: the 103 was written as the response and the final one then failed: the caller waited for ever.
    const r = await raw(port, 'GET /api/early HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    assert.match(r, /^HTTP\/1\.1 200 /);
    assert.match(r, /"url":"\/v2\/early"/);
  });

  test('a caller that stops reading a response is disconnected after upstreamTimeoutSeconds, the upstream connection closed', async () => {
    bigClosedEarly = false;
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    let received = 0;
    socket.on('data', (d: Buffer) => {
      received += d.length;
      socket.pause();
    });
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write('GET /api/big HTTP/1.1\r\nhost: x\r\n\r\n');
    try {
      // Without a bound the broker waits for the caller for good (the test gives up after 12 s).
      for (let i = 0; i < 240 && !bigClosedEarly; i++) await sleep(50);
      assert.equal(bigClosedEarly, true, 'the upstream saw its response cut');
      // Read what the kernel holds: the broker closed the connection well before the 64 MiB.
      socket.removeAllListeners('data');
      socket.on('data', (d: Buffer) => (received += d.length));
      socket.resume();
      await closed;
      assert.ok(received < 64 * 1_048_576, `received ${received} bytes`);
    } finally {
      socket.destroy();
    }
    assert.equal((await call(`${broker.url}/api/after-slow-reader`)).status, 200);
  });
});
