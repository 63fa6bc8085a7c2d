/**
 * Debian's Glewlwyd 2.7 (C) for the interop suite, configured from scratch in a temporary folder: its own
 * configuration file (test/fixtures/glewlwyd/glewlwyd.conf), a fresh SQLite database made from the packaged schema,
 * then, through its admin REST API after the packaged admin login, a scope `api`, two `oidc` plugin instances and the
 * clients a test asks for.
 *
 * - `oidc` (`/api/oidc`): client credentials, JWT access tokens signed ES256 (its JWKS), DPoP, RFC 8707 resources
 *   (`https://api.example.test` for scope `api`; `aud` is the resource, else the scope list).
 * - `oidcn` (`/api/oidcn`): the same, but every DPoP proof must carry a server nonce (`400 use_dpop_nonce` first).
 *
 * Quirks it keeps (they are what the suite tests): `scope` is mandatory in the client credentials grant; every refusal
 * is a bare 403; Basic credentials are compared raw (not form-decoded); the assertion `aud` must be the token URL;
 * discovery only at the OIDC URL.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { DEBIAN_PYTHON, FIXTURES, nativeSkipReason, probe, startNative, type NativeProcess } from './nativeServer.js';

export const GLEWLWYD_BINARY = '/usr/bin/glewlwyd';
const SCHEMA = '/usr/share/dbconfig-common/data/glewlwyd/install/sqlite3';
/** The resource `oidc` accepts for scope `api` (RFC 8707). */
export const GLEWLWYD_RESOURCE = 'https://api.example.test';
/** The scope every client gets; Glewlwyd refuses a client credentials request without one. */
export const GLEWLWYD_SCOPE = 'api';

/** Why the Glewlwyd tests are skipped here, or undefined when it is installed (throws in CI when it is not). */
export function glewlwydSkip(): string | undefined {
  return nativeSkipReason('Glewlwyd', [GLEWLWYD_BINARY, SCHEMA], 'glewlwyd');
}

/** A client to register (Glewlwyd's client API shape, trimmed to what the suite needs). */
export interface GlewlwydClient {
  clientId: string;
  /** The client password (Basic and post), compared raw by Glewlwyd. */
  password?: string;
  /** The `client_secret` property, the HMAC key for `client_secret_jwt`. */
  clientSecret?: string;
  /** Public keys for `private_key_jwt`, found by `kid`. */
  jwks?: { keys: Record<string, unknown>[] };
  methods: ('client_secret_basic' | 'client_secret_post' | 'client_secret_jwt' | 'private_key_jwt')[];
}

/** A running Glewlwyd. */
export interface GlewlwydHandle {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** Issuer of the `oidc` instance, `…/api/oidc`. */
  issuer: string;
  tokenUrl: string;
  jwksUrl: string;
  /** The instance that requires DPoP nonces. */
  nonceIssuer: string;
  nonceTokenUrl: string;
  startupMs: number;
  /** Milliseconds spent on the admin API (plugins, scope). */
  setupMs: number;
  addClient(client: GlewlwydClient): Promise<void>;
  /** What it logged (warnings and errors), for failure messages. */
  output(): string;
  close(): Promise<void>;
}

