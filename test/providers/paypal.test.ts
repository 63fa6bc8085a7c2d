/**
 * PayPal REST, emulated from developer.paypal.com ("Get started: get an access token", "Authentication"), the
 * provider of the seed's SDK family:
 * - `POST /v1/oauth2/token` with `grant_type=client_credentials`, Basic client id and secret, `Accept: application/json`.
 * - The response: `scope` (a long list of URLs), `access_token` (`A21AA…`), `token_type: Bearer`, `app_id`,
 *   `expires_in: 32400`, `nonce`.
 * - A bad secret: `401 {"error":"invalid_client","error_description":"Client Authentication failed"}`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Client, OAuthProviderError } from '../../src/index.js';
import { startEmulation, type Emulation, type EmulatedRequest, type EmulatedResponse } from './emulator.js';

const CLIENT_ID = 'AYSq3RDGsmBLJE-otTkBtM-jBRd1TCQwFf9RGfwddNXWz0uFU9ztymylOhRS';
const SECRET = 'EGnHDxD_qRPdaLdZz8iCr8N7_MzF-YHPTkjs6NKYQvQSBngp4PTTVWkPZRbL';
const SCOPE = 'https://uri.paypal.com/services/invoicing https://uri.paypal.com/services/payments/payment https://uri.paypal.com/services/reporting/search/read openid';

function paypal(request: EmulatedRequest): EmulatedResponse {
  if (request.url !== '/v1/oauth2/token') return { status: 404, body: { name: 'RESOURCE_NOT_FOUND', message: 'The specified resource does not exist.' } };
  if (!request.basicDecoded || request.basicDecoded.id !== CLIENT_ID || request.basicDecoded.secret !== SECRET) return { status: 401, body: { error: 'invalid_client', error_description: 'Client Authentication failed' } };
  if (request.form.get('grant_type') !== 'client_credentials') return { status: 400, body: { error: 'unsupported_grant_type', error_description: 'Grant Type is NULL' } };
  return {
    status: 200,
    body: { scope: SCOPE, access_token: `A21AA${randomBytes(64).toString('base64url')}`, token_type: 'Bearer', app_id: 'APP-80W284485P519543T', expires_in: 32400, nonce: `2026-12-07T10:00:00Z${randomBytes(24).toString('base64url')}` },
    headers: { 'paypal-debug-id': randomBytes(6).toString('hex') },
  };
}

describe('PayPal (emulated from its token endpoint documentation)', () => {
  let server: Emulation;
  before(async () => {
    server = await startEmulation(paypal);
  });
  after(() => server.close());

  test('Basic (the default), Accept: application/json; app_id and nonce kept in extra', async () => {
    const client = new Client({ tokenUrl: `${server.url}/v1/oauth2/token`, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET } });
    const token = await client.clientCredentialsAuthManager.getToken();
    assert.equal(token.expiresIn, 32400);
    assert.equal(token.scope, SCOPE);
    assert.equal(token.extra?.['app_id'], 'APP-80W284485P519543T');
    assert.ok(typeof token.extra?.['nonce'] === 'string');
    assert.equal(server.requests.at(-1)!.headers.accept, 'application/json');
    assert.equal(server.requests.length, 1);
  });

  test('a wrong secret: 401 invalid_client "Client Authentication failed", one request (the secret needs no encoding)', async () => {
    const client = new Client({ tokenUrl: `${server.url}/v1/oauth2/token`, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: 'EGnHDxD_wrong-secret' } });
    const before = server.requests.length;
    await assert.rejects(client.clientCredentialsAuthManager.getToken(), (error: unknown) => error instanceof OAuthProviderError && error.statusCode === 401 && /Client Authentication failed/.test(error.message));
    assert.equal(server.requests.length - before, 1);
  });
});
