/**
 * The token broker attacked as a hostile upstream, an impatient caller, a careless operator and a dying process would:
 * the broker runs as a child process (`serve`), in front of real node:http upstreams and a real token endpoint.
 * Each test here failed on the code before its fix (see its comment).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeServer, listenLocal } from './helpers/http.js';
import { parsePrometheus } from './helpers/prometheus.js';
import { startScripted, sendJson, type ScriptedServer } from './helpers/scripted.js';
import { CLI_MAIN, secretFile, startBrokerProcess, tempDir, type BrokerProcess } from './helpers/broker.js';
import { startRedis } from './helpers/redis.js';
import { testCertificates } from './helpers/certs.js';
import { startOidcProvider } from './helpers/oidc.js';
import { modOauth2Skip, startModOauth2 } from './helpers/modOauth2.js';
import { startTcpProxy } from './helpers/tcpProxy.js';

/** What the upstream saw of one request: when it arrived and when its connection went away unanswered. */
interface Seen {
  url: string;
  at: number;
  bodyBytes: number;
  /** The request's Via header. */
  via: string | undefined;
  /** ms after arrival when the response closed without being finished (the broker gave up on it). */
  abandonedAfter?: number;
}

/** An upstream whose answer depends on the path: `/hang*` never answers, `/not-modified`, `/no-content` and the rest. */
async function startUpstream(): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const record: Seen = { url: req.url ?? '', at: Date.now(), bodyBytes: 0, via: req.headers.via };
    seen.push(record);
    res.on('close', () => {
      if (!res.writableFinished) record.abandonedAfter = Date.now() - record.at;
    });
    req.on('data', (chunk: Buffer) => (record.bodyBytes += chunk.length));
    req.on('error', () => undefined);
    if (record.url.includes('/hang')) return;
    // The first request gets a 401 whose body never ends (16 KiB every 50 ms); the replay gets 200.
    if (record.url.includes('/endless-401') && !seen.some((s) => s !== record && s.url === record.url)) {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"', 'content-type': 'text/plain' });
      const timer = setInterval(() => res.write(Buffer.alloc(16_384, 120)), 50);
      res.on('close', () => clearInterval(timer));
      return;
    }
    req.on('end', () => {
      // A 304 to a conditional GET may carry the representation's Content-Length (RFC 9110 §8.6); a 204 must not,
      // and some servers send one anyway.
      if (record.url.includes('/not-modified')) return void res.writeHead(304, { etag: '"v1"', 'content-length': '1234' }).end();
      // A trailing-slash redirect as Django and Rails send it (path-absolute), and one as an absolute URL.
      if (record.url.endsWith('/slashless')) return void res.writeHead(301, { location: `${record.url}/` }).end();
      if (record.url.endsWith('/absolute-redirect')) return void res.writeHead(302, { location: `http://${req.headers.host}/v2/elsewhere?x=1` }).end();
      if (record.url.endsWith('/outside-redirect')) return void res.writeHead(302, { location: '/login' }).end();
      if (record.url.includes('/no-content')) return void res.writeHead(204, { 'content-length': '5' }).end();
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  const url = await listenLocal(server);
  return { url, seen, close: () => closeServer(server) };
}

/** A token endpoint that answers after `delay()` ms. */
function startTokenEndpoint(delay: () => number): Promise<ScriptedServer> {
  let n = 0;
  return startScripted(async (_req, res) => {
    await sleep(delay());
    sendJson(res, 200, { access_token: `tok-${++n}-${'x'.repeat(24)}`, token_type: 'Bearer', expires_in: 3600 });
  });
}

/** Sends `text` on a new connection; resolves with what came back before the server closed it (or `waitMs`). */
function raw(port: number, text: string, waitMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => socket.destroy(), waitMs);
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    socket.on('error', reject);
    socket.write(text);
  });
}

/** Opens a connection, sends `text`, and closes it once `ready()` holds (at most 15 s) without waiting for an answer. */
async function sendAndLeave(port: number, text: string | (string | Buffer)[], ready: () => boolean): Promise<void> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  for (const part of typeof text === 'string' ? [text] : text) socket.write(part);
  assert.ok(await until(ready, 15_000), 'the request got where the test needs it');
  await sleep(100);
  socket.destroy();
}

