/**
 * The broker's configuration (`oauth-client-credentials serve --config broker.json`): the JSON schema, `${ENV}` references,
 * and validation with typed errors that name the JSON path of the offending value (`clients.crm.scopes[1]`), with a
 * "did you mean" for unknown keys. Pure: the caller reads the file and passes the environment.
 */
import { InvalidOptionError } from '../errors.js';
import { CLIENT_AUTH_METHODS, type ClientAuthMethod } from '../auth/clientAuthentication.js';
import { suggest } from '../optionKeys.js';
import { parseEndpoint, isLoopbackEndpoint, type Endpoint } from './endpoint.js';

/** One OAuth client of the broker: the library's credentials options, secrets read from files. */
export interface BrokerClientConfig {
  /** The client's name in `clients` (used in routes, the token API and metrics). */
  readonly name: string;
  readonly tokenUrl?: string;
  readonly issuer?: string;
  readonly clientId: string;
  /** A secret given inline (discouraged: prefer `clientSecretFile`). */
  readonly clientSecret?: string;
  readonly clientSecretFile?: string;
  readonly authMethod?: ClientAuthMethod;
  /** The private key file (PEM or JWK) of `private_key_jwt`. */
  readonly privateKeyFile?: string;
  /** TLS client certificate and key files (PEM): mTLS client authentication and certificate-bound tokens. */
  readonly certFile?: string;
  readonly keyFile?: string;
  /** Extra CA certificates (PEM) to trust for the token endpoint, besides the system's. */
  readonly caFile?: string;
  /** DPoP-bound tokens: `true` for a key made at start, or the file of a key of your own (PEM or JWK). */
  readonly dpop?: true | { readonly privateKeyFile: string };
  readonly scopes: readonly string[];
  readonly resource: readonly string[];
  readonly audience?: string;
  /** Seconds. */
  readonly clockSkew?: number;
  /** Retries of the token endpoint after the first attempt. */
  readonly retries?: number;
  /**
   * The longest a token request may take, and a request with no token held waits for one before its 503 (retries
   * included): the Client's `timeout`.
   */
  readonly tokenTimeoutMs: number;
  /** Plain http to a token endpoint that is not on this machine. */
  readonly allowInsecureHttp: boolean;
}

/** One reverse-proxy route. */
export interface BrokerRouteConfig {
  /** The request path prefix, as written (`/crm/`). */
  readonly path: string;
  /** The upstream base URL, as written (`https://api.example.com/v2/`). */
  readonly upstream: string;
  /** The client whose token the route sends. */
  readonly client: string;
  /** Keep an incoming `Authorization` header instead of replacing it (the client's token is sent when there is none). */
  readonly passAuthorization: boolean;
  /** Largest request body, in bytes, kept in memory so that the request can be replayed after a 401. */
  readonly replayBodyBytes: number;
}

/** The token API: `GET /v1/token/<client>`. */
export interface TokenApiConfig {
  /** A Unix socket, created with mode 0600. */
  readonly socket?: string;
  /** A TCP address; callers must send a key from `keyFile`. */
  readonly listen?: Endpoint;
  readonly keyFile?: string;
}

/** The whole broker configuration, validated. */
export interface BrokerConfig {
  readonly listen: Endpoint;
  readonly admin?: Endpoint;
  readonly allowRemote: boolean;
  readonly tokenApi?: TokenApiConfig;
  /** `memory` (the default) or a `redis://` / `rediss://` URL. */
  readonly tokenStore: string;
  readonly clients: ReadonlyMap<string, BrokerClientConfig>;
  readonly routes: readonly BrokerRouteConfig[];
  /** Milliseconds SIGTERM waits for in-flight requests. */
  readonly shutdownGraceMs: number;
  /** Milliseconds an upstream may take to answer (headers) and between body chunks. */
  readonly upstreamTimeoutMs: number;
  /** Milliseconds between checks of the secret and key files. */
  readonly watchIntervalMs: number;
}

/** Default largest replayable request body: 64 KiB. */
export const DEFAULT_REPLAY_BODY_BYTES = 65_536;

type Shape = Record<string, 'string' | 'number' | 'boolean' | 'strings' | 'object' | 'array' | 'dpop'>;

