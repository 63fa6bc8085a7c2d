/**
 * The token response as servers send it: access tokens of any visible ASCII (Salesforce's `00D…!AQ…`), numbers as
 * strings with exponents, a missing `expires_in`, and the members RFC 6749 does not model, kept in `OAuthToken.extra`
 * through every path (getToken, oAuthOnTokenUpdate, the provider, token stores under their MAC) and redacted where they
 * are credentials.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { Client, MalformedTokenResponseError, MemoryTokenStore, type ClientEvents, type OAuthToken } from '../src/index.js';
import { accessTokenProblem } from '../src/tokenValidation.js';
import { extraMembers, extraSecrets, MAX_EXTRA_BYTES, toSeconds, tokenFromResponse, DEFAULT_LIFETIME_POLICY } from '../src/token.js';
import { sendJson, startScripted } from './helpers/scripted.js';

const SALESFORCE_TOKEN = '00D5g000004XyZa!AQ4AQFhoK8vTMg_rKA.esrJ2bCsNlBn8Wq2p7uJ1zXgY0uY3hR5dQ8wK2cV6fX1bN4mL7pO9sT3';
const ID_TOKEN = 'eyJhbGciOiJSUzI1NiIsImtpZCI6ImVtdSJ9.eyJzdWIiOiJzdmMiLCJhdWQiOiJ4In0.c2lnbmF0dXJlLW9mLXRoZS1pZC10b2tlbi1sb25n';

/** A store that remembers the keys written, so a test can tamper with an entry. */
class KeyedStore extends MemoryTokenStore {
  readonly keys = new Set<string>();
  override async set(key: string, token: OAuthToken, ttlMs: number): Promise<void> {
    this.keys.add(key);
    return super.set(key, token, ttlMs);
  }
}

describe('access tokens as servers issue them', () => {
  test('every visible-ASCII token is usable (Salesforce `!`, `%`, `:`, `"`…); empty, spaces, controls and non-ASCII are not', () => {
    assert.equal(accessTokenProblem(SALESFORCE_TOKEN), undefined);
    for (const token of ['a%2Fb', 'x:y', '"quoted"', '{json}', 'a=b=c', '~!@#$%^&*()']) assert.equal(accessTokenProblem(token), undefined, token);
    for (const token of ['', 'a b', 'a\tb', 'a\r\nb', 'caf\u00e9', 'a\u0000', 'a\u007f']) assert.ok(accessTokenProblem(token), JSON.stringify(token));
    fc.assert(fc.property(fc.stringMatching(/^[\x21-\x7e]{1,64}$/), (token) => accessTokenProblem(token) === undefined));
    fc.assert(fc.property(fc.string(), fc.oneof(fc.constantFrom(' ', '\u0000', '\n', '\u007f', '\u00a0', '\u2028', '\ud83d\ude00')), fc.string(), (a, bad, b) => accessTokenProblem(`${a}${bad}${b}`) !== undefined));
  });

  test('a problem never quotes the token', () => {
    const problem = accessTokenProblem('secret-part\u0000more');
    assert.ok(problem && !problem.includes('secret-part'));
  });

  test('a Salesforce response (token with !, no expires_in, instance_url…) gives a token sent unchanged, with defaultTokenLifetime', async () => {
    const issuedAt = String(Date.now());
    const auth = await startScripted((_req, res) => sendJson(res, 200, {
      access_token: SALESFORCE_TOKEN, signature: 'aGVsbG8td29ybGQtc2lnbmF0dXJlLXZhbHVlPQ==', scope: 'api', instance_url: 'https://acme.my.salesforce.com',
      id: 'https://login.salesforce.com/id/00D5g000004XyZaEAK/0055g00000B1VQwAAN', token_type: 'Bearer', issued_at: issuedAt,
    }));
    const api = await startScripted((_req, res) => sendJson(res, 200, { ok: true }));
    try {
      const client = new Client({ baseUrl: api.url, tokenUrl: `${auth.url}/services/oauth2/token`, defaultTokenLifetime: 7200, clientCredentialsAuthCredentials: { oAuthClientId: 'sf-client', oAuthClientSecret: 'sf-secret-value' } });
      await client.get('/services/data');
      assert.equal(api.requests[0]!.headers.authorization, `Bearer ${SALESFORCE_TOKEN}`);
      const token = await client.clientCredentialsAuthManager.getToken();
      assert.equal(token.expiresIn, 7200);
      assert.equal(token.extra?.['instance_url'], 'https://acme.my.salesforce.com');
      assert.equal(token.extra?.['issued_at'], issuedAt);
      assert.equal(auth.requests.length, 1);
    } finally {
      await auth.close();
      await api.close();
    }
  });
});