/** A fresh database from the packaged schema (with its admin user), by the sqlite3 program Glewlwyd's package needs. */
function createDatabase(file: string): void {
  const script = readFileSync(SCHEMA, 'utf8');
  if (existsSync('/usr/bin/sqlite3')) {
    // One transaction, no syncs: a few ms instead of one disk sync per statement.
    execFileSync('/usr/bin/sqlite3', ['-batch', file], { input: `PRAGMA synchronous=OFF;\nBEGIN;\n${script}\nCOMMIT;\n`, stdio: ['pipe', 'ignore', 'pipe'] });
  } else {
    execFileSync(DEBIAN_PYTHON, ['-c', 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.stdin.read()); c.commit()', file], { input: script });
  }
}

function pluginParameters(issuer: string, signingKey: Record<string, unknown>, nonces: boolean): Record<string, unknown> {
  return {
    iss: issuer,
    'jwt-type': 'ec',
    'jwt-key-size': '256',
    'jwks-private': JSON.stringify({ keys: [signingKey] }),
    'default-kid': signingKey['kid'],
    'jwks-show': true,
    'access-token-duration': 3600,
    'refresh-token-duration': 1209600,
    'code-duration': 600,
    'refresh-token-rolling': true,
    'allow-non-oidc': true,
    'auth-type-code-enabled': true,
    'auth-type-token-enabled': false,
    'auth-type-id-token-enabled': true,
    'auth-type-none-enabled': false,
    'auth-type-password-enabled': false,
    'auth-type-client-enabled': true,
    'auth-type-device-enabled': false,
    'auth-type-refresh-enabled': true,
    scope: [],
    'additional-parameters': [],
    claims: [],
    'allowed-scope': ['openid', GLEWLWYD_SCOPE],
    'secret-type': 'pairwise',
    'client-pubkey-parameter': '',
    'client-jwks-parameter': 'jwks',
    'client-jwks_uri-parameter': 'jwks_uri',
    'client-enc-parameter': 'enc',
    'client-alg-parameter': 'alg',
    'client-alg_kid-parameter': 'alg_kid',
    'request-maximum-exp': 3600,
    // Also what lets it accept client assertions (client_secret_jwt, private_key_jwt).
    'request-parameter-allow': true,
    'request-parameter-allow-encrypted': false,
    'oauth-dpop-allowed': true,
    'oauth-dpop-iat-duration': 120,
    'oauth-dpop-nonce-mandatory': nonces,
    'oauth-dpop-nonce-counter': 10,
    'resource-allowed': true,
    'resource-scope': { [GLEWLWYD_SCOPE]: [GLEWLWYD_RESOURCE] },
    'resource-client-property': '',
    'resource-scope-and-client-property': false,
    'introspection-revocation-allowed': false,
  };
}

/** Starts Glewlwyd on a free port with a fresh database and configures it through its admin API. */
export async function startGlewlwyd(): Promise<GlewlwydHandle> {
  const template = readFileSync(join(FIXTURES, 'glewlwyd', 'glewlwyd.conf'), 'utf8');
  const proc: NativeProcess = await startNative({
    name: 'glewlwyd',
    prepare: (dir, port) => {
      const database = join(dir, 'glewlwyd.db');
      createDatabase(database);
      const config = join(dir, 'glewlwyd.conf');
      writeFileSync(config, template.replaceAll('@PORT@', String(port)).replaceAll('@DATABASE@', database));
      return { command: GLEWLWYD_BINARY, args: [`--config-file=${config}`] };
    },
    // The login API answers 401 to an empty body once the server is up.
    ready: async (port) => (await probe(`http://127.0.0.1:${port}/api/auth/scheme/`)) !== undefined,
  });
  const url = `http://127.0.0.1:${proc.port}`;
  const setupStarted = Date.now();
  try {
    const login = await fetch(`${url}/api/auth/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'password' }) });
    await login.arrayBuffer();
    const cookie = login.headers.get('set-cookie')?.split(';')[0];
    if (login.status !== 200 || !cookie) throw new Error(`admin login answered ${login.status}`);
    const admin = async (method: string, path: string, body: unknown): Promise<void> => {
      const res = await fetch(`${url}/api${path}`, { method, headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`Glewlwyd admin ${method} ${path} answered ${res.status} ${text}`);
    };
    await admin('POST', '/scope/', { name: GLEWLWYD_SCOPE, display_name: 'API', description: 'the test API', password_required: false, scheme: {} });
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'glewlwyd-sig-1', alg: 'ES256', use: 'sig' };
    for (const [name, nonces] of [['oidc', false], ['oidcn', true]] as const) {
      await admin('POST', '/mod/plugin/', { module: 'oidc', name, display_name: name, enabled: true, parameters: pluginParameters(`${url}/api/${name}`, signingKey, nonces) });
    }
    const setupMs = Date.now() - setupStarted;
    return {
      url,
      issuer: `${url}/api/oidc`,
      tokenUrl: `${url}/api/oidc/token`,
      jwksUrl: `${url}/api/oidc/jwks`,
      nonceIssuer: `${url}/api/oidcn`,
      nonceTokenUrl: `${url}/api/oidcn/token`,
      startupMs: proc.startupMs,
      setupMs,
      addClient: (client) =>
        admin('POST', '/client/', {
          client_id: client.clientId,
          name: client.clientId,
          enabled: true,
          confidential: true,
          ...(client.password !== undefined ? { password: client.password } : {}),
          ...(client.clientSecret !== undefined ? { client_secret: client.clientSecret } : {}),
          ...(client.jwks ? { jwks: client.jwks } : {}),
          authorization_type: ['client_credentials'],
          token_endpoint_auth_method: client.methods,
          scope: [GLEWLWYD_SCOPE],
          redirect_uri: [],
        }),
      output: () => proc.output(),
      close: () => proc.stop(),
    };
  } catch (error) {
    await proc.stop();
    throw new Error(`Glewlwyd setup failed: ${(error as Error).message}\n${proc.output()}`);
  }
}
