/**
 * Unknown option keys: a misspelled option of the Client, of `clientCredentialsAuthCredentials`, of `retry` or of
 * `circuitBreaker` fails at construction with InvalidOptionError naming its path, with a "did you mean" when a known
 * key is close; before this, JavaScript callers got a Client that silently ignored it (no scope sent, no retries).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import axios from 'axios';
import fc from 'fast-check';
import { Client, ErrorCode, InvalidOptionError, type ClientConfiguration } from '../src/index.js';
import { attachClientCredentials } from '../src/adapters/axios.js';
import { CLIENT_OPTION_KEYS, CLIENT_OPTION_KINDS, editDistance, optionsOfKind, suggest } from '../src/optionKeys.js';
import { sendJson, startScripted, type ScriptedServer } from './helpers/scripted.js';

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
    // The callbacks, the retry and the credentials object under the names other clients give them.
    [{ onTokenUpdate: () => undefined }, 'clientCredentialsAuthCredentials.oAuthOnTokenUpdate'],
    [{ tokenProvider: async () => undefined }, 'clientCredentialsAuthCredentials.oAuthTokenProvider'],
    [{ retries: 3 }, 'retry'],
    [{ maxRetries: 3 }, 'retry'],
    [{ credentials: { oAuthClientId: 'svc' } }, 'clientCredentialsAuthCredentials'],
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
  // Inside the credentials, the callbacks' peer names point to the sibling too.
  const callback = rejection({ tokenUrl: 'https://auth.example.com/token', clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'x', onTokenUpdate: () => undefined } });
  assert.match(callback.message, /did you mean `oAuthOnTokenUpdate`\?$/);
});

test('regression: a key named like an Object.prototype member (`constructor`, `toString`) is refused without a bogus suggestion', () => {
  for (const key of ['constructor', 'toString', 'hasOwnProperty']) {
    const error = rejection(JSON.parse(`{"${key}": 1}`));
    assert.equal(error.message, `The \`${key}\` option is not an option of the Client`);
  }
});

/**
 * The options of a call (JavaScript callers): an unknown key is an InvalidOptionError with a "did you mean", before
 * any request (the server records every request it gets: none reaches it).
 */
