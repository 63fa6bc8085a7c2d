/**
 * The credential options of issue 19 under attack: a platform assertion callback that never settles or throws quoting
 * an assertion, token parameters that smuggle or carry credentials, user grants in `grantType`, hostile `extra`
 * members through a shared store that reorders keys (jsonb), a clientAssertion client with a shared store, and
 * docs/providers.md's promise that each row is proved by a test. Servers are real, on 127.0.0.1.
 */
import { describe, test } from 'node:test';
import { inspect } from 'node:util';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { AbortError, Client, InvalidOptionError, TimeoutError, type OAuthToken, type TokenStore } from '../src/index.js';
import { sendJson } from './helpers/scripted.js';
import { startScripted, tokenScript } from './helpers/scripted.js';

/** Settles with what `promise` gave, or 'still pending' after `ms` (the wide margin a loaded machine needs). */
const within = <T>(promise: Promise<T>, ms: number): Promise<T | 'still pending'> =>
  Promise.race([promise, new Promise<'still pending'>((resolve) => setTimeout(() => resolve('still pending'), ms).unref())]);

describe('clientAssertion that never settles', () => {
  test('is bounded by tokenRequestTimeout: ERR_TIMEOUT, no token request sent, the next call asks again', async () => {
    const server = await startScripted(tokenScript());
    let calls = 0;
    const c = new Client({
      tokenUrl: `${server.url}/token`, retry: false, tokenRequestTimeout: 300,
      clientCredentialsAuthCredentials: { oAuthClientId: 'wl', clientAssertion: () => (++calls === 1 ? new Promise<string>(() => {}) : 'eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJrOHMifQ.c2lnbmF0dXJl') },
    });
    try {
      const outcome = await within(c.clientCredentialsAuthManager.fetchToken().then(() => 'token', (error: unknown) => error), 10_000);
      assert.ok(outcome instanceof TimeoutError, String(outcome));
      assert.match(outcome.message, /clientAssertion/);
      assert.equal(server.requests.length, 0);
      // The Client is not poisoned: the next token request calls the source again and is sent.
      await c.clientCredentialsAuthManager.fetchToken();
      assert.equal(calls, 2);
      assert.equal(server.requests.length, 1);
    } finally {
      await c.close();
      await server.close();
    }
  });

  test('that throws an error quoting the assertion it gave before: the CallbackError shows it redacted', async () => {
    const server = await startScripted(tokenScript());
    const sent = 'eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJrOHMifQ.first-signature-0123456789';
    let calls = 0;
    const c = new Client({
      tokenUrl: `${server.url}/token`, retry: false,
      clientCredentialsAuthCredentials: { oAuthClientId: 'wl', clientAssertion: () => {
        if (++calls === 1) return sent;
        throw new Error(`the token ${sent} was revoked`);
      } },
    });
    try {
      await c.clientCredentialsAuthManager.fetchToken();
      await assert.rejects(c.clientCredentialsAuthManager.fetchToken(), (error: unknown) => {
        const text = `${inspect(error, { depth: 8 })}${JSON.stringify(error)}`;
        assert.ok(!text.includes('first-signature'), text);
        return true;
      });
      assert.equal(server.requests.length, 1);
    } finally {
      await c.close();
      await server.close();
    }
  });

  test('is cancelled by close(): the waiting getToken() rejects with ERR_ABORTED', async () => {
    const server = await startScripted(tokenScript());
    const c = new Client({
      tokenUrl: `${server.url}/token`, retry: false, tokenRequestTimeout: 600_000,
      clientCredentialsAuthCredentials: { oAuthClientId: 'wl', clientAssertion: () => new Promise<string>(() => {}) },
    });
    try {
      const pending = c.clientCredentialsAuthManager.getToken().then(() => 'token', (error: unknown) => error);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await within(c.close(), 10_000);
      const outcome = await within(pending, 10_000);
      assert.ok(outcome instanceof AbortError, String(outcome));
      assert.equal(server.requests.length, 0);
    } finally {
      await server.close();
    }
  });
});

