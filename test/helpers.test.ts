import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { generateKeyPair, exportJWK, SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import { createClient } from 'redis';
import { startOidcProvider, DEFAULT_OIDC_CLIENTS } from './helpers/oidc.js';
import { startProtectedApi } from './helpers/api.js';
import { startNodeOAuthServer } from './helpers/nodeoauth.js';
import { startFaultProxy } from './helpers/faultProxy.js';
import { startRedis } from './helpers/redis.js';
import { runNode, spawnNode } from './helpers/cliRun.js';

/** RFC 6749 §2.3.1: application/x-www-form-urlencoded, then Basic. */
const formEncode = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
const basic = (id: string, secret: string): string =>
  'Basic ' + Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64');

interface TokenResponse {
  access_token?: string;
  token_type?: string;
  expires_in?: number;
  scope?: string;
  error?: string;
}

async function tokenRequest(url: string, headers: Record<string, string>, form: Record<string, string>): Promise<{ status: number; body: TokenResponse; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(form) });
  return { status: res.status, headers: res.headers, body: (await res.json()) as TokenResponse };
}

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

test('oidc-provider issues at+jwt tokens that the protected API accepts', async (t) => {
  const op = await startOidcProvider();
  t.after(() => op.close());
  const api = await startProtectedApi({ issuer: op.issuer, jwksUrl: op.jwksUrl, audience: op.resource });
  t.after(() => api.close());

  const tok = await tokenRequest(op.tokenUrl, { authorization: basic('svc', 'svc-secret') }, { grant_type: 'client_credentials', scope: 'api:read' });
  assert.equal(tok.status, 200);
  assert.equal(tok.body.token_type, 'Bearer');
  assert.equal(tok.body.expires_in, 60);
  assert.equal(tok.body.scope, 'api:read');
  const at = tok.body.access_token!;
  assert.equal(decodeProtectedHeader(at).typ, 'at+jwt');
  assert.equal(decodeJwt(at).aud, 'https://api.example.test');

  assert.equal(op.tokenRequests.length, 1);
  assert.equal(op.tokenRequests[0].body, 'grant_type=client_credentials&scope=api%3Aread');
  assert.equal(op.tokenRequests[0].method, 'POST');
  assert.equal(op.tokenRequests[0].url, '/token');
  assert.equal(op.tokenRequests[0].headers.authorization, basic('svc', 'svc-secret'));

  const auth = { authorization: `Bearer ${at}` };
  const things = await fetch(`${api.url}/things`, { headers: auth });
  assert.equal(things.status, 200);
  assert.deepEqual(await things.json(), { items: [1, 2, 3], client_id: 'svc', scope: 'api:read' });

  const echo = await fetch(`${api.url}/echo?a=1&b=two`, { method: 'PUT', headers: { ...auth, 'x-custom': 'yes' }, body: 'payload' });
  assert.equal(echo.status, 200);
  const echoed = (await echo.json()) as { method: string; path: string; query: Record<string, string>; headers: Record<string, string>; body: string };
  assert.equal(echoed.method, 'PUT');
  assert.equal(echoed.path, '/echo');
  assert.deepEqual(echoed.query, { a: '1', b: 'two' });
  assert.equal(echoed.headers['x-custom'], 'yes');
  assert.equal(echoed.body, 'payload');

  const pub = await fetch(`${api.url}/public`);
  assert.deepEqual([pub.status, await pub.json()], [200, { public: true }]);

  const st = await fetch(`${api.url}/status/503`, { headers: auth });
  assert.deepEqual([st.status, await st.json()], [503, { status: 503 }]);

  const text = await fetch(`${api.url}/text`, { headers: auth });
  assert.equal(text.status, 200);
  assert.match(text.headers.get('content-type') ?? '', /^text\/plain/);
  assert.equal(await text.text(), 'hello');

  for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: `Basic ${at}` }] as Record<string, string>[]) {
    const res = await fetch(`${api.url}/things`, { headers });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer error="invalid_token"');
    assert.deepEqual(await res.json(), { error: 'invalid_token' });
  }
  const unauthStatus = await fetch(`${api.url}/status/200`);
  assert.equal(unauthStatus.status, 401);

  api.revoke(at);
  const revoked = await fetch(`${api.url}/things`, { headers: auth });
  assert.equal(revoked.status, 401);
  await revoked.arrayBuffer();

  assert.ok(api.requests.length >= 10);
  assert.equal(api.requests.find((r) => r.method === 'PUT')?.body, 'payload');
});