describe('numbers as strings', () => {
  test('"1e3", "3.6E+3" and " 60 " are numbers; "1e400", "0x10", "60s" are not', () => {
    assert.equal(toSeconds('1e3'), 1000);
    assert.equal(toSeconds('3.6E+3'), 3600);
    assert.equal(toSeconds(' 60 '), 60);
    assert.equal(toSeconds('.5'), 0.5);
    for (const v of ['1e400', '-1e400', '0x10', '60s', 'e3', '1e', 'Infinity', 'NaN']) assert.equal(toSeconds(v), undefined, v);
  });

  test('expires_in "1e3" gives a 1000 s token; a negative or infinite one falls back to the default lifetime', () => {
    const at = 1_700_000_000_000;
    assert.equal(tokenFromResponse({ access_token: 'abc', expires_in: '1e3' }, at, DEFAULT_LIFETIME_POLICY).expiresIn, 1000);
    for (const bad of ['-1e3', '1e400', -5, '']) assert.equal(tokenFromResponse({ access_token: 'abc', expires_in: bad }, at, DEFAULT_LIFETIME_POLICY).expiresIn, DEFAULT_LIFETIME_POLICY.defaultLifetime, String(bad));
    assert.equal(tokenFromResponse({ access_token: 'abc', expires_in: '1e12' }, at, DEFAULT_LIFETIME_POLICY).expiresIn, DEFAULT_LIFETIME_POLICY.maxLifetime, 'bounded by maxTokenLifetime');
  });
});

