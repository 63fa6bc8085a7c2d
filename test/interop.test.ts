/**
 * Interop suite: every feature against every authorization server that runs here from npm: oidc-provider 9 (over
 * HTTPS with RFC 8705 mTLS, an mTLS endpoint alias, DPoP with nonces, discovery, resource indicators),
 * @node-oauth/oauth2-server 5, oauth2-mock-server 9, @jmondi/oauth2-server 4 and a server built on oauth2orize 1.
 *
 * Each cell is one test: the Client gets a token with that feature, and a resource server accepts it (a JWT verified
 * against the issuer's keys, the server's own introspection, a DPoP proof verified with jose, or the certificate
 * binding checked on an mTLS connection), or the attempt fails with the typed error the cell names. The expected
 * outcome of every cell is in EXPECTED; docs/interop.md is generated from it (`UPDATE_INTEROP=1`) and checked here.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { Agent } from 'undici';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { Client, ClientCredentialsError, DiscoveryError, OAuthProviderError, type ClientConfiguration } from '../src/index.js';
import { OIDC_RESOURCE, startOidcProvider, type OidcProviderHandle } from './helpers/oidc.js';
import { startNodeOAuthServer } from './helpers/nodeoauth.js';
import { startJmondiServer, startMockServer, startOauth2orizeServer, INTEROP_CLIENT, type InteropServer } from './helpers/interopServers.js';
import { startProtectedApi, type ProtectedApiHandle, type TokenClaims } from './helpers/api.js';
import { startDpopApi, type DpopApiHandle } from './helpers/dpopApi.js';
import { certificateThumbprint, testCertificates } from './helpers/certs.js';
import { closeServer, listenLocal } from './helpers/http.js';

const FEATURES = {
  basic: '`client_secret_basic`',
  post: '`client_secret_post`',
  secretJwt: '`client_secret_jwt` (HS512)',
  privateKeyJwt: '`private_key_jwt` (ES256)',
  tls: '`tls_client_auth`, certificate-bound token',
  selfSigned: '`self_signed_tls_client_auth`, certificate-bound token',
  none: '`none` (public client)',
  alias: 'mTLS endpoint alias (RFC 8705 §5)',
  dpop: 'DPoP with nonces (RFC 9449)',
  discovery: 'discovery (`issuer`)',
  resource: 'resource indicator (RFC 8707)',
} as const;
type Feature = keyof typeof FEATURES;
const SERVERS = ['oidc-provider', '@node-oauth/oauth2-server', 'oauth2-mock-server', '@jmondi/oauth2-server', 'oauth2orize'] as const;
type ServerName = (typeof SERVERS)[number];

/** The outcome of every cell. `yes`: a token the resource server accepted. Anything else: what happened instead. */
const EXPECTED: Record<ServerName, Record<Feature, string>> = {
  'oidc-provider': {
    basic: 'yes', post: 'yes', secretJwt: 'yes', privateKeyJwt: 'yes', tls: 'yes', selfSigned: 'yes', none: 'yes', alias: 'yes', dpop: 'yes', discovery: 'yes', resource: 'yes',
  },
  '@node-oauth/oauth2-server': {
    basic: 'yes', post: 'yes', secretJwt: 'no: invalid_client', privateKeyJwt: 'no: invalid_client', tls: 'no: invalid_client', selfSigned: 'no: invalid_client', none: 'no: invalid_client',
    alias: 'no: no metadata (DiscoveryError not_found)', dpop: 'no: DPoP ignored (Bearer token)', discovery: 'no: no metadata (DiscoveryError not_found)', resource: 'no: resource ignored',
  },
  'oauth2-mock-server': {
    basic: 'yes', post: 'yes', secretJwt: 'yes (accepts any client)', privateKeyJwt: 'yes (accepts any client)', tls: 'yes (accepts any client; token not bound)',
    selfSigned: 'yes (accepts any client; token not bound)', none: 'yes', alias: 'no: method not offered (DiscoveryError unsupported_method)', dpop: 'no: DPoP ignored (Bearer token)', discovery: 'yes (advertises only `none`)', resource: 'no: resource ignored',
  },
  '@jmondi/oauth2-server': {
    basic: 'yes', post: 'yes', secretJwt: 'no: invalid_client', privateKeyJwt: 'no: invalid_client', tls: 'no: invalid_client', selfSigned: 'no: invalid_client', none: 'no: invalid_client',
    alias: 'no: no metadata (DiscoveryError not_found)', dpop: 'no: DPoP ignored (Bearer token)', discovery: 'no: no metadata (DiscoveryError not_found)', resource: 'no: resource ignored',
  },
  oauth2orize: {
    basic: 'yes', post: 'yes', secretJwt: 'no: invalid_client', privateKeyJwt: 'no: invalid_client', tls: 'no: invalid_client', selfSigned: 'no: invalid_client', none: 'no: invalid_client',
    alias: 'no: no metadata (DiscoveryError not_found)', dpop: 'no: DPoP ignored (Bearer token)', discovery: 'no: no metadata (DiscoveryError not_found)', resource: 'no: resource ignored',
  },
};

