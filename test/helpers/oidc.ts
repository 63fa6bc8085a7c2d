import http from 'node:http';
import https from 'node:https';
import { randomBytes, X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import type { JWK } from 'jose';
import { closeServer, listenLocal, readBody } from './http.js';
import type { RecordedRequest } from './http.js';

export type { RecordedRequest } from './http.js';

/** Resource indicator (and JWT `aud`) that the test provider issues tokens for. */
export const OIDC_RESOURCE = 'https://api.example.test';

/** Scopes the test provider knows; `api:admin` is known but not granted to any default client. */
export const OIDC_SCOPES = ['api:read', 'api:write', 'api:admin'] as const;

/** Client auth methods the helper supports at the token endpoint. */
export type OidcClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'client_secret_jwt' | 'private_key_jwt' | 'tls_client_auth' | 'self_signed_tls_client_auth' | 'none';

/** Client registration passed to oidc-provider (snake_case metadata, extra keys passed through). */
export interface OidcClient {
  client_id: string;
  client_secret?: string;
  token_endpoint_auth_method?: OidcClientAuthMethod;
  /** Pin a single assertion `alg` (optional; otherwise every enabled alg of the right family is accepted). */
  token_endpoint_auth_signing_alg?: string;
  /** Public keys for private_key_jwt. */
  jwks?: { keys: JWK[] };
  /** Space-separated allowed scopes (default 'api:read api:write'). */
  scope?: string;
  grant_types?: string[];
  [metadata: string]: unknown;
}

/** The default clients: svc (basic), weird (basic, secret needing RFC 6749 §2.3.1 encoding), postclient (post). */
export const DEFAULT_OIDC_CLIENTS: readonly OidcClient[] = Object.freeze([
  { client_id: 'svc', client_secret: 'svc-secret' },
  { client_id: 'weird', client_secret: 'p+s/s:w%rd' },
  { client_id: 'postclient', client_secret: 'post-secret', token_endpoint_auth_method: 'client_secret_post' },
]);

/** Options for startOidcProvider. */
export interface OidcProviderOptions {
  /** Replaces DEFAULT_OIDC_CLIENTS (spread it to keep them). */
  clients?: readonly OidcClient[];
  /** Access token lifetime in seconds (default 60). */
  ttl?: number;
  /** 'jwt' (default): at+jwt for OIDC_RESOURCE even without `resource`; 'opaque': opaque tokens. */
  format?: 'jwt' | 'opaque';
  /** DPoP (RFC 9449): `'nonce'` makes every DPoP proof need a server nonce (`use_dpop_nonce` first). Default: DPoP on, no nonce. */
  dpop?: 'nonce' | 'no-nonce';
  /**
   * Serve HTTPS with this server key and certificate, ask for client certificates (verified against `ca`), and turn
   * on RFC 8705: tls_client_auth, self_signed_tls_client_auth and certificate-bound access tokens. With `alias`, a
   * second HTTPS listener serves the same provider and is published as `mtls_endpoint_aliases.token_endpoint`, and
   * the main listener asks for no client certificate.
   */
  mtls?: { key: string; cert: string; ca: string; alias?: boolean };
}

/** A running oidc-provider instance. */
export interface OidcProviderHandle {
  issuer: string;
  tokenUrl: string;
  jwksUrl: string;
  introspectionUrl: string;
  resource: string;
  /** Every POST to the token endpoint, in arrival order. */
  tokenRequests: RecordedRequest[];
  /** With `mtls.alias`: the mTLS alias base URL (its token endpoint is `${mtlsAliasUrl}/token`). */
  mtlsAliasUrl?: string;
  close(): Promise<void>;
}

// Every JWS alg oidc-provider 9 supports on Node 20 (defaults omit HS384/512, RS384/512, PS384/512, ES384/512).
const CLIENT_AUTH_ALGS = [
  'HS256', 'HS384', 'HS512',
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512',
  'Ed25519', 'EdDSA',
];

const SILENCED_WARNINGS = ['Unsupported runtime', 'already parsed request body detected', 'in-memory adapter is used'];
let warningFilterInstalled = false;

/** Drops only three known-harmless oidc-provider console warnings (Node 20 runtime, pre-read body, in-memory adapter). */
function installWarningFilter(): void {
  if (warningFilterInstalled) return;
  warningFilterInstalled = true;
  const original = console.warn;
  console.warn = (...args: unknown[]): void => {
    const first = args[0];
    if (typeof first === 'string' && first.includes('oidc-provider WARNING') && SILENCED_WARNINGS.some((w) => first.includes(w))) {
      return;
    }
    original.apply(console, args);
  };
}

type OidcModule = typeof import('oidc-provider');
let oidcModule: Promise<OidcModule> | undefined;
function loadOidcProvider(): Promise<OidcModule> {
  installWarningFilter(); // must precede the import: the runtime warning fires at module evaluation
  oidcModule ??= import('oidc-provider');
  return oidcModule;
}

let signingKey: Promise<JWK> | undefined;
function getSigningKey(): Promise<JWK> {
  signingKey ??= (async () => {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    return { ...(await exportJWK(privateKey)), kid: 'test-rs256', alg: 'RS256', use: 'sig' };
  })();
  return signingKey;
}

/** Starts an in-process oidc-provider (client_credentials, resource indicators, introspection) on 127.0.0.1:0. */
export async function startOidcProvider(options: OidcProviderOptions = {}): Promise<OidcProviderHandle> {
  // The signing key is made off the main thread while oidc-provider loads on it.
  const [{ default: Provider, errors }, key] = await Promise.all([loadOidcProvider(), getSigningKey()]);
  const ttl = options.ttl ?? 60;
  const format = options.format ?? 'jwt';
  const tokenRequests: RecordedRequest[] = [];
  const tokenPath = '/token';

  let handler: (req: IncomingMessage, res: ServerResponse) => unknown = (_req, res) => {
    res.writeHead(503).end();
  };
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method === 'POST' && path === tokenPath) {
        const at = Date.now();
        let body: string;
        try {
          body = await readBody(req);
        } catch {
          res.destroy();
          return;
        }
        tokenRequests.push({ method: req.method, url: req.url ?? '/', headers: { ...req.headers }, body, at });
        // The stream is consumed, so oidc-provider's body parser falls back to req.body (a string is
        // parsed with querystring, exactly like the raw body would have been).
        (req as IncomingMessage & { body?: string }).body = body;
      }
      handler(req, res);
    })();
  };
  const mtls = options.mtls;
  const server = mtls
    ? https.createServer({ key: mtls.key, cert: mtls.cert, ca: mtls.ca, requestCert: !mtls.alias, rejectUnauthorized: false }, listener)
    : http.createServer(listener);
  const aliasServer = mtls?.alias ? https.createServer({ key: mtls.key, cert: mtls.cert, ca: mtls.ca, requestCert: true, rejectUnauthorized: false }, listener) : undefined;
  const issuer = (await listenLocal(server)).replace(/^http:/, mtls ? 'https:' : 'http:');
  const mtlsAliasUrl = aliasServer ? (await listenLocal(aliasServer)).replace(/^http:/, 'https:') : undefined;

  const clients = (options.clients ?? DEFAULT_OIDC_CLIENTS).map((c) => ({
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    scope: 'api:read api:write',
    token_endpoint_auth_method: 'client_secret_basic',
    ...c,
  }));

  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [key] },
    scopes: [...OIDC_SCOPES],
    ttl: { ClientCredentials: ttl },
    enabledJWA: { clientAuthSigningAlgValues: CLIENT_AUTH_ALGS },
    ...(mtls ? { clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth', 'none'] } : {}),
    ...(mtlsAliasUrl ? { discovery: { mtls_endpoint_aliases: { token_endpoint: `${mtlsAliasUrl}${tokenPath}` } } } : {}),
    features: {
      devInteractions: { enabled: false },
      ...(mtls
        ? {
            mTLS: {
              enabled: true,
              certificateBoundAccessTokens: true,
              tlsClientAuth: true,
              selfSignedTlsClientAuth: true,
              getCertificate: (ctx: { socket: TLSSocket }) => {
                const peer = typeof ctx.socket.getPeerCertificate === 'function' ? ctx.socket.getPeerCertificate() : undefined;
                return peer?.raw ? new X509Certificate(peer.raw) : undefined;
              },
              certificateAuthorized: (ctx: { socket: TLSSocket }) => ctx.socket.authorized,
              certificateSubjectMatches: (ctx: { socket: TLSSocket }, property: string, expected: string) =>
                property === 'tls_client_auth_subject_dn' && `CN=${String(ctx.socket.getPeerCertificate().subject?.CN)}` === expected,
            },
          }
        : {}),
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => options.dpop === 'nonce' },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx: unknown, _client: unknown, oneOf?: string) => oneOf ?? (format === 'jwt' ? OIDC_RESOURCE : undefined),
        getResourceServerInfo: (_ctx: unknown, resourceIndicator: string) => {
          if (resourceIndicator !== OIDC_RESOURCE) throw new errors.InvalidTarget();
          return {
            scope: OIDC_SCOPES.join(' '),
            audience: OIDC_RESOURCE,
            accessTokenTTL: ttl,
            accessTokenFormat: format,
            ...(format === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
          };
        },
      },
    },
  });
  handler = provider.callback();

  return {
    issuer,
    tokenUrl: `${issuer}${tokenPath}`,
    jwksUrl: `${issuer}/jwks`,
    introspectionUrl: `${issuer}/token/introspection`,
    resource: OIDC_RESOURCE,
    tokenRequests,
    ...(mtlsAliasUrl ? { mtlsAliasUrl } : {}),
    close: async () => {
      if (aliasServer) await closeServer(aliasServer);
      await closeServer(server);
    },
  };
}