test('oidc-provider: client auth variants and error responses', async (t) => {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const hsSecret = 'shared-secret-for-client-secret-jwt-0123456789abcdef';
  const op = await startOidcProvider({
    clients: [
      ...DEFAULT_OIDC_CLIENTS,
      { client_id: 'hs', client_secret: hsSecret, token_endpoint_auth_method: 'client_secret_jwt' },
      { client_id: 'pk', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'pk-1' }] } },
    ],
  });
  t.after(() => op.close());
  const cc = { grant_type: 'client_credentials' };

  // weird secret: form-urlencoded (RFC 6749 §2.3.1) works, raw is rejected by oidc-provider
  const weird = await tokenRequest(op.tokenUrl, { authorization: basic('weird', 'p+s/s:w%rd') }, cc);
  assert.equal(weird.status, 200);
  assert.equal(decodeJwt(weird.body.access_token!).client_id, 'weird');
  const raw = await tokenRequest(op.tokenUrl, { authorization: 'Basic ' + Buffer.from('weird:p+s/s:w%rd').toString('base64') }, cc);
  assert.equal(raw.status, 400);
  assert.equal(raw.body.error, 'invalid_request');

  const post = await tokenRequest(op.tokenUrl, {}, { ...cc, client_id: 'postclient', client_secret: 'post-secret' });
  assert.equal(post.status, 200);
  assert.equal(op.tokenRequests.at(-1)?.body, 'grant_type=client_credentials&client_id=postclient&client_secret=post-secret');

  const bad = await tokenRequest(op.tokenUrl, { authorization: basic('svc', 'wrong') }, cc);
  assert.equal(bad.status, 401);
  assert.equal(bad.body.error, 'invalid_client');
  assert.match(bad.headers.get('www-authenticate') ?? '', /^Basic /);

  const admin = await tokenRequest(op.tokenUrl, { authorization: basic('svc', 'svc-secret') }, { ...cc, scope: 'api:admin' });
  assert.equal(admin.status, 400);
  assert.equal(admin.body.error, 'invalid_scope');

  const hsAssertion = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('hs').setSubject('hs').setAudience(op.tokenUrl)
    .setJti(crypto.randomUUID()).setIssuedAt().setExpirationTime('60s')
    .sign(new TextEncoder().encode(hsSecret));
  const hs = await tokenRequest(op.tokenUrl, {}, { ...cc, client_assertion_type: ASSERTION_TYPE, client_assertion: hsAssertion });
  assert.equal(hs.status, 200, JSON.stringify(hs.body));
  const replay = await tokenRequest(op.tokenUrl, {}, { ...cc, client_assertion_type: ASSERTION_TYPE, client_assertion: hsAssertion });
  assert.equal(replay.status, 401);

  const pkAssertion = await new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'pk-1' })
    .setIssuer('pk').setSubject('pk').setAudience(op.issuer)
    .setJti(crypto.randomUUID()).setIssuedAt().setExpirationTime('60s')
    .sign(privateKey);
  const pk = await tokenRequest(op.tokenUrl, {}, { ...cc, client_assertion_type: ASSERTION_TYPE, client_assertion: pkAssertion });
  assert.equal(pk.status, 200, JSON.stringify(pk.body));
  assert.equal(decodeJwt(pk.body.access_token!).client_id, 'pk');
});

test('oidc-provider: opaque format and expiry', async (t) => {
  const opaque = await startOidcProvider({ format: 'opaque', ttl: 30 });
  t.after(() => opaque.close());
  const o = await tokenRequest(opaque.tokenUrl, { authorization: basic('svc', 'svc-secret') }, { grant_type: 'client_credentials' });
  assert.equal(o.status, 200);
  assert.equal(o.body.expires_in, 30);
  assert.notEqual(o.body.access_token!.split('.').length, 3);

  // 3 s, not 1 s: `exp` is whole seconds, so a 1 s token may expire a millisecond after it is issued (a loaded
  // machine then sees it refused before the first call).
  const short = await startOidcProvider({ ttl: 3 });
  t.after(() => short.close());
  const api = await startProtectedApi({ issuer: short.issuer, jwksUrl: short.jwksUrl, audience: short.resource });
  t.after(() => api.close());
  const s = await tokenRequest(short.tokenUrl, { authorization: basic('svc', 'svc-secret') }, { grant_type: 'client_credentials' });
  assert.equal(s.body.expires_in, 3);
  const auth = { authorization: `Bearer ${s.body.access_token}` };
  assert.equal((await fetch(`${api.url}/things`, { headers: auth })).status, 200);
  await new Promise((r) => setTimeout(r, 4_100));
  const expired = await fetch(`${api.url}/things`, { headers: auth });
  assert.equal(expired.status, 401);
  await expired.arrayBuffer();
});

