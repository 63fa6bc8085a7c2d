/**
 * Amazon Cognito user pools, emulated from docs.aws.amazon.com ("The token issuer endpoint", "Scopes, M2M, and
 * resource servers"):
 * - `POST https://{domain}/oauth2/token`, `Content-Type: application/x-www-form-urlencoded` only; an app client with a
 *   secret authenticates with `Authorization: Basic` (this emulation, like the issue, accepts nothing else).
 * - Scopes are `{resource-server-identifier}/{scope}`, e.g. `https://api.acme.example/things.read`; an unknown one is
 *   `400 invalid_scope`; none at all gives every scope the app client may have.
 * - The response is `access_token`, `expires_in: 3600`, `token_type: Bearer`: no `scope`.
 * - Errors are `400` with `{"error":"invalid_client"}` and no description.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, OAuthProviderError } from '../../src/index.js';
import { fakeJwt, startEmulation, type Emulation, type EmulatedRequest, type EmulatedResponse } from './emulator.js';

const CLIENT_ID = '1example23456789abcdefghij';
const SECRET = 'd3kol1ak7bl3c9l6slp1kq9jdh8ap4vsm3k4u1g6hr8m3k2dl5qm';
const ALLOWED = ['https://api.acme.example/things.read', 'https://api.acme.example/things.write'];

function cognito(request: EmulatedRequest): EmulatedResponse {
  if (request.url !== '/oauth2/token' || request.method !== 'POST') return { status: 405, body: '' };
  if (!String(request.headers['content-type']).startsWith('application/x-www-form-urlencoded')) return { status: 400, body: { error: 'invalid_request' } };
  const basic = request.basicDecoded;
  if (!basic || basic.id !== CLIENT_ID || basic.secret !== SECRET) return { status: 400, body: { error: 'invalid_client' } };
  if (request.form.get('grant_type') !== 'client_credentials') return { status: 400, body: { error: 'unsupported_grant_type' } };
  const asked = request.form.get('scope')?.split(' ') ?? ALLOWED;
  if (!asked.every((s) => ALLOWED.includes(s))) return { status: 400, body: { error: 'invalid_scope' } };
  const now = Math.floor(Date.now() / 1000);
  return { status: 200, body: { access_token: fakeJwt({ sub: CLIENT_ID, token_use: 'access', scope: asked.join(' '), exp: now + 3600, iat: now, client_id: CLIENT_ID }), expires_in: 3600, token_type: 'Bearer' } };
}

describe('Amazon Cognito (emulated from its token endpoint documentation)', () => {
  let server: Emulation;
  before(async () => {
    server = await startEmulation(cognito);
  });
  after(() => server.close());

  const client = (extra: Record<string, unknown> = {}): Client =>
    new Client({ tokenUrl: `${server.url}/oauth2/token`, retry: false, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET, ...extra } });

  test('client_secret_basic (the default) with resource-server/scope scopes', async () => {
    const token = await client({ oAuthScopes: ['https://api.acme.example/things.read'] }).clientCredentialsAuthManager.getToken();
    assert.equal(token.expiresIn, 3600);
    assert.equal(token.scope, undefined, 'Cognito does not echo the scope');
    assert.equal(server.requests.at(-1)!.form.get('scope'), 'https://api.acme.example/things.read');
  });

  test('each scope selection is its own token (getToken({ scopes }))', async () => {
    const c = client({ oAuthScopes: ['https://api.acme.example/things.read'] });
    const read = await c.clientCredentialsAuthManager.getToken();
    const write = await c.clientCredentialsAuthManager.getToken({ scopes: 'https://api.acme.example/things.write' });
    assert.notEqual(read.accessToken, write.accessToken);
  });

  test('client_secret_post is refused (400 invalid_client): Cognito wants Basic', async () => {
    await assert.rejects(client({ clientAuthMethod: 'client_secret_post' }).clientCredentialsAuthManager.getToken(), (error: unknown) => error instanceof OAuthProviderError && error.error === 'invalid_client' && error.statusCode === 400);
  });

  test('an unknown scope: 400 invalid_scope, not retried', async () => {
    const before = server.requests.length;
    await assert.rejects(client({ oAuthScopes: 'https://api.acme.example/admin' }).clientCredentialsAuthManager.getToken(), (error: unknown) => error instanceof OAuthProviderError && error.error === 'invalid_scope');
    assert.equal(server.requests.length - before, 1);
  });
});