const TOP: Shape = {
  listen: 'string', admin: 'string', allowRemote: 'boolean', tokenApi: 'object', tokenStore: 'string', clients: 'object', routes: 'array',
  shutdownGraceSeconds: 'number', upstreamTimeoutSeconds: 'number', watchIntervalSeconds: 'number', replayBodyBytes: 'number',
};
const TOKEN_API: Shape = { socket: 'string', listen: 'string', keyFile: 'string' };
const CLIENT: Shape = {
  tokenUrl: 'string', issuer: 'string', clientId: 'string', clientSecret: 'string', clientSecretFile: 'string', authMethod: 'string',
  privateKeyFile: 'string', cert: 'string', key: 'string', ca: 'string', dpop: 'dpop', scopes: 'strings', resource: 'strings',
  audience: 'string', clockSkew: 'number', retries: 'number', tokenTimeoutSeconds: 'number', allowInsecureHttp: 'boolean',
};
const ROUTE: Shape = { path: 'string', upstream: 'string', client: 'string', passAuthorization: 'boolean', replayBodyBytes: 'number', allowInsecureHttp: 'boolean' };

const EXPECTED = { string: 'a string', number: 'a number', boolean: 'true or false', strings: 'a string or an array of strings', object: 'an object', array: 'an array', dpop: 'true, false or { "privateKeyFile": "…" }' };

function fail(path: string, problem: string): never {
  throw new InvalidOptionError(path, problem);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks `value`'s keys against `shape` (unknown keys: "did you mean") and each value's JSON type. */
function checkShape(value: unknown, shape: Shape, path: string): Record<string, unknown> {
  if (!isObject(value)) fail(path || '(root)', 'must be a JSON object');
  for (const [key, v] of Object.entries(value)) {
    const at = path ? `${path}.${key}` : key;
    const type = Object.hasOwn(shape, key) ? shape[key] : undefined;
    if (type === undefined) {
      const close = suggest(key, Object.keys(shape));
      fail(at, `is not a known key${close ? `: did you mean "${close}"?` : `; the keys are ${Object.keys(shape).join(', ')}`}`);
    }
    const ok =
      type === 'string' ? typeof v === 'string' :
      type === 'number' ? typeof v === 'number' && Number.isFinite(v) :
      type === 'boolean' ? typeof v === 'boolean' :
      type === 'strings' ? typeof v === 'string' || (Array.isArray(v) && v.every((s) => typeof s === 'string')) :
      type === 'object' ? isObject(v) :
      type === 'array' ? Array.isArray(v) :
      typeof v === 'boolean' || isObject(v);
    if (!ok) fail(at, `must be ${EXPECTED[type]}`);
  }
  return value;
}

const ENV_REFERENCE = /\$\{([^}]*)\}/g;

/**
 * `${NAME}` references in every string of `json` replaced by the environment's values (`$${` keeps a literal `${`).
 * @throws InvalidOptionError naming the JSON path of a reference to an unset variable or a malformed name.
 */
export function expandEnvironment(json: unknown, env: Readonly<Record<string, string | undefined>>, path = ''): unknown {
  if (typeof json === 'string') {
    if (!json.includes('${')) return json;
    return json.split('$${').map((part) => part.replace(ENV_REFERENCE, (_all, name: string) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) fail(path || '(root)', `has a malformed environment reference "\${${name}}"`);
      const value = env[name];
      if (value === undefined) fail(path || '(root)', `refers to the environment variable ${name}, which is not set`);
      return value;
    })).join('${');
  }
  if (Array.isArray(json)) return json.map((item, i) => expandEnvironment(item, env, `${path}[${i}]`));
  if (isObject(json)) {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(json)) out[key] = expandEnvironment(value, env, path ? `${path}.${key}` : key);
    return out;
  }
  return json;
}

function strings(value: unknown): string[] {
  if (value === undefined) return [];
  return typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : (value as string[]).slice();
}

/** A URL that does not parse, for an error message: what comes before an `@` (userinfo, perhaps a password) left out. */
function shownUrl(value: string): string {
  const at = value.lastIndexOf('@');
  const text = at < 0 ? value : `…${value.slice(at)}`;
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text);
}