/** Whether the upstream saw a request for `url`. */
const reached = (upstream: { seen: Seen[] }, url: string) => (): boolean => upstream.seen.some((s) => s.url === url);

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!condition() && Date.now() < end) await sleep(25);
  return condition();
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

describe('serve: hostile upstreams and impatient callers', () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let tokens: ScriptedServer;
  let tokenDelay = 0;
  let broker: BrokerProcess;
  let port: number;

  before(async () => {
    upstream = await startUpstream();
    tokens = await startTokenEndpoint(() => tokenDelay);
    const dir = tempDir();
    secretFile(dir, 's', 'svc-secret');
    broker = await startBrokerProcess({
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      upstreamTimeoutSeconds: 30,
      clients: {
        svc: { tokenUrl: `${tokens.url}/token`, clientId: 'svc', clientSecretFile: 's' },
        cold: { tokenUrl: `${tokens.url}/token`, clientId: 'cold', clientSecretFile: 's' },
      },
      routes: [
        { path: '/api/', upstream: `${upstream.url}/v2/`, client: 'svc' },
        { path: '/cold/', upstream: `${upstream.url}/v3/`, client: 'cold' },
      ],
    }, dir);
    port = portOf(broker.url);
    assert.match(await raw(port, 'GET /api/warm HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'), /^HTTP\/1\.1 200 /);
  });

  after(async () => {
    await broker?.stop('SIGKILL');
    await upstream?.close();
    await tokens?.close();
  });

  test('a 304 with Content-Length (conditional GET) and a 204 that declares one reach the caller, complete', async () => {
    // Before: undici reports the missing body as a content-length mismatch; the broker had started the response and
    // cut the connection: the caller got nothing at all (a revalidating cache saw the request fail).
    const notModified = await raw(port, 'GET /api/not-modified HTTP/1.1\r\nhost: x\r\nif-none-match: "v1"\r\nconnection: close\r\n\r\n');
    assert.match(notModified, /^HTTP\/1\.1 304 /);
    assert.match(notModified, /\r\netag: "v1"\r\n/i);
    const noContent = await raw(port, 'GET /api/no-content HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    assert.match(noContent, /^HTTP\/1\.1 204 /);
    assert.doesNotMatch(noContent, /content-length/i, 'a 204 carries no Content-Length (RFC 9110 §8.6)');
    // Node's own fetch (undici) reads the broker's 304 (it refuses one with a Content-Length and no body).
    const viaFetch = await fetch(`${broker.url}/api/not-modified`, { headers: { 'if-none-match': '"v1"' } });
    assert.equal(viaFetch.status, 304);
    assert.equal(viaFetch.headers.get('etag'), '"v1"');
    // A keep-alive caller goes on with its next request on the same connection.
    const twice = await raw(port, 'GET /api/not-modified HTTP/1.1\r\nhost: x\r\n\r\nGET /api/after HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    assert.match(twice, /^HTTP\/1\.1 304 [\s\S]*HTTP\/1\.1 200 [\s\S]*\r\nok\r\n/);
  });

  test('a redirect into the route\'s upstream path comes back under the route\'s prefix, so that following it works', async () => {
    // Before: the upstream's Location went out as it was (`/v2/things/slashless/`): the caller followed it to the
    // broker's /v2/…, which no route serves (404), or to the upstream itself, without a token.
    const slash = await raw(port, 'GET /api/things/slashless HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    assert.match(slash, /^HTTP\/1\.1 301 [\s\S]*\r\nlocation: \/api\/things\/slashless\/\r\n/i);
    const absolute = await raw(port, 'GET /api/absolute-redirect HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    assert.match(absolute, /\r\nlocation: \/api\/elsewhere\?x=1\r\n/i);
    // Somewhere outside the route's upstream path: left as it is.
    assert.match(await raw(port, 'GET /api/outside-redirect HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'), /\r\nlocation: \/login\r\n/i);
    // Followed by a client, the redirect ends at the upstream, through the broker.
    const followed = await fetch(`${broker.url}/api/things/slashless`);
    assert.equal(followed.status, 200);
    assert.equal(upstream.seen.at(-1)!.url, '/v2/things/slashless/');
  });

  test('a caller that goes away before the upstream answers has its upstream request aborted at once', async () => {
    // Before: the upstream request ran on until the upstream answered or upstreamTimeoutSeconds (30 s here) passed,
    // holding an upstream connection for a caller long gone.
    await sendAndLeave(port, 'GET /api/hang-get HTTP/1.1\r\nhost: x\r\n\r\n', reached(upstream, '/v2/hang-get'));
    await sendAndLeave(port, ['POST /api/hang-post HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\n', 'hello'], reached(upstream, '/v2/hang-post'));
    for (const url of ['/v2/hang-get', '/v2/hang-post']) {
      const record = (): Seen | undefined => upstream.seen.find((s) => s.url === url);
      assert.ok(await until(() => record()?.abandonedAfter !== undefined, 8_000), `${url}: the upstream request was not aborted`);
      assert.ok(record()!.abandonedAfter! < 8_000);
    }
  });

  test('a caller that goes away while its token is being fetched: the request never reaches the upstream', async () => {
    // Before: the request went upstream once the token came, POST body and all, for a caller that had gone (and may
    // have retried it elsewhere: a side effect done twice).
    tokenDelay = 1_500;
    try {
      // The caller leaves once the token request is at the (slow) token endpoint.
      await sendAndLeave(port, 'POST /cold/side-effect HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc', () => tokens.requests.length >= 2);
      await sleep(3_000);
      assert.equal(upstream.seen.filter((s) => s.url === '/v3/side-effect').length, 0);
    } finally {
      tokenDelay = 0;
    }
    // The token fetched for it serves the next caller.
    assert.match(await raw(port, 'GET /cold/next HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'), /^HTTP\/1\.1 200 /);
  });

  test('a 401 replayed with a new token: the refused response is closed, not read for as long as the upstream sends it', async () => {
    // Before: the refused attempt's body was read and dropped to its end, so an upstream that kept sending it held
    // the connection (and the broker's reading) for good, long after the caller had its answer.
    const reply = await raw(port, 'GET /api/endless-401 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    assert.match(reply, /^HTTP\/1\.1 200 /);
    const refused = (): Seen | undefined => upstream.seen.find((s) => s.url === '/v2/endless-401');
    assert.ok(await until(() => refused()?.abandonedAfter !== undefined, 6_000), 'the 401 response is still being read');
    assert.equal(upstream.seen.filter((s) => s.url === '/v2/endless-401').length, 2);
  });

  test('a caller that goes away mid-upload is counted as 499, not logged as an upstream failure', async () => {
    // Before: its own disconnect came back as the upstream request's error, logged as upstream_failed and counted
    // as a 502 of the route: a dashboard showed an upstream fault where a caller had given up.
    const from = broker.logs.length;
    await sendAndLeave(port, ['POST /api/hang-upload HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n', Buffer.alloc(100_000, 97)], reached(upstream, '/v2/hang-upload'));
    assert.ok(await until(() => upstream.seen.find((s) => s.url === '/v2/hang-upload')?.abandonedAfter !== undefined, 8_000));
    await sleep(200);
    assert.deepEqual(broker.logs.slice(from).filter((l) => l['event'] === 'upstream_failed'), []);
    const metrics = await new Promise<string>((resolve, reject) => {
      httpRequest(`${broker.adminUrl}/metrics`, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve(text));
      }).on('error', reject).end();
    });
    const samples = parsePrometheus(metrics).get('broker_proxied_requests_total')!.samples;
    assert.equal(samples.find((s) => s.labels['route'] === '/api/' && s.labels['status'] === '502'), undefined);
    assert.ok(samples.find((s) => s.labels['route'] === '/api/' && s.labels['status'] === '499')!.value >= 1);
  });
});

describe('serve: a dying process and a careless operator', () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let tokens: ScriptedServer;

  before(async () => {
    upstream = await startUpstream();
    tokens = await startTokenEndpoint(() => 0);
  });

  after(async () => {
    await upstream?.close();
    await tokens?.close();
  });

  test('SIGTERM: a request the upstream never answers is cut when shutdownGraceSeconds ends, and the process exits', async () => {
    // Before: the callers' connections were closed at the end of the grace, but the upstream requests ran on, and
    // the exit waited for them: upstreamTimeoutSeconds (30 s here) instead of the 1 s grace.
    const dir = tempDir();
    secretFile(dir, 's', 'svc-secret');
    const broker = await startBrokerProcess({
      listen: '127.0.0.1:0',
      shutdownGraceSeconds: 1,
      upstreamTimeoutSeconds: 30,
      clients: { svc: { tokenUrl: `${tokens.url}/token`, clientId: 'svc', clientSecretFile: 's' } },
      routes: [{ path: '/', upstream: upstream.url, client: 'svc' }],
    }, dir);
    try {
      const socket = connect(portOf(broker.url), '127.0.0.1');
      socket.on('error', () => undefined);
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.write('GET /hang-at-shutdown HTTP/1.1\r\nhost: x\r\n\r\n');
      assert.ok(await until(() => upstream.seen.some((s) => s.url === '/hang-at-shutdown'), 10_000));
      const started = Date.now();
      const exited = broker.stop('SIGTERM', 40_000);
      await broker.waitFor('grace_expired', 10_000, 0);
      await closed;
      assert.equal(await exited, 0);
      const took = Date.now() - started;
      assert.ok(took < 12_000, `exited ${took} ms after SIGTERM with a 1 s grace`);
      assert.ok(upstream.seen.find((s) => s.url === '/hang-at-shutdown')!.abandonedAfter !== undefined, 'the upstream request was aborted');
    } finally {
      await broker.stop('SIGKILL');
    }
  });

  test('SIGHUP applies a new upstreamTimeoutSeconds; a new watchIntervalSeconds says it needs a restart', async () => {
    // Before: both were read once at start; the reload logged `reloaded` and no `restart_needed`, and the old
    // timeout went on applying (docs/broker.md lists only listen, admin, tokenApi, tokenStore and allowRemote as
    // needing a restart).
    const dir = tempDir();
    secretFile(dir, 's', 'svc-secret');
    const config = {
      listen: '127.0.0.1:0',
      upstreamTimeoutSeconds: 30,
      clients: { svc: { tokenUrl: `${tokens.url}/token`, clientId: 'svc', clientSecretFile: 's' } },
      routes: [{ path: '/', upstream: upstream.url, client: 'svc' }],
    };
    const broker = await startBrokerProcess(config, dir);
    try {
      const from = broker.logs.length;
      writeFileSync(broker.configPath, JSON.stringify({ ...config, upstreamTimeoutSeconds: 1, watchIntervalSeconds: 5 }));
      broker.child.kill('SIGHUP');
      await broker.waitFor('reloaded', 20_000, from);
      const restart = broker.logs.slice(from).find((l) => l['event'] === 'restart_needed');
      assert.deepEqual(restart?.['settings'], ['watchIntervalSeconds']);
      const started = Date.now();
      const reply = await raw(portOf(broker.url), 'GET /hang-timeout HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n', 15_000);
      assert.match(reply, /^HTTP\/1\.1 504 /);
      assert.ok(Date.now() - started < 12_000);
    } finally {
      await broker.stop('SIGKILL');
    }
  });

  test('a config file with a JSON syntax error: the log says what is wrong, and quotes none of the file', async () => {
    // Before: V8's message quoted the text around the error, so an unquoted inline secret reached the log
    // (`Unexpected token 'i', ..."tSecret": inline-sec"... is not valid JSON`).
    const dir = tempDir();
    const config = {
      listen: '127.0.0.1:0',
      clients: { svc: { tokenUrl: `${tokens.url}/token`, clientId: 'svc', clientSecret: 'first-inline-secret' } },
      routes: [{ path: '/', upstream: upstream.url, client: 'svc' }],
    };
    const broker = await startBrokerProcess(config, dir);
    try {
      const text = JSON.stringify(config, null, 2);
      for (const broken of [text.replace('"first-inline-secret"', 'second-inline-secret'), text.replace('"first-inline-secret"', 'secret-at-the-end').slice(0, text.indexOf('"first-inline-secret"') + 12)]) {
        const from = broker.logs.length;
        writeFileSync(broker.configPath, broken);
        broker.child.kill('SIGHUP');
        const failed = JSON.stringify(await broker.waitFor('reload_failed', 20_000, from));
        assert.doesNotMatch(failed, /second-in|inline|secret-at/, failed);
        assert.match(failed, /broker\.json: unexpected character\)/);
      }
    } finally {
      await broker.stop('SIGKILL');
    }
  });

  test('SIGHUP while the broker starts (its token store slow to answer) reloads once it listens, instead of killing it', async () => {
    // Before: the SIGHUP handler was installed only once startup was done, so a reload asked for during startup
    // (systemctl reload, a config reloader, or one just after the `listening` line) killed the broker: SIGHUP's
    // default action.
    // No skip without redis-server: .ci/run installs it, and a test that skips itself proves nothing.
    const redis = await startRedis();
    const slow = await startTcpProxy(redis.port);
    // The store's first command is held back 3 s: startup waits for it.
    slow.delayMatching('*', 3_000);
    const dir = tempDir();
    secretFile(dir, 's', 'svc-secret');
    const configPath = join(dir, 'broker.json');
    writeFileSync(configPath, JSON.stringify({
      listen: '127.0.0.1:0',
      tokenStore: slow.url,
      clients: { svc: { tokenUrl: `${tokens.url}/token`, clientId: 'svc', clientSecretFile: 's' } },
      routes: [{ path: '/', upstream: upstream.url, client: 'svc' }],
    }));
    const child = spawn(process.execPath, [CLI_MAIN, 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(`${code}/${signal}`)));
    try {
      assert.ok(await until(() => slow.delayed >= 1, 15_000), 'the broker reached its token store');
      assert.ok(!out.includes('"listening"'), 'still starting');
      child.kill('SIGHUP');
      assert.ok(await until(() => out.includes('"reloaded"') || child.exitCode !== null || child.signalCode !== null, 20_000), out);
      assert.equal(child.signalCode, null, `the broker was killed by ${child.signalCode}`);
      assert.match(out, /"event":"listening"[\s\S]*"event":"reloaded"/);
      child.kill('SIGTERM');
      assert.equal(await exited, '0/null');
    } finally {
      child.kill('SIGKILL');
      await slow.close();
      await redis.close();
    }
  });
});

