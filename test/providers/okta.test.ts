/**
 * Okta (custom authorization server), emulated from developer.okta.com ("Implement the Client Credentials flow",
 * "Build a JWT for client authentication", "Configure OAuth 2.0 Demonstrating Proof-of-Possession"):
 * - Issuer `…/oauth2/default`; its metadata at `…/oauth2/default/.well-known/oauth-authorization-server` and
 *   `…/.well-known/openid-configuration` (suffix form: RFC 8414's path-inserted URL is not served); token endpoint
 *   `…/oauth2/default/v1/token`.
 * - `private_key_jwt`: the key is found by `kid` among the app's JWKS; `aud` is the token URL; a `jti` is accepted once.
 * - `scope` is required for client credentials (`invalid_scope` otherwise).
 * - An app that requires DPoP answers a proof without a nonce with `400 use_dpop_nonce` and a `DPoP-Nonce` header,
 *   then issues `token_type: DPoP` tokens bound to the proof's key.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Client, DiscoveryError, OAuthProviderError } from '../../src/index.js';
import { sendJson, startScripted, type ScriptedServer } from '../helpers/scripted.js';
import { fakeJwt, startEmulation, verifyAssertion, verifyDpopProof, type Emulation, type EmulatedRequest, type EmulatedResponse } from './emulator.js';
import { ecJwk } from './keys.js';

const CLIENT_ID = '0oa8f5j3ecb5w3dF35d7';
const DPOP_CLIENT_ID = '0oa8f5j3ecb5w3dDPoP7';

interface OktaState {
  url: string;
  keys: { kid: string; key: import('node:crypto').KeyObject }[];
  seenJti: Set<string>;
  nonce: string;
}

const oktaError = (status: number, error: string, description: string, headers: Record<string, string> = {}): EmulatedResponse => ({ status, body: { error, error_description: description }, headers });

async function okta(state: OktaState, request: EmulatedRequest): Promise<EmulatedResponse> {
  const issuer = `${state.url}/oauth2/default`;
  // Okta documents both documents under the issuer (suffix form, not RFC 8414's path insertion).
  if (request.method === 'GET' && (request.url === '/oauth2/default/.well-known/oauth-authorization-server' || request.url === '/oauth2/default/.well-known/openid-configuration')) {
    return {
      status: 200,
      body: {
        issuer, token_endpoint: `${issuer}/v1/token`, jwks_uri: `${issuer}/v1/keys`,
        grant_types_supported: ['authorization_code', 'client_credentials', 'refresh_token'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'],
        token_endpoint_auth_signing_alg_values_supported: ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512'],
        dpop_signing_alg_values_supported: ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512'],
      },
    };
  }
  if (request.url !== '/oauth2/default/v1/token') return { status: 404, body: { errorCode: 'E0000022', errorSummary: 'The endpoint does not support the provided HTTP method' } };
  const form = request.form;
  if (form.get('grant_type') !== 'client_credentials') return oktaError(400, 'unsupported_grant_type', `The authorization grant type is not supported by the authorization server. Configured grant types: [client_credentials].`);
  const clientId = form.get('client_id');
  if (clientId !== CLIENT_ID && clientId !== DPOP_CLIENT_ID) return oktaError(401, 'invalid_client', 'The client_assertion token is invalid.');
  const check = await verifyAssertion(form.get('client_assertion'), { clientId, audience: `${issuer}/v1/token`, keys: state.keys, seenJti: state.seenJti });
  if (!check.ok) return oktaError(401, 'invalid_client', check.reason === 'jti replayed' ? 'The client_assertion token has already been used.' : 'The client_assertion signature is invalid.');
  const scope = form.get('scope');
  if (!scope) return oktaError(400, 'invalid_scope', "The authorization server resource does not have any configured default scopes, 'scope' must be provided.");
  if (clientId === DPOP_CLIENT_ID) {
    const proof = request.headers['dpop'] as string | undefined;
    if (!proof) return oktaError(400, 'invalid_dpop_proof', 'The DPoP proof JWT header is missing.');
    const checked = await verifyDpopProof(proof, `${issuer}/v1/token`, undefined);
    if (!checked.ok) return oktaError(400, 'invalid_dpop_proof', `The DPoP proof JWT is invalid (${checked.reason}).`);
    if (checked.nonce !== state.nonce) return oktaError(400, 'use_dpop_nonce', 'Authorization server requires nonce in DPoP proof.', { 'dpop-nonce': state.nonce });
    return { status: 200, body: { token_type: 'DPoP', expires_in: 3600, access_token: fakeJwt({ cid: clientId, scp: scope.split(' '), cnf: { jkt: checked.jkt } }), scope } };
  }
  return { status: 200, body: { token_type: 'Bearer', expires_in: 3600, access_token: fakeJwt({ cid: clientId, scp: scope.split(' ') }), scope } };
}

describe('Okta (emulated from its token endpoint documentation)', () => {
  let server: Emulation;
  let api: ScriptedServer;
  const signing = ecJwk('okta-key-2026');
  const state: OktaState = { url: '', keys: [{ kid: 'okta-key-2026', key: signing.publicKey }, { kid: 'old-key', key: ecJwk('old-key').publicKey }], seenJti: new Set(), nonce: randomBytes(16).toString('base64url') };

  before(async () => {
    server = await startEmulation((request) => okta(state, request));
    state.url = server.url;
    api = await startScripted((req, res) => sendJson(res, 200, { authorization: req.headers.authorization, dpop: typeof req.headers['dpop'] === 'string' }));
  });
  after(async () => {
    await server.close();
    await api.close();
  });

  test('private_key_jwt through discovery: a private JWK (kid from the key), no clientAuthMethod, scope given', async () => {
    const client = new Client({ issuer: `${server.url}/oauth2/default`, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, privateKey: signing.privateJwk, oAuthScopes: 'okta.users.read' } });
    const token = await client.clientCredentialsAuthManager.getToken();
    assert.equal(token.scope, 'okta.users.read');
    const assertion = server.requests.at(-1)!.form.get('client_assertion')!;
    assert.equal((JSON.parse(Buffer.from(assertion.split('.')[0]!, 'base64url').toString('utf8')) as { kid: string }).kid, 'okta-key-2026');
  });

  test('no scope: invalid_scope, as Okta documents (the client must name one)', async () => {
    const client = new Client({ tokenUrl: `${server.url}/oauth2/default/v1/token`, retry: false, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, privateKey: signing.privateJwk } });
    await assert.rejects(client.clientCredentialsAuthManager.getToken(), (error: unknown) => error instanceof OAuthProviderError && error.error === 'invalid_scope');
  });

  test('each token request has a new jti (Okta refuses a replayed one)', async () => {
    const client = new Client({ tokenUrl: `${server.url}/oauth2/default/v1/token`, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, privateKey: signing.privateJwk, oAuthScopes: 'okta.users.read' } });
    await client.clientCredentialsAuthManager.fetchToken();
    await client.clientCredentialsAuthManager.fetchToken();
  });

  test('DPoP with use_dpop_nonce: the nonce is learnt and the request retried once; the DPoP token is sent with a proof', async () => {
    const client = new Client({ issuer: `${server.url}/oauth2/default`, baseUrl: api.url, dpop: true, clientCredentialsAuthCredentials: { oAuthClientId: DPOP_CLIENT_ID, privateKey: signing.privateJwk, oAuthScopes: 'okta.users.read' } });
    const before = server.requests.filter((r) => r.method === 'POST').length;
    const res = await client.get<{ authorization: string; dpop: boolean }>('/api/v1/users');
    assert.match(res.result.authorization, /^DPoP /);
    assert.equal(res.result.dpop, true);
    const posts = server.requests.filter((r) => r.method === 'POST').slice(before);
    assert.equal(posts.length, 2, 'use_dpop_nonce, then the request with the nonce');
    const jtis = posts.map((r) => JSON.parse(Buffer.from(r.form.get('client_assertion')!.split('.')[1]!, 'base64url').toString('utf8')).jti as string);
    assert.notEqual(jtis[0], jtis[1], 'the retry signs a new assertion');
  });

  test('an algorithm Okta does not list for DPoP is refused before the token request (discovery)', async () => {
    const ed = (await import('node:crypto')).generateKeyPairSync('ed25519').privateKey;
    const client = new Client({ issuer: `${server.url}/oauth2/default`, dpop: { privateKey: ed }, clientCredentialsAuthCredentials: { oAuthClientId: DPOP_CLIENT_ID, privateKey: signing.privateJwk, oAuthScopes: 'x' } });
    const before = server.requests.length;
    await assert.rejects(client.clientCredentialsAuthManager.getToken(), DiscoveryError);
    assert.equal(server.requests.filter((r) => r.method === 'POST').length, server.requests.slice(0, before).filter((r) => r.method === 'POST').length);
  });
});