const certs = testCertificates();
const HS_SECRET = 'interop-client-secret-jwt-0123456789abcdef-0123456789abcdef';
const ecKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const selfSignedJwk = { ...new X509Certificate(certs.selfSignedCert).publicKey.export({ format: 'jwk' }), x5c: [new X509Certificate(certs.selfSignedCert).raw.toString('base64')] };

/** How one server is driven: its Client configuration per feature, and how its tokens are checked. */
interface Target {
  tokenUrl: string;
  issuer: string;
  /** The Client options every feature shares (TLS trust). */
  base: Partial<ClientConfiguration>;
  /** Credentials per feature (for oidc-provider a client registered for it; elsewhere the one client). */
  credentials(feature: Feature): NonNullable<ClientConfiguration['clientCredentialsAuthCredentials']>;
  /** A Bearer resource server for this server's tokens. */
  api: ProtectedApiHandle;
  /** Claims of a token, when the server can tell (JWT payload or introspection). */
  claims(token: string): Promise<TokenClaims | null>;
  /** The token requests it received. */
  tokenRequests: { headers: Record<string, unknown> }[];
  close(): Promise<void>;
}

const targets = new Map<ServerName, Target>();
const clients: Client[] = [];
let dpopApi: DpopApiHandle;
let mtlsApi: { url: string; close(): Promise<void> };
let op: OidcProviderHandle;
const observed = new Map<string, string>();

function payloadOf(token: string): Record<string, unknown> | null {
  try {
    return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** An HTTPS resource server that requires a client certificate and a token bound to it (cnf x5t#S256). */
async function startMtlsApi(keySet: JWTVerifyGetKey, issuer: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = https.createServer({ key: certs.serverKey, cert: certs.serverCert, ca: certs.ca, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    void (async () => {
      const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      try {
        const { payload } = await jwtVerify(token ?? '', keySet, { issuer, audience: OIDC_RESOURCE, typ: 'at+jwt' });
        const bound = (payload['cnf'] as Record<string, string> | undefined)?.['x5t#S256'];
        if (!peer?.raw || bound !== certificateThumbprint(new X509Certificate(peer.raw).toString())) throw new Error('not bound to this certificate');
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ client_id: payload['client_id'] }));
      } catch {
        res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
      }
    })();
  });
  const url = (await listenLocal(server)).replace('http:', 'https:');
  return { url, close: () => closeServer(server) };
}