describe('serve: certificate-bound tokens (RFC 8705)', () => {
  test('a route whose client has a certificate presents it to the upstream, so the upstream accepts the token bound to it', async () => {
    // Before: the upstream connections carried no client certificate (one pool per origin for every client), so a
    // resource server checking the binding (RFC 8705 §3) refused every token the broker sent: 401 for each request.
    const certs = testCertificates();
    const op = await startOidcProvider({
      mtls: { key: certs.serverKey, cert: certs.serverCert, ca: certs.ca },
      clients: [{ client_id: 'mtls-a', token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: 'CN=client-a', tls_client_certificate_bound_access_tokens: true }],
    });
    // The resource server: HTTPS asking for a client certificate; 200 only when the token's cnf names the one presented.
    const verdicts: string[] = [];
    const api = createHttpsServer({ key: certs.serverKey, cert: certs.serverCert, ca: certs.ca, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
      const cnf = (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString() || '{}') as { cnf?: Record<string, string> }).cnf;
      const presented = (req.socket as TLSSocket).getPeerCertificate();
      const thumbprint = presented.raw ? createHash('sha256').update(presented.raw).digest('base64url') : undefined;
      const verdict = thumbprint === undefined ? 'no certificate' : cnf?.['x5t#S256'] === thumbprint ? 'ok' : 'not bound to it';
      verdicts.push(verdict);
      res.writeHead(verdict === 'ok' ? 200 : 401, { 'content-type': 'text/plain', ...(verdict === 'ok' ? {} : { 'www-authenticate': 'Bearer error="invalid_token"' }) });
      res.end(verdict);
    });
    const apiUrl = (await listenLocal(api)).replace(/^http:/, 'https:');
    const dir = tempDir();
    for (const [name, text] of [['cert.pem', certs.clientCert], ['key.pem', certs.clientKey], ['ca.pem', certs.ca]] as const) secretFile(dir, name, text);
    // The broker trusts the test CA for every connection, so only the client certificate is missing on the old code.
    const broker = await startBrokerProcess({
      listen: '127.0.0.1:0',
      clients: { bound: { tokenUrl: op.tokenUrl, clientId: 'mtls-a', authMethod: 'tls_client_auth', cert: 'cert.pem', key: 'key.pem', ca: 'ca.pem' } },
      routes: [{ path: '/bound/', upstream: `${apiUrl}/`, client: 'bound' }],
    }, dir, { NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') });
    try {
      for (let i = 0; i < 3; i++) {
        const reply = await raw(portOf(broker.url), `GET /bound/thing/${i} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
        assert.match(reply, /^HTTP\/1\.1 200 [\s\S]*\r\nok\r\n/, `${reply}\n${verdicts.join(', ')}`);
      }
      assert.deepEqual(verdicts, ['ok', 'ok', 'ok']);
    } finally {
      await broker.stop('SIGKILL');
      await closeServer(api as unknown as Server);
      await op.close();
    }
  });
});

describe('serve: a route that leads back to the broker', () => {
  test('a request that already passed through this broker is refused with 508, not forwarded until the process runs out of files', async () => {
    // Before: the broker added no Via (RFC 9110 §7.6.3 asks a gateway for one) and could not see its own requests
    // come back: one request to a route whose upstream is the broker itself chained requests through it until
    // connect() failed with EMFILE (20 000 descriptors here, in about 3 s), starving every other caller meanwhile.
    const tokens = await startScripted(async (_req, res) => sendJson(res, 200, { access_token: `tok-${'x'.repeat(24)}`, token_type: 'Bearer', expires_in: 3600 }));
    const upstream = await startUpstream();
    const port = await new Promise<number>((resolve) => {
      const probe = createServer();
      probe.listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as { port: number };
        probe.close(() => resolve(free));
      });
    });
    const dir = tempDir();
    secretFile(dir, 's', 'svc-secret');
    const broker = await startBrokerProcess({
      listen: `127.0.0.1:${port}`,
      upstreamTimeoutSeconds: 10,
      clients: { svc: { tokenUrl: `${tokens.url}/token`, clientId: 'svc', clientSecretFile: 's' } },
      routes: [
        { path: '/loop/', upstream: `http://127.0.0.1:${port}/loop/`, client: 'svc' },
        { path: '/api/', upstream: `${upstream.url}/v2/`, client: 'svc' },
      ],
    }, dir);
    try {
      const started = Date.now();
      const looped = await raw(port, 'GET /loop/x HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
      assert.match(looped, /^HTTP\/1\.1 508 /, looped.slice(0, 200));
      assert.match(looped, /"loop_detected"/);
      assert.ok(Date.now() - started < 5_000);
      // The upstream of a route sees the broker in Via, after what the caller sent.
      const ok = await raw(port, 'GET /api/x HTTP/1.1\r\nhost: x\r\nvia: 1.1 edge\r\nconnection: close\r\n\r\n');
      assert.match(ok, /^HTTP\/1\.1 200 /);
      const via = upstream.seen.at(-1)!.via;
      assert.match(via ?? '', /^1\.1 edge, 1\.1 oauth-broker-[0-9a-f]{8}$/);
      assert.equal(broker.logs.filter((l) => l['event'] === 'upstream_failed').length, 0);
    } finally {
      await broker.stop('SIGKILL');
      await upstream.close();
      await tokens.close();
    }
  });
});

describe('serve: two brokers on one socket path', () => {
  test('a second broker started on a socket path a running broker listens on fails to start and leaves that socket alone', async () => {
    // Before: any socket file at the path was unlinked as stale, live or not: a second `serve` started by mistake
    // took the running broker's token API socket (and its callers) and, once stopped, left nothing at the path: the
    // running broker was unreachable there until restarted.
    const tokens = await startScripted(async (_req, res) => sendJson(res, 200, { access_token: `tok-${'y'.repeat(24)}`, token_type: 'Bearer', expires_in: 3600 }));
    const dir = tempDir();
    secretFile(dir, 's', 'svc-secret');
    const socketPath = join(dir, 'token.sock');
    const config = {
      listen: '127.0.0.1:0',
      tokenApi: { socket: socketPath },
      clients: { svc: { tokenUrl: `${tokens.url}/token`, clientId: 'svc', clientSecretFile: 's' } },
      routes: [],
    };
    const first = await startBrokerProcess(config, dir, {}, 'first.json');
    const viaSocket = (): Promise<number> => new Promise((resolve, reject) => {
      httpRequest({ socketPath, path: '/v1/token/svc' }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).on('error', reject).end();
    });
    try {
      assert.equal(await viaSocket(), 200);
      let second: BrokerProcess | undefined;
      const started = await startBrokerProcess(config, dir, {}, 'second.json').then((b) => (second = b), (error: Error) => error);
      await second?.stop('SIGTERM');
      assert.ok(started instanceof Error, 'the second broker started');
      assert.match(started.message, /token\.sock.*in use/);
      assert.equal(await viaSocket(), 200, 'the first broker still answers on its socket');
    } finally {
      await first.stop('SIGKILL');
      await tokens.close();
    }
  });
});

describe('serve: a reload while rotated files are being taken in', () => {
  test('SIGHUP adding a client and a route while a CA file shared by many clients rotates: both changes stay', async () => {
    // Before: the reload and the rotation each built their state from the one they started with, and the one that
    // finished last won: the rotation, begun from the state before the reload, put the old clients back, so the new
    // route's client was missing and every request to it got 502 proxy_failed until the next reload.
    const tokens = await startScripted(async (_req, res) => sendJson(res, 200, { access_token: `tok-${'z'.repeat(24)}`, token_type: 'Bearer', expires_in: 3600 }));
    const upstream = await startUpstream();
    const dir = tempDir();
    secretFile(dir, 's', 'svc-secret');
    const ca = testCertificates().ca;
    const caPath = secretFile(dir, 'ca.pem', ca);
    const clients: Record<string, unknown> = {};
    for (let i = 0; i < 60; i++) clients[`c${i}`] = { tokenUrl: `${tokens.url}/token`, clientId: `c${i}`, clientSecretFile: 's', ca: 'ca.pem' };
    const config = { listen: '127.0.0.1:0', watchIntervalSeconds: 0.05, clients, routes: [{ path: '/a/', upstream: upstream.url, client: 'c0' }] };
    const broker = await startBrokerProcess(config, dir);
    try {
      for (let round = 0; round < 2; round++) {
        const from = broker.logs.length;
        const name = `new${round}`;
        writeFileSync(broker.configPath, JSON.stringify({
          ...config,
          clients: { ...clients, [name]: { tokenUrl: `${tokens.url}/token`, clientId: name, clientSecretFile: 's' } },
          routes: [...config.routes, { path: `/${name}/`, upstream: upstream.url, client: name }],
        }));
        broker.child.kill('SIGHUP');
        await sleep(5);
        writeFileSync(caPath, `${ca}\n# rotated ${round}\n`);
        await broker.waitFor('reloaded', 20_000, from);
        assert.ok(await until(() => broker.logs.slice(from).filter((l) => l['event'] === 'client_files_reloaded').length >= 60, 20_000), 'the rotation was taken in');
        await sleep(300);
        const reply = await raw(portOf(broker.url), `GET /${name}/x HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
        assert.match(reply, /^HTTP\/1\.1 200 /, reply.slice(0, 200));
        assert.match(await raw(portOf(broker.url), 'GET /a/x HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'), /^HTTP\/1\.1 200 /);
      }
      assert.deepEqual(broker.logs.filter((l) => l['event'] === 'proxy_failed'), []);
    } finally {
      await broker.stop('SIGKILL');
      await upstream.close();
      await tokens.close();
    }
  });
});

describe('serve: an upstream that echoes the token', () => {
  test('whatever malformed answer carries the token (header, status line, Content-Length, chunk size), no log line or metric does', async () => {
    // Passed before too: undici's parser errors name the fault, never the bytes; kept so that it stays so.
    const tokens = await startScripted(async (_req, res) => sendJson(res, 200, { access_token: `echoed-token-${'q'.repeat(24)}`, token_type: 'Bearer', expires_in: 3600 }));
    const upstream = createNetServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', (data: Buffer) => {
        const text = data.toString('latin1');
        const auth = /\r\nauthorization: ([^\r]+)/i.exec(text)?.[1] ?? '';
        const path = /^[A-Z]+ \/(\S+)/.exec(text)?.[1];
        const answers: Record<string, string> = {
          header: `HTTP/1.1 200 OK\r\nx-echo: ${auth}\x01\r\ncontent-length: 2\r\n\r\nok`,
          status: `HTTP/1.1 2x0 ${auth}\r\n\r\n`,
          length: `HTTP/1.1 200 OK\r\ncontent-length: ${auth}\r\n\r\n`,
          chunk: `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${auth}\r\n`,
        };
        socket.end(answers[path ?? ''] ?? `HTTP/1.1 500 ${auth}\r\nx-echo: ${auth}\r\ncontent-length: ${auth.length}\r\n\r\n${auth}`);
      });
    });
    const upstreamUrl = await new Promise<string>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(upstream.address() as { port: number }).port}`)));
    const dir = tempDir();
    secretFile(dir, 's', 'svc-secret');
    const broker = await startBrokerProcess({
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      clients: { svc: { tokenUrl: `${tokens.url}/token`, clientId: 'svc', clientSecretFile: 's' } },
      routes: [{ path: '/', upstream: upstreamUrl, client: 'svc' }],
    }, dir);
    try {
      const statuses: string[] = [];
      for (const path of ['plain', 'header', 'status', 'length', 'chunk']) statuses.push((await raw(portOf(broker.url), `GET /${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`)).slice(0, 12));
      // A bad chunk size comes after the status line: the caller's connection is closed with the response unfinished.
      assert.deepEqual(statuses, ['HTTP/1.1 500', 'HTTP/1.1 502', 'HTTP/1.1 502', 'HTTP/1.1 502', '']);
      const metrics = await raw(portOf(broker.adminUrl!), 'GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
      assert.ok(broker.logs.filter((l) => l['event'] === 'upstream_failed').length >= 3);
      assert.doesNotMatch(broker.output() + metrics, /echoed-token/);
    } finally {
      await broker.stop('SIGKILL');
      await new Promise<void>((resolve) => upstream.close(() => resolve()));
      await tokens.close();
    }
  });
});

describe('serve: TRACE', () => {
  test('TRACE is refused (405): an upstream that reflects it (Apache: TraceEnable is on by default) would hand the caller the token', async (t) => {
    // Before: TRACE went upstream with the broker's Authorization, and Apache answered with the request it received,
    // token included, as message/http: the caller (an agent that must never hold a secret) read the token.
    const skip = modOauth2Skip();
    if (skip) {
      t.skip(skip);
      return;
    }
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const apache = await startModOauth2({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' }] });
    const tokens = await startScripted(async (_req, res) => sendJson(res, 200, { access_token: `traced-token-${'t'.repeat(24)}`, token_type: 'Bearer', expires_in: 3600 }));
    const dir = tempDir();
    secretFile(dir, 's', 'svc-secret');
    const broker = await startBrokerProcess({
      listen: '127.0.0.1:0',
      clients: { svc: { tokenUrl: `${tokens.url}/token`, clientId: 'svc', clientSecretFile: 's' } },
      routes: [{ path: '/', upstream: apache.url, client: 'svc' }],
    }, dir);
    try {
      const traced = await raw(portOf(broker.url), 'TRACE /index.html HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
      assert.doesNotMatch(traced, /traced-token/, 'the token came back to the caller');
      assert.match(traced, /^HTTP\/1\.1 405 /);
      assert.match(traced, /\r\nallow: /i);
      // Other methods go through as before.
      assert.match(await raw(portOf(broker.url), 'GET /index.html HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'), /^HTTP\/1\.1 200 [\s\S]*ok\n$/);
    } finally {
      await broker.stop('SIGKILL');
      await tokens.close();
      await apache.close();
    }
  });
});