describe('unknown keys in the options of a call', () => {
  let server: ScriptedServer;
  let client: Client;
  before(async () => {
    server = await startScripted((req, res) => {
      if (req.url === '/token') return sendJson(res, 200, { access_token: 'at-1', token_type: 'Bearer', expires_in: 3600 });
      sendJson(res, 200, { ok: true });
    });
    client = new Client({ baseUrl: server.url, tokenUrl: `${server.url}/token`, clientCredentialsAuthCredentials: credentials });
  });
  after(async () => {
    await client.close();
    await server.close();
  });

  async function callRejection(call: () => unknown): Promise<InvalidOptionError> {
    const before = server.requests.length;
    try {
      await call();
    } catch (error) {
      assert.ok(error instanceof InvalidOptionError, String(error));
      assert.equal(error.code, ErrorCode.InvalidOption);
      assert.equal(server.requests.length, before, 'no request was sent');
      return error;
    }
    assert.fail('the call was accepted');
  }

  test('client.get / client.request: `scope` (for `scopes`), `header`, `params` are refused with a suggestion, not ignored', async () => {
    const scope = await callRejection(() => client.get('/echo', { scope: 'api:write' } as never));
    assert.equal(scope.option, 'scope');
    assert.equal(scope.message, 'The `scope` option is not an option of a request (`client.request`, `client.get`…); did you mean `scopes`?');
    assert.match((await callRejection(() => client.get('/echo', { header: { 'x-a': '1' } } as never))).message, /did you mean `headers`\?$/);
    assert.match((await callRejection(() => client.request({ path: '/echo', params: { a: 1 } } as never))).message, /did you mean `query`\?$/);
    assert.match((await callRejection(() => client.post('/echo', { a: 1 }, { data: 'x' } as never))).message, /did you mean `json`\?$/);
    assert.equal((await callRejection(() => client.get('/echo', { colour: 'blue' } as never))).message, 'The `colour` option is not an option of a request (`client.request`, `client.get`…)');
  });

  test('property: any key outside RequestOptions is refused by its name, before any request; the known keys never are', async () => {
    const known = new Set(['method', 'path', 'query', 'headers', 'body', 'json', 'auth', 'signal', 'timeout', 'scopes', 'resource', 'audience', 'retryOnUnauthorized', 'responseType']);
    const before = server.requests.length;
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 24 }).filter((k) => !known.has(k) && k !== '__proto__'), async (key) => {
        try {
          await client.get('/echo', { [key]: 'x' } as never);
        } catch (error) {
          return error instanceof InvalidOptionError && error.option === key;
        }
        return false;
      }),
      { numRuns: 300 },
    );
    assert.equal(server.requests.length, before, 'no request was sent');
  });

  test('client.get/post/put/patch/delete: options that are not an object (a string, a number, null, an array) are refused, not spread or ignored', async () => {
    // `client.post('/x', body, 5)` used to be ignored in silence, and `client.get('/x', 'str')` spread into keys `0`, `1`…
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['get', () => client.get('/echo', 'str' as never)],
      ['delete', () => client.delete('/echo', null as never)],
      ['post', () => client.post('/echo', { a: 1 }, 5 as never)],
      ['put', () => client.put('/echo', { a: 1 }, ['x'] as never)],
      ['patch', () => client.patch('/echo', { a: 1 }, true as never)],
    ];
    for (const [method, call] of calls) {
      const promise = call();
      assert.ok(promise instanceof Promise, 'a rejected promise, not a synchronous throw');
      const error = await callRejection(() => promise);
      assert.equal(error.option, 'options');
      assert.ok(error.message.startsWith(`The \`options\` option of client.${method}() must be an object`), error.message);
    }
    assert.match((await callRejection(() => client.post('/echo', { a: 1 }, 5 as never))).message, /the JSON body is the argument before it$/);
    assert.equal((await client.get('/echo', undefined)).statusCode, 200);
  });

  test('`body` and `json` together are a conflict, not a silent choice', async () => {
    const error = await callRejection(() => client.request({ method: 'POST', path: '/echo', body: 'x', json: { a: 1 } }));
    assert.equal(error.option, 'json');
    assert.match(error.message, /cannot be combined with `body`/);
  });

  test('every key of RequestOptions is accepted (each given as undefined), and a request with them is sent', async () => {
    const all = { method: undefined, path: '/echo', query: undefined, headers: undefined, body: undefined, json: undefined, auth: undefined, signal: undefined, timeout: undefined, scopes: undefined, resource: undefined, audience: undefined, retryOnUnauthorized: undefined, responseType: undefined };
    assert.equal((await client.request(all)).statusCode, 200);
    assert.equal(server.requests.at(-1)!.headers.authorization, 'Bearer at-1');
  });

  test('client.fetch: `init.oauth` is checked (`oauth.scope` → `scopes`); its other keys are fetch\'s own', async () => {
    const error = await callRejection(() => client.fetch('/echo', { oauth: { scope: 'api:write' } } as never));
    assert.equal(error.option, 'oauth.scope');
    assert.match(error.message, /not an option of `init\.oauth` \(client\.fetch\); did you mean `scopes`\?$/);
    assert.match((await callRejection(() => client.fetch('/echo', { oauth: 'api:write' } as never))).message, /`oauth` option must be an object/);
    const response = await client.fetch('/echo', { oauth: { scopes: undefined, retryOnUnauthorized: true }, keepalive: false });
    assert.equal(response.status, 200);
  });

  test('client.interceptor() and attachClientCredentials() check their options at once', async () => {
    const interceptor = await callRejection(() => client.interceptor({ scope: 'api:write' } as never));
    assert.equal(interceptor.message, 'The `scope` option is not an option of client.interceptor(); did you mean `scopes`?');
    const attach = await callRejection(() => attachClientCredentials(axios.create(), client, { scope: 'api:write' } as never));
    assert.equal(attach.message, 'The `scope` option is not an option of attachClientCredentials(); did you mean `scopes`?');
    assert.equal(typeof client.interceptor({ scopes: 'api:read', retryOnUnauthorized: false }), 'function');
    assert.equal((await callRejection(() => client.interceptor('api:read' as never))).message, 'The `options` option of client.interceptor() must be an object (`scopes`, `resource`, `audience`, `retryOnUnauthorized`), got string');
    // null selects nothing, as before.
    assert.equal(typeof client.interceptor(null as never), 'function');
    attachClientCredentials(axios.create(), client, null as never)();
  });

  test('axios: a request\'s `config.oauth` with an unknown key rejects before it is sent', async () => {
    const instance = axios.create({ baseURL: server.url });
    const detach = attachClientCredentials(instance, client);
    try {
      const error = await callRejection(() => instance.get('/echo', { oauth: { scope: 'api:write' } } as never));
      assert.equal(error.option, 'oauth.scope');
      assert.equal((await instance.get('/echo', { oauth: { scopes: undefined } })).status, 200);
    } finally {
      detach();
    }
  });

  test('the token manager: `getToken({ scope })` and `fetchToken(params, { scope })` are refused with a suggestion', async () => {
    const manager = client.clientCredentialsAuthManager;
    const error = await callRejection(() => manager.getToken({ scope: 'api:write' } as never));
    assert.equal(error.message, 'The `scope` option is not an option of the token manager (`getToken`, `fetchToken`, `updateToken`, `invalidate`); did you mean `scopes`?');
    assert.equal((await callRejection(() => manager.fetchToken({}, { audiance: 'x' } as never))).option, 'audiance');
    assert.equal((await manager.getToken({ scopes: undefined, signal: AbortSignal.timeout(30_000) })).accessToken, 'at-1');
  });

  test('client.on: a misspelt event name (`tokenFetchd`) is refused with a suggestion; it would never fire', async () => {
    const error = await callRejection(() => client.on('tokenFetchd' as never, () => undefined));
    assert.equal(error.message, "The `on('tokenFetchd')` option names no event of the Client; did you mean `tokenFetched`?");
    assert.match((await callRejection(() => client.on('nope' as never, () => undefined))).message, /no event of the Client \(the events: tokenFetched, /);
    assert.match((await callRejection(() => client.on('tokenFetched', 'listener' as never))).message, /needs a listener function/);
    client.on('tokenFetched', () => undefined)();
  });
});

test('every option of the Client is classified, and the token-cache and connection sets are those withConfiguration used', () => {
  assert.deepEqual(optionsOfKind('token', 'connection').sort(), [
    'tokenUrl', 'issuer', 'dpop', 'clientCredentialsAuthCredentials', 'tokenStore', 'tokenStoreTimeout', 'tokenStoreKey', 'clock', 'retry', 'circuitBreaker',
    'refreshAhead', 'defaultTokenLifetime', 'maxTokenLifetime', 'tokenRequestTimeout', 'maxTokenResponseBytes', 'maxCachedTokens', 'dispatcher', 'proxy', 'tls',
  ].sort());
  assert.deepEqual(optionsOfKind('connection').sort(), ['dispatcher', 'proxy', 'tls']);
  assert.deepEqual(Object.keys(CLIENT_OPTION_KEYS).sort(), Object.keys(CLIENT_OPTION_KINDS).sort());
});
