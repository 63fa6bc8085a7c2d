/**
 * Interop suite: every feature against every authorization server that runs here: from npm, oidc-provider 9 (over
 * HTTPS with RFC 8705 mTLS, an mTLS endpoint alias, DPoP with nonces, discovery, resource indicators),
 * @node-oauth/oauth2-server 5, oauth2-mock-server 9, @jmondi/oauth2-server 4 and a server built on oauth2orize 1; from
 * Debian, servers not written in JavaScript: Glewlwyd 2.7 (C), Authlib 1.2 and django-oauth-toolkit 1.7 (Python), and
 * Apache mod_oauth2 as a resource server that checks DPoP proofs.
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
import { createHash, generateKeyPairSync, randomUUID, X509Certificate } from 'node:crypto';
import { inspect } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import { Agent } from 'undici';
import { calculateJwkThumbprint, createLocalJWKSet, createRemoteJWKSet, jwtVerify, SignJWT, type JSONWebKeySet, type JWK, type JWTVerifyGetKey } from 'jose';
import { ApiError, Client, ClientCredentialsError, DiscoveryError, OAuthProviderError, TokenEndpointRedirectError, type ClientConfiguration } from '../src/index.js';
import { OIDC_RESOURCE, startOidcProvider, type OidcProviderHandle } from './helpers/oidc.js';
import { startNodeOAuthServer } from './helpers/nodeoauth.js';
import { startJmondiServer, startMockServer, startOauth2orizeServer, INTEROP_CLIENT, type InteropServer } from './helpers/interopServers.js';
import { startProtectedApi, type ProtectedApiHandle, type TokenClaims } from './helpers/api.js';
import { startDpopApi, type DpopApiHandle } from './helpers/dpopApi.js';
import { certificateThumbprint, testCertificates } from './helpers/certs.js';
import { closeServer, listenLocal } from './helpers/http.js';
import { glewlwydSkip, startGlewlwyd, GLEWLWYD_SCOPE, type GlewlwydHandle } from './helpers/glewlwyd.js';
import { authlibSkip, startAuthlib, type AuthlibHandle } from './helpers/authlib.js';
import { djangoOauthSkip, startDjangoOauth, type DjangoOauthHandle } from './helpers/djangoOauth.js';
import { modOauth2Skip, startModOauth2, type ModOauth2Handle } from './helpers/modOauth2.js';

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
  modOauth2: 'DPoP token and ES256 proof accepted by Apache mod_oauth2',
} as const;
type Feature = keyof typeof FEATURES;
const SERVERS = ['oidc-provider', '@node-oauth/oauth2-server', 'oauth2-mock-server', '@jmondi/oauth2-server', 'oauth2orize', 'Glewlwyd', 'Authlib', 'django-oauth-toolkit'] as const;
type ServerName = (typeof SERVERS)[number];

/** Why a server not written in JavaScript cannot run here (skipped locally; in CI the check throws instead). */
const SKIP: Partial<Record<ServerName, string | undefined>> = { Glewlwyd: glewlwydSkip(), Authlib: authlibSkip(), 'django-oauth-toolkit': djangoOauthSkip() };
const MOD_OAUTH2_SKIP = modOauth2Skip();

