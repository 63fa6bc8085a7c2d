// Robust expiry: the pure arithmetic of token.ts, then token responses with missing or odd `expires_in`
// served for real (a fault proxy rewrites oidc-provider's answer).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CallbackError, Client, MalformedTokenResponseError, decodeJwt } from '../src/index.js';
import {
  DEFAULT_LIFETIME_POLICY,
  effectiveLifetime,
  jwtExpiry,
  normalizeToken,
  toSeconds,
  tokenFromResponse,
  type OAuthToken,
} from '../src/token.js';
import { directToken, manualClock, startStack, type Stack } from './helpers/fixtures.js';

const policy = { defaultLifetime: 300, maxLifetime: 86_400 };
const NOW = 1_800_000_000_000; // ms, a whole second
const NOW_S = NOW / 1000;

/** An unsigned JWT with the given payload (only `exp` matters here). */
function jwt(payload: Record<string, unknown>): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'at+jwt' })}.${part(payload)}.c2ln`;
}

describe('toSeconds', () => {
  test('numbers, bigints and numeric strings; nothing else', () => {
    assert.equal(toSeconds(60), 60);
    assert.equal(toSeconds(60n), 60);
    assert.equal(toSeconds('60'), 60);
    assert.equal(toSeconds(' 60 '), 60);
    assert.equal(toSeconds('-5'), -5);
    assert.equal(toSeconds('1.5'), 1.5);
    for (const v of ['', 'abc', '1e400', '60s', null, undefined, {}, [], NaN, Infinity, -Infinity, true]) assert.equal(toSeconds(v), undefined, String(v));
  });
});

describe('effectiveLifetime: which lifetime a token gets', () => {
  const opaque = 'opaque-token';
  const withExp = jwt({ exp: NOW_S + 600 });

  test('a positive expires_in wins, as number or string', () => {
    assert.equal(effectiveLifetime(3600, withExp, NOW_S, policy), 3600);
    assert.equal(effectiveLifetime('3600', opaque, NOW_S, policy), 3600);
    assert.equal(effectiveLifetime(' 45 ', opaque, NOW_S, policy), 45);
  });

  test('no expires_in: the JWT exp, else defaultLifetime', () => {
    assert.equal(effectiveLifetime(undefined, withExp, NOW_S, policy), 600);
    assert.equal(effectiveLifetime(undefined, opaque, NOW_S, policy), 300);
    assert.equal(effectiveLifetime(undefined, jwt({ sub: 'no-exp' }), NOW_S, policy), 300);
    assert.equal(effectiveLifetime(undefined, opaque, NOW_S, DEFAULT_LIFETIME_POLICY), 300);
  });

  test('zero, negative and non-numeric expires_in count as absent', () => {
    for (const v of [0, '0', -1, -3600, '-10', 'soon', null, NaN]) {
      assert.equal(effectiveLifetime(v, withExp, NOW_S, policy), 600, `${String(v)} with a JWT`);
      assert.equal(effectiveLifetime(v, opaque, NOW_S, policy), 300, `${String(v)} with an opaque token`);
    }
  });

  test('absurd values are clamped to maxLifetime (default one year)', () => {
    assert.equal(effectiveLifetime(1e12, opaque, NOW_S, policy), 86_400);
    assert.equal(effectiveLifetime('1000000000000', opaque, NOW_S, policy), 86_400);
    assert.equal(effectiveLifetime(1e12, opaque, NOW_S, DEFAULT_LIFETIME_POLICY), 365 * 24 * 3600);
    assert.equal(effectiveLifetime(undefined, jwt({ exp: NOW_S + 1e9 }), NOW_S, policy), 86_400);
  });

  test('a JWT already past its exp gets lifetime 0 (used once, then fetched again), never a negative one', () => {
    assert.equal(effectiveLifetime(undefined, jwt({ exp: NOW_S - 10 }), NOW_S, policy), 0);
  });

  test('jwtExpiry reads exp only from well-formed JWTs with a positive exp', () => {
    assert.equal(jwtExpiry(jwt({ exp: 123 })), 123);
    assert.equal(jwtExpiry(jwt({ exp: '123' })), 123);
    assert.equal(jwtExpiry(jwt({ exp: 0 })), undefined);
    assert.equal(jwtExpiry(jwt({ exp: 'never' })), undefined);
    assert.equal(jwtExpiry('a.b.c'), undefined);
    assert.equal(jwtExpiry('opaque'), undefined);
  });
});

describe('tokenFromResponse', () => {
  test('expiry is anchored at the moment the request was sent', () => {
    const token = tokenFromResponse({ access_token: 'x', token_type: 'Bearer', expires_in: 60, scope: 'a b' }, NOW + 999, policy);
    assert.deepEqual(token, { accessToken: 'x', tokenType: 'Bearer', expiresIn: 60, expiry: NOW_S + 60, scope: 'a b' });
  });

  test('expires_in as a string is a number in the token', () => {
    const token = tokenFromResponse({ access_token: 'x', token_type: 'bearer', expires_in: '3600' }, NOW, policy);
    assert.equal(token.expiresIn, 3600);
    assert.equal(token.expiry, NOW_S + 3600);
    assert.equal(token.tokenType, 'bearer');
  });

  test('expires_in 0 / negative / absurd: defined lifetimes', () => {
    assert.equal(tokenFromResponse({ access_token: 'x', expires_in: 0 }, NOW, policy).expiry, NOW_S + 300);
    assert.equal(tokenFromResponse({ access_token: 'x', expires_in: -60 }, NOW, policy).expiry, NOW_S + 300);
    assert.equal(tokenFromResponse({ access_token: jwt({ exp: NOW_S + 90 }), expires_in: 0 }, NOW, policy).expiry, NOW_S + 90);
    const absurd = tokenFromResponse({ access_token: 'x', expires_in: 1e12 }, NOW, policy);
    assert.equal(absurd.expiresIn, 86_400);
    assert.equal(absurd.expiry, NOW_S + 86_400);
  });

  test('missing token_type means Bearer; refresh_in is kept only when 0 < refresh_in < lifetime', () => {
    assert.equal(tokenFromResponse({ access_token: 'x' }, NOW, policy).tokenType, 'Bearer');
    assert.equal(tokenFromResponse({ access_token: 'x', expires_in: 60, refresh_in: '10' }, NOW, policy).refreshIn, 10);
    for (const r of [0, -5, 60, 61, 'soon']) assert.equal(tokenFromResponse({ access_token: 'x', expires_in: 60, refresh_in: r }, NOW, policy).refreshIn, undefined, String(r));
  });

  test('no access_token, or not an object: MalformedTokenResponseError', () => {
    for (const wire of [{}, { access_token: '' }, { access_token: 42 }, null, [], 'token']) {
      assert.throws(() => tokenFromResponse(wire as never, NOW, policy), MalformedTokenResponseError);
    }
  });
});

describe('normalizeToken: tokens handed in by the application', () => {
  test('bigint and string numbers become numbers; the result survives JSON', () => {
    const token = normalizeToken({ accessToken: 'a', tokenType: 'Bearer', expiresIn: 3600n, expiry: BigInt(NOW_S + 10) } as unknown as OAuthToken, NOW, policy);
    assert.deepEqual(token, { accessToken: 'a', tokenType: 'Bearer', expiresIn: 3600, expiry: NOW_S + 10 });
    assert.deepEqual(JSON.parse(JSON.stringify(token)), token);
    assert.equal(normalizeToken({ accessToken: 'a', tokenType: 'Bearer', expiry: String(NOW_S + 5) } as unknown as OAuthToken, NOW, policy).expiry, NOW_S + 5);
  });

  test('a missing expiry comes from expiresIn, else the JWT exp, else the default lifetime', () => {
    assert.equal(normalizeToken({ accessToken: 'a', tokenType: 'Bearer', expiresIn: 60 }, NOW, policy).expiry, NOW_S + 60);
    assert.equal(normalizeToken({ accessToken: jwt({ exp: NOW_S + 77 }), tokenType: 'Bearer' }, NOW, policy).expiry, NOW_S + 77);
    assert.equal(normalizeToken({ accessToken: 'a', tokenType: '' }, NOW, policy).expiry, NOW_S + 300);
    assert.equal(normalizeToken({ accessToken: 'a', tokenType: '' }, NOW, policy).tokenType, 'Bearer');
  });

  test('something that is not a token is a CallbackError', () => {
    for (const v of [undefined, null, {}, { accessToken: '' }, 'token']) assert.throws(() => normalizeToken(v, NOW, policy), CallbackError);
  });
});

describe('token responses with missing or odd expires_in, from a real server through a proxy', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ ttl: 120 });
  });
  after(() => stack.close());

  const realToken = async (): Promise<string> => (await directToken(stack.op.tokenUrl, 'svc', 'svc-secret', 'api:read')).access_token;

  /** Fetches one token through the proxy, answered with `body`, and returns it with the clock used. */
  async function fetchWith(body: Record<string, unknown>, extra: { defaultTokenLifetime?: number; maxTokenLifetime?: number } = {}) {
    const clock = manualClock();
    const client = new Client({
      tokenUrl: stack.proxiedTokenUrl,
      clock,
      clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret' },
      ...extra,
    });
    stack.proxy.inject({ kind: 'json', status: 200, body });
    try {
      const token = await client.clientCredentialsAuthManager.getToken();
      return { token, nowS: clock.now() / 1000, client, clock };
    } finally {
      await client.close();
    }
  }

  test('no expires_in on a JWT access token: the JWT exp is the expiry', async () => {
    const accessToken = await realToken();
    const exp = decodeJwt(accessToken)!.payload['exp'] as number;
    const { token } = await fetchWith({ access_token: accessToken, token_type: 'Bearer' });
    assert.equal(token.expiry, exp);
  });

  test('no expires_in on an opaque token: defaultTokenLifetime', async () => {
    const { token, nowS, client, clock } = await fetchWith({ access_token: 'opaque-1', token_type: 'Bearer' }, { defaultTokenLifetime: 100 });
    assert.equal(token.expiry, nowS + 100);
    clock.set((nowS + 100) * 1000 - 1);
    assert.equal(client.clientCredentialsAuthManager.isExpired(token), false);
    clock.advance(1);
    assert.equal(client.clientCredentialsAuthManager.isExpired(token), true);
    const byDefault = await fetchWith({ access_token: 'opaque-2', token_type: 'Bearer' });
    assert.equal(byDefault.token.expiry, byDefault.nowS + 300, 'the default default is 300 s');
  });

  test('expires_in as a string works', async () => {
    const { token, nowS } = await fetchWith({ access_token: 'opaque-3', token_type: 'Bearer', expires_in: '45' });
    assert.equal(token.expiresIn, 45);
    assert.equal(token.expiry, nowS + 45);
  });

  test('expires_in 0 and negative: treated as absent (JWT exp, else the default lifetime)', async () => {
    const accessToken = await realToken();
    const exp = decodeJwt(accessToken)!.payload['exp'] as number;
    assert.equal((await fetchWith({ access_token: accessToken, token_type: 'Bearer', expires_in: 0 })).token.expiry, exp);
    const negative = await fetchWith({ access_token: 'opaque-4', token_type: 'Bearer', expires_in: -30 }, { defaultTokenLifetime: 60 });
    assert.equal(negative.token.expiry, negative.nowS + 60);
  });

  test('an absurd expires_in (1e12) is clamped to maxTokenLifetime', async () => {
    const clamped = await fetchWith({ access_token: 'opaque-5', token_type: 'Bearer', expires_in: 1e12 }, { maxTokenLifetime: 3600 });
    assert.equal(clamped.token.expiry, clamped.nowS + 3600);
    const year = await fetchWith({ access_token: 'opaque-6', token_type: 'Bearer', expires_in: 1e12 });
    assert.equal(year.token.expiry, year.nowS + 365 * 24 * 3600);
    assert.ok(Number.isSafeInteger(year.token.expiry));
  });
});