function httpUrl(value: string, path: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail(path, `must be an absolute http(s) URL, got ${shownUrl(value)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') fail(path, `must be an http(s) URL, got "${url.protocol}"`);
  if (url.username || url.password) fail(path, 'must not hold credentials (user:password@)');
  if (url.search || url.hash) fail(path, 'must have no query or fragment');
  return url;
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

function seconds(value: unknown, path: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const n = value as number;
  if (n < min || n > max) fail(path, `must be between ${min} and ${max} seconds, got ${n}`);
  return Math.round(n * 1000);
}

function bytes(value: unknown, path: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = value as number;
  if (!Number.isInteger(n) || n < 0 || n > 64 * 1024 * 1024) fail(path, `must be a whole number of bytes from 0 to ${64 * 1024 * 1024}, got ${n}`);
  return n;
}

function parseClient(name: string, value: unknown): BrokerClientConfig {
  const path = `clients.${name}`;
  if (!/^[A-Za-z0-9._-]+$/.test(name)) fail(path, 'has a name other than letters, digits, ".", "_" and "-"');
  const c = checkShape(value, CLIENT, path);
  if (typeof c['clientId'] !== 'string' || c['clientId'] === '') fail(`${path}.clientId`, 'is required');
  if (c['tokenUrl'] === undefined && c['issuer'] === undefined) fail(`${path}.tokenUrl`, 'is required (or `issuer`, to discover it)');
  if (c['tokenUrl'] !== undefined && c['issuer'] !== undefined) fail(`${path}.issuer`, 'and `tokenUrl` are exclusive: give one');
  if (c['tokenUrl'] !== undefined) httpUrl(c['tokenUrl'] as string, `${path}.tokenUrl`);
  if (c['issuer'] !== undefined) httpUrl(c['issuer'] as string, `${path}.issuer`);
  if (c['clientSecret'] !== undefined && c['clientSecretFile'] !== undefined) fail(`${path}.clientSecretFile`, 'and `clientSecret` are exclusive: give one');
  const method = c['authMethod'] as string | undefined;
  if (method !== undefined && !(CLIENT_AUTH_METHODS as readonly string[]).includes(method)) {
    const close = suggest(method, CLIENT_AUTH_METHODS);
    fail(`${path}.authMethod`, `must be one of ${CLIENT_AUTH_METHODS.join(', ')}, got "${method}"${close ? `: did you mean "${close}"?` : ''}`);
  }
  const hasSecret = c['clientSecret'] !== undefined || c['clientSecretFile'] !== undefined;
  // privateKeyFile alone means private_key_jwt; with a secret too, which one is meant must be said (the library alone
  // would send the secret, the docs promise the key).
  if (method === undefined && hasSecret && c['privateKeyFile'] !== undefined) {
    fail(`${path}.authMethod`, 'is required when both a client secret and `privateKeyFile` are set: private_key_jwt to sign with the key, or a client_secret_* method (then remove privateKeyFile)');
  }
  const effective = method ?? (c['privateKeyFile'] !== undefined ? 'private_key_jwt' : 'client_secret_basic');
  if (['client_secret_basic', 'client_secret_post', 'client_secret_jwt'].includes(effective) && c['clientSecret'] === undefined && c['clientSecretFile'] === undefined) {
    fail(`${path}.clientSecretFile`, `is required for ${effective} (or \`clientSecret\`)`);
  }
  if (effective === 'private_key_jwt' && c['privateKeyFile'] === undefined) fail(`${path}.privateKeyFile`, 'is required for private_key_jwt');
  if ((c['cert'] === undefined) !== (c['key'] === undefined)) fail(`${path}.${c['cert'] === undefined ? 'cert' : 'key'}`, 'is required with `cert`/`key`: a client certificate needs both files');
  if ((effective === 'tls_client_auth' || effective === 'self_signed_tls_client_auth') && c['cert'] === undefined) fail(`${path}.cert`, `is required for ${effective}`);
  // A credential the configured method never sends is a mistake (the library refuses it too).
  const secretKey = c['clientSecretFile'] !== undefined ? 'clientSecretFile' : c['clientSecret'] !== undefined ? 'clientSecret' : undefined;
  if (method !== undefined && secretKey !== undefined && !['client_secret_basic', 'client_secret_post', 'client_secret_jwt'].includes(method)) {
    fail(`${path}.${secretKey}`, `is set, but authMethod ${method} never sends a secret: remove it${method === 'none' ? ' (a public client has none)' : ''}, or choose a client_secret_* method`);
  }
  if (method !== undefined && c['privateKeyFile'] !== undefined && method !== 'private_key_jwt') {
    fail(`${path}.privateKeyFile`, `is set, but authMethod ${method} signs no assertion: remove it${method.includes('tls') ? ' (the TLS client key goes in `key`)' : ''}, or choose private_key_jwt`);
  }
  let dpop: BrokerClientConfig['dpop'];
  if (c['dpop'] === true) dpop = true;
  else if (isObject(c['dpop'])) {
    const d = checkShape(c['dpop'], { privateKeyFile: 'string' }, `${path}.dpop`);
    if (typeof d['privateKeyFile'] !== 'string') fail(`${path}.dpop.privateKeyFile`, 'is required');
    dpop = { privateKeyFile: d['privateKeyFile'] };
  }
  const clockSkew = c['clockSkew'] as number | undefined;
  if (clockSkew !== undefined && (clockSkew < 0 || clockSkew > 86_400)) fail(`${path}.clockSkew`, `must be from 0 to 86400 seconds, got ${clockSkew}`);
  const retries = c['retries'] as number | undefined;
  if (retries !== undefined && (!Number.isInteger(retries) || retries < 0 || retries > 10)) fail(`${path}.retries`, `must be a whole number from 0 to 10, got ${retries}`);
  const tokenTimeoutMs = seconds(c['tokenTimeoutSeconds'], `${path}.tokenTimeoutSeconds`, 0.1, 300, 30_000);
  return {
    name,
    clientId: c['clientId'],
    ...(c['tokenUrl'] !== undefined ? { tokenUrl: c['tokenUrl'] as string } : {}),
    ...(c['issuer'] !== undefined ? { issuer: c['issuer'] as string } : {}),
    ...(c['clientSecret'] !== undefined ? { clientSecret: c['clientSecret'] as string } : {}),
    ...(c['clientSecretFile'] !== undefined ? { clientSecretFile: c['clientSecretFile'] as string } : {}),
    ...(method !== undefined ? { authMethod: method as ClientAuthMethod } : {}),
    ...(c['privateKeyFile'] !== undefined ? { privateKeyFile: c['privateKeyFile'] as string } : {}),
    ...(c['cert'] !== undefined ? { certFile: c['cert'] as string, keyFile: c['key'] as string } : {}),
    ...(c['ca'] !== undefined ? { caFile: c['ca'] as string } : {}),
    ...(dpop !== undefined ? { dpop } : {}),
    scopes: strings(c['scopes']),
    resource: strings(c['resource']),
    ...(c['audience'] !== undefined ? { audience: c['audience'] as string } : {}),
    ...(clockSkew !== undefined ? { clockSkew } : {}),
    ...(retries !== undefined ? { retries } : {}),
    tokenTimeoutMs,
    allowInsecureHttp: c['allowInsecureHttp'] === true,
  };
}