/** The outcome of every cell. `yes`: a token the resource server accepted. Anything else: what happened instead. */
const EXPECTED: Record<ServerName, Record<Feature, string>> = {
  'oidc-provider': {
    basic: 'yes', post: 'yes', secretJwt: 'yes', privateKeyJwt: 'yes', tls: 'yes', selfSigned: 'yes', none: 'yes', alias: 'yes', dpop: 'yes', discovery: 'yes', resource: 'yes', modOauth2: 'yes',
  },
  '@node-oauth/oauth2-server': {
    basic: 'yes', post: 'yes', secretJwt: 'no: invalid_client', privateKeyJwt: 'no: invalid_client', tls: 'no: invalid_client', selfSigned: 'no: invalid_client', none: 'no: invalid_client',
    alias: 'no: no metadata (DiscoveryError not_found)', dpop: 'no: DPoP ignored (Bearer token)', discovery: 'no: no metadata (DiscoveryError not_found)', resource: 'no: resource ignored', modOauth2: 'no: DPoP ignored (Bearer token)',
  },
  'oauth2-mock-server': {
    basic: 'yes', post: 'yes', secretJwt: 'yes (accepts any client)', privateKeyJwt: 'yes (accepts any client)', tls: 'yes (accepts any client; token not bound)',
    selfSigned: 'yes (accepts any client; token not bound)', none: 'yes', alias: 'no: method not offered (DiscoveryError unsupported_method)', dpop: 'no: DPoP ignored (Bearer token)', discovery: 'yes (advertises only `none`)', resource: 'no: resource ignored', modOauth2: 'no: DPoP ignored (Bearer token)',
  },
  '@jmondi/oauth2-server': {
    basic: 'yes', post: 'yes', secretJwt: 'no: invalid_client', privateKeyJwt: 'no: invalid_client', tls: 'no: invalid_client', selfSigned: 'no: invalid_client', none: 'no: invalid_client',
    alias: 'no: no metadata (DiscoveryError not_found)', dpop: 'no: DPoP ignored (Bearer token)', discovery: 'no: no metadata (DiscoveryError not_found)', resource: 'no: resource ignored', modOauth2: 'no: DPoP ignored (Bearer token)',
  },
  oauth2orize: {
    basic: 'yes', post: 'yes', secretJwt: 'no: invalid_client', privateKeyJwt: 'no: invalid_client', tls: 'no: invalid_client', selfSigned: 'no: invalid_client', none: 'no: invalid_client',
    alias: 'no: no metadata (DiscoveryError not_found)', dpop: 'no: DPoP ignored (Bearer token)', discovery: 'no: no metadata (DiscoveryError not_found)', resource: 'no: resource ignored', modOauth2: 'no: DPoP ignored (Bearer token)',
  },
  Glewlwyd: {
    basic: 'yes', post: 'yes', secretJwt: 'yes', privateKeyJwt: 'yes', tls: 'no: bare 403', selfSigned: 'no: bare 403', none: 'no: bare 403',
    alias: 'no: method not offered (DiscoveryError unsupported_method)', dpop: 'yes', discovery: 'yes', resource: 'yes', modOauth2: 'yes',
  },
  Authlib: {
    basic: 'yes', post: 'yes', secretJwt: 'yes', privateKeyJwt: 'yes', tls: 'no: invalid_client', selfSigned: 'no: invalid_client', none: 'no: invalid_client',
    alias: 'no: method not offered (DiscoveryError unsupported_method)', dpop: 'no: DPoP ignored (Bearer token)', discovery: 'yes', resource: 'no: resource ignored', modOauth2: 'no: DPoP ignored (Bearer token)',
  },
  'django-oauth-toolkit': {
    basic: 'yes', post: 'yes', secretJwt: 'no: invalid_client', privateKeyJwt: 'no: invalid_client', tls: 'no: invalid_client', selfSigned: 'no: invalid_client', none: 'no: invalid_client',
    alias: 'no: no metadata (DiscoveryError not_found)', dpop: 'no: DPoP ignored (Bearer token)', discovery: 'no: no metadata (DiscoveryError not_found)', resource: 'no: resource ignored', modOauth2: 'no: DPoP ignored (Bearer token)',
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
  /** The token requests it received (empty for the servers not written in JavaScript: nothing records them). */
  tokenRequests: { headers: Record<string, unknown> }[];
  /** Another token endpoint for a feature (Glewlwyd's DPoP cell uses its nonce-requiring instance). */
  tokenUrlFor?(feature: Feature): string | undefined;
  /** Another resource server for a feature. */
  apiUrlFor?(feature: Feature): string | undefined;
  close(): Promise<void>;
}

const targets = new Map<ServerName, Target>();
const clients: Client[] = [];
let dpopApi: DpopApiHandle;
let mtlsApi: { url: string; close(): Promise<void> };
let op: OidcProviderHandle;
let modOauth2: ModOauth2Handle | undefined;
const observed = new Map<string, string>();
/** The key of the DPoP proofs mod_oauth2 checks: ES256 (it cannot verify EdDSA). */
const dpopKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
/** Startup times of the servers not written in JavaScript, for the log. */
const startupTimes: string[] = [];
let glewlwyd: GlewlwydHandle | undefined;
let authlib: AuthlibHandle | undefined;
let django: DjangoOauthHandle | undefined;
/** A secret with every character RFC 6749 §2.3.1 form-encoding changes (`+ / : % ~` and a space). */
const ODD_SECRET = 's+e/c:r%e~t x-0123456789';

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

type Credentials = NonNullable<ClientConfiguration['clientCredentialsAuthCredentials']>;

/** Credentials per feature for a server with one secret client `svc` and, where it has them, `hs` and `pk`. */
function nativeCredentials(feature: Feature, extra: Partial<Credentials> = {}): Credentials {
  const svc = { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret', ...extra };
  switch (feature) {
    case 'post': return { ...svc, clientAuthMethod: 'client_secret_post' };
    case 'secretJwt': return { oAuthClientId: 'hs', oAuthClientSecret: HS_SECRET, clientAuthMethod: 'client_secret_jwt', privateKeyAlgorithm: 'HS512', ...extra };
    // Glewlwyd finds a registered key by the assertion's kid.
    case 'privateKeyJwt': return { oAuthClientId: 'pk', clientAuthMethod: 'private_key_jwt', privateKey: ecKey.privateKey, keyId: 'pk-1', ...extra };
    case 'tls': case 'alias': return { oAuthClientId: 'svc', clientAuthMethod: 'tls_client_auth', ...extra };
    case 'selfSigned': return { oAuthClientId: 'svc', clientAuthMethod: 'self_signed_tls_client_auth', ...extra };
    case 'none': return { oAuthClientId: 'svc', clientAuthMethod: 'none', ...extra };
    case 'resource': return { ...svc, resource: OIDC_RESOURCE };
    default: return svc;
  }
}

/** A Bearer resource server and a Target for a server not written in JavaScript. */
async function nativeTarget(
  name: ServerName,
  server: { tokenUrl: string; issuer: string; tls?: { ca: string }; claims(token: string): Promise<TokenClaims | null>; close(): Promise<void> },
  extra: Partial<Credentials> = {},
  overrides: Pick<Target, 'tokenUrlFor' | 'apiUrlFor'> = {},
): Promise<void> {
  const api = await startProtectedApi({ verify: async (token) => (await server.claims(token)) ?? false });
  targets.set(name, {
    tokenUrl: server.tokenUrl,
    issuer: server.issuer,
    base: server.tls ? { tls: server.tls } : {},
    credentials: (feature) => nativeCredentials(feature, extra),
    api,
    claims: server.claims,
    tokenRequests: [],
    ...overrides,
    close: async () => {
      await api.close();
      await server.close();
    },
  });
}

/** Starts Glewlwyd, Authlib and django-oauth-toolkit side by side (those installed here), and their Targets. */
async function startNativeServers(): Promise<void> {
  const glewlwydStart = async (): Promise<void> => {
    if (SKIP.Glewlwyd) return;
    const g = await startGlewlwyd();
    glewlwyd = g;
    startupTimes.push(`Glewlwyd ${g.startupMs} ms + ${g.setupMs} ms admin API`);
    await g.addClient({ clientId: 'svc', password: 'svc-secret', methods: ['client_secret_basic', 'client_secret_post'] });
    await g.addClient({ clientId: 'hs', clientSecret: HS_SECRET, methods: ['client_secret_jwt'] });
    await g.addClient({ clientId: 'pk', jwks: { keys: [{ ...ecKey.publicKey.export({ format: 'jwk' }), kid: 'pk-1', alg: 'ES256', use: 'sig' }] }, methods: ['private_key_jwt'] });
    await g.addClient({ clientId: 'odd', password: ODD_SECRET, methods: ['client_secret_basic', 'client_secret_post'] });
    const keys = createRemoteJWKSet(new URL(g.jwksUrl));
    const claims = async (token: string): Promise<TokenClaims | null> => {
      try {
        return (await jwtVerify(token, keys, { issuer: [g.issuer, g.nonceIssuer], typ: 'at+jwt' })).payload as TokenClaims;
      } catch {
        return null;
      }
    };
    // DPoP against the instance that requires nonces, checked by a resource server that requires them too.
    const dpop = await startDpopApi({ issuer: g.nonceIssuer, audience: GLEWLWYD_SCOPE, keySet: keys, requireNonce: true });
    await nativeTarget('Glewlwyd', { tokenUrl: g.tokenUrl, issuer: g.issuer, claims, close: async () => { await dpop.close(); await g.close(); } }, { oAuthScopes: GLEWLWYD_SCOPE }, {
      tokenUrlFor: (feature) => (feature === 'dpop' ? g.nonceTokenUrl : undefined),
      apiUrlFor: (feature) => (feature === 'dpop' ? dpop.url : undefined),
    });
  };
  const authlibStart = async (): Promise<void> => {
    if (SKIP.Authlib) return;
    const a = await startAuthlib([
      { clientId: 'svc', clientSecret: 'svc-secret', methods: ['client_secret_basic', 'client_secret_post'] },
      { clientId: 'hs', clientSecret: HS_SECRET, methods: ['client_secret_jwt'] },
      { clientId: 'pk', jwk: { ...ecKey.publicKey.export({ format: 'jwk' }), kid: 'pk-1' }, methods: ['private_key_jwt'] },
      { clientId: 'odd', clientSecret: ODD_SECRET, methods: ['client_secret_basic', 'client_secret_post'] },
    ]);
    authlib = a;
    startupTimes.push(`Authlib ${a.startupMs} ms`);
    await nativeTarget('Authlib', { tokenUrl: a.tokenUrl, issuer: a.url, tls: { ca: a.ca }, claims: (t) => a.introspect(t), close: () => a.close() }, { oAuthScopes: 'api:read' });
  };
  const djangoStart = async (): Promise<void> => {
    if (SKIP['django-oauth-toolkit']) return;
    const d = await startDjangoOauth([{ clientId: 'svc', clientSecret: 'svc-secret' }, { clientId: 'odd', clientSecret: ODD_SECRET }]);
    django = d;
    startupTimes.push(`django-oauth-toolkit ${d.startupMs} ms`);
    await nativeTarget('django-oauth-toolkit', { tokenUrl: d.tokenUrl, issuer: d.issuer, claims: (t) => d.introspect(t), close: () => d.close() }, { oAuthScopes: 'api:read' });
  };
  await Promise.all([glewlwydStart(), authlibStart(), djangoStart()]);
}

before(async () => {
  const started = Date.now();
  // The servers not written in JavaScript start in their own processes while the others start here.
  const native = startNativeServers();
  native.catch(() => undefined);
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
    modOauth2: { oAuthClientId: 'dpop', oAuthClientSecret: 'dpop-secret' },
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
  await native;
  // Apache mod_oauth2 checks DPoP-bound JWTs from oidc-provider and from Glewlwyd (their public keys, tried in turn).
  if (!MOD_OAUTH2_SKIP) {
    const keys = [...jwks.keys];
    if (glewlwyd) keys.push(...((await (await fetch(glewlwyd.jwksUrl)).json()) as JSONWebKeySet).keys);
    modOauth2 = await startModOauth2({ keys: keys as Record<string, unknown>[] });
    startupTimes.push(`Apache mod_oauth2 ${modOauth2.startupMs} ms`);
  }
  console.log(`# interop servers started in ${Date.now() - started} ms (${startupTimes.join(', ')})`);
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await dpopApi?.close();
  await mtlsApi?.close();
  await modOauth2?.close();
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
  // A refusal without an RFC 6749 error body (Glewlwyd's bare 403); its typed error is pinned in 'error shapes'.
  if (error instanceof ApiError && error.statusCode) return `no: bare ${error.statusCode}`;
  if (error instanceof ClientCredentialsError) return `no: ${error.name} ${error.code}`;
  throw error;
}

/** Runs one cell and returns its outcome. */
async function runCell(name: ServerName, feature: Feature): Promise<string> {
  const target = targets.get(name)!;
  const credentials = target.credentials(feature);
  const withCert = feature === 'tls' || feature === 'alias' ? { cert: certs.clientCert, key: certs.clientKey } : feature === 'selfSigned' ? { cert: certs.selfSignedCert, key: certs.selfSignedKey } : {};
  const tls = { ...(target.base.tls ?? {}), ...withCert };
  const endpoint = feature === 'discovery' || feature === 'alias' || (name === 'oidc-provider' && (feature === 'tls' || feature === 'selfSigned')) ? { issuer: target.issuer } : { tokenUrl: target.tokenUrlFor?.(feature) ?? target.tokenUrl };
  const baseUrl =
    feature === 'modOauth2' ? modOauth2!.url
    : feature === 'dpop' && name === 'oidc-provider' ? dpopApi.url
    : name === 'oidc-provider' && (feature === 'tls' || feature === 'selfSigned' || feature === 'alias') ? mtlsApi.url
    : target.apiUrlFor?.(feature) ?? target.api.url;
  const client = makeClient({
    ...endpoint,
    baseUrl,
    ...(Object.keys(tls).length ? { tls } : {}),
    ...(feature === 'dpop' ? { dpop: true } : {}),
    // An algorithm mod_oauth2 can verify (not EdDSA).
    ...(feature === 'modOauth2' ? { dpop: { privateKey: dpopKey.privateKey, algorithm: 'ES256' as const } } : {}),
    clientCredentialsAuthCredentials: credentials,
  });
  const before = target.tokenRequests.length;
  let token;
  try {
    token = await client.clientCredentialsAuthManager.getToken();
  } catch (error) {
    return failure(error);
  }
  if (feature === 'modOauth2' && token.tokenType !== 'DPoP') return 'no: DPoP ignored (Bearer token)';
  // The resource server must accept it.
  const res = await client.get<{ client_id?: string }>(feature === 'modOauth2' ? '/dpop/things' : '/things').catch((error: unknown) => error);
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
  describe(name, { skip: SKIP[name] ?? false }, () => {
    for (const feature of Object.keys(FEATURES) as Feature[]) {
      test(`${FEATURES[feature]}: ${EXPECTED[name][feature]}`, { skip: (feature === 'modOauth2' && MOD_OAUTH2_SKIP) || false }, async () => {
        const outcome = await runCell(name, feature);
        observed.set(`${name}\u0000${feature}`, outcome);
        assert.equal(outcome, EXPECTED[name][feature]);
      });
    }
  });
}

/** Asserts a failure is typed and carries none of the given secrets in its message, inspection or JSON. */
function assertTypedWithoutSecrets(error: unknown, secrets: string[]): asserts error is ClientCredentialsError {
  assert.ok(error instanceof ClientCredentialsError, `expected a typed error, got ${String(error)}`);
  const shown = [error.message, inspect(error, { depth: 5 }), JSON.stringify(error)].join('\n');
  for (const secret of secrets) assert.ok(!shown.includes(secret), 'a secret leaked into the error');
}

/** A Client for one test, closed after the suite. */
function clientFor(tokenUrl: string, credentials: Credentials, extra: Partial<ClientConfiguration> = {}): Client {
  return makeClient({ tokenUrl, clientCredentialsAuthCredentials: credentials, ...extra });
}


/**
 * How many times `count()` (lines in a server's log) grew since `before`, once the log has caught up: the requests
 * are over, only their log lines may still be crossing the pipe. Waits for at least `atLeast`, then 300 ms more.
 */
async function loggedSince(count: () => number, before: number, atLeast: number): Promise<number> {
  const deadline = Date.now() + 10_000;
  while (count() - before < atLeast && Date.now() < deadline) await sleep(50);
  await sleep(300);
  return count() - before;
}

describe('Glewlwyd quirks', { skip: SKIP.Glewlwyd ?? false }, () => {
  test('discovery: metadata only at the OpenID Connect URL; the RFC 8414 URL answers 404', async () => {
    const g = glewlwyd!;
    assert.equal((await fetch(`${g.url}/.well-known/oauth-authorization-server/api/oidc`)).status, 404);
    const metadata = (await (await fetch(`${g.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.equal(metadata['issuer'], g.issuer);
    assert.equal(metadata['token_endpoint'], g.tokenUrl);
  });

  test('DPoP: the nonce instance refuses a proof without its nonce (400 use_dpop_nonce); the Client retries with it and gets a token bound to its key', async () => {
    const g = glewlwyd!;
    const jwk = dpopKey.publicKey.export({ format: 'jwk' });
    const proof = await new SignJWT({ htm: 'POST', htu: g.nonceTokenUrl, jti: randomUUID() }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).setIssuedAt().sign(dpopKey.privateKey);
    const refused = await fetch(g.nonceTokenUrl, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('svc:svc-secret').toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded', dpop: proof },
      body: `grant_type=client_credentials&scope=${GLEWLWYD_SCOPE}`,
    });
    assert.equal(refused.status, 400);
    assert.equal(((await refused.json()) as { error?: string }).error, 'use_dpop_nonce');
    assert.ok(refused.headers.get('dpop-nonce'), 'a DPoP-Nonce header');
    const client = clientFor(g.nonceTokenUrl, { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret', oAuthScopes: GLEWLWYD_SCOPE }, { dpop: { privateKey: dpopKey.privateKey, algorithm: 'ES256' } });
    const token = await client.clientCredentialsAuthManager.getToken();
    assert.equal(token.tokenType, 'DPoP');
    assert.equal((payloadOf(token.accessToken)?.['cnf'] as { jkt?: string } | undefined)?.jkt, await calculateJwkThumbprint(jwk as JWK));
  });

  test('RFC 8707: the token names the resource as its audience; a resource not allowed for the scope is 400 invalid_target', async () => {
    const g = glewlwyd!;
    const ok = await clientFor(g.tokenUrl, { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret', oAuthScopes: GLEWLWYD_SCOPE, resource: OIDC_RESOURCE }).clientCredentialsAuthManager.getToken();
    assert.equal(payloadOf(ok.accessToken)?.['aud'], OIDC_RESOURCE);
    const error = await clientFor(g.tokenUrl, { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret', oAuthScopes: GLEWLWYD_SCOPE, resource: 'https://elsewhere.example' }).clientCredentialsAuthManager.getToken().then(() => null, (e: unknown) => e);
    assertTypedWithoutSecrets(error, ['svc-secret']);
    // Not a bare 403 this time: RFC 8707's own error.
    assert.ok(error instanceof OAuthProviderError);
    assert.equal(error.statusCode, 400);
    assert.equal(error.error, 'invalid_target');
  });

  test('error shape: a wrong secret is a bare 403 with an empty body, surfaced as a typed ApiError with the status and no secret', async () => {
    const g = glewlwyd!;
    const raw = await fetch(g.tokenUrl, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('svc:wrong-secret-value').toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=client_credentials&scope=${GLEWLWYD_SCOPE}`,
    });
    assert.equal(raw.status, 403);
    assert.equal(await raw.text(), '');
    const error = await clientFor(g.tokenUrl, { oAuthClientId: 'svc', oAuthClientSecret: 'wrong-secret-value', oAuthScopes: GLEWLWYD_SCOPE }).clientCredentialsAuthManager.getToken().then(() => null, (e: unknown) => e);
    assertTypedWithoutSecrets(error, ['wrong-secret-value']);
    assert.ok(error instanceof ApiError);
    assert.equal(error.statusCode, 403);
    assert.match(error.message, /403/);
  });

  test('error shape: without a scope Glewlwyd refuses the client credentials grant with a bare 403 (typed ApiError)', async () => {
    const g = glewlwyd!;
    const error = await clientFor(g.tokenUrl, { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret' }).clientCredentialsAuthManager.getToken().then(() => null, (e: unknown) => e);
    assertTypedWithoutSecrets(error, ['svc-secret']);
    assert.ok(error instanceof ApiError);
    assert.equal(error.statusCode, 403);
  });

  test('private_key_jwt without keyId: the private JWK\'s own kid goes into the assertion header', async () => {
    const g = glewlwyd!;
    const privateJwk = { ...ecKey.privateKey.export({ format: 'jwk' }), kid: 'pk-1' };
    const token = await clientFor(g.tokenUrl, { oAuthClientId: 'pk', clientAuthMethod: 'private_key_jwt', privateKey: privateJwk, oAuthScopes: GLEWLWYD_SCOPE }).clientCredentialsAuthManager.getToken();
    assert.equal(payloadOf(token.accessToken)?.['client_id'], 'pk');
  });

  test('a secret with + / : % ~ and a space over client_secret_post works', async () => {
    const token = await clientFor(glewlwyd!.tokenUrl, { oAuthClientId: 'odd', oAuthClientSecret: ODD_SECRET, clientAuthMethod: 'client_secret_post', oAuthScopes: GLEWLWYD_SCOPE }).clientCredentialsAuthManager.getToken();
    assert.equal(payloadOf(token.accessToken)?.['client_id'], 'odd');
  });

  test('a secret with + / : % ~ and a space over client_secret_basic: refused in the RFC 6749 form, accepted in the raw form (automatic fallback, one retry)', async () => {
    // Glewlwyd logs each refused client authentication.
    const refusals = (): number => glewlwyd!.output().split('Authorization invalid for client_id odd').length - 1;
    const before = refusals();
    const client = clientFor(glewlwyd!.tokenUrl, { oAuthClientId: 'odd', oAuthClientSecret: ODD_SECRET, oAuthScopes: GLEWLWYD_SCOPE });
    const token = await client.clientCredentialsAuthManager.getToken();
    assert.equal(payloadOf(token.accessToken)?.['client_id'], 'odd');
    assert.equal(await loggedSince(refusals, before, 1), 1, 'one refused RFC 6749 attempt, then the raw form');
    // What worked is remembered for this token endpoint: the next token request goes out raw at once.
    client.clientCredentialsAuthManager.invalidate();
    await client.clientCredentialsAuthManager.getToken();
    assert.equal(await loggedSince(refusals, before, 1), 1);
  });

  test("a secret with + / : % ~ and a space over client_secret_basic with basicEncoding: 'raw' pinned", async () => {
    const credentials = { oAuthClientId: 'odd', oAuthClientSecret: ODD_SECRET, oAuthScopes: GLEWLWYD_SCOPE, basicEncoding: 'raw' } as unknown as Credentials;
    const token = await clientFor(glewlwyd!.tokenUrl, credentials).clientCredentialsAuthManager.getToken();
    assert.equal(payloadOf(token.accessToken)?.['client_id'], 'odd');
  });
});

describe('Authlib quirks', { skip: SKIP.Authlib ?? false }, () => {
  const tls = (): Partial<ClientConfiguration> => ({ tls: { ca: authlib!.ca } });

  test('discovery: RFC 8414 metadata at the root issuer over https names the four methods', async () => {
    const agent = new Agent({ connect: { ca: authlib!.ca } });
    try {
      const metadata = (await (await fetch(`${authlib!.url}/.well-known/oauth-authorization-server`, { dispatcher: agent } as unknown as RequestInit)).json()) as Record<string, unknown>;
      assert.equal(metadata['issuer'], authlib!.url);
      assert.deepEqual(metadata['token_endpoint_auth_methods_supported'], ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt']);
    } finally {
      await agent.close();
    }
  });

  test('error shape: a wrong secret is 401 invalid_client (OAuthProviderError, no secret)', async () => {
    const error = await clientFor(authlib!.tokenUrl, { oAuthClientId: 'svc', oAuthClientSecret: 'wrong-secret-value' }, tls()).clientCredentialsAuthManager.getToken().then(() => null, (e: unknown) => e);
    assertTypedWithoutSecrets(error, ['wrong-secret-value']);
    assert.ok(error instanceof OAuthProviderError);
    assert.equal(error.statusCode, 401);
    assert.equal(error.error, 'invalid_client');
  });

  test('error shape: an assertion signed with the wrong secret is 400 invalid_client (OAuthProviderError, no secret)', async () => {
    const wrong = 'not-the-registered-hmac-key-0123456789abcdef-0123456789abcdef';
    const error = await clientFor(authlib!.tokenUrl, { oAuthClientId: 'hs', oAuthClientSecret: wrong, clientAuthMethod: 'client_secret_jwt', privateKeyAlgorithm: 'HS512' }, tls())
      .clientCredentialsAuthManager.getToken()
      .then(() => null, (e: unknown) => e);
    assertTypedWithoutSecrets(error, [wrong]);
    assert.ok(error instanceof OAuthProviderError);
    assert.equal(error.statusCode, 400);
    assert.equal(error.error, 'invalid_client');
  });

  test('a secret with + / : % ~ and a space over client_secret_post works', async () => {
    const token = await clientFor(authlib!.tokenUrl, { oAuthClientId: 'odd', oAuthClientSecret: ODD_SECRET, clientAuthMethod: 'client_secret_post' }, tls()).clientCredentialsAuthManager.getToken();
    assert.equal((await authlib!.introspect(token.accessToken))?.client_id, 'odd');
  });

  test('a secret with + / : % ~ and a space over client_secret_basic: refused in the RFC 6749 form, accepted in the raw form (automatic fallback, one retry)', async () => {
    const refused = (): number => authlib!.output().split('"POST /token HTTP/1.1" 401').length - 1;
    const before = refused();
    const token = await clientFor(authlib!.tokenUrl, { oAuthClientId: 'odd', oAuthClientSecret: ODD_SECRET }, tls()).clientCredentialsAuthManager.getToken();
    assert.equal((await authlib!.introspect(token.accessToken))?.client_id, 'odd');
    assert.equal(await loggedSince(refused, before, 1), 1, 'one refused RFC 6749 attempt, then the raw form');
  });

  test('a wrong secret with reserved characters: both forms refused once, then one refused request per token request (the forms taking turns)', async () => {
    const refused = (): number => authlib!.output().split('"POST /token HTTP/1.1" 401').length - 1;
    const wrong = 'wr+ng/secret:%value ~x';
    const manager = clientFor(authlib!.tokenUrl, { oAuthClientId: 'odd', oAuthClientSecret: wrong }, tls()).clientCredentialsAuthManager;
    const refusedAttempt = async (): Promise<number> => {
      const before = refused();
      const error = await manager.fetchToken().then(() => null, (e: unknown) => e);
      assertTypedWithoutSecrets(error, [wrong]);
      assert.ok(error instanceof OAuthProviderError && error.error === 'invalid_client', String(error));
      return loggedSince(refused, before, 1);
    };
    assert.equal(await refusedAttempt(), 2, 'the first token request tries both forms');
    assert.equal(await refusedAttempt(), 1, 'then one form');
    assert.equal(await refusedAttempt(), 1, 'and the other, one at a time');
  });

  test("a secret with + / : % ~ and a space over client_secret_basic with basicEncoding: 'raw' pinned", async () => {
    const credentials = { oAuthClientId: 'odd', oAuthClientSecret: ODD_SECRET, basicEncoding: 'raw' } as unknown as Credentials;
    const token = await clientFor(authlib!.tokenUrl, credentials, tls()).clientCredentialsAuthManager.getToken();
    assert.equal((await authlib!.introspect(token.accessToken))?.client_id, 'odd');
  });
});

describe('django-oauth-toolkit quirks', { skip: SKIP['django-oauth-toolkit'] ?? false }, () => {
  /** Token requests in Django's request log. */
  const tokenRequestsLogged = (): number => django!.output().split('"POST /o/token/ HTTP/1.1"').length - 1;

  test('a secret with + / : % ~ and a space over client_secret_basic works in one request (it form-decodes, RFC 6749 §2.3.1)', async () => {
    const before = tokenRequestsLogged();
    const token = await clientFor(django!.tokenUrl, { oAuthClientId: 'odd', oAuthClientSecret: ODD_SECRET }).clientCredentialsAuthManager.getToken();
    assert.equal((await django!.introspect(token.accessToken))?.client_id, 'odd');
    assert.equal(await loggedSince(tokenRequestsLogged, before, 1), 1, 'one token request: no fallback for a server that decodes');
  });

  test('discovery: metadata only at …/openid-configuration/ (trailing slash); the spec URL answers 301', async () => {
    const d = django!;
    const spec = await fetch(`${d.issuer}/.well-known/openid-configuration`, { redirect: 'manual' });
    assert.equal(spec.status, 301);
    assert.match(spec.headers.get('location') ?? '', /\/o\/\.well-known\/openid-configuration\/$/);
    const metadata = (await (await fetch(`${d.issuer}/.well-known/openid-configuration/`)).json()) as Record<string, unknown>;
    assert.equal(metadata['issuer'], d.issuer);
    assert.equal(metadata['token_endpoint'], d.tokenUrl);
    assert.deepEqual(metadata['token_endpoint_auth_methods_supported'], ['client_secret_post', 'client_secret_basic']);
  });

  test('the token URL without its trailing slash answers 301: a TokenEndpointRedirectError, no token request followed', async () => {
    const error = await clientFor(django!.tokenUrl.slice(0, -1), { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret' }).clientCredentialsAuthManager.getToken().then(() => null, (e: unknown) => e);
    assertTypedWithoutSecrets(error, ['svc-secret']);
    assert.ok(error instanceof TokenEndpointRedirectError);
  });

  test('error shape: a wrong secret is 401 invalid_client (OAuthProviderError, no secret)', async () => {
    const error = await clientFor(django!.tokenUrl, { oAuthClientId: 'svc', oAuthClientSecret: 'wrong-secret-value' }).clientCredentialsAuthManager.getToken().then(() => null, (e: unknown) => e);
    assertTypedWithoutSecrets(error, ['wrong-secret-value']);
    assert.ok(error instanceof OAuthProviderError);
    assert.equal(error.statusCode, 401);
    assert.equal(error.error, 'invalid_client');
  });
});

describe('Apache mod_oauth2 as the resource server', { skip: MOD_OAUTH2_SKIP ?? false }, () => {
  const opClient = (credentials: Credentials, extra: Partial<ClientConfiguration> = {}): Client =>
    makeClient({ tokenUrl: op.tokenUrl, baseUrl: modOauth2!.url, tls: { ca: certs.ca }, clientCredentialsAuthCredentials: credentials, ...extra });

  test('accepts a Bearer JWT from oidc-provider and refuses it altered', async () => {
    const client = opClient({ oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret', resource: OIDC_RESOURCE });
    const res = await client.get<{ ok: boolean }>('/bearer/things');
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /"ok":true/);
    const token = (await client.clientCredentialsAuthManager.getToken()).accessToken;
    const [h, , sig] = token.split('.');
    const altered = `${h}.${Buffer.from(JSON.stringify({ ...payloadOf(token), client_id: 'someone-else' })).toString('base64url')}.${sig}`;
    assert.equal((await fetch(`${modOauth2!.url}/bearer/things`, { headers: { authorization: `Bearer ${altered}` } })).status, 401);
  });

  // One RSA key signs both RSA algorithms; made when first needed.
  let rsa: ReturnType<typeof generateKeyPairSync> | undefined;
  const rsaKey = (): ReturnType<typeof generateKeyPairSync> => (rsa ??= generateKeyPairSync('rsa', { modulusLength: 2048 }));
  for (const [alg, makeKey] of [
    ['RS256', rsaKey],
    ['PS256', rsaKey],
    ['ES384', () => generateKeyPairSync('ec', { namedCurve: 'P-384' })],
  ] as const) {
    // Glewlwyd accepts these proof algorithms at its token endpoint (oidc-provider here only ES256 and EdDSA).
    test(`verifies the Client's DPoP proofs signed ${alg} (a Glewlwyd token)`, { skip: SKIP.Glewlwyd ?? false }, async () => {
      const client = makeClient({
        tokenUrl: glewlwyd!.tokenUrl,
        baseUrl: modOauth2!.url,
        dpop: { privateKey: makeKey().privateKey, algorithm: alg },
        clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret', oAuthScopes: GLEWLWYD_SCOPE },
      });
      const res = await client.get<{ ok: boolean }>('/dpop/things');
      assert.equal(res.statusCode, 200);
    assert.match(res.body, /"ok":true/);
    });
  }

  test('refuses the DPoP-bound token without a proof, with a proof by another key, and with a proof for another URL', async () => {
    const client = opClient({ oAuthClientId: 'dpop', oAuthClientSecret: 'dpop-secret' }, { dpop: { privateKey: dpopKey.privateKey, algorithm: 'ES256' } });
    const token = await client.clientCredentialsAuthManager.getToken();
    assert.equal(token.tokenType, 'DPoP');
    const url = `${modOauth2!.url}/dpop/things`;
    const proof = async (key: { privateKey: import('node:crypto').KeyObject; publicKey: import('node:crypto').KeyObject }, htu: string): Promise<string> =>
      new SignJWT({ htm: 'GET', htu, jti: randomUUID(), ath: createHash('sha256').update(token.accessToken).digest('base64url') })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicKey.export({ format: 'jwk' }) })
        .setIssuedAt()
        .sign(key.privateKey);
    const send = async (dpop?: string): Promise<number> => (await fetch(url, { headers: { authorization: `DPoP ${token.accessToken}`, ...(dpop ? { dpop } : {}) } })).status;
    assert.equal(await send(await proof(dpopKey, url)), 200, 'a good hand-made proof passes');
    assert.equal(await send(), 401);
    assert.equal(await send(await proof(generateKeyPairSync('ec', { namedCurve: 'P-256' }), url)), 401);
    assert.equal(await send(await proof(dpopKey, `${modOauth2!.url}/dpop/other`)), 401);
  });
});

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
