/**
 * Unknown option keys: a misspelled option of the Client, of `clientCredentialsAuthCredentials`, of `retry` or of
 * `circuitBreaker` fails at construction with InvalidOptionError naming its path, with a "did you mean" when a known
 * key is close; before this, JavaScript callers got a Client that silently ignored it (no scope sent, no retries).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, ErrorCode, InvalidOptionError, type ClientConfiguration } from '../src/index.js';
import { CLIENT_OPTION_KEYS, CLIENT_OPTION_KINDS, editDistance, optionsOfKind, suggest } from '../src/optionKeys.js';

const credentials = { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret' };

function rejection(config: unknown): InvalidOptionError {
  try {
    new Client(config as ClientConfiguration);
  } catch (error) {
    assert.ok(error instanceof InvalidOptionError, String(error));
    assert.equal(error.code, ErrorCode.InvalidOption);
    return error;
  }
  assert.fail('the Client was built');
}

test('oAuthScope (for oAuthScopes) is rejected with a suggestion, not ignored', () => {
  const error = rejection({ tokenUrl: 'https://auth.example.com/token', clientCredentialsAuthCredentials: { ...credentials, oAuthScope: ['api:read'] } });
  assert.equal(error.option, 'clientCredentialsAuthCredentials.oAuthScope');
  assert.match(error.message, /is not an option of `clientCredentialsAuthCredentials`; did you mean `oAuthScopes`\?/);
});

test('retrys (for retry) on the Client is rejected with a suggestion', () => {
  const error = rejection({ tokenUrl: 'https://auth.example.com/token', clientCredentialsAuthCredentials: credentials, retrys: 3 });
  assert.equal(error.option, 'retrys');
  assert.match(error.message, /The `retrys` option is not an option of the Client; did you mean `retry`\?/);
});

test('nested retry and circuitBreaker keys are checked, and a different case is suggested', () => {
  assert.match(rejection({ retry: { maxAtempts: 2 } }).message, /`retry\.maxAtempts`.*did you mean `maxAttempts`/);
  assert.match(rejection({ circuitBreaker: { cooldwon: 5 } }).message, /`circuitBreaker\.cooldwon`.*did you mean `cooldown`/);
  assert.match(rejection({ baseURL: 'https://api.example.com' }).message, /did you mean `baseUrl`/);
  assert.match(rejection({ clientCredentialsAuthCredentials: { ...credentials, OAuthClientSecret: 'x' } }).message, /did you mean `oAuthClientSecret`/);
});

test('a key far from every option gets no suggestion; an undefined value is still a mistake', () => {
  const error = rejection({ colour: 'blue' });
  assert.equal(error.message, 'The `colour` option is not an option of the Client');
  assert.equal(rejection({ tokenURL: undefined }).option, 'tokenURL');
});

test('the message names keys only, never the misspelled value (which may be a secret)', () => {
  const error = rejection({ tokenUrl: 'https://auth.example.com/token', clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecrett: 'hunter2-secret' } });
  assert.doesNotMatch(`${error.message}\n${error.stack}\n${JSON.stringify(error)}`, /hunter2/);
});

test('every documented option is accepted, and withConfiguration checks its keys too', async () => {
  const client = new Client({
    baseUrl: 'https://api.example.com',
    tokenUrl: '/token',
    timeout: 1_000,
    clientCredentialsAuthCredentials: { ...credentials, oAuthScopes: 'a', clockSkew: 1, resource: 'urn:x', audience: 'aud', tokenParameters: {} },
    retry: { maxAttempts: 2, baseDelay: 1, maxDelay: 2, maxElapsed: 10, maxRetryAfter: 5 },
    circuitBreaker: { failureThreshold: 2, cooldown: 10 },
    retryOnUnauthorized: false,
    headers: {},
    userAgent: 'x',
  });
  try {
    assert.throws(() => client.withConfiguration({ timeOut: 5 } as ClientConfiguration), /did you mean `timeout`/);
  } finally {
    await client.close();
  }
});

test('editDistance and suggest', () => {
  assert.equal(editDistance('retrys', 'retry'), 1);
  assert.equal(editDistance('cooldwon', 'cooldown'), 1);
  assert.equal(editDistance('abc', 'ABC'), 0);
  assert.equal(suggest('tokenUr', ['tokenUrl', 'baseUrl']), 'tokenUrl');
  assert.equal(suggest('x', ['tokenUrl', 'baseUrl']), undefined);
});

test('peer libraries\' option names on the Client point to ours (clientId → clientCredentialsAuthCredentials.oAuthClientId)', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ clientId: 'svc' }, 'clientCredentialsAuthCredentials.oAuthClientId'],
    [{ client_id: 'svc' }, 'clientCredentialsAuthCredentials.oAuthClientId'],
    [{ clientSecret: 'x' }, 'clientCredentialsAuthCredentials.oAuthClientSecret'],
    [{ scope: 'api:read' }, 'clientCredentialsAuthCredentials.oAuthScopes'],
    [{ scopes: ['api:read'] }, 'clientCredentialsAuthCredentials.oAuthScopes'],
    [{ audience: 'https://api' }, 'clientCredentialsAuthCredentials.audience'],
    [{ resource: 'https://api' }, 'clientCredentialsAuthCredentials.resource'],
    [{ tokenEndpointAuthMethod: 'private_key_jwt' }, 'clientCredentialsAuthCredentials.clientAuthMethod'],
    [{ tokenEndpoint: 'https://auth.example.com/token' }, 'tokenUrl'],
    [{ accessTokenUri: 'https://auth.example.com/token' }, 'tokenUrl'],
    [{ authority: 'https://login.example.com/tenant' }, 'issuer'],
    // A credentials option one level too high, exactly or misspelled.
    [{ oAuthClientId: 'svc' }, 'clientCredentialsAuthCredentials.oAuthClientId'],
    [{ clockSkew: 30 }, 'clientCredentialsAuthCredentials.clockSkew'],
    [{ oAuthScope: 'x' }, 'clientCredentialsAuthCredentials.oAuthScopes'],
  ];
  for (const [config, path] of cases) {
    const error = rejection(config);
    assert.equal(error.option, Object.keys(config)[0]);
    assert.ok(error.message.endsWith(`is not an option of the Client; did you mean \`${path}\`?`), `${JSON.stringify(config)}: ${error.message}`);
  }
  // Inside the credentials, the same names point to the sibling.
  const nested = rejection({ tokenUrl: 'https://auth.example.com/token', clientCredentialsAuthCredentials: { oAuthClientId: 'svc', clientSecret: 'x' } });
  assert.match(nested.message, /`clientCredentialsAuthCredentials\.clientSecret` option is not an option of `clientCredentialsAuthCredentials`; did you mean `oAuthClientSecret`\?/);
  // Our own names still win over a peer's: a misspelled top-level option is suggested as before.
  assert.match(rejection({ baseURL: 'https://api.example.com' }).message, /did you mean `baseUrl`\?/);
});

test('every option of the Client is classified, and the token-cache and connection sets are those withConfiguration used', () => {
  assert.deepEqual(optionsOfKind('token', 'connection').sort(), [
    'tokenUrl', 'issuer', 'dpop', 'clientCredentialsAuthCredentials', 'tokenStore', 'tokenStoreTimeout', 'tokenStoreKey', 'clock', 'retry', 'circuitBreaker',
    'refreshAhead', 'defaultTokenLifetime', 'maxTokenLifetime', 'tokenRequestTimeout', 'maxTokenResponseBytes', 'maxCachedTokens', 'dispatcher', 'proxy', 'tls',
  ].sort());
  assert.deepEqual(optionsOfKind('connection').sort(), ['dispatcher', 'proxy', 'tls']);
  assert.deepEqual(Object.keys(CLIENT_OPTION_KEYS).sort(), Object.keys(CLIENT_OPTION_KINDS).sort());
});