function parseRoute(value: unknown, index: number, clients: ReadonlyMap<string, BrokerClientConfig>, replayDefault: number): BrokerRouteConfig {
  const path = `routes[${index}]`;
  const r = checkShape(value, ROUTE, path);
  for (const key of ['path', 'upstream', 'client'] as const) if (typeof r[key] !== 'string') fail(`${path}.${key}`, 'is required');
  const prefix = r['path'] as string;
  if (!prefix.startsWith('/')) fail(`${path}.path`, `must start with "/", got "${prefix}"`);
  if (/[?#%\\]/.test(prefix) || prefix.split('/').some((s) => s === '.' || s === '..')) fail(`${path}.path`, 'must be a plain path: no "?", "#", "%", "\\", "." or ".." segments');
  const upstream = httpUrl(r['upstream'] as string, `${path}.upstream`);
  if (upstream.protocol === 'http:' && !isLoopbackHost(upstream.hostname) && r['allowInsecureHttp'] !== true) {
    fail(`${path}.upstream`, 'is plain http to another machine: the token would cross the network in clear (use https, or set "allowInsecureHttp": true on the route)');
  }
  const client = r['client'] as string;
  if (!clients.has(client)) {
    const close = suggest(client, clients.keys());
    fail(`${path}.client`, `names no client in "clients" ("${client}")${close ? `: did you mean "${close}"?` : ''}`);
  }
  return { path: prefix, upstream: upstream.href, client, passAuthorization: r['passAuthorization'] === true, replayBodyBytes: bytes(r['replayBodyBytes'], `${path}.replayBodyBytes`, replayDefault) };
}

function endpoint(value: unknown, path: string, allowRemote: boolean): Endpoint {
  let parsed: Endpoint;
  try {
    parsed = parseEndpoint(value as string);
  } catch (error) {
    fail(path, (error as Error).message);
  }
  if (!allowRemote && !isLoopbackEndpoint(parsed)) fail(path, `listens on ${value as string}, which is not loopback: set "allowRemote": true to accept connections from other machines`);
  return parsed;
}

/**
 * The validated configuration of a parsed JSON document (`${ENV}` references expanded from `env`).
 * @throws InvalidOptionError naming the JSON path of the first problem.
 */
export function parseBrokerConfig(json: unknown, env: Readonly<Record<string, string | undefined>>): BrokerConfig {
  const root = checkShape(expandEnvironment(json, env), TOP, '');
  const allowRemote = root['allowRemote'] === true;
  if (root['listen'] === undefined) fail('listen', 'is required (e.g. "127.0.0.1:8080")');
  const listen = endpoint(root['listen'], 'listen', allowRemote);
  const admin = root['admin'] === undefined ? undefined : endpoint(root['admin'], 'admin', allowRemote);
  let tokenApi: TokenApiConfig | undefined;
  if (root['tokenApi'] !== undefined) {
    const t = checkShape(root['tokenApi'], TOKEN_API, 'tokenApi');
    if (t['socket'] === undefined && t['listen'] === undefined) fail('tokenApi', 'needs "socket" (a Unix socket path) or "listen" (with "keyFile")');
    if (t['socket'] !== undefined && !(t['socket'] as string).startsWith('/')) fail('tokenApi.socket', 'must be an absolute path');
    const tcp = t['listen'] === undefined ? undefined : endpoint(t['listen'], 'tokenApi.listen', allowRemote);
    if (tcp && tcp.kind === 'tcp' && t['keyFile'] === undefined) fail('tokenApi.keyFile', 'is required with "listen": callers on TCP must send a key');
    tokenApi = {
      ...(t['socket'] !== undefined ? { socket: t['socket'] as string } : {}),
      ...(tcp ? { listen: tcp } : {}),
      ...(t['keyFile'] !== undefined ? { keyFile: t['keyFile'] as string } : {}),
    };
  }
  const tokenStore = (root['tokenStore'] as string | undefined) ?? 'memory';
  if (tokenStore !== 'memory' && !/^rediss?:\/\//.test(tokenStore)) fail('tokenStore', `must be "memory" or a redis:// or rediss:// URL, got "${tokenStore.replace(/\/\/[^@/]*@/, '//')}"`);
  if (root['clients'] === undefined) fail('clients', 'is required: at least one OAuth client');
  const clients = new Map<string, BrokerClientConfig>();
  for (const [name, value] of Object.entries(root['clients'] as Record<string, unknown>)) clients.set(name, parseClient(name, value));
  if (clients.size === 0) fail('clients', 'must name at least one client');
  const replayDefault = bytes(root['replayBodyBytes'], 'replayBodyBytes', DEFAULT_REPLAY_BODY_BYTES);
  const routes = ((root['routes'] as unknown[] | undefined) ?? []).map((r, i) => parseRoute(r, i, clients, replayDefault));
  const seen = new Map<string, number>();
  routes.forEach((route, i) => {
    const key = route.path.replace(/\/+$/, '');
    if (seen.has(key)) fail(`routes[${i}].path`, `repeats the path of routes[${seen.get(key)!}]`);
    seen.set(key, i);
  });
  return {
    listen,
    ...(admin ? { admin } : {}),
    allowRemote,
    ...(tokenApi ? { tokenApi } : {}),
    tokenStore,
    clients,
    routes,
    shutdownGraceMs: seconds(root['shutdownGraceSeconds'], 'shutdownGraceSeconds', 0, 3600, 30_000),
    upstreamTimeoutMs: seconds(root['upstreamTimeoutSeconds'], 'upstreamTimeoutSeconds', 0.1, 3600, 60_000),
    watchIntervalMs: seconds(root['watchIntervalSeconds'], 'watchIntervalSeconds', 0.05, 3600, 2_000),
  };
}
