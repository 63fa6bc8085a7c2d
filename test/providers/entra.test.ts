/**
 * Microsoft Entra ID (Azure AD), emulated from Microsoft's documentation of its token endpoints
 * (learn.microsoft.com: "client credentials flow", "certificate credentials", "workload identity federation",
 * "AADSTS error codes"):
 * - v2 `/{tenant}/oauth2/v2.0/token` wants `scope=<resource>/.default` and refuses `resource` (AADSTS901002); v1
 *   `/{tenant}/oauth2/token` wants `resource` and answers `expires_in`, `ext_expires_in`, `expires_on` as strings.
 * - Secrets hold `~` and `.`; they travel in the body (`client_secret`) or Basic, form-decoded.
 * - Certificate credentials: an RS256 assertion found by its header's `x5t#S256` (v2) or SHA-1 `x5t` (v1), `aud` the
 *   token URL, `iss` = `sub` = the application id.
 * - Federated credentials: an assertion issued by another IdP (a Kubernetes service account token) with
 *   `aud` `api://AzureADTokenExchange`, matched on `iss` and `sub`.
 * - Errors: `{ error, error_description: "AADSTS…: …", error_codes: [...], timestamp, trace_id, correlation_id }`,
 *   401 for `invalid_client`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { compactVerify, SignJWT } from 'jose';
import { Client, OAuthProviderError, type ClientCredentialsAuthCredentials } from '../../src/index.js';
import { fakeJwt, startEmulation, verifyAssertion, type Emulation, type EmulatedRequest, type EmulatedResponse } from './emulator.js';
import { rsaCertificate } from './keys.js';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const APP_ID = '6731de76-14a6-49ae-97bc-6eba6914391e';
const SECRET = 'Qf8Q~m1x.Zk3_tSgH~vN2w4-pXyZ0aBcDeFgHiJk';
const GRAPH = 'https://graph.microsoft.com';
const FEDERATED = { issuer: 'https://oidc.prod-aks.azure.example/tenant/cluster/', subject: 'system:serviceaccount:payments:api', audience: 'api://AzureADTokenExchange' };

/** The emulation's state: what it trusts. */
interface EntraState {
  url: string;
  certificate: X509Certificate;
  federatedKey: KeyObject;
  seenJti: Set<string>;
}

function aadError(status: number, error: string, code: number, text: string): EmulatedResponse {
  return {
    status,
    body: {
      error,
      error_description: `AADSTS${code}: ${text} Trace ID: ${randomUUID()} Correlation ID: ${randomUUID()} Timestamp: 2026-12-07 10:00:00Z`,
      error_codes: [code],
      timestamp: '2026-12-07 10:00:00Z',
      trace_id: randomUUID(),
      correlation_id: randomUUID(),
      error_uri: `https://login.microsoftonline.com/error?code=${code}`,
    },
  };
}