before(async () => {
  const started = Date.now();
  // oidc-provider over HTTPS: main listener without client certificates, mTLS alias with them.
  op = await startOidcProvider({
    dpop: 'nonce',
    mtls: { key: certs.serverKey, cert: certs.serverCert, ca: certs.ca, alias: true },
    clients: [
      { client_id: 'svc', client_secret: 'svc-secret' },
      { client_id: 'post', client_secret: 'post-secret', token_endpoint_auth_method: 'client_secret_post' },
      { client_id: 'hs', client_secret: HS_SECRET, token_endpoint_auth_method: 'client_secret_jwt', token_endpoint_auth_signing_alg: 'HS512' },
      { client_id: 'pk', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ ...ecKey.publicKey.export({ format: 'jwk' }), kid: 'pk-1' } as never] } },
      { client_id: 'mtls', token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: 'CN=client-a', tls_client_certificate_bound_access_tokens: true },
      { client_id: 'self', token_endpoint_auth_method: 'self_signed_tls_client_auth', jwks: { keys: [selfSignedJwk as never] }, tls_client_certificate_bound_access_tokens: true },
      { client_id: 'dpop', client_secret: 'dpop-secret', dpop_bound_access_tokens: true },
      { client_id: 'public', token_endpoint_auth_method: 'none' },
    ],
  });
  const agent = new Agent({ connect: { ca: certs.ca } });
  const jwks = (await (await fetch(op.jwksUrl, { dispatcher: agent } as unknown as RequestInit)).json()) as JSONWebKeySet;
  await agent.close();
  const opKeys = createLocalJWKSet(jwks);
  const opApi = await startProtectedApi({ verify: async (token) => (await jwtVerify(token, opKeys, { issuer: op.issuer, audience: OIDC_RESOURCE, typ: 'at+jwt' })).payload as TokenClaims });
  dpopApi = await startDpopApi({ issuer: op.issuer, audience: OIDC_RESOURCE, keySet: opKeys, requireNonce: true });
  mtlsApi = await startMtlsApi(opKeys, op.issuer);
  const opCredentials: Record<Feature, NonNullable<ClientConfiguration['clientCredentialsAuthCredentials']>> = {
    basic: { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret' },
    post: { oAuthClientId: 'post', oAuthClientSecret: 'post-secret', clientAuthMethod: 'client_secret_post' },
    secretJwt: { oAuthClientId: 'hs', oAuthClientSecret: HS_SECRET, clientAuthMethod: 'client_secret_jwt', privateKeyAlgorithm: 'HS512' },
    privateKeyJwt: { oAuthClientId: 'pk', clientAuthMethod: 'private_key_jwt', privateKey: ecKey.privateKey, keyId: 'pk-1' },
    tls: { oAuthClientId: 'mtls', clientAuthMethod: 'tls_client_auth' },
    selfSigned: { oAuthClientId: 'self', clientAuthMethod: 'self_signed_tls_client_auth' },
    none: { oAuthClientId: 'public', clientAuthMethod: 'none' },
    alias: { oAuthClientId: 'mtls', clientAuthMethod: 'tls_client_auth' },
    dpop: { oAuthClientId: 'dpop', oAuthClientSecret: 'dpop-secret' },
    discovery: { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret' },
    resource: { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret', resource: OIDC_RESOURCE },
  };
  targets.set('oidc-provider', {
    tokenUrl: op.tokenUrl,
    issuer: op.issuer,
    base: { tls: { ca: certs.ca } },
    credentials: (feature) => opCredentials[feature],
    api: opApi,
    claims: async (token) => payloadOf(token),
    tokenRequests: op.tokenRequests,
    close: async () => {
      await opApi.close();
      await op.close();
    },
  });

  const secretCredentials = () => ({ oAuthClientId: INTEROP_CLIENT.id, oAuthClientSecret: INTEROP_CLIENT.secret });
  const simple = async (name: ServerName, server: InteropServer, claims: (token: string) => Promise<TokenClaims | null>) => {
    const api = await startProtectedApi({ verify: async (token) => (await claims(token)) ?? false });
    targets.set(name, {
      tokenUrl: server.tokenUrl,
      issuer: server.url,
      base: {},
      credentials: (feature) => {
        switch (feature) {
          case 'secretJwt': return { ...secretCredentials(), clientAuthMethod: 'client_secret_jwt', privateKeyAlgorithm: 'HS512' };
          case 'privateKeyJwt': return { oAuthClientId: INTEROP_CLIENT.id, clientAuthMethod: 'private_key_jwt', privateKey: ecKey.privateKey };
          case 'tls': case 'alias': return { oAuthClientId: INTEROP_CLIENT.id, clientAuthMethod: 'tls_client_auth' };
          case 'selfSigned': return { oAuthClientId: INTEROP_CLIENT.id, clientAuthMethod: 'self_signed_tls_client_auth' };
          case 'none': return { oAuthClientId: INTEROP_CLIENT.id, clientAuthMethod: 'none' };
          case 'post': return { ...secretCredentials(), clientAuthMethod: 'client_secret_post' };
          case 'resource': return { ...secretCredentials(), resource: OIDC_RESOURCE };
          // oauth2-mock-server advertises only `none`; elsewhere discovery fails before the method matters.
          case 'discovery': return name === 'oauth2-mock-server' ? { oAuthClientId: INTEROP_CLIENT.id, clientAuthMethod: 'none' } : secretCredentials();
          default: return secretCredentials();
        }
      },
      api,
      claims,
      tokenRequests: server.tokenRequests,
      close: async () => {
        await api.close();
        await server.close();
      },
    });
  };
  const nodeOAuth = await startNodeOAuthServer({ ttl: 300 });
  await simple('@node-oauth/oauth2-server', { ...nodeOAuth, introspect: nodeOAuth.introspect }, async (t) => nodeOAuth.introspect(t));
  const mock = await startMockServer();
  const mockKeys = createLocalJWKSet((await (await fetch(mock.jwksUrl)).json()) as JSONWebKeySet);
  await simple('oauth2-mock-server', mock, async (t) => {
    try {
      return (await jwtVerify(t, mockKeys, { issuer: mock.url })).payload as TokenClaims;
    } catch {
      return null;
    }
  });
  const jmondi = await startJmondiServer();
  await simple('@jmondi/oauth2-server', jmondi, (t) => jmondi.introspect(t));
  const orize = await startOauth2orizeServer();
  await simple('oauth2orize', orize, (t) => orize.introspect(t));
  console.log(`# interop servers started in ${Date.now() - started} ms`);
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await dpopApi?.close();
  await mtlsApi?.close();
  for (const target of targets.values()) await target.close();
});

function makeClient(config: ClientConfiguration): Client {
  const client = new Client({ retry: false, circuitBreaker: false, refreshAhead: 0, ...config });
  clients.push(client);
  return client;
}

/** Why an attempt failed, as a cell: the OAuth error code, or the typed error. */
function failure(error: unknown): string {
  if (error instanceof OAuthProviderError) return `no: ${error.error}`;
  if (error instanceof DiscoveryError) {
    const what = { not_found: 'no metadata', unsupported_method: 'method not offered' }[error.reason as string] ?? error.reason;
    return `no: ${what} (DiscoveryError ${error.reason})`;
  }
  if (error instanceof ClientCredentialsError) return `no: ${error.name} ${error.code}`;
  throw error;
}

/** Runs one cell and returns its outcome. */
async function runCell(name: ServerName, feature: Feature): Promise<string> {
  const target = targets.get(name)!;
  const credentials = target.credentials(feature);
  const withCert = feature === 'tls' || feature === 'alias' ? { cert: certs.clientCert, key: certs.clientKey } : feature === 'selfSigned' ? { cert: certs.selfSignedCert, key: certs.selfSignedKey } : {};
  const tls = { ...(target.base.tls ?? {}), ...withCert };
  const endpoint = feature === 'discovery' || feature === 'alias' || (name === 'oidc-provider' && (feature === 'tls' || feature === 'selfSigned')) ? { issuer: target.issuer } : { tokenUrl: target.tokenUrl };
  const baseUrl = feature === 'dpop' && name === 'oidc-provider' ? dpopApi.url : name === 'oidc-provider' && (feature === 'tls' || feature === 'selfSigned' || feature === 'alias') ? mtlsApi.url : target.api.url;
  const client = makeClient({
    ...endpoint,
    baseUrl,
    ...(Object.keys(tls).length ? { tls } : {}),
    ...(feature === 'dpop' ? { dpop: true } : {}),
    clientCredentialsAuthCredentials: credentials,
  });
  const before = target.tokenRequests.length;
  let token;
  try {
    token = await client.clientCredentialsAuthManager.getToken();
  } catch (error) {
    return failure(error);
  }
  // The resource server must accept it.
  const res = await client.get<{ client_id?: string }>('/things').catch((error: unknown) => error);
  if (res instanceof Error) return `no: token refused by the resource server (${(res as { statusCode?: number }).statusCode ?? res.message})`;
  if (feature === 'dpop' && token.tokenType !== 'DPoP') return 'no: DPoP ignored (Bearer token)';
  if (feature === 'resource') {
    const aud = (await target.claims(token.accessToken))?.['aud'];
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!audiences.includes(OIDC_RESOURCE)) return 'no: resource ignored';
  }
  if (feature === 'alias') {
    const sent = target.tokenRequests.slice(before).at(-1);
    const aliasHost = op.mtlsAliasUrl ? new URL(op.mtlsAliasUrl).host : undefined;
    if (name !== 'oidc-provider' || sent?.headers['host'] !== aliasHost) return 'no: no alias published';
  }
  if (name === 'oauth2-mock-server') {
    if (feature === 'secretJwt' || feature === 'privateKeyJwt') return 'yes (accepts any client)';
    if (feature === 'tls' || feature === 'selfSigned') return 'yes (accepts any client; token not bound)';
    if (feature === 'discovery') return 'yes (advertises only `none`)';
  }
  if (name === 'oidc-provider' && (feature === 'tls' || feature === 'selfSigned')) {
    const bound = (payloadOf(token.accessToken)?.['cnf'] as Record<string, string> | undefined)?.['x5t#S256'];
    assert.equal(bound, certificateThumbprint(feature === 'tls' ? certs.clientCert : certs.selfSignedCert));
  }
  return 'yes';
}

