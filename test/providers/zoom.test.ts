/**
 * Zoom Server-to-Server OAuth, emulated from developers.zoom.us ("Server-to-Server OAuth", "Troubleshooting
 * Server-to-Server OAuth access tokens"):
 * - `POST https://zoom.us/oauth/token` with `grant_type=account_credentials` and `account_id` (documented in the query
 *   string; a form body is read too), Basic client id and secret.
 * - The response: `access_token`, `token_type: bearer` (lower case), `expires_in: 3599`, `scope`, `api_url`.
 * - `grant_type=client_credentials` is `400 {"reason":"unsupported grant type","error":"unsupported_grant_type"}`; a
 *   missing `account_id` is `400 invalid_request`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Client, InvalidOptionError, OAuthProviderError } from '../../src/index.js';
import { sendJson, startScripted, type ScriptedServer } from '../helpers/scripted.js';
import { startEmulation, type Emulation, type EmulatedRequest, type EmulatedResponse } from './emulator.js';

const CLIENT_ID = 'xWnLcYbTQ0mW4aBcDeFgHi';
const SECRET = 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6';
const ACCOUNT_ID = 'Jk3lM4nO5pQ6rS7tU8vW9x';

function zoom(apiUrl: string, request: EmulatedRequest): EmulatedResponse {
  if (!request.url.startsWith('/oauth/token')) return { status: 404, body: '' };
  const param = (name: string): string | null => request.query.get(name) ?? request.form.get(name);
  if (!request.basicDecoded || request.basicDecoded.id !== CLIENT_ID || request.basicDecoded.secret !== SECRET) return { status: 400, body: { reason: 'Invalid client_id or client_secret', error: 'invalid_client' } };
  if (param('grant_type') !== 'account_credentials') return { status: 400, body: { reason: 'unsupported grant type', error: 'unsupported_grant_type' } };
  if (param('account_id') !== ACCOUNT_ID) return { status: 400, body: { reason: 'Invalid request : Missing account_id', error: 'invalid_request' } };
  return { status: 200, body: { access_token: `eyJzdiI6IjAwMDAwMSIsImFsZyI6IkhTNTEyIiwidiI6IjIuMCJ9.${randomBytes(48).toString('base64url')}.${randomBytes(32).toString('base64url')}`, token_type: 'bearer', expires_in: 3599, scope: 'user:read:admin meeting:write:admin', api_url: apiUrl } };
}

describe('Zoom Server-to-Server OAuth (emulated from its documentation)', () => {
  let server: Emulation;
  let api: ScriptedServer;
  before(async () => {
    api = await startScripted((req, res) => sendJson(res, 200, { authorization: req.headers.authorization }));
    server = await startEmulation((request) => zoom(api.url, request));
  });
  after(async () => {
    await server.close();
    await api.close();
  });

  test('grantType account_credentials with tokenParameters.account_id; token_type "bearer" is sent as Bearer; api_url in extra', async () => {
    const client = new Client({ baseUrl: api.url, tokenUrl: `${server.url}/oauth/token`, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET, grantType: 'account_credentials', tokenParameters: { account_id: ACCOUNT_ID } } });
    const res = await client.get<{ authorization: string }>('/v2/users/me');
    assert.match(res.result.authorization, /^Bearer eyJ/);
    const token = await client.clientCredentialsAuthManager.getToken();
    assert.equal(token.extra?.['api_url'], api.url);
    assert.equal(token.expiresIn, 3599);
  });

  test('client_credentials (the default grant) is refused by Zoom with unsupported_grant_type', async () => {
    const client = new Client({ tokenUrl: `${server.url}/oauth/token`, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET, tokenParameters: { account_id: ACCOUNT_ID } } });
    await assert.rejects(client.clientCredentialsAuthManager.getToken(), (error: unknown) => error instanceof OAuthProviderError && error.error === 'unsupported_grant_type');
  });

  test('grant_type in tokenParameters is refused before any request: use grantType', () => {
    assert.throws(() => new Client({ tokenUrl: `${server.url}/oauth/token`, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET, tokenParameters: { grant_type: 'account_credentials', account_id: ACCOUNT_ID } } }), InvalidOptionError);
  });

  test('tokens of two accounts (account_id) are cached apart', async () => {
    const client = new Client({ tokenUrl: `${server.url}/oauth/token`, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET, grantType: 'account_credentials', tokenParameters: { account_id: ACCOUNT_ID } } });
    const other = client.withConfiguration({ clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET, grantType: 'account_credentials', tokenParameters: { account_id: 'other-account' } } });
    await client.clientCredentialsAuthManager.getToken();
    await assert.rejects(other.clientCredentialsAuthManager.getToken(), (error: unknown) => error instanceof OAuthProviderError && error.error === 'invalid_request');
  });
});
