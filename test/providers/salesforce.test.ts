/**
 * Salesforce, emulated from help.salesforce.com ("OAuth 2.0 Client Credentials Flow for Server-to-Server
 * Integration", "Sample Request and Response for Access Token") and the REST API's session errors:
 * - `POST https://{my-domain}.my.salesforce.com/services/oauth2/token`, `client_id` and `client_secret` in the body
 *   (the documented sample) or Basic.
 * - The access token is `{org id}!{session}`: a `!` outside RFC 6750's b64token.
 * - The response has no `expires_in` (the session lasts the org's timeout policy); it carries `instance_url` (the base
 *   URL of every API call), `id`, `issued_at` (ms, a string) and `signature`.
 * - An expired session is `401 [{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]` from the API.
 * - Errors: `400 invalid_client` "invalid client credentials"; `400 invalid_grant` "no client credentials user enabled".
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { Client, OAuthProviderError } from '../../src/index.js';
import { sendJson, startScripted, type ScriptedServer } from '../helpers/scripted.js';
import { startEmulation, type Emulation, type EmulatedRequest, type EmulatedResponse } from './emulator.js';

const CONSUMER_KEY = '3MVG9pRzvMkjMb6lZlt3YjDQwe5wV8iQZ5jJ4W9d2yQ9R3YQmXmGZx_8mD1fN2hG3jK4lM5nO6pQ7rS8tU9vW0';
const CONSUMER_SECRET = 'E5F6A7B8C9D0E1F2A3B4C5D6E7F8A9B0C1D2E3F4A5B6C7D8E9F0A1B2C3D4E5F6';
const ORG = '00D5g000004XyZa';

interface SalesforceState {
  instanceUrl: string;
  live: Set<string>;
  enabledUser: boolean;
}

function salesforce(state: SalesforceState, request: EmulatedRequest): EmulatedResponse {
  if (request.url !== '/services/oauth2/token') return { status: 404, body: [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }] };
  const form = request.form;
  const id = form.get('client_id') ?? request.basicDecoded?.id;
  const secret = form.get('client_secret') ?? request.basicDecoded?.secret;
  if (id !== CONSUMER_KEY || secret !== CONSUMER_SECRET) return { status: 400, body: { error: 'invalid_client', error_description: 'invalid client credentials' } };
  if (form.get('grant_type') !== 'client_credentials') return { status: 400, body: { error: 'unsupported_grant_type', error_description: 'grant type not supported' } };
  if (!state.enabledUser) return { status: 400, body: { error: 'invalid_grant', error_description: 'no client credentials user enabled' } };
  const accessToken = `${ORG}!AQ4AQ${randomBytes(60).toString('base64url').replace(/-/g, '.')}`;
  state.live.add(accessToken);
  const issuedAt = String(Date.now());
  const userId = '0055g00000B1VQwAAN';
  return {
    status: 200,
    body: {
      access_token: accessToken,
      signature: createHmac('sha256', CONSUMER_SECRET).update(`https://login.salesforce.com/id/${ORG}/${userId}${issuedAt}`).digest('base64'),
      scope: 'api', instance_url: state.instanceUrl, id: `https://login.salesforce.com/id/${ORG}/${userId}`, token_type: 'Bearer', issued_at: issuedAt,
    },
  };
}

describe('Salesforce (emulated from its token endpoint documentation)', () => {
  let server: Emulation;
  let instance: ScriptedServer;
  const state: SalesforceState = { instanceUrl: '', live: new Set(), enabledUser: true };

  before(async () => {
    server = await startEmulation((request) => salesforce(state, request));
    instance = await startScripted((req, res) => {
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (!state.live.has(token)) return sendJson(res, 401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
      sendJson(res, 200, { totalSize: 1, done: true, records: [{ Name: 'Acme' }] });
    });
    state.instanceUrl = instance.url;
  });
  after(async () => {
    await server.close();
    await instance.close();
  });

  const credentials = { oAuthClientId: CONSUMER_KEY, oAuthClientSecret: CONSUMER_SECRET, clientAuthMethod: 'client_secret_post' as const };

  test('a token with !, no expires_in (defaultTokenLifetime), instance_url in extra, used as the API base', async () => {
    const login = new Client({ tokenUrl: `${server.url}/services/oauth2/token`, defaultTokenLifetime: 900, clientCredentialsAuthCredentials: credentials });
    const token = await login.clientCredentialsAuthManager.getToken();
    assert.match(token.accessToken, /^00D5g000004XyZa!AQ4AQ/);
    assert.equal(token.expiresIn, 900);
    const instanceUrl = token.extra?.['instance_url'];
    assert.equal(instanceUrl, instance.url);
    // The API client on the instance URL shares the token endpoint and credentials.
    const api = new Client({ baseUrl: String(instanceUrl), tokenUrl: `${server.url}/services/oauth2/token`, defaultTokenLifetime: 900, clientCredentialsAuthCredentials: credentials });
    const res = await api.get<{ done: boolean }>('/services/data/v60.0/query?q=SELECT+Name+FROM+Account');
    assert.equal(res.result.done, true);
    assert.match(instance.requests.at(-1)!.headers.authorization!, /^Bearer 00D5g000004XyZa!/);
  });

  test('a session that ended before defaultTokenLifetime: the API 401 INVALID_SESSION_ID brings a new token and one retry', async () => {
    const api = new Client({ baseUrl: instance.url, tokenUrl: `${server.url}/services/oauth2/token`, defaultTokenLifetime: 7200, clientCredentialsAuthCredentials: credentials });
    await api.get('/services/data/v60.0/limits');
    state.live.clear(); // the org's session timeout
    const before = server.requests.length;
    const res = await api.get<{ done: boolean }>('/services/data/v60.0/limits');
    assert.equal(res.statusCode, 200);
    assert.equal(server.requests.length - before, 1);
  });

  test('no run-as user enabled: 400 invalid_grant with Salesforce\'s description', async () => {
    state.enabledUser = false;
    try {
      const c = new Client({ tokenUrl: `${server.url}/services/oauth2/token`, clientCredentialsAuthCredentials: credentials });
      await assert.rejects(c.clientCredentialsAuthManager.getToken(), (error: unknown) => error instanceof OAuthProviderError && error.error === 'invalid_grant' && /no client credentials user enabled/.test(error.message));
    } finally {
      state.enabledUser = true;
    }
  });

  test('the signature member is redacted like a token: a failing oAuthOnTokenUpdate that quotes it does not leak it', async () => {
    const errors: unknown[] = [];
    const c = new Client({ tokenUrl: `${server.url}/services/oauth2/token`, clientCredentialsAuthCredentials: { ...credentials, oAuthOnTokenUpdate: (t) => { throw new Error(`cannot save ${String(t.extra?.['signature'])}`); } } });
    c.on('callbackError', (e) => errors.push(e.error));
    const token = await c.clientCredentialsAuthManager.getToken();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(errors.length, 1);
    assert.ok(!String((errors[0] as Error).message).includes(String(token.extra?.['signature'])));
  });
});