describe('docs/providers.md: every row names a test that exists', () => {
  const root = new URL('../../', import.meta.url).pathname;
  const guide = readFileSync(`${root}docs/providers.md`, 'utf8');
  /** A test file's source with escapes removed, so a title quoted in the guide is found as written. */
  const sourceOf = (file: string): string => readFileSync(`${root}${file}`, 'utf8').replace(/\\(.)/g, '$1');

  test('the overview table: each provider row names a test file that exists', () => {
    const files = [...guide.matchAll(/^\|[^\n]*\| `(test\/[^`]+\.test\.ts)` \|$/gm)].map((m) => m[1]!);
    assert.ok(files.length >= 10, `found ${files.length} rows`);
    for (const file of files) assert.ok(existsSync(`${root}${file}`), `${file} is named in docs/providers.md but does not exist`);
  });

  test('each "Proved by" row quotes the title of a test in the file its table names', () => {
    let checked = 0;
    let file: string | undefined;
    for (const line of guide.split('\n')) {
      const header = /^\| What \| Setting \| Proved by \(`(test\/[^`]+)`\) \|$/.exec(line);
      if (header) {
        file = header[1]!;
        continue;
      }
      if (!line.startsWith('|')) {
        file = undefined;
        continue;
      }
      if (!file || line.startsWith('|---')) continue;
      const cell = line.split(' | ').at(-1)!.replace(/ \|$/, '');
      if (cell === 'same test') continue;
      assert.match(cell, /^".+"$/, `a row of ${file} names no test: ${line}`);
      // The quoted title, up to an ellipsis that shortens it.
      const title = cell.slice(1, -1).split('…')[0]!.trim().replace(/[;:,]$/, '');
      assert.ok(sourceOf(file).includes(title), `docs/providers.md quotes a test that ${file} does not have: "${title}"`);
      checked++;
    }
    assert.ok(checked >= 20, `checked ${checked} rows`);
  });
});

describe('tokenParameters that try to smuggle a parameter the library sets', () => {
  test('client_id, case variants of reserved names (GRANT_TYPE, Client_Secret) and an empty name: InvalidOptionError before any request', async () => {
    const server = await startScripted(tokenScript());
    try {
      for (const name of ['client_id', 'GRANT_TYPE', 'Scope', 'Client_Secret', 'CLIENT_ID', '']) {
        assert.throws(
          () => new Client({ tokenUrl: `${server.url}/token`, clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'secret-value', tokenParameters: { [name]: 'other' } } }),
          (error: unknown) => error instanceof InvalidOptionError && error.message.includes('tokenParameters'),
          JSON.stringify(name),
        );
      }
      assert.equal(server.requests.length, 0);
    } finally {
      await server.close();
    }
  });

  test('a parameter named like a credential (api_key, password) is masked when the server echoes it in an error', async () => {
    const value = 'k3y-value-0123456789-abcdef';
    const server = await startScripted((_req, res, recorded) => {
      const form = new URLSearchParams(recorded.body);
      sendJson(res, 400, { error: 'invalid_request', error_description: `bad api_key ${form.get('api_key')} password ${form.get('password')}` });
    });
    const c = new Client({ tokenUrl: `${server.url}/token`, retry: false, clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'secret-value', tokenParameters: { api_key: value, password: `${value}-pw` } } });
    try {
      await assert.rejects(c.clientCredentialsAuthManager.fetchToken(), (error: unknown) => {
        const text = `${inspect(error, { depth: 8 })}${JSON.stringify(error)}`;
        assert.ok(!text.includes(value), text);
        return true;
      });
    } finally {
      await c.close();
      await server.close();
    }
  });

  test('grantType of a user or a code (password, authorization_code, refresh_token, device_code): InvalidOptionError; a provider\'s own variant is fine', () => {
    for (const grantType of ['password', 'authorization_code', 'refresh_token', 'implicit', 'urn:ietf:params:oauth:grant-type:device_code']) {
      assert.throws(
        () => new Client({ tokenUrl: 'http://127.0.0.1:9/token', clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'secret-value', grantType } }),
        (error: unknown) => error instanceof InvalidOptionError && error.message.includes('grantType'),
        grantType,
      );
    }
    for (const grantType of ['account_credentials', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'client_credentials']) {
      assert.doesNotThrow(() => new Client({ tokenUrl: 'http://127.0.0.1:9/token', clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'secret-value', grantType } }), grantType);
    }
  });

  test('names and values with & = and non-ASCII travel as one parameter each (form-encoded), nothing added', async () => {
    const server = await startScripted(tokenScript());
    const c = new Client({ tokenUrl: `${server.url}/token`, retry: false, clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'secret-value', tokenParameters: { 'a&grant_type=password': 'x&scope=admin', tenant: 'ü=1&client_id=evil' } } });
    try {
      await c.clientCredentialsAuthManager.fetchToken();
      const form = new URLSearchParams(server.requests[0]!.body);
      assert.deepEqual(form.getAll('grant_type'), ['client_credentials']);
      assert.deepEqual(form.getAll('scope'), []);
      assert.deepEqual(form.getAll('client_id'), []);
      assert.equal(form.get('a&grant_type=password'), 'x&scope=admin');
      assert.equal(form.get('tenant'), 'ü=1&client_id=evil');
    } finally {
      await c.close();
      await server.close();
    }
  });
});