describe('OAuthToken.extra: the response\'s other members', () => {
  test('kept as JSON, the modelled members left out; __proto__, non-JSON and oversized members dropped', () => {
    const wire = JSON.parse('{"access_token":"abc","token_type":"Bearer","expires_in":60,"scope":"a","refresh_in":10,"app_id":"APP-80W284485P519543T","nested":{"a":[1,{"b":null}]},"__proto__":{"polluted":true}}') as Record<string, unknown>;
    const token = tokenFromResponse(wire, Date.now(), DEFAULT_LIFETIME_POLICY);
    assert.deepEqual(token.extra, { app_id: 'APP-80W284485P519543T', nested: { a: [1, { b: null }] } });
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.equal(extraMembers({}), undefined);
    assert.deepEqual(extraMembers({ f: () => 1, big: 1n, ok: 'yes' }), { ok: 'yes' });
    const cyclic: Record<string, unknown> = { ok: 1 };
    cyclic['self'] = cyclic;
    assert.deepEqual(extraMembers(cyclic), { ok: 1 });
    const huge = extraMembers({ small: 'x', huge: 'y'.repeat(MAX_EXTRA_BYTES), after: 'z' });
    assert.deepEqual(huge, { small: 'x', after: 'z' });
    fc.assert(fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (members) => {
      const kept = extraMembers(members);
      return kept === undefined || (Buffer.byteLength(JSON.stringify(kept)) <= MAX_EXTRA_BYTES && JSON.stringify(JSON.parse(JSON.stringify(kept))) === JSON.stringify(kept));
    }));
  });

  test('credential-like members are found for redaction: id_token, *_token, signature, and JWT-shaped strings at any depth', () => {
    const secrets = extraSecrets({ extra: { id_token: 'short', issued_token: 'x-issued-token', signature: 'sig', instance_url: 'https://x', nested: { deep: [ID_TOKEN] }, expires_on: '1700000000' } });
    assert.deepEqual(secrets.sort(), ['short', 'x-issued-token', 'sig', ID_TOKEN].sort());
  });

  test('through getToken, oAuthOnTokenUpdate, a token store (MAC-covered) and a second Client reading it; an id_token never reaches an event', async () => {
    const auth = await startScripted((_req, res) => sendJson(res, 200, { access_token: `tok-${'a'.repeat(20)}`, token_type: 'Bearer', expires_in: 3600, id_token: ID_TOKEN, instance_url: 'https://acme.example' }));
    const store = new KeyedStore();
    try {
      const updates: OAuthToken[] = [];
      const credentials = { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret-value' };
      const events: unknown[] = [];
      const first = new Client({ tokenUrl: `${auth.url}/token`, tokenStore: store, clientCredentialsAuthCredentials: {
        ...credentials,
        oAuthOnTokenUpdate: (token) => {
          updates.push(token);
          throw new Error(`could not save ${String(token.extra?.['id_token'])}`);
        },
      } });
      for (const name of ['tokenFetched', 'callbackError', 'tokenRequestEnd'] as const) first.on(name, (e: ClientEvents[typeof name]) => events.push(e));
      const token = await first.clientCredentialsAuthManager.getToken();
      assert.deepEqual(token.extra, { id_token: ID_TOKEN, instance_url: 'https://acme.example' });
      assert.deepEqual(updates[0]?.extra, token.extra);
      await new Promise((resolve) => setImmediate(resolve));
      const seen = inspect(events, { depth: 8 }) + JSON.stringify(events.map((e) => ({ ...(e as object), error: String((e as { error?: unknown }).error) })));
      assert.ok(events.length >= 2, 'events were emitted');
      assert.ok(!seen.includes(ID_TOKEN), 'the id_token is redacted from events (the failing callback quoted it)');
      // A second Client with the same credentials reads the entry, extra included.
      const second = new Client({ tokenUrl: `${auth.url}/token`, tokenStore: store, clientCredentialsAuthCredentials: credentials });
      const shared = await second.clientCredentialsAuthManager.getToken();
      assert.equal(auth.requests.length, 1, 'the second Client used the stored token');
      assert.deepEqual(shared.extra, token.extra);
      // Changing extra in the store breaks the entry's MAC: the entry is refused and a token is fetched.
      const key = [...store.keys][0]!;
      const entry = (await store.get(key))!;
      await store.set(key, { ...entry, extra: { ...entry.extra, instance_url: 'https://attacker.example' } }, 60_000);
      const third = new Client({ tokenUrl: `${auth.url}/token`, tokenStore: store, clientCredentialsAuthCredentials: credentials });
      const fresh = await third.clientCredentialsAuthManager.getToken();
      assert.equal(fresh.extra?.['instance_url'], 'https://acme.example');
      assert.equal(auth.requests.length, 2, 'the tampered entry was not used');
    } finally {
      await auth.close();
    }
  });

  test('a provider may return extra; what is not JSON is dropped, and an unusable token is still refused', async () => {
    const client = new Client({ clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthTokenProvider: () => ({ accessToken: SALESFORCE_TOKEN, tokenType: 'Bearer', expiresIn: 600, extra: { instance_url: 'https://x.example', fn: () => 1 } }) } });
    const token = await client.clientCredentialsAuthManager.getToken();
    assert.deepEqual(token.extra, { instance_url: 'https://x.example' });
    assert.deepEqual(JSON.parse(JSON.stringify(token)), token, 'JSON-safe');
  });

  test('a token with a space is still refused from the endpoint (ERR_MALFORMED_TOKEN_RESPONSE)', async () => {
    const auth = await startScripted((_req, res) => sendJson(res, 200, { access_token: 'two words', token_type: 'Bearer', expires_in: 60 }));
    try {
      const client = new Client({ tokenUrl: `${auth.url}/token`, retry: false, clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret-value' } });
      await assert.rejects(client.clientCredentialsAuthManager.getToken(), MalformedTokenResponseError);
    } finally {
      await auth.close();
    }
  });
});