for (const name of SERVERS) {
  describe(name, () => {
    for (const feature of Object.keys(FEATURES) as Feature[]) {
      test(`${FEATURES[feature]}: ${EXPECTED[name][feature]}`, async () => {
        const outcome = await runCell(name, feature);
        observed.set(`${name}\u0000${feature}`, outcome);
        assert.equal(outcome, EXPECTED[name][feature]);
      });
    }
  });
}

/** The markdown table of EXPECTED: features as rows, servers as columns. */
function interopTable(): string {
  const cell = (outcome: string): string => (outcome === 'yes' ? '✅' : outcome.startsWith('yes') ? `✅ ${outcome.slice(4)}` : `❌ ${outcome.slice(4)}`);
  const head = `| feature | ${SERVERS.join(' | ')} |`;
  const rule = `| --- | ${SERVERS.map(() => '---').join(' | ')} |`;
  const rows = (Object.keys(FEATURES) as Feature[]).map((f) => `| ${FEATURES[f]} | ${SERVERS.map((name) => cell(EXPECTED[name][f])).join(' | ')} |`);
  return [head, rule, ...rows].join('\n');
}

const DOC = fileURLToPath(new URL('../../docs/interop.md', import.meta.url));
const BEGIN = '<!-- interop-table:begin (generated by test/interop.test.ts: UPDATE_INTEROP=1) -->';
const END = '<!-- interop-table:end -->';

test('docs/interop.md holds the table of these outcomes', () => {
  const text = readFileSync(DOC, 'utf8');
  const table = `${BEGIN}\n${interopTable()}\n${END}`;
  const current = text.slice(text.indexOf(BEGIN), text.indexOf(END) + END.length);
  if (process.env['UPDATE_INTEROP'] === '1' && current !== table) writeFileSync(DOC, text.replace(current, table));
  else assert.equal(current, table, 'docs/interop.md is out of date: run the suite with UPDATE_INTEROP=1');
});