/**
 * A shared store that keeps entries the way Postgres `jsonb` does: parsed and written back with the keys of every
 * object in its own order (here sorted), at any depth.
 */
class JsonbLikeStore implements TokenStore {
  readonly #rows = new Map<string, string>();
  static #reorder(value: unknown, depth = 0): unknown {
    if (typeof value !== 'object' || value === null || depth > 100) return value;
    if (Array.isArray(value)) return value.map((v) => JsonbLikeStore.#reorder(v, depth + 1));
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, JsonbLikeStore.#reorder((value as Record<string, unknown>)[k], depth + 1)]));
  }
  get(key: string): Promise<OAuthToken | undefined> {
    const row = this.#rows.get(key);
    return Promise.resolve(row === undefined ? undefined : (JSON.parse(row) as OAuthToken));
  }
  set(key: string, token: OAuthToken): Promise<void> {
    this.#rows.set(key, JSON.stringify(JsonbLikeStore.#reorder(JSON.parse(JSON.stringify(token)))));
    return Promise.resolve();
  }
  delete(key: string): Promise<void> {
    this.#rows.delete(key);
    return Promise.resolve();
  }
}

describe('extra in a shared store', () => {
  test('a store that reorders the keys inside extra (jsonb) still verifies: the second Client uses the stored token', async () => {
    let issued = 0;
    const server = await startScripted((_req, res) => sendJson(res, 200, {
      access_token: `00D5g000004XyZa!AQ4AQ-${++issued}`, token_type: 'Bearer', expires_in: 3600,
      instance_url: 'https://acme.my.salesforce.com', id: 'https://login.salesforce.com/id/00D/005', issued_at: '1700000000000',
      nested: { zeta: 1, alpha: { y: 2, b: 3 } },
    }));
    const store = new JsonbLikeStore();
    const make = (): Client => new Client({ tokenUrl: `${server.url}/token`, retry: false, tokenStore: store, clientCredentialsAuthCredentials: { oAuthClientId: 'sf', oAuthClientSecret: 'sf-secret-value-0123456789' } });
    const first = make();
    const second = make();
    try {
      const a = await first.clientCredentialsAuthManager.getToken();
      const b = await second.clientCredentialsAuthManager.getToken();
      assert.equal(b.accessToken, a.accessToken, 'the stored entry was refused');
      assert.equal(issued, 1);
      assert.deepEqual(b.extra, a.extra);
    } finally {
      await first.close();
      await second.close();
      await server.close();
    }
  });

  test('extra nested thousands deep, __proto__ and constructor members, 1e400: stored, verified and shared; no prototype polluted', async () => {
    const deep = `${'['.repeat(4000)}${']'.repeat(4000)}`;
    const body = `{"access_token":"tok-deep-0123456789","token_type":"Bearer","expires_in":3600,"deep":${deep},"proto":{"__proto__":{"polluted":1}},"constructor":{"prototype":{"polluted":1}},"big":1e400}`;
    let issued = 0;
    const server = await startScripted((_req, res) => {
      issued++;
      sendJson(res, 200, body);
    });
    const store = new JsonbLikeStore();
    const make = (): Client => new Client({ tokenUrl: `${server.url}/token`, retry: false, tokenStore: store, clientCredentialsAuthCredentials: { oAuthClientId: 'd', oAuthClientSecret: 'd-secret-value-0123456789' } });
    const first = make();
    const second = make();
    try {
      const a = await first.clientCredentialsAuthManager.getToken();
      assert.ok(Array.isArray(a.extra?.['deep']));
      assert.equal(a.extra?.['big'], null);
      const b = await second.clientCredentialsAuthManager.getToken();
      assert.equal(b.accessToken, a.accessToken);
      assert.equal(issued, 1);
      assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    } finally {
      await first.close();
      await second.close();
      await server.close();
    }
  });

  test('a clientAssertion client with a shared store and no tokenStoreKey: InvalidOptionError naming clientAssertion and tokenStoreKey', () => {
    assert.throws(
      () => new Client({ tokenUrl: 'http://127.0.0.1:9/token', tokenStore: new JsonbLikeStore(), clientCredentialsAuthCredentials: { oAuthClientId: 'wl', clientAssertion: () => 'x.y.z' } }),
      (error: unknown) => error instanceof InvalidOptionError && /tokenStoreKey/.test(error.message) && /clientAssertion/.test(error.message),
    );
  });
});
