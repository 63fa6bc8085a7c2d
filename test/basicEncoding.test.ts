/**
 * `client_secret_basic` against servers that read the Basic pair differently: oidc-provider form-decodes it (RFC 6749
 * §2.3.1), @node-oauth/oauth2-server compares it raw. With a secret holding `+ / : % ~` and a space, the automatic
 * encoding works with both, costs one request where the server decodes, learns what worked per token endpoint, and
 * can be pinned.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { basicAuthorization, rawBasicDiffers } from '../src/auth/clientAuthentication.js';
import { Client, InvalidOptionError, OAuthProviderError, type ClientEvents } from '../src/index.js';
import { startNodeOAuthServer, type NodeOAuthHandle } from './helpers/nodeoauth.js';
import { DEFAULT_OIDC_CLIENTS, startOidcProvider, type OidcProviderHandle } from './helpers/oidc.js';
import { sendJson, startScripted } from './helpers/scripted.js';

const ID = 'svc-odd';
const SECRET = 'p+s/s:w%rd ~x';

describe('Basic credentials: RFC 6749 encoding first, raw once when the server refuses', () => {
  let op: OidcProviderHandle;
  let nodeOAuth: NodeOAuthHandle;

  before(async () => {
    op = await startOidcProvider({ clients: [...DEFAULT_OIDC_CLIENTS, { client_id: ID, client_secret: SECRET }], format: 'opaque' });
    nodeOAuth = await startNodeOAuthServer({ clients: [{ client_id: ID, client_secret: SECRET }] });
  });
  after(async () => {
    await op.close();
    await nodeOAuth.close();
  });

  const client = (tokenUrl: string, extra: Record<string, unknown> = {}): Client =>
    new Client({ tokenUrl, retry: false, clientCredentialsAuthCredentials: { oAuthClientId: ID, oAuthClientSecret: SECRET, ...extra } });

  test('a server that decodes (oidc-provider): one request, RFC 6749 form, no event', async () => {
    const c = client(op.tokenUrl);
    const learnt: ClientEvents['basicEncodingLearned'][] = [];
    c.on('basicEncodingLearned', (e) => learnt.push(e));
    const before = op.tokenRequests.length;
    await c.clientCredentialsAuthManager.fetchToken();
    await c.clientCredentialsAuthManager.fetchToken();
    assert.equal(op.tokenRequests.length - before, 2, 'one request per token');
    assert.equal(op.tokenRequests.at(-1)!.headers.authorization, basicAuthorization(ID, SECRET, 'rfc6749'));
    assert.deepEqual(learnt, []);
  });

  test('a server that compares raw (@node-oauth/oauth2-server): refused once, raw works, remembered, one event', async () => {
    const c = client(nodeOAuth.tokenUrl);
    const learnt: ClientEvents['basicEncodingLearned'][] = [];
    c.on('basicEncodingLearned', (e) => learnt.push(e));
    const before = nodeOAuth.tokenRequests.length;
    const token = await c.clientCredentialsAuthManager.fetchToken();
    assert.ok(token.accessToken);
    const sent = nodeOAuth.tokenRequests.slice(before).map((r) => r.headers.authorization);
    assert.deepEqual(sent, [basicAuthorization(ID, SECRET, 'rfc6749'), basicAuthorization(ID, SECRET, 'raw')]);
    assert.deepEqual(learnt, [{ url: nodeOAuth.tokenUrl, encoding: 'raw' }]);
    // Remembered: the next token request goes raw at once.
    await c.clientCredentialsAuthManager.fetchToken();
    assert.equal(nodeOAuth.tokenRequests.length - before, 3);
    assert.equal(nodeOAuth.tokenRequests.at(-1)!.headers.authorization, basicAuthorization(ID, SECRET, 'raw'));
    assert.equal(learnt.length, 1);
  });

  test("basicEncoding: 'raw' pins the raw pair (one request to the raw server; oidc-provider refuses it)", async () => {
    const before = nodeOAuth.tokenRequests.length;
    await client(nodeOAuth.tokenUrl, { basicEncoding: 'raw' }).clientCredentialsAuthManager.fetchToken();
    assert.equal(nodeOAuth.tokenRequests.length - before, 1);
    const opBefore = op.tokenRequests.length;
    await assert.rejects(client(op.tokenUrl, { basicEncoding: 'raw' }).clientCredentialsAuthManager.fetchToken(), OAuthProviderError);
    assert.equal(op.tokenRequests.length - opBefore, 1, 'pinned: no other form is tried');
  });

  test("basicEncoding: 'rfc6749' pins the encoded pair: the raw server refuses, with one request", async () => {
    const before = nodeOAuth.tokenRequests.length;
    await assert.rejects(client(nodeOAuth.tokenUrl, { basicEncoding: 'rfc6749' }).clientCredentialsAuthManager.fetchToken(), (error: unknown) => error instanceof OAuthProviderError && error.error === 'invalid_client');
    assert.equal(nodeOAuth.tokenRequests.length - before, 1);
  });

  test('a wrong secret costs two requests once (both forms refused), then one per token request; surfaces invalid_client, and leaks neither form', async () => {
    const wrong = 'wr+ng/secret:%value';
    const c = new Client({ tokenUrl: nodeOAuth.tokenUrl, retry: false, clientCredentialsAuthCredentials: { oAuthClientId: ID, oAuthClientSecret: wrong } });
    const before = nodeOAuth.tokenRequests.length;
    await assert.rejects(c.clientCredentialsAuthManager.fetchToken(), (error: unknown) => {
      assert.ok(error instanceof OAuthProviderError && error.error === 'invalid_client');
      const text = `${inspect(error, { depth: 6 })}${JSON.stringify(error)}`;
      for (const form of [wrong, encodeURIComponent(wrong), basicAuthorization(ID, wrong, 'raw').slice(6), basicAuthorization(ID, wrong).slice(6)]) assert.ok(!text.includes(form), form);
      return true;
    });
    assert.equal(nodeOAuth.tokenRequests.length - before, 2);
    // Both forms refused: from then on one request per token request, the forms taking turns (a lockout counter
    // moves as fast as with a pinned encoding). Before this, every fetch cost two refused requests.
    const sent: string[] = [];
    for (let i = 0; i < 4; i++) {
      const seen = nodeOAuth.tokenRequests.length;
      await assert.rejects(c.clientCredentialsAuthManager.fetchToken(), (error: unknown) => error instanceof OAuthProviderError && error.error === 'invalid_client');
      assert.equal(nodeOAuth.tokenRequests.length - seen, 1, `fetch ${i + 2}: one request`);
      sent.push(nodeOAuth.tokenRequests.at(-1)!.headers.authorization!);
    }
    const [rfc, raw] = [basicAuthorization(ID, wrong, 'rfc6749'), basicAuthorization(ID, wrong, 'raw')];
    assert.deepEqual(sent, [rfc, raw, rfc, raw]);
  });

  test('after both forms were refused, a server that wants the raw pair is still found once it accepts the client again', async () => {
    let enabled = false;
    const server = await startScripted((req, res) => {
      if (enabled && req.headers.authorization === basicAuthorization(ID, SECRET, 'raw')) sendJson(res, 200, { access_token: 'tok-back', token_type: 'Bearer', expires_in: 3600 });
      else sendJson(res, 401, { error: 'invalid_client' });
    });
    try {
      const c = client(`${server.url}/token`);
      const learnt: ClientEvents['basicEncodingLearned'][] = [];
      c.on('basicEncodingLearned', (e) => learnt.push(e));
      await assert.rejects(c.clientCredentialsAuthManager.fetchToken(), OAuthProviderError);
      assert.equal(server.requests.length, 2, 'both forms, once');
      enabled = true; // the client is enabled again on the server
      let token: string | undefined;
      for (let i = 0; i < 2 && token === undefined; i++) token = await c.clientCredentialsAuthManager.fetchToken().then((t) => t.accessToken, () => undefined);
      assert.equal(token, 'tok-back', 'got within two token requests');
      assert.ok(server.requests.length <= 4);
      assert.deepEqual(learnt, [{ url: `${server.url}/token`, encoding: 'raw' }]);
      const seen = server.requests.length;
      await c.clientCredentialsAuthManager.fetchToken();
      assert.equal(server.requests.length - seen, 1, 'remembered: raw at once');
      assert.equal(server.requests.at(-1)!.headers.authorization, basicAuthorization(ID, SECRET, 'raw'));
    } finally {
      await server.close();
    }
  });

  test('a bare 403 with an empty body (Glewlwyd) also triggers the raw try; a 400 invalid_request does not', async () => {
    const server = await startScripted((req, res) => {
      const raw = req.headers.authorization === basicAuthorization(ID, SECRET, 'raw');
      if (req.url === '/glewlwyd') {
        if (raw) sendJson(res, 200, { access_token: 'tok-raw-accepted', token_type: 'Bearer', expires_in: 3600 });
        else res.writeHead(403).end();
      } else sendJson(res, 400, { error: 'invalid_request' });
    });
    try {
      const token = await client(`${server.url}/glewlwyd`).clientCredentialsAuthManager.fetchToken();
      assert.equal(token.accessToken, 'tok-raw-accepted');
      assert.equal(server.requests.length, 2);
      await assert.rejects(client(`${server.url}/other`).clientCredentialsAuthManager.fetchToken(), OAuthProviderError);
      assert.equal(server.requests.length, 3, 'invalid_request is not about the credentials: no raw try');
    } finally {
      await server.close();
    }
  });

  test('the raw form is tried only when it differs and can be sent', () => {
    assert.equal(rawBasicDiffers('svc', 'plain-secret_0.9~'), false, 'the encoding changes nothing');
    assert.equal(rawBasicDiffers('svc', SECRET), true);
    assert.equal(rawBasicDiffers('id:with-colon', SECRET), false, "a ':' in the id would move the split");
    assert.equal(rawBasicDiffers('svc', 'line\nbreak+'), false, 'control characters');
  });

  test('property: each form decodes back to the same pair the way its kind of server reads it', () => {
    const decodePair = (header: string): [string, string] => {
      const pair = Buffer.from(header.slice(6), 'base64').toString('utf8');
      const colon = pair.indexOf(':');
      return [pair.slice(0, colon), pair.slice(colon + 1)];
    };
    const formDecode = (value: string): string => decodeURIComponent(value.replace(/\+/g, ' '));
    // eslint-disable-next-line no-control-regex
    const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 }).filter((v) => !/[\u0000-\u001f\u007f]/.test(v));
    fc.assert(fc.property(text.filter((v) => !v.includes(':')), text, (id, secret) => {
      const [encodedId, encodedSecret] = decodePair(basicAuthorization(id, secret, 'rfc6749'));
      assert.deepEqual([formDecode(encodedId), formDecode(encodedSecret)], [id, secret]);
      assert.deepEqual(decodePair(basicAuthorization(id, secret, 'raw')), [id, secret]);
      assert.equal(rawBasicDiffers(id, secret), basicAuthorization(id, secret) !== basicAuthorization(id, secret, 'raw'));
    }));
  });

  test('bad basicEncoding values are typed errors before any I/O', () => {
    for (const value of ['RFC6749', 'auto', '', 1, null]) {
      assert.throws(() => client('http://127.0.0.1:9/token', { basicEncoding: value }), (error: unknown) => error instanceof InvalidOptionError && /basicEncoding/.test(error.message), String(value));
    }
    assert.throws(() => new Client({ tokenUrl: 'http://127.0.0.1:9/token', clientCredentialsAuthCredentials: { oAuthClientId: 'a:b', oAuthClientSecret: 'x', basicEncoding: 'raw' } }), InvalidOptionError);
  });
});
