/**
 * The `proxy` option, through a real forward proxy on 127.0.0.1: a URL sends the token request and the API call
 * through it (with Proxy-Authorization from the URL's credentials), `'env'` follows HTTP_PROXY and NO_PROXY, and
 * bad values fail at construction without repeating a proxy password. Requests to loopback never go through a proxy,
 * so the servers are addressed as `*.test` names, which the proxy maps to 127.0.0.1 (test/helpers/httpProxy.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'undici';
import { Client, InvalidOptionError } from '../src/index.js';
import { SVC_CREDENTIALS, startStack, type Stack } from './helpers/fixtures.js';
import { startHttpProxy, type HttpProxyHandle } from './helpers/httpProxy.js';

let stack: Stack;
let proxy: HttpProxyHandle;

before(async () => {
  stack = await startStack();
  proxy = await startHttpProxy({ auth: 'user:proxy-pass' });
});
after(async () => {
  await proxy.close();
  await stack.close();
});

const hostOf = (url: string) => new URL(url).host;

/**
 * Runs `fn` with the environment's proxy variables set to `vars` alone (HTTP_PROXY, NO_PROXY and their lower-case
 * forms otherwise unset), and puts all four back as they were afterwards.
 */
async function withProxyEnv(vars: { HTTP_PROXY: string; NO_PROXY?: string }, fn: () => Promise<void>): Promise<void> {
  const names = ['HTTP_PROXY', 'NO_PROXY', 'http_proxy', 'no_proxy'] as const;
  const saved = names.map((name) => [name, process.env[name]] as const);
  for (const name of names) delete process.env[name];
  Object.assign(process.env, vars);
  try {
    await fn();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}
const withAuth = (url: string) => url.replace('http://', 'http://user:proxy-pass@');
/** `url` with its loopback host replaced by a `.test` name only the proxy can reach. */
const viaName = (url: string, name: string) => url.replace('127.0.0.1', name);
/** The stack's servers by `.test` names (plain http off loopback, hence allowInsecureHttp). */
const named = () => ({ baseUrl: viaName(stack.api.url, 'api.test'), tokenUrl: viaName(stack.op.tokenUrl, 'auth.test'), allowInsecureHttp: true });

test('proxy: a URL sends the token request and the API call through the proxy, with its credentials', async () => {
  const before = proxy.requests.length;
  const { baseUrl, tokenUrl, allowInsecureHttp } = named();
  const client = new Client({ baseUrl, tokenUrl, allowInsecureHttp, clientCredentialsAuthCredentials: SVC_CREDENTIALS, proxy: withAuth(proxy.url) });
  try {
    const response = await client.get<{ client_id: string }>('/things');
    assert.equal(response.result.client_id, 'svc');
  } finally {
    await client.close();
  }
  const seen = proxy.requests.slice(before);
  const targets = seen.map((r) => (r.method === 'CONNECT' ? r.target : hostOf(r.target)));
  assert.ok(targets.includes(hostOf(tokenUrl)), `token endpoint via the proxy: ${targets.join(', ')}`);
  assert.ok(targets.includes(hostOf(baseUrl)), 'API via the proxy');
  assert.ok(seen.every((r) => r.proxyAuthorization === `Basic ${Buffer.from('user:proxy-pass').toString('base64')}`));
});

test("proxy: 'env' follows HTTP_PROXY, and NO_PROXY exempts hosts", async () => {
  await withProxyEnv({ HTTP_PROXY: withAuth(proxy.url), NO_PROXY: '' }, async () => {
    let before = proxy.requests.length;
    let client = new Client({ ...named(), clientCredentialsAuthCredentials: SVC_CREDENTIALS, proxy: 'env' });
    await client.get('/things').finally(() => client.close());
    assert.ok(proxy.requests.length > before, 'through the proxy');

    // NO_PROXY exempts a host: the request goes direct (and, the name being unknown to DNS, fails to connect).
    process.env.NO_PROXY = 'api.test';
    before = proxy.requests.length;
    client = new Client({ ...named(), clientCredentialsAuthCredentials: SVC_CREDENTIALS, proxy: 'env', retry: false });
    await assert.rejects(client.get('/things').finally(() => client.close()), (error: unknown) => (error as { code?: string }).code === 'ERR_NETWORK');
    const targets = proxy.requests.slice(before).map((r) => r.target);
    assert.ok(targets.some((t) => t.startsWith('auth.test')), `token request via the proxy: ${targets.join(', ')}`);
    assert.ok(!targets.some((t) => t.startsWith('api.test')), 'NO_PROXY: api.test direct');
  });
});

test('proxy: no proxy by default, even with HTTP_PROXY set', async () => {
  const before = proxy.requests.length;
  await withProxyEnv({ HTTP_PROXY: proxy.url }, async () => {
    const client = new Client({ baseUrl: stack.api.url, tokenUrl: stack.op.tokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
    try {
      await client.get('/things');
    } finally {
      await client.close();
    }
  });
  assert.equal(proxy.requests.length, before);
});

test('proxy: invalid values and proxy with dispatcher fail at construction, never quoting the password', () => {
  for (const bad of ['socks5://user:pw-secret@host:1080', 'not a url pw-secret', 42]) {
    assert.throws(
      () => new Client({ proxy: bad as string }),
      (e: unknown) => e instanceof InvalidOptionError && e.option === 'proxy' && !e.message.includes('pw-secret'),
    );
  }
  const dispatcher = new Agent();
  assert.throws(() => new Client({ proxy: 'env', dispatcher }), /cannot be combined with `dispatcher`/);
  void dispatcher.close();
});

test('proxy: plain http to loopback never goes through a proxy (URL or env), so the proxy never reads the secret or the token', async () => {
  await withProxyEnv({ HTTP_PROXY: withAuth(proxy.url), NO_PROXY: '' }, async () => {
    for (const setting of [withAuth(proxy.url), 'env']) {
      const before = proxy.requests.length;
      const client = new Client({ baseUrl: stack.api.url, tokenUrl: stack.op.tokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS, proxy: setting });
      try {
        const response = await client.get<{ client_id: string }>('/things');
        assert.equal(response.result.client_id, 'svc');
      } finally {
        await client.close();
      }
      assert.deepEqual(proxy.requests.slice(before), [], `${setting === 'env' ? 'env' : 'URL'}: loopback went through the proxy`);
    }
  });
});
