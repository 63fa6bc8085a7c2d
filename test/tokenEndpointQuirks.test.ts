/**
 * Token-endpoint quirks, against a real HTTP server answering each shape: an RFC 6749 error inside a 2xx answer,
 * form-encoded token responses (GitHub's legacy endpoint), and error bodies of other shapes (`{message}`,
 * `{error: {…}}`, text) that keep a short, cleaned excerpt in the error's message, never the client secret.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { ApiError, Client, OAuthProviderError } from '../src/index.js';
import { closeServer, listenLocal, readBody } from './helpers/http.js';

const SECRET = 'quirk-secret-Zq9';
type Answer = { status: number; type: string; body: string };
const answers: Record<string, Answer> = {
  '/error-in-200': { status: 200, type: 'application/json', body: JSON.stringify({ error: 'invalid_scope', error_description: 'scope x is unknown' }) },
  '/nested-error-in-200': { status: 200, type: 'application/json', body: JSON.stringify({ error: { code: 'unauthorized_client', message: 'client may not use this grant' } }) },
  '/form': { status: 200, type: 'application/x-www-form-urlencoded; charset=utf-8', body: 'access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo&token_type=bearer&expires_in=3600' },
  '/form-text-plain': { status: 200, type: 'text/plain', body: 'access_token=plain-token&token_type=bearer' },
  '/form-error': { status: 200, type: 'application/x-www-form-urlencoded', body: 'error=bad_verification_code&error_description=The+code+passed+is+incorrect' },
  '/message': { status: 400, type: 'application/json', body: JSON.stringify({ message: 'Client authentication failed (unknown client)' }) },
  '/nested-error': { status: 502, type: 'application/json', body: JSON.stringify({ error: { code: 'E42', message: 'upstream directory down' } }) },
  '/text': { status: 403, type: 'text/plain', body: `Forbidden:\u0000 bad\r\n\tclient\u001b[31m ${'x'.repeat(400)}` },
  '/empty-error-with-token': { status: 200, type: 'application/json', body: JSON.stringify({ access_token: 'tok-empty-error-1', token_type: 'Bearer', expires_in: 600, error: '', error_description: '' }) },
  '/empty-error-alone': { status: 200, type: 'application/json', body: JSON.stringify({ error: '' }) },
  '/forged-lines': { status: 400, type: 'application/json', body: JSON.stringify({ error: 'invalid_client\r\n2026-12-08 ERROR forged', error_description: `bad\r\n2026-12-08 INFO forged\u001b[31m\u2028` }) },
  '/echo-secret': { status: 400, type: 'text/plain', body: `cannot authenticate client with secret ${SECRET}` },
};

let url: string;
let server: http.Server;
const clients: Client[] = [];

before(async () => {
  server = http.createServer((req, res) => {
    void readBody(req).then(() => {
      const answer = answers[req.url ?? ''];
      if (!answer) return void res.writeHead(404).end();
      res.writeHead(answer.status, { 'content-type': answer.type }).end(answer.body);
    });
  });
  url = await listenLocal(server);
});
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await closeServer(server);
});

function fetchFrom(path: string, method: 'client_secret_basic' | 'client_secret_post' = 'client_secret_basic') {
  const client = new Client({
    tokenUrl: `${url}${path}`,
    retry: false,
    circuitBreaker: false,
    clientCredentialsAuthCredentials: { oAuthClientId: 'quirky', oAuthClientSecret: SECRET, clientAuthMethod: method },
  });
  clients.push(client);
  return client.clientCredentialsAuthManager.fetchToken();
}

test('a 200 whose body is an RFC 6749 error is an OAuthProviderError with its code and description', async () => {
  await assert.rejects(fetchFrom('/error-in-200'), (e: unknown) => {
    assert.ok(e instanceof OAuthProviderError);
    assert.deepEqual([e.code, e.error, e.errorDescription, e.statusCode], ['ERR_OAUTH_PROVIDER', 'invalid_scope', 'scope x is unknown', 200]);
    return true;
  });
});

test('a 200 with a nested {error: {code, message}} is an OAuthProviderError with that code', async () => {
  await assert.rejects(fetchFrom('/nested-error-in-200'), { name: 'OAuthProviderError', error: 'unauthorized_client', errorDescription: 'client may not use this grant' });
});

test('a form-encoded token response is accepted (GitHub legacy): token, type, scope, expires_in', async () => {
  const token = await fetchFrom('/form');
  assert.equal(token.accessToken, 'gho_16C7e42F292c6912E7710c838347Ae178B4a');
  assert.equal(token.tokenType, 'bearer');
  assert.equal(token.scope, 'repo');
  assert.equal(token.expiresIn, 3600);
});

test('a form-encoded body labelled text/plain is accepted when it carries access_token', async () => {
  assert.equal((await fetchFrom('/form-text-plain')).accessToken, 'plain-token');
});

test('a form-encoded error in a 200 is an OAuthProviderError', async () => {
  await assert.rejects(fetchFrom('/form-error'), { name: 'OAuthProviderError', error: 'bad_verification_code', errorDescription: 'The code passed is incorrect' });
});

test('a {message} error body keeps its text in the ApiError message', async () => {
  await assert.rejects(fetchFrom('/message'), (e: unknown) => {
    assert.ok(e instanceof ApiError && !(e instanceof OAuthProviderError));
    assert.equal(e.statusCode, 400);
    assert.match(e.message, /status 400: .*Client authentication failed \(unknown client\)/);
    return true;
  });
});

test('a nested {error: {…}} error body with a 5xx keeps an excerpt', async () => {
  await assert.rejects(fetchFrom('/nested-error'), (e: unknown) => e instanceof ApiError && e.statusCode === 502 && /E42.*upstream directory down/.test(e.message));
});

test('a text body is excerpted: control characters stripped, one line, truncated', async () => {
  await assert.rejects(fetchFrom('/text'), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.match(e.message, /status 403: Forbidden: bad client \[31m x+…$/);
    assert.doesNotMatch(e.message, /[\u0000-\u001f]/);
    assert.ok(e.message.length < 240, `message length ${e.message.length}`);
    return true;
  });
});

for (const method of ['client_secret_basic', 'client_secret_post'] as const) {
  test(`an error body echoing the client secret is excerpted with the secret masked (${method})`, async () => {
    await assert.rejects(fetchFrom('/echo-secret', method), (e: unknown) => {
      assert.ok(e instanceof ApiError);
      assert.match(e.message, /cannot authenticate client with secret \[redacted\]/);
      assert.ok(!e.message.includes(SECRET) && !JSON.stringify(e).includes(SECRET));
      return true;
    });
  });
}

test('a 200 with a token and an empty `error` member (as some frameworks serialise "no error") gives the token; an empty error alone is a malformed response, not "provider error 200 " with no code', async () => {
  const token = await fetchFrom('/empty-error-with-token');
  assert.equal(token.accessToken, 'tok-empty-error-1');
  await assert.rejects(fetchFrom('/empty-error-alone'), { code: 'ERR_MALFORMED_TOKEN_RESPONSE' });
});

test('an OAuthProviderError message cannot forge a log line: CR, LF, ESC and the other control characters of error and error_description are escaped (the properties keep the server\'s text)', async () => {
  await assert.rejects(fetchFrom('/forged-lines'), (e: unknown) => {
    assert.ok(e instanceof OAuthProviderError);
    assert.doesNotMatch(e.message, /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/, JSON.stringify(e.message));
    assert.match(e.message, /invalid_client\\r\\n2026-12-08 ERROR forged: bad\\r\\n2026-12-08 INFO forged\\u001b\[31m/);
    assert.equal(e.errorDescription, 'bad\r\n2026-12-08 INFO forged\u001b[31m\u2028');
    return true;
  });
});