test('node-oauth server issues opaque tokens usable through the API verify hook', async (t) => {
  const as = await startNodeOAuthServer({ ttl: 30 });
  t.after(() => as.close());
  const api = await startProtectedApi({ verify: async (token) => (await as.introspect(token)) ?? false });
  t.after(() => api.close());

  const tok = await tokenRequest(as.tokenUrl, { authorization: basic('svc', 'svc-secret') }, { grant_type: 'client_credentials', scope: 'api:read' });
  assert.equal(tok.status, 200);
  assert.equal(tok.body.token_type, 'Bearer');
  assert.ok(tok.body.expires_in! >= 29 && tok.body.expires_in! <= 30);
  assert.equal(as.tokenRequests.length, 1);
  assert.equal(as.tokenRequests[0].body, 'grant_type=client_credentials&scope=api%3Aread');

  const at = tok.body.access_token!;
  assert.equal(await as.verify(at), true);
  assert.equal(await as.verify('not-a-token'), false);

  const things = await fetch(`${api.url}/things`, { headers: { authorization: `Bearer ${at}` } });
  assert.deepEqual([things.status, await things.json()], [200, { items: [1, 2, 3], client_id: 'svc', scope: 'api:read' }]);

  const bad = await tokenRequest(as.tokenUrl, { authorization: basic('svc', 'nope') }, { grant_type: 'client_credentials' });
  assert.equal(bad.status, 401);
  const badScope = await tokenRequest(as.tokenUrl, { authorization: basic('svc', 'svc-secret') }, { grant_type: 'client_credentials', scope: 'api:admin' });
  assert.equal(badScope.status, 400);
  assert.equal(badScope.body.error, 'invalid_scope');

  as.revoke(at);
  assert.equal(await as.verify(at), false);
  const after = await fetch(`${api.url}/things`, { headers: { authorization: `Bearer ${at}` } });
  assert.equal(after.status, 401);
  await after.arrayBuffer();
});

