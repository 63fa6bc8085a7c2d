/**
 * Auth0, emulated from auth0.com/docs ("Call your API using the Client Credentials Flow", "Authentication API:
 * Get Token", "Rate limit policy"):
 * - `POST /oauth/token` with a form or JSON body; `client_secret_post` (the default of M2M applications) or Basic.
 * - `audience` names the API; without it (and no default audience) 403 `access_denied`; an API the application
 *   has no client grant for is 403 `access_denied` too.
 * - Tokens are JWTs for 86400 s; the response has `scope` and `token_type: Bearer`.
 * - Rate limits: `429 too_many_requests` with `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`
 *   (unix time, seconds, at which the limit resets), and no `Retry-After`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, Client, OAuthProviderError } from '../../src/index.js';
import { fakeJwt, startEmulation, type Emulation, type EmulatedRequest, type EmulatedResponse } from './emulator.js';

const CLIENT_ID = 'tUfC0Lq2YV1hW6b4f6XWr6z9cYkqkGqV';
const SECRET = 'b2Y-5s0Xw1_Tq8zK3mP9vL6cR4nJ7hF2dA0sG5kE8uI1oW3yQ6tZ9xV2bN4mC7lD';
const API = 'https://api.acme.example/';

interface Auth0State {
  /** Requests left before the rate limit; -1: no limit. */
  budget: number;
  /** The reset time sent with a 429, in unix seconds. */
  resetAt: () => number;
}

function auth0(state: Auth0State, request: EmulatedRequest): EmulatedResponse {
  if (request.url !== '/oauth/token') return { status: 404, body: { statusCode: 404, error: 'Not Found', message: 'Not Found' } };
  const limit = { 'x-ratelimit-limit': '30', 'x-ratelimit-remaining': String(Math.max(state.budget, 0)), 'x-ratelimit-reset': String(state.resetAt()) };
  if (state.budget === 0) {
    state.budget = -1;
    return { status: 429, body: { error: 'too_many_requests', error_description: 'Global limit has been reached' }, headers: { ...limit, 'x-ratelimit-remaining': '0' } };
  }
  if (state.budget > 0) state.budget--;
  const form = request.form;
  const id = form.get('client_id') ?? request.basicDecoded?.id;
  const secret = form.get('client_secret') ?? request.basicDecoded?.secret;
  if (id !== CLIENT_ID || secret !== SECRET) return { status: 401, body: { error: 'access_denied', error_description: 'Unauthorized' }, headers: limit };
  if (form.get('grant_type') !== 'client_credentials') return { status: 403, body: { error: 'unauthorized_client', error_description: 'Grant type not allowed for the client.' } };
  const audience = form.get('audience');
  if (!audience) return { status: 403, body: { error: 'access_denied', error_description: 'No audience parameter was provided, and no default audience has been configured' }, headers: limit };
  if (audience !== API) return { status: 403, body: { error: 'access_denied', error_description: `Client is not authorized to access "${audience}". You need to create a "client-grant" associated to this API.` }, headers: limit };
  const now = Math.floor(Date.now() / 1000);
  return { status: 200, body: { access_token: fakeJwt({ iss: 'https://acme.auth0.example/', sub: `${CLIENT_ID}@clients`, aud: audience, iat: now, exp: now + 86400, gty: 'client-credentials' }), scope: 'read:things', expires_in: 86400, token_type: 'Bearer' }, headers: limit };
}

describe('Auth0 (emulated from its token endpoint documentation)', () => {
  let server: Emulation;
  const state: Auth0State = { budget: -1, resetAt: () => Math.floor(Date.now() / 1000) + 60 };

  before(async () => {
    server = await startEmulation((request) => auth0(state, request));
  });
  after(() => server.close());

  const client = (extra: Record<string, unknown> = {}, retry: false | { maxAttempts: number } = false): Client =>
    new Client({ tokenUrl: `${server.url}/oauth/token`, retry, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET, clientAuthMethod: 'client_secret_post', audience: API, ...extra } });

  test('client_secret_post with audience: a 24 h JWT', async () => {
    const token = await client().clientCredentialsAuthManager.getToken();
    assert.equal(token.expiresIn, 86400);
    assert.equal(server.requests.at(-1)!.form.get('audience'), API);
    assert.equal(server.requests.at(-1)!.form.get('client_secret'), SECRET);
  });

  test('without audience: 403 access_denied naming it, surfaced as OAuthProviderError (not retried)', async () => {
    const c = new Client({ tokenUrl: `${server.url}/oauth/token`, retry: { maxAttempts: 3 }, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET, clientAuthMethod: 'client_secret_post' } });
    const before = server.requests.length;
    await assert.rejects(c.clientCredentialsAuthManager.getToken(), (error: unknown) => error instanceof OAuthProviderError && error.statusCode === 403 && /No audience/.test(error.message));
    assert.equal(server.requests.length - before, 1);
  });

  test('the audience of a call selects the token (each audience its own cached token)', async () => {
    await assert.rejects(client().clientCredentialsAuthManager.getToken({ audience: 'https://other.example/' }), (error: unknown) => error instanceof OAuthProviderError && /client-grant/.test(error.message));
  });

  test('429 with X-RateLimit-Reset and no Retry-After: the retry waits until the reset', async () => {
    const resetAt = Math.floor(Date.now() / 1000) + 2;
    state.budget = 0;
    state.resetAt = () => resetAt;
    const before = server.requests.length;
    const token = await client({}, { maxAttempts: 2 }).clientCredentialsAuthManager.getToken();
    assert.ok(token.accessToken);
    assert.equal(server.requests.length - before, 2);
    // The retry came after the reset moment (not after a short backoff); the clock's second has 1 s of slack.
    const second = Date.now();
    assert.ok(second >= resetAt * 1000 - 50, `retried ${resetAt * 1000 - second} ms before the reset`);
  });

  test('a reset further than maxRetryAfter is not waited for: the 429 surfaces at once', async () => {
    state.budget = 0;
    state.resetAt = () => Math.floor(Date.now() / 1000) + 3600;
    const started = Date.now();
    await assert.rejects(client({}, { maxAttempts: 3 }).clientCredentialsAuthManager.getToken(), (error: unknown) => {
      const root = error instanceof ApiError ? error : (error as Error).cause;
      return root instanceof ApiError && root.statusCode === 429;
    });
    assert.ok(Date.now() - started < 5_000);
  });
});
