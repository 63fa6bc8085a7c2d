/**
 * Keycloak, emulated from keycloak.org's documentation ("Securing applications: OpenID Connect endpoints", "Service
 * accounts", "Confidential client credentials"):
 * - Issuer `…/realms/{realm}`; metadata only at `{issuer}/.well-known/openid-configuration` (the RFC 8414 URL is 404);
 *   token endpoint `{issuer}/protocol/openid-connect/token`.
 * - Client authentication `client_secret_basic` (form-decoded), `client_secret_post`, `client_secret_jwt`,
 *   `private_key_jwt`.
 * - The response carries `refresh_expires_in`, `not-before-policy`, `scope` (the client's default scopes), and 300 s
 *   tokens; a bad secret is `401 unauthorized_client` "Invalid client or Invalid client credentials".
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { Client, OAuthProviderError } from '../../src/index.js';
import { fakeJwt, startEmulation, type Emulation, type EmulatedRequest, type EmulatedResponse } from './emulator.js';

const REALM = 'acme';
const CLIENT_ID = 'billing-service';
const SECRET = 'Kc+Secret/with%chars 2026';

function keycloak(url: string, request: EmulatedRequest): EmulatedResponse {
  const issuer = `${url}/realms/${REALM}`;
  if (request.method === 'GET' && request.url === `/realms/${REALM}/.well-known/openid-configuration`) {
    return {
      status: 200,
      body: {
        issuer, token_endpoint: `${issuer}/protocol/openid-connect/token`, jwks_uri: `${issuer}/protocol/openid-connect/certs`,
        grant_types_supported: ['authorization_code', 'implicit', 'refresh_token', 'password', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code'],
        token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic', 'client_secret_post', 'tls_client_auth', 'client_secret_jwt'],
        token_endpoint_auth_signing_alg_values_supported: ['PS384', 'ES384', 'RS384', 'HS256', 'HS512', 'ES256', 'RS256', 'HS384', 'ES512', 'PS256', 'PS512', 'RS512'],
      },
    };
  }
  if (request.method === 'GET') return { status: 404, body: { error: 'Unable to find matching target resource method' } };
  if (request.url !== `/realms/${REALM}/protocol/openid-connect/token`) return { status: 404, body: '' };
  const form = request.form;
  let authenticated = false;
  if (request.basicDecoded) authenticated = request.basicDecoded.id === CLIENT_ID && request.basicDecoded.secret === SECRET;
  else if (form.get('client_secret') !== null) authenticated = form.get('client_id') === CLIENT_ID && form.get('client_secret') === SECRET;
  else if (form.get('client_assertion') !== null) {
    // client_secret_jwt: HS256 with the secret.
    const [header, payload, signature] = form.get('client_assertion')!.split('.');
    const expected = createHmac('sha256', SECRET).update(`${header}.${payload}`).digest('base64url');
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8') || '{}') as Record<string, unknown>;
    authenticated = signature === expected && claims['sub'] === CLIENT_ID && claims['aud'] === `${issuer}/protocol/openid-connect/token`;
  }
  if (!authenticated) return { status: 401, body: { error: 'unauthorized_client', error_description: 'Invalid client or Invalid client credentials' } };
  if (form.get('grant_type') !== 'client_credentials') return { status: 400, body: { error: 'unsupported_grant_type', error_description: 'Unsupported grant_type' } };
  const scope = ['profile', 'email', ...(form.get('scope')?.split(' ') ?? [])].join(' ');
  return { status: 200, body: { access_token: fakeJwt({ iss: issuer, azp: CLIENT_ID, scope, typ: 'Bearer' }), expires_in: 300, refresh_expires_in: 0, token_type: 'Bearer', 'not-before-policy': 0, scope } };
}

describe('Keycloak (emulated from its token endpoint documentation)', () => {
  let server: Emulation;
  before(async () => {
    server = await startEmulation((request) => keycloak(server.url, request));
  });
  after(() => server.close());

  test('discovery at the OpenID URL (the RFC 8414 one is 404), Basic with a secret needing the RFC 6749 encoding: one request', async () => {
    const client = new Client({ issuer: `${server.url}/realms/${REALM}`, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET } });
    const posts = () => server.requests.filter((r) => r.method === 'POST').length;
    const before = posts();
    const token = await client.clientCredentialsAuthManager.getToken();
    assert.equal(posts() - before, 1);
    assert.equal(token.scope, 'profile email');
    assert.deepEqual(token.extra, { refresh_expires_in: 0, 'not-before-policy': 0 });
  });

  test('client_secret_jwt (HS256 with the secret)', async () => {
    const client = new Client({ tokenUrl: `${server.url}/realms/${REALM}/protocol/openid-connect/token`, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET, clientAuthMethod: 'client_secret_jwt' } });
    assert.ok((await client.clientCredentialsAuthManager.getToken()).accessToken);
  });

  test('a wrong secret: 401 unauthorized_client (Keycloak does not say invalid_client), no retry, no raw try', async () => {
    const client = new Client({ tokenUrl: `${server.url}/realms/${REALM}/protocol/openid-connect/token`, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: 'wrong+secret/value' } });
    const before = server.requests.length;
    await assert.rejects(client.clientCredentialsAuthManager.getToken(), (error: unknown) => error instanceof OAuthProviderError && error.error === 'unauthorized_client' && error.statusCode === 401);
    assert.equal(server.requests.length - before, 1);
  });
});