test('fault proxy passes traffic through and injects each fault kind', async (t) => {
  const op = await startOidcProvider();
  t.after(() => op.close());
  const proxy = await startFaultProxy(op.issuer);
  t.after(() => proxy.close());
  const tokenUrl = `${proxy.url}/token`;
  const svc = { authorization: basic('svc', 'svc-secret') };
  const cc = { grant_type: 'client_credentials' };
  const post = (signal?: AbortSignal): Promise<Response> =>
    fetch(tokenUrl, { method: 'POST', headers: svc, body: new URLSearchParams(cc), signal });

  // pass-through (POST body streamed to the target)
  const ok = await tokenRequest(tokenUrl, svc, cc);
  assert.equal(ok.status, 200);
  assert.ok(ok.body.access_token);
  assert.equal(op.tokenRequests.at(-1)?.body, 'grant_type=client_credentials');
  assert.deepEqual([proxy.requests, proxy.forwarded], [1, 1]);

  // status faults, FIFO order, times
  proxy.inject({ kind: 'status', status: 500, body: 'boom' });
  proxy.inject({ kind: 'status', status: 429, headers: { 'retry-after': '1' } }, 2);
  assert.equal(proxy.pending, 3);
  let res = await post();
  assert.deepEqual([res.status, await res.text()], [500, 'boom']);
  for (let i = 0; i < 2; i++) {
    res = await post();
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '1');
    await res.arrayBuffer();
  }
  assert.deepEqual([proxy.requests, proxy.forwarded, proxy.pending], [4, 1, 0]);

  // reset: no response at all
  proxy.inject({ kind: 'reset' });
  await assert.rejects(post(), TypeError);

  // hang: never answers (client gives up)
  proxy.inject({ kind: 'hang' });
  await assert.rejects(post(AbortSignal.timeout(300)), (err: Error) => err.name === 'TimeoutError');

  proxy.inject({ kind: 'malformed-json' });
  res = await post();
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/json');
  assert.equal(await res.text(), '{"access_token":');

  proxy.inject({ kind: 'html' });
  res = await post();
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(await res.text(), /<html>/);

  proxy.inject({ kind: 'huge', bytes: 3 * 1024 * 1024 + 7 });
  res = await post();
  assert.equal(res.headers.get('content-length'), String(3 * 1024 * 1024 + 7));
  const huge = await res.text();
  assert.equal(huge.length, 3 * 1024 * 1024 + 7);
  assert.equal(typeof (JSON.parse(huge) as TokenResponse).access_token, 'string');

  // huge response abandoned by the client mid-stream does not break the proxy
  proxy.inject({ kind: 'huge', bytes: 50 * 1024 * 1024 });
  res = await post();
  await res.body?.cancel();

  proxy.inject({ kind: 'json', status: 400, body: { error: 'invalid_grant' } });
  res = await post();
  assert.deepEqual([res.status, await res.json()], [400, { error: 'invalid_grant' }]);

  const forwardedBefore = proxy.forwarded;
  proxy.inject({ kind: 'delay', ms: 250 });
  const started = Date.now();
  const delayed = await tokenRequest(tokenUrl, svc, { ...cc, scope: 'api:write' });
  assert.ok(Date.now() - started >= 240);
  assert.equal(delayed.status, 200);
  assert.equal(delayed.body.scope, 'api:write');
  assert.equal(proxy.forwarded, forwardedBefore + 1);

  // outage
  proxy.setDown(true);
  const requestsBefore = proxy.requests;
  await assert.rejects(post(), TypeError);
  await assert.rejects(post(), TypeError);
  assert.equal(proxy.requests, requestsBefore + 2);
  assert.equal(proxy.forwarded, forwardedBefore + 1);
  proxy.setDown(false);
  res = await post();
  assert.equal(res.status, 200);
  await res.arrayBuffer();

  // clear drops queued faults and outages
  proxy.inject({ kind: 'reset' }, 5);
  proxy.setDown(true);
  proxy.clear();
  assert.equal(proxy.pending, 0);
  res = await post();
  assert.equal(res.status, 200);
  await res.arrayBuffer();

  // a hang still pending at close() is freed by close()
  proxy.inject({ kind: 'hang' });
  const seen = proxy.requests;
  const pending = post().then(
    () => 'answered',
    () => 'failed',
  );
  while (proxy.requests === seen) await new Promise((r) => setTimeout(r, 10));
  await proxy.close();
  assert.equal(await pending, 'failed');
});

