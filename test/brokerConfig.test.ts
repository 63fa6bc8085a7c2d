/**
 * The broker's pure parts: configuration validation (typed errors naming the JSON path, "did you mean", `${ENV}`),
 * route matching (no path can leave a route's prefix), and header forwarding (RFC 9110 hop-by-hop fields); and the
 * upstream connection pools.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ErrorCode, InvalidOptionError } from '../src/index.js';
import { expandEnvironment, parseBrokerConfig } from '../src/broker/config.js';
import { parseEndpoint } from '../src/broker/endpoint.js';
import { forwardRequestHeaders, forwardResponseHeaders } from '../src/broker/headers.js';
import { compileRoutes, isUnsafePath, matchRoute, rewriteLocation } from '../src/broker/routes.js';
import { FileWatcher } from '../src/broker/watch.js';
import { UpstreamPools } from '../src/broker/upstreams.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../src/cli/run.js';
import { helpText } from '../src/cli/help.js';

const base = {
  listen: '127.0.0.1:8080',
  clients: { crm: { tokenUrl: 'https://auth.example.com/oauth2/token', clientId: 'svc', clientSecretFile: '/run/secrets/crm', scopes: ['crm.read'] } },
  routes: [{ path: '/crm/', upstream: 'https://api.example.com/v2/', client: 'crm' }],
};

function rejects(config: unknown, path: string, message: RegExp, env: Record<string, string> = {}): void {
  assert.throws(() => parseBrokerConfig(config, env), (error: unknown) => {
    assert.ok(error instanceof InvalidOptionError, String(error));
    assert.equal(error.code, ErrorCode.InvalidOption);
    assert.equal(error.option, path);
    assert.match(error.message, message);
    return true;
  });
}

describe('broker config', () => {
  test('a URL that does not parse is named in the error without what comes before its @ (a password)', () => {
    for (const [where, config] of [
      ['clients.crm.tokenUrl', { ...base, clients: { crm: { ...base.clients.crm, tokenUrl: 'https://svc:pa ss-hunter2@auth example.com/token' } } }],
      ['routes[0].upstream', { ...base, routes: [{ ...base.routes[0]!, upstream: 'https://svc:hunter2-secret@api.example.com:99999/' }] }],
    ] as const) {
      rejects(config, where, /must be an absolute http\(s\) URL, got "…@/);
      try {
        parseBrokerConfig(config, {});
      } catch (error) {
        assert.doesNotMatch((error as Error).message, /hunter2/);
      }
    }
    // A URL without userinfo is shown as it is.
    rejects({ ...base, routes: [{ ...base.routes[0]!, upstream: 'https://api example.com/' }] }, 'routes[0].upstream', /got "https:\/\/api example\.com\/"/);
  });

  test('the issue\'s example parses, with defaults', () => {
    const config = parseBrokerConfig({ ...base, admin: '127.0.0.1:9901', tokenApi: { socket: '/run/oauth-broker/broker.sock' }, tokenStore: 'redis://127.0.0.1:6379' }, {});
    assert.deepEqual(config.listen, { kind: 'tcp', host: '127.0.0.1', port: 8080 });
    assert.equal(config.tokenStore, 'redis://127.0.0.1:6379');
    assert.deepEqual(config.clients.get('crm')!.scopes, ['crm.read']);
    assert.equal(config.routes[0]!.replayBodyBytes, 65_536);
    assert.equal(config.shutdownGraceMs, 30_000);
    assert.equal(config.clients.get('crm')!.tokenTimeoutMs, 30_000);
    assert.equal(parseBrokerConfig({ ...base, clients: { crm: { ...base.clients.crm, tokenTimeoutSeconds: 2.5 } } }, {}).clients.get('crm')!.tokenTimeoutMs, 2_500);
    assert.equal(parseBrokerConfig(base, {}).tokenStore, 'memory');
  });

  test('unknown keys name their JSON path and the key meant', () => {
    rejects({ ...base, lisen: 'x' }, 'lisen', /did you mean "listen"/);
    rejects({ ...base, clients: { crm: { ...base.clients.crm, clientSecretFlie: 'x' } } }, 'clients.crm.clientSecretFlie', /did you mean "clientSecretFile"/);
    rejects({ ...base, routes: [{ ...base.routes[0], upstrem: 'x' }] }, 'routes[0].upstrem', /did you mean "upstream"/);
    rejects({ ...base, tokenApi: { sockt: '/x' } }, 'tokenApi.sockt', /did you mean "socket"/);
    // A key named like an Object.prototype member is unknown too (the shape was read through the prototype).
    rejects(JSON.parse(`{"constructor": 1, ${JSON.stringify(base).slice(1)}`), 'constructor', /is not a known key/);
    rejects({ ...base, routes: [{ ...base.routes[0], client: 'cmr' }] }, 'routes[0].client', /did you mean "crm"/);
    rejects({ ...base, clients: { crm: { ...base.clients.crm, authMethod: 'client_secret_basc' } } }, 'clients.crm.authMethod', /did you mean "client_secret_basic"/);
  });

  test('wrong types and missing values name their path', () => {
    rejects({ ...base, clients: { crm: { ...base.clients.crm, scopes: [1] } } }, 'clients.crm.scopes', /a string or an array of strings/);
    rejects({ ...base, clients: { crm: { tokenUrl: 'https://a.example/t', clientId: 'x' } } }, 'clients.crm.clientSecretFile', /required for client_secret_basic/);
    rejects({ ...base, clients: { crm: { clientId: 'x', clientSecret: 's' } } }, 'clients.crm.tokenUrl', /required/);
    rejects({ ...base, clients: { crm: { ...base.clients.crm, cert: '/c' } } }, 'clients.crm.key', /needs both/);
    rejects({ ...base, clients: { crm: { ...base.clients.crm, authMethod: 'private_key_jwt' } } }, 'clients.crm.privateKeyFile', /required/);
    rejects({ ...base, routes: [{ ...base.routes[0], path: 'crm' }] }, 'routes[0].path', /start with "\/"/);
    rejects({ ...base, routes: [{ ...base.routes[0], path: '/a/../b' }] }, 'routes[0].path', /plain path/);
    rejects({ ...base, routes: [base.routes[0], { ...base.routes[0], path: '/crm' }] }, 'routes[1].path', /repeats/);
    rejects({ ...base, routes: [{ ...base.routes[0], upstream: 'http://api.example.com/' }] }, 'routes[0].upstream', /plain http/);
    rejects({ ...base, routes: [{ ...base.routes[0], upstream: 'https://u:p@api.example.com/' }] }, 'routes[0].upstream', /credentials/);
    rejects({ ...base, tokenStore: 'mongodb://x' }, 'tokenStore', /redis/);
    rejects({ ...base, tokenApi: { listen: '127.0.0.1:9' } }, 'tokenApi.keyFile', /required/);
    rejects({ ...base, tokenApi: { socket: 'relative.sock' } }, 'tokenApi.socket', /absolute/);
    rejects([], '(root)', /JSON object/);
    rejects({ ...base, clients: { crm: { ...base.clients.crm, tokenTimeoutSeconds: 0 } } }, 'clients.crm.tokenTimeoutSeconds', /between 0.1 and 300 seconds/);
    rejects({ ...base, clients: { crm: { ...base.clients.crm, tokenTimeoutSeconds: '5' } } }, 'clients.crm.tokenTimeoutSeconds', /a number/);
  });

  test('listen, admin and tokenApi.listen must be loopback or a Unix socket unless allowRemote', () => {
    rejects({ ...base, listen: '0.0.0.0:8080' }, 'listen', /allowRemote/);
    rejects({ ...base, admin: '10.0.0.1:9901' }, 'admin', /allowRemote/);
    rejects({ ...base, tokenApi: { listen: '[::]:9', keyFile: '/k' } }, 'tokenApi.listen', /allowRemote/);
    assert.equal(parseBrokerConfig({ ...base, listen: '0.0.0.0:8080', allowRemote: true }, {}).listen.kind, 'tcp');
    for (const ok of ['localhost:1', '[::1]:2', '127.0.0.2:3', 'unix:/run/b.sock', '/run/b.sock']) assert.doesNotThrow(() => parseBrokerConfig({ ...base, listen: ok }, {}), ok);
    rejects({ ...base, listen: 'nonsense' }, 'listen', /host:port/);
    assert.throws(() => parseEndpoint('127.0.0.1:70000'), /65535/);
  });

  test('${ENV} references are replaced; an unset one names its path; $${ keeps a literal', () => {
    const config = parseBrokerConfig({ ...base, clients: { crm: { ...base.clients.crm, clientId: '${CLIENT_ID}', audience: 'a-$${literal}' } } }, { CLIENT_ID: 'from-env' });
    assert.equal(config.clients.get('crm')!.clientId, 'from-env');
    assert.equal(config.clients.get('crm')!.audience, 'a-${literal}');
    rejects({ ...base, clients: { crm: { ...base.clients.crm, clientId: '${NOPE}' } } }, 'clients.crm.clientId', /NOPE, which is not set/);
    rejects({ ...base, routes: [{ ...base.routes[0], upstream: '${1BAD}' }] }, 'routes[0].upstream', /malformed/);
    assert.deepEqual(expandEnvironment({ a: ['${X}${X}'] }, { X: 'y' }), { a: ['yy'] });
  });

  test('property: a value from the environment is taken as it is, never expanded again (`${`, `$${`, `$&` in it stay)', () => {
    const piece = fc.constantFrom('${', '}', '$${', '$&', '$1', '$', '{', 'a', '${OTHER}', '\\');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }).map((parts) => parts.join('')), fc.string({ maxLength: 8 }), (value, other) => {
        const env = { VALUE: value, OTHER: other };
        assert.equal(expandEnvironment('${VALUE}', env), value);
        assert.equal(expandEnvironment('<${VALUE}|${VALUE}>', env), `<${value}|${value}>`);
        assert.equal(expandEnvironment('$${VALUE}=${VALUE}', env), `\${VALUE}=${value}`);
      }),
      { numRuns: 300 },
    );
  });
});

describe('broker routes', () => {
  const routes = compileRoutes([
    { path: '/crm/', upstream: 'https://api.example.com/v2/', client: 'c', passAuthorization: false, replayBodyBytes: 0 },
    { path: '/crm/admin', upstream: 'https://admin.example.com/', client: 'c', passAuthorization: false, replayBodyBytes: 0 },
    { path: '/bare', upstream: 'https://bare.example.com', client: 'c', passAuthorization: false, replayBodyBytes: 0 },
  ]);
  const target = (t: string): string | undefined => {
    const m = matchRoute(routes, t);
    return typeof m === 'object' ? `${m.route.origin}${m.path}` : m;
  };

  test('prefix replaced, longest prefix first, query kept', () => {
    assert.equal(target('/crm/things?a=1'), 'https://api.example.com/v2/things?a=1');
    assert.equal(target('/crm/'), 'https://api.example.com/v2/');
    assert.equal(target('/crm'), 'https://api.example.com/v2/');
    assert.equal(target('/crm?x'), 'https://api.example.com/v2/?x');
    assert.equal(target('/crm/admin/x'), 'https://admin.example.com/x');
    assert.equal(target('/crm/administrator'), 'https://api.example.com/v2/administrator');
    assert.equal(target('/bare'), 'https://bare.example.com/');
    assert.equal(target('/bare/x'), 'https://bare.example.com/x');
    assert.equal(target('/barex'), undefined);
    assert.equal(target('/crmx'), undefined);
    assert.equal(target('http://evil.example/crm/x'), 'not-origin-form');
    assert.equal(target('//evil.example/crm/x'), 'not-origin-form');
    assert.equal(target('*'), 'not-origin-form');
    assert.equal(target('/crm/%2e%2E/admin'), 'unsafe-path');
    // An upstream with no base path would get `//evil.example/x`, a protocol-relative reference to many URL parsers.
    assert.equal(target('/bare//evil.example/x'), 'unsafe-path');
    assert.equal(target('/crm//x'), 'https://api.example.com/v2//x');
  });

  test('property: whatever the path, a match stays under its route\'s upstream path, with no dot segment', () => {
    const segment = fc.oneof(fc.constantFrom('..', '.', '%2e', '%2E%2e', '%2f', '%5C', '\\', 'a', 'crm', 'admin', '', '%00', '.%2e', '..;', '..;x', '%2e%2e;a=b', '%252e%252e', '.%252E', '%252f'), fc.string({ maxLength: 4 }));
    fc.assert(fc.property(fc.array(segment, { maxLength: 8 }), fc.constantFrom('', '?q=..', '?/../x'), (segments, query) => {
      const t = `/${segments.join('/')}${query}`;
      const m = matchRoute(routes, t);
      if (typeof m !== 'object') return;
      const path = m.path.split('?')[0]!;
      assert.ok(path.startsWith(m.route.basePath), t);
      // Decoded twice (an upstream that decodes twice), `;` parameters cut (Tomcat, Jetty).
      const decodeOnce = (p: string): string => p.replace(/%25/g, '%').replace(/%2e/gi, '.').replace(/%2f/gi, '/').replace(/%5c/gi, '/').replace(/\\/g, '/');
      const decoded = decodeOnce(decodeOnce(path));
      assert.ok(!decoded.split('/').some((s) => s.split(';')[0] === '..' || s.split(';')[0] === '.'), t);
      assert.ok(!path.startsWith('//'), t);
      assert.equal(new URL(m.route.origin + m.path).pathname.startsWith(m.route.basePath), true, t);
    }), { numRuns: 2_000 });
  });

  test('property: a Location into a route\'s upstream base path, rewritten under the prefix and requested, reaches what it named', () => {
    const route = routes.find((r) => r.config.path === '/crm/')!;
    const root = routes.find((r) => r.config.path === '/bare')!;
    assert.equal(rewriteLocation('/v2/things/', route, routes), '/crm/things/');
    assert.equal(rewriteLocation('https://api.example.com/v2/x?y=1', route, routes), '/crm/x?y=1');
    assert.equal(rewriteLocation('https://api.example.com/other', route, routes), 'https://api.example.com/other');
    assert.equal(rewriteLocation('/v2x/y', route, routes), '/v2x/y');
    assert.equal(rewriteLocation('//api.example.com/v2/x', route, routes), '//api.example.com/v2/x');
    assert.equal(rewriteLocation('https://api.example.com.evil/v2/x', route, routes), 'https://api.example.com.evil/v2/x');
    assert.equal(rewriteLocation('things/', route, routes), 'things/');
    // /crm/admin is another route's prefix: that Location stays as it is rather than lead to the other upstream.
    assert.equal(rewriteLocation('/v2/admin/x', route, routes), '/v2/admin/x');
    const tail = fc.array(fc.constantFrom('a', 'things', 'v2', '', 'x y', '%20', 'admin', '..'), { maxLength: 4 }).map((p) => p.join('/'));
    fc.assert(fc.property(fc.constantFrom(route, root), tail, fc.constantFrom('', '?q=1'), fc.boolean(), (r, rest, query, absolute) => {
      const upstreamPath = `${r.basePath}/${rest}${query}`;
      const rewritten = rewriteLocation(absolute ? r.origin + upstreamPath : upstreamPath, r, routes);
      const m = matchRoute(routes, rewritten);
      // Left as it was, or refused (a `//` path, a dot segment): safe; served, it must reach what the Location named.
      if (rewritten === (absolute ? r.origin + upstreamPath : upstreamPath) || typeof m === 'string') return;
      assert.ok(m !== undefined, rewritten);
      assert.equal(m.route, r, rewritten);
      assert.equal(m.path, upstreamPath, rewritten);
    }), { numRuns: 1_000 });
  });

  test('unsafe paths', () => {
    for (const p of ['/a/..', '/a/../b', '/./a', '/a/%2e%2e/b', '/a/.%2e/b', '/a%2fb', '/a%5cb', '/a\\b', '/a%00']) assert.equal(isUnsafePath(p), true, p);
    // Tomcat and Jetty read `..;x` as `..`; some upstreams decode twice.
    for (const p of ['/a/..;/b', '/a/..;jsessionid=1/b', '/a/.;/b', '/a/%2e%2e;/b', '/a/%252e%252e/b', '/a/%252E./b', '/a%252fb', '/a%25255cb', '/a%2500']) assert.equal(isUnsafePath(p), true, p);
    for (const p of ['/a/b', '/a/.well-known/x', '/a/b.c', '/a/...', '/a%20b', '/v1.2/x', '/a/b;v=1', '/a/...;x', '/a/%2525', '/a%252e.txt']) assert.equal(isUnsafePath(p), false, p);
  });
});

describe('broker headers (RFC 9110 §7.6.1)', () => {
  test('hop-by-hop fields and the ones Connection names are dropped; Authorization and DPoP held apart', () => {
    const raw = ['Host', 'x', 'Connection', 'keep-alive, X-Hop', 'X-Hop', '1', 'TE', 'trailers', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'Proxy-Authorization', 'Basic x', 'Expect', '100-continue', 'Authorization', 'Bearer caller', 'DPoP', 'proof', 'X-Kept', 'a', 'x-kept', 'b'];
    const out = forwardRequestHeaders(raw);
    assert.deepEqual(out.headers, ['X-Kept', 'a', 'x-kept', 'b']);
    assert.equal(out.chunked, true);
    assert.deepEqual(forwardRequestHeaders(['Content-Length', '5', 'Connection', 'keep-alive', 'X-A', '1']), { headers: ['Content-Length', '5', 'X-A', '1'], authorization: undefined, dpop: undefined, contentLength: '5', chunked: false, otherCoding: false, loop: false });
    // Via: forwarded (the broker adds its own after it); the broker's own pseudonym in any Via line is a loop.
    assert.deepEqual(forwardRequestHeaders(['Via', '1.1 edge', 'X-A', '1'], 'oauth-broker-00ff00ff').headers, ['Via', '1.1 edge', 'X-A', '1']);
    assert.equal(forwardRequestHeaders(['Via', '1.1 edge'], 'oauth-broker-00ff00ff').loop, false);
    assert.equal(forwardRequestHeaders(['Via', '1.1 edge', 'via', '1.0 x, 1.1 oauth-broker-00ff00ff'], 'oauth-broker-00ff00ff').loop, true);
    assert.equal(forwardRequestHeaders(['Transfer-Encoding', 'chunked']).otherCoding, false);
    assert.equal(forwardRequestHeaders(['Transfer-Encoding', 'gzip, chunked']).otherCoding, true);
    assert.equal(forwardRequestHeaders(['Transfer-Encoding', 'gzip', 'Transfer-Encoding', 'chunked']).otherCoding, true);
    assert.deepEqual(forwardRequestHeaders(['connection', 'x-a', 'X-A', '1', 'Connection', 'X-B', 'x-b', '2', 'x-c', '3']).headers, ['x-c', '3']);
    assert.equal(out.authorization, 'Bearer caller');
    assert.equal(out.dpop, 'proof');
    assert.deepEqual(forwardResponseHeaders({ connection: 'x-a', 'x-a': '1', 'keep-alive': 't', 'transfer-encoding': 'chunked', 'set-cookie': ['a=1', 'b=2'], 'content-type': 't/p' }), ['set-cookie', 'a=1', 'set-cookie', 'b=2', 'content-type', 't/p']);
    // A 204 or 304 goes without Content-Length (undici callers fail on a 304's); other statuses keep it.
    assert.deepEqual(forwardResponseHeaders({ etag: '"v"', 'content-length': '1234' }, 304), ['etag', '"v"']);
    assert.deepEqual(forwardResponseHeaders({ 'content-length': '5' }, 204), []);
    assert.deepEqual(forwardResponseHeaders({ 'content-length': '5' }, 200), ['content-length', '5']);
  });
});

describe('serve command line', () => {
  const io = (env: Record<string, string> = {}) => {
    let stdout = '';
    let stderr = '';
    return {
      io: { stdout: { write: (d: string | Uint8Array) => (stdout += String(d)) }, stderr: { write: (t: string) => (stderr += t) }, readStdin: async () => '', stdinIsTTY: false, env, cwd: process.cwd() },
      out: () => ({ stdout, stderr }),
    };
  };

  test('serve without --config is a usage error; --check reports the JSON path of a problem', async () => {
    const a = io();
    assert.equal(await run(['serve'], a.io), 2);
    assert.match(a.out().stderr, /needs a configuration file/);
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'broker-check-'));
    writeFileSync(join(dir, 'b.json'), JSON.stringify({ ...base, clients: { crm: { ...base.clients.crm, scops: [] } } }));
    const b = io();
    assert.equal(await run(['serve', '--config', join(dir, 'b.json'), '--check'], b.io), 2);
    assert.match(b.out().stderr, /clients\.crm\.scops/);
    assert.match(b.out().stderr, /did you mean "scopes"/);
    writeFileSync(join(dir, 'secret'), 's3cr3t-value');
    writeFileSync(join(dir, 'good.json'), JSON.stringify({ ...base, clients: { crm: { ...base.clients.crm, clientSecretFile: 'secret' } } }));
    const c = io();
    assert.equal(await run(['serve', '--config', join(dir, 'good.json'), '--check'], c.io), 0);
    assert.match(c.out().stdout, /^ok: 1 client\(s\), 1 route\(s\)/);
    assert.ok(!c.out().stdout.includes('s3cr3t') && !c.out().stderr.includes('s3cr3t'));
  });

  test('help serve documents the command', () => {
    assert.match(helpText('serve')!, /--config FILE/);
    assert.match(helpText()!, /client-credentials serve --config broker\.json/);
  });
});

describe('broker metrics', () => {
  test('the exposition parses strictly, with escaped labels, cumulative buckets and every client\'s counters', async () => {
    const { BrokerMetrics } = await import('../src/broker/metrics.js');
    const { parsePrometheus } = await import('./helpers/prometheus.js');
    const metrics = new BrokerMetrics();
    const route = '/we"ird\\route\n';
    metrics.proxied(route, 200);
    metrics.proxied(route, 200);
    metrics.proxied(route, 502);
    for (const seconds of [0.0001, 0.003, 0.003, 0.2, 99]) metrics.latency(route, seconds);
    const stats = { tokenRequests: 1, tokensObtained: 1, cacheHits: 5, waits: 2, backgroundRefreshes: 0, failures: 0, retries: 0, invalidations: 0, unauthorizedRetries: 0, storeHits: 0, storeErrors: 0, cachedTokens: 1, circuitOpen: true };
    const families = parsePrometheus(metrics.render([{ name: 'crm', stats, hasToken: true }]));
    const proxied = families.get('broker_proxied_requests_total')!.samples;
    assert.deepEqual(proxied.map((s) => [s.labels['route'], s.labels['status'], s.value]), [[route, '200', 2], [route, '502', 1]]);
    const histogram = families.get('broker_upstream_latency_seconds')!.samples;
    assert.equal(histogram.find((s) => s.name.endsWith('_count'))!.value, 5);
    assert.equal(histogram.find((s) => s.labels['le'] === '0.005')!.value, 3);
    assert.equal(histogram.find((s) => s.labels['le'] === '30')!.value, 4);
    assert.equal(families.get('broker_circuit_open')!.samples[0]!.value, 1);
    assert.throws(() => parsePrometheus('# TYPE a counter\na -1\n'), /below 0/);
    assert.throws(() => parsePrometheus('a{x="1} 1\n'), /unterminated|outside/);
  });
});

test('FileWatcher: a change made while the previous one is being handled is reported at the next poll (it was lost when watch() re-stamped every file)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'watch-'));
  const file = join(dir, 'keys');
  writeFileSync(file, 'first\n');
  const reported: string[][] = [];
  const watcher = new FileWatcher(3_600_000, (paths) => reported.push(paths));
  try {
    await watcher.watch([file]);
    writeFileSync(file, '\n');
    await watcher.poll();
    assert.deepEqual(reported, [[file]]);
    // The handler is still at work (reading the file, rebuilding clients) when the file changes again ...
    writeFileSync(file, 'third-key-5555555555\r\n');
    // ... and then asks to watch the same files again, as the broker does after every change.
    await watcher.watch([file]);
    await watcher.poll();
    assert.deepEqual(reported, [[file], [file]], 'the second change was not reported');
    await watcher.poll();
    assert.equal(reported.length, 2, 'a change is reported once');
  } finally {
    watcher.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('UpstreamPools', () => {
  test('one pool per upstream origin, made once; once closed, every pool (a new one too) refuses requests', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const pools = new UpstreamPools({ keepAliveTimeout: 30_000 });
    try {
      assert.equal(pools.pool(origin), pools.pool(origin));
      for (let i = 0; i < 3; i++) {
        const res = await pools.pool(origin).request({ path: '/', method: 'GET' });
        assert.equal(await res.body.text(), 'ok');
      }
      await pools.close();
      await assert.rejects(pools.pool(origin).request({ path: '/', method: 'GET' }), { code: /^UND_ERR_(CLOSED|DESTROYED)$/ });
      await assert.rejects(pools.pool('http://127.0.0.1:9').request({ path: '/', method: 'GET' }), { code: /^UND_ERR_(CLOSED|DESTROYED)$/ });
      await pools.close();
    } finally {
      server.close();
      await pools.close();
    }
  });

  test('a client with TLS settings has pools of its own, closed when it is released', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const pools = new UpstreamPools({ keepAliveTimeout: 30_000 });
    const a = { ca: 'a' };
    const b = { ca: 'a' };
    try {
      assert.equal(pools.pool(origin, a), pools.pool(origin, a));
      assert.notEqual(pools.pool(origin, a), pools.pool(origin));
      assert.notEqual(pools.pool(origin, a), pools.pool(origin, b), 'one set per client (by object), not per value');
      const own = pools.pool(origin, a);
      assert.equal(await (await own.request({ path: '/', method: 'GET' })).body.text(), 'ok');
      await pools.release(a);
      await assert.rejects(own.request({ path: '/', method: 'GET' }), { code: /^UND_ERR_(CLOSED|DESTROYED)$/ });
      assert.equal(await (await pools.pool(origin).request({ path: '/', method: 'GET' })).body.text(), 'ok');
      await pools.release(undefined);
    } finally {
      server.close();
      await pools.close();
    }
  });
});

test('docs/broker.md lists every event the broker logs (its own and the Client events it forwards)', () => {
  const root = new URL('../../', import.meta.url).pathname;
  const sources = readdirSync(join(root, 'src/broker')).filter((f) => f.endsWith('.ts')).map((f) => readFileSync(join(root, 'src/broker', f), 'utf8'));
  const logged = new Set<string>();
  for (const text of sources) {
    for (const m of text.matchAll(/\blog\('(?:info|warn|error)', '([a-zA-Z_]+)'/g)) logged.add(m[1]!);
    const forwarded = /const CLIENT_EVENTS = \[([^\]]+)\]/.exec(text);
    if (forwarded) for (const m of forwarded[1]!.matchAll(/'([a-zA-Z]+)'/g)) logged.add(m[1]!);
  }
  assert.ok(logged.size >= 20, `found ${logged.size} events`);
  const docs = readFileSync(join(root, 'docs/broker.md'), 'utf8');
  const list = /Events: ([^.]+)\./.exec(docs)?.[1] ?? '';
  const documented = new Set([...list.matchAll(/`([a-zA-Z_]+)`/g)].map((m) => m[1]!));
  assert.deepEqual([...logged].filter((e) => !documented.has(e)).sort(), [], 'logged but not in docs/broker.md');
  assert.deepEqual([...documented].filter((e) => !logged.has(e)).sort(), [], 'in docs/broker.md but never logged');
});