async function entra(state: EntraState, request: EmulatedRequest): Promise<EmulatedResponse> {
  const v2 = request.url === `/${TENANT}/oauth2/v2.0/token`;
  if (!v2 && request.url !== `/${TENANT}/oauth2/token`) return { status: 404, body: '' };
  const form = request.form;
  if (form.get('grant_type') !== 'client_credentials') return aadError(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
  const clientId = form.get('client_id') ?? request.basicDecoded?.id;
  if (clientId !== APP_ID) return aadError(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory.`);
  // Client authentication: a secret (body or Basic, form-decoded), a certificate assertion, or a federated assertion.
  const assertion = form.get('client_assertion');
  if (assertion !== null) {
    if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') return aadError(400, 'invalid_request', 50027, 'Invalid client_assertion_type.');
    const claims = JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString('utf8') || '{}') as Record<string, unknown>;
    if (claims['iss'] === FEDERATED.issuer) {
      try {
        await compactVerify(assertion, state.federatedKey);
      } catch {
        return aadError(401, 'invalid_client', 700027, 'Client assertion failed signature validation.');
      }
      if (claims['sub'] !== FEDERATED.subject || claims['aud'] !== FEDERATED.audience) return aadError(400, 'invalid_client', 70021, 'No matching federated identity record found for presented assertion.');
      if (typeof claims['exp'] !== 'number' || claims['exp'] * 1000 < Date.now()) return aadError(400, 'invalid_client', 700024, 'Client assertion is not within its valid time range.');
    } else {
      const raw = state.certificate.raw;
      // v1 finds the certificate by the SHA-1 x5t only; v2 by x5t#S256 or x5t.
      const keys = v2
        ? [{ x5tS256: createHash('sha256').update(raw).digest('base64url'), key: state.certificate.publicKey }, { x5t: createHash('sha1').update(raw).digest('base64url'), key: state.certificate.publicKey }]
        : [{ x5t: createHash('sha1').update(raw).digest('base64url'), key: state.certificate.publicKey }];
      const header = JSON.parse(Buffer.from(assertion.split('.')[0] ?? '', 'base64url').toString('utf8') || '{}') as Record<string, unknown>;
      if (!v2 && header['x5t'] === undefined) return aadError(401, 'invalid_client', 700027, 'Client assertion contains an invalid signature. [Reason - The key was not found.]');
      if (header['alg'] !== 'RS256' && header['alg'] !== 'PS256') return aadError(401, 'invalid_client', 5002738, 'Invalid JWT token. The algorithm is not supported.');
      const check = await verifyAssertion(assertion, { clientId: APP_ID, audience: request.url.startsWith('/') ? `${state.url}${request.url}` : request.url, keys: keys.filter((k) => (header['x5t#S256'] !== undefined ? 'x5tS256' in k : 'x5t' in k)), seenJti: state.seenJti });
      if (!check.ok) return aadError(401, 'invalid_client', 700027, `Client assertion failed signature validation. [Reason - ${check.reason}]`);
    }
  } else {
    const secret = form.get('client_secret') ?? request.basicDecoded?.secret;
    if (secret !== SECRET) return aadError(401, 'invalid_client', 7000215, 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.');
  }
  const now = Math.floor(Date.now() / 1000);
  if (v2) {
    if (form.has('resource')) return aadError(400, 'invalid_request', 901002, "The 'resource' request parameter is not supported.");
    const scope = form.get('scope') ?? '';
    if (!/^\S+\/\.default$/.test(scope)) return aadError(400, 'invalid_scope', 1002012, `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
    const audience = scope.slice(0, -'/.default'.length);
    return { status: 200, body: { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: fakeJwt({ aud: audience, iss: `https://sts.windows.net/${TENANT}/`, appid: APP_ID, exp: now + 3599 }) } };
  }
  const resource = form.get('resource');
  if (!resource) return aadError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'resource'.");
  return {
    status: 200,
    body: {
      token_type: 'Bearer', expires_in: '3599', ext_expires_in: '3599', expires_on: String(now + 3599), not_before: String(now), resource,
      access_token: fakeJwt({ aud: resource, iss: `https://sts.windows.net/${TENANT}/`, appid: APP_ID, exp: now + 3599 }),
    },
  };
}

describe('Entra ID (emulated from its token endpoint documentation)', () => {
  let server: Emulation;
  const cert = rsaCertificate();
  const federated = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  let state: EntraState;
  let v2: string;
  let v1: string;

  before(async () => {
    state = { url: '', certificate: new X509Certificate(cert.cert), federatedKey: createPublicKey(federated.privateKey), seenJti: new Set() };
    server = await startEmulation((request) => entra(state, request));
    state.url = server.url;
    v2 = `${server.url}/${TENANT}/oauth2/v2.0/token`;
    v1 = `${server.url}/${TENANT}/oauth2/token`;
  });
  after(() => server.close());

  const client = (tokenUrl: string, credentials: Partial<ClientCredentialsAuthCredentials>): Client =>
    new Client({ tokenUrl, retry: false, clientCredentialsAuthCredentials: { oAuthClientId: APP_ID, ...credentials } });

  test('v2: a secret with ~ and scope …/.default gives a token; ext_expires_in is kept in extra; one request', async () => {
    const before = server.requests.length;
    const token = await client(v2, { oAuthClientSecret: SECRET, oAuthScopes: `${GRAPH}/.default` }).clientCredentialsAuthManager.getToken();
    assert.equal(token.tokenType, 'Bearer');
    assert.equal(token.expiresIn, 3599);
    assert.deepEqual(token.extra, { ext_expires_in: 3599 });
    assert.equal(server.requests.length - before, 1, 'the RFC 6749 encoding leaves ~ unchanged: no second try');
  });

  test('v2 with client_secret_post: the secret travels in the body', async () => {
    const token = await client(v2, { oAuthClientSecret: SECRET, oAuthScopes: `${GRAPH}/.default`, clientAuthMethod: 'client_secret_post' }).clientCredentialsAuthManager.getToken();
    assert.ok(token.accessToken);
    assert.equal(server.requests.at(-1)!.form.get('client_secret'), SECRET);
  });

  test('v1: `resource`, and expires_in as a string ("3599") is read as a number; expires_on and resource kept in extra', async () => {
    const token = await client(v1, { oAuthClientSecret: SECRET, resource: GRAPH }).clientCredentialsAuthManager.getToken();
    assert.equal(token.expiresIn, 3599);
    assert.equal(token.extra?.['resource'], GRAPH);
    assert.equal(token.extra?.['ext_expires_in'], '3599');
    assert.ok(typeof token.extra?.['expires_on'] === 'string');
  });

  test('v2 refuses `resource` with AADSTS901002 (use scope=…/.default): OAuthProviderError with the AADSTS code', async () => {
    await assert.rejects(client(v2, { oAuthClientSecret: SECRET, resource: GRAPH }).clientCredentialsAuthManager.getToken(), (error: unknown) => {
      assert.ok(error instanceof OAuthProviderError);
      assert.equal(error.error, 'invalid_request');
      assert.match(error.errorDescription ?? '', /^AADSTS901002:/);
      assert.deepEqual((error.result as unknown as { error_codes: number[] }).error_codes, [901002]);
      return true;
    });
  });

  test('a wrong secret: 401 invalid_client AADSTS7000215, the secret in no message, one request (the encoding changed nothing)', async () => {
    const wrong = 'Xy8Q~wrong.secret_value-0123456789abcdef';
    const before = server.requests.length;
    await assert.rejects(client(v2, { oAuthClientSecret: wrong, oAuthScopes: `${GRAPH}/.default` }).clientCredentialsAuthManager.getToken(), (error: unknown) => {
      assert.ok(error instanceof OAuthProviderError);
      assert.equal(error.statusCode, 401);
      assert.match(error.message, /AADSTS7000215/);
      assert.ok(!inspect(error, { depth: 5 }).includes(wrong) && !JSON.stringify(error).includes(wrong));
      return true;
    });
    assert.equal(server.requests.length - before, 1);
  });

  test('certificate credentials (v2): the assertion header carries x5t#S256 of the certificate, and Entra finds it', async () => {
    const token = await client(v2, { privateKey: cert.key, certificate: cert.cert, oAuthScopes: `${GRAPH}/.default` }).clientCredentialsAuthManager.getToken();
    assert.ok(token.accessToken);
    const header = JSON.parse(Buffer.from(server.requests.at(-1)!.form.get('client_assertion')!.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    assert.equal(header['x5t#S256'], createHash('sha256').update(new X509Certificate(cert.cert).raw).digest('base64url'));
    assert.equal(header['alg'], 'RS256');
  });

  test('certificate credentials (v1): certificateThumbprints [x5t] sends the SHA-1 thumbprint v1 wants; without it v1 refuses (AADSTS700027)', async () => {
    const token = await client(v1, { privateKey: cert.key, certificate: new X509Certificate(cert.cert), certificateThumbprints: ['x5t'], resource: GRAPH }).clientCredentialsAuthManager.getToken();
    assert.ok(token.accessToken);
    await assert.rejects(client(v1, { privateKey: cert.key, certificate: cert.cert, resource: GRAPH }).clientCredentialsAuthManager.getToken(), (error: unknown) => error instanceof OAuthProviderError && /AADSTS700027/.test(error.message));
  });

  test('federated credentials: a Kubernetes token read from a file at each request is the client_assertion, with no secret', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cc-entra-federated-'));
    const file = join(dir, 'azure-identity-token');
    const issue = (): Promise<string> => new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k8s' }).setIssuer(FEDERATED.issuer).setSubject(FEDERATED.subject)
      .setAudience(FEDERATED.audience).setIssuedAt().setExpirationTime('1h').sign(createPrivateKey(federated.privateKey.export({ format: 'pem', type: 'pkcs8' })));
    try {
      writeFileSync(file, `${await issue()}\n`);
      const { readFile } = await import('node:fs/promises');
      const c = client(v2, { clientAssertion: () => readFile(file, 'utf8'), oAuthScopes: `${GRAPH}/.default` });
      await c.clientCredentialsAuthManager.fetchToken();
      const first = server.requests.at(-1)!.form;
      assert.equal(first.get('client_assertion_type'), 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
      assert.equal(first.has('client_secret'), false);
      assert.equal(server.requests.at(-1)!.headers.authorization, undefined);
      // Kubernetes rotates the file: the next token request reads the new one.
      const rotated = await issue();
      writeFileSync(file, rotated);
      await c.clientCredentialsAuthManager.fetchToken();
      assert.equal(server.requests.at(-1)!.form.get('client_assertion'), rotated);
      // A token for another subject has no federated record: AADSTS70021, and the assertion is in no message.
      const stranger = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setIssuer(FEDERATED.issuer).setSubject('system:serviceaccount:other:sa')
        .setAudience(FEDERATED.audience).setIssuedAt().setExpirationTime('1h').sign(createPrivateKey(federated.privateKey.export({ format: 'pem', type: 'pkcs8' })));
      const refused = client(v2, { clientAssertion: () => stranger, oAuthScopes: `${GRAPH}/.default` });
      await assert.rejects(refused.clientCredentialsAuthManager.getToken(), (error: unknown) => error instanceof OAuthProviderError && /AADSTS70021/.test(error.message) && !JSON.stringify(error).includes(stranger) && !inspect(error).includes(stranger));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