test('fault proxy reports 502 when the target is unreachable', async (t) => {
  const op = await startOidcProvider();
  const proxy = await startFaultProxy(op.issuer);
  t.after(() => proxy.close());
  await op.close();
  const res = await fetch(`${proxy.url}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials' }) });
  assert.equal(res.status, 502);
  await res.arrayBuffer();
});

function rawPing(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.setTimeout(1000, () => {
      s.destroy();
      resolve('timeout');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      s.destroy();
      resolve(d.toString().trim());
    });
  });
}

test('redis helper starts, stops and restarts redis-server on the same port', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.close());
  assert.equal(redis.url, `redis://127.0.0.1:${redis.port}`);
  assert.equal(await rawPing(redis.port), '+PONG');

  const client = createClient({ url: redis.url });
  await client.connect();
  await client.set('k', 'v');
  assert.equal(await client.get('k'), 'v');
  await client.close();

  await redis.stop();
  assert.equal(redis.running, false);
  assert.equal(await rawPing(redis.port), 'ECONNREFUSED');

  await redis.start();
  assert.equal(await rawPing(redis.port), '+PONG');

  await redis.stop({ hard: true });
  assert.equal(await rawPing(redis.port), 'ECONNREFUSED');
  await redis.start();
  assert.equal(redis.running, true);
  assert.equal(await rawPing(redis.port), '+PONG');

  await redis.close();
  assert.equal(await rawPing(redis.port), 'ECONNREFUSED');
});

test('nativeSkipReason: undefined when the files are there; else a message naming the file and the Debian package, and under CI=true an error', async () => {
  const { nativeSkipReason } = await import('./helpers/nativeServer.js');
  const saved = process.env['CI'];
  try {
    delete process.env['CI'];
    assert.equal(nativeSkipReason('Node', [process.execPath], 'nodejs'), undefined);
    const reason = nativeSkipReason('Nothing', ['/nonexistent/bin/nothing'], 'nothing-pkg');
    assert.match(reason ?? '', /Nothing is not installed here \(missing \/nonexistent\/bin\/nothing\): apt-get install nothing-pkg/);
    process.env['CI'] = 'true';
    assert.throws(() => nativeSkipReason('Nothing', ['/nonexistent/bin/nothing'], 'nothing-pkg'), /^Error: CI: Nothing is not installed here/);
  } finally {
    if (saved === undefined) delete process.env['CI'];
    else process.env['CI'] = saved;
  }
});

test('startNative: waits until the server answers, and stop() ends it and removes its folder', async () => {
  const { existsSync } = await import('node:fs');
  const { startNative, probe } = await import('./helpers/nativeServer.js');
  const server = await startNative({
    name: 'node http',
    prepare: (_dir, port) => ({ command: process.execPath, args: ['-e', `setTimeout(() => require('http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1'), 300)`] }),
    ready: async (port) => (await probe(`http://127.0.0.1:${port}/`)) === 200,
  });
  assert.ok(server.startupMs >= 250, `answered after its 300 ms delay (${server.startupMs} ms)`);
  assert.ok(existsSync(server.dir));
  await server.stop();
  assert.equal(existsSync(server.dir), false);
  assert.equal(await probe(`http://127.0.0.1:${server.port}/`), undefined);
});

test('startNative: a process that exits before answering is tried three times, then fails with its output; one that never answers fails at the timeout', async () => {
  const { startNative } = await import('./helpers/nativeServer.js');
  let attempts = 0;
  await assert.rejects(
    startNative({
      name: 'exits',
      prepare: () => {
        attempts++;
        return { command: '/bin/sh', args: ['-c', 'echo cannot bind; exit 3'] };
      },
      ready: async () => false,
    }),
    /exits exited before answering \(3 attempts\); its last output:\ncannot bind/,
  );
  assert.equal(attempts, 3);
  await assert.rejects(
    startNative({ name: 'silent', prepare: () => ({ command: '/bin/sh', args: ['-c', 'echo waiting; sleep 30'] }), ready: async () => false, timeoutMs: 500 }),
    /silent did not answer within 500 ms on port \d+; its output:\nwaiting/,
  );
});

test('startNative: a program that cannot be started fails at once with the spawn error', async () => {
  const { startNative } = await import('./helpers/nativeServer.js');
  const started = Date.now();
  await assert.rejects(startNative({ name: 'missing', prepare: () => ({ command: '/nonexistent/server', args: [] }), ready: async () => false }), /missing exited before answering \(3 attempts\)[^]*spawn error: spawn \/nonexistent\/server ENOENT/);
  assert.ok(Date.now() - started < 20_000);
});

test('runNode: stdin input reaches the child, binary stdout is kept byte for byte, nothing but PATH and env is inherited', async () => {
  const program = "process.stdin.on('data', (d) => process.stdout.write(Buffer.concat([Buffer.from([0, 255]), d]))).on('end', () => console.error(JSON.stringify(Object.keys(process.env).sort())))";
  const run = await runNode(['-e', program, 'a1'], { input: 'in\u00e9', env: { ONLY: 'x' } });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.args, ['-e', program, 'a1']);
  assert.ok(run.stdoutBytes.equals(Buffer.concat([Buffer.from([0, 255]), Buffer.from('in\u00e9')])));
  assert.ok(run.stdout.endsWith('in\u00e9'));
  assert.deepEqual(JSON.parse(run.stderr), ['ONLY', 'PATH']);
  assert.equal(run.killed, false);
});

test('runNode: without input stdin is at end of file at once; a hang is killed at the timeout and says so', async () => {
  const eof = await runNode(['-e', "process.stdin.resume().on('end', () => process.exit(7))"], { timeoutMs: 20_000 });
  assert.equal(eof.code, 7);
  const hang = await runNode(['-e', 'setInterval(() => {}, 1000)'], { timeoutMs: 300 });
  assert.equal(hang.killed, true);
  assert.equal(hang.code, null);
});

test('spawnNode: a test can signal the running child; a program that cannot start rejects', async () => {
  const { child, result } = spawnNode(['-e', "process.on('SIGTERM', () => process.exit(3)); console.log('ready'); setInterval(() => {}, 1000)"]);
  child.stdout!.once('data', () => child.kill('SIGTERM'));
  const run = await result;
  assert.equal(run.code, 3);
  assert.equal(run.stdout, 'ready\n');
  await assert.rejects(runNode(['-e', ''], { cwd: '/nonexistent-dir' }), /ENOENT/);
});
