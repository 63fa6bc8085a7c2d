/**
 * The CLI's settings, each taken from the first of: a flag, an environment variable, the `--config` JSON file.
 * The secret comes from a file, stdin, the environment, the config file, or (with a warning) a flag.
 */
import { stat } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { dirname, isAbsolute, resolve } from 'node:path';
import { CLIENT_AUTH_METHODS, type ClientAuthMethod, type ClientConfiguration } from '../index.js';
import type { Flags } from './args.js';
import { suggest } from '../optionKeys.js';
import { CliError, jsonSyntaxProblem } from './failure.js';
import { MAX_FILE_BYTES, readFlagFile, readSmallRegularFile, warnIfOthersMayRead, windowsText } from './files.js';
import { secretText } from '../io/smallFile.js';
import { SECRET_ENVIRONMENT } from './knownSecrets.js';
import type { Io, Output } from './output.js';

/** Where a setting came from, for `--verbose`. */
export type Source = string;

/** A value and where it came from. */
export interface Sourced<T> {
  value: T;
  source: Source;
}

/** Everything the `token` and `call` commands need. */
export interface Settings {
  tokenUrl: Sourced<string> | undefined;
  baseUrl: Sourced<string> | undefined;
  clientId: Sourced<string> | undefined;
  /** The client secret; never printed, only its source. */
  clientSecret: Sourced<string> | undefined;
  authMethod: Sourced<ClientAuthMethod> | undefined;
  privateKey: Sourced<string> | undefined;
  /** `--key-id`: the assertion's `kid` header. */
  keyId: string | undefined;
  /** `--client-assertion-file`: the file, read again for every token request (each value learnt by the redactor). */
  clientAssertion: Sourced<() => Promise<string>> | undefined;
  /** `--basic-encoding`. */
  basicEncoding: 'rfc6749' | 'raw' | undefined;
  /** `--grant-type`. */
  grantType: string | undefined;
  /** `--token-param NAME=VALUE`, repeatable. */
  tokenParameters: Record<string, string>;
  /** The authorization server's issuer, for discovery instead of a token URL. */
  issuer: Sourced<string> | undefined;
  /** TLS client certificate and key (PEM, read from files), and extra trusted CA certificates. */
  cert: Sourced<string> | undefined;
  key: Sourced<string> | undefined;
  ca: Sourced<string> | undefined;
  /** `--dpop`: DPoP-bound tokens with an ephemeral key (not cached between runs: the key does not outlive the run). */
  dpop: boolean;
  scopes: string[];
  resource: string[];
  audience: string | undefined;
  /** Seconds. */
  clockSkew: number | undefined;
  /** Milliseconds; 0 for none. */
  timeoutMs: number;
  /** Retries of the token endpoint after the first attempt. */
  retries: number | undefined;
  /** The token cache file, or undefined when caching is off. */
  cachePath: Sourced<string> | undefined;
  /** `--no-cache`: do not reuse a cached token (a new one still replaces it in the cache). */
  noCache: boolean;
  /** The proxy: a URL, or `env` (HTTPS_PROXY, HTTP_PROXY, NO_PROXY; the default); undefined with `--proxy off`. */
  proxy: Sourced<string> | undefined;
}

/**
 * The environment variables the CLI reads, by setting. The first one set wins; `O_AUTH_*` are the reference SDK's
 * names (`Client.fromEnvironment`).
 */
export const ENVIRONMENT = {
  tokenUrl: ['CLIENT_CREDENTIALS_TOKEN_URL'],
  baseUrl: ['CLIENT_CREDENTIALS_BASE_URL'],
  clientId: ['CLIENT_CREDENTIALS_CLIENT_ID', 'O_AUTH_CLIENT_ID'],
  clientSecret: SECRET_ENVIRONMENT,
  clientSecretFile: ['CLIENT_CREDENTIALS_CLIENT_SECRET_FILE'],
  authMethod: ['CLIENT_CREDENTIALS_AUTH_METHOD'],
  privateKeyFile: ['CLIENT_CREDENTIALS_PRIVATE_KEY_FILE'],
  keyId: ['CLIENT_CREDENTIALS_KEY_ID'],
  clientAssertionFile: ['CLIENT_CREDENTIALS_CLIENT_ASSERTION_FILE'],
  basicEncoding: ['CLIENT_CREDENTIALS_BASIC_ENCODING'],
  grantType: ['CLIENT_CREDENTIALS_GRANT_TYPE'],
  issuer: ['CLIENT_CREDENTIALS_ISSUER'],
  cert: ['CLIENT_CREDENTIALS_CERT'],
  key: ['CLIENT_CREDENTIALS_KEY'],
  ca: ['CLIENT_CREDENTIALS_CA'],
  dpop: ['CLIENT_CREDENTIALS_DPOP'],
  scope: ['CLIENT_CREDENTIALS_SCOPE'],
  resource: ['CLIENT_CREDENTIALS_RESOURCE'],
  audience: ['CLIENT_CREDENTIALS_AUDIENCE'],
  clockSkew: ['CLIENT_CREDENTIALS_CLOCK_SKEW', 'O_AUTH_CLOCK_SKEW'],
  timeout: ['CLIENT_CREDENTIALS_TIMEOUT'],
  retries: ['CLIENT_CREDENTIALS_RETRIES'],
  cache: ['CLIENT_CREDENTIALS_CACHE'],
  proxy: ['CLIENT_CREDENTIALS_PROXY'],
  config: ['CLIENT_CREDENTIALS_CONFIG'],
} as const;

/** The keys a config file may have, and their JSON types. */
const CONFIG_KEYS: Record<string, 'string' | 'number' | 'strings' | 'cache' | 'boolean'> = {
  tokenUrl: 'string',
  baseUrl: 'string',
  clientId: 'string',
  clientSecret: 'string',
  clientSecretFile: 'string',
  authMethod: 'string',
  privateKeyFile: 'string',
  keyId: 'string',
  clientAssertionFile: 'string',
  basicEncoding: 'string',
  grantType: 'string',
  tokenParams: 'strings',
  issuer: 'string',
  cert: 'string',
  key: 'string',
  ca: 'string',
  dpop: 'boolean',
  scope: 'strings',
  resource: 'strings',
  audience: 'string',
  clockSkew: 'number',
  timeout: 'number',
  retries: 'number',
  cache: 'cache',
  proxy: 'string',
};

/** A parsed config file. */
type ConfigFile = Partial<Record<keyof typeof CONFIG_KEYS, unknown>> & { readonly path?: string };

/** Default timeout of one request, in seconds. */
export const DEFAULT_TIMEOUT_SECONDS = 30;

async function readConfig(path: string, out: Output): Promise<ConfigFile> {
  const text = await readFlagFile(path, 'config', MAX_FILE_BYTES.config, 'check the path given to --config (or CLIENT_CREDENTIALS_CONFIG)');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CliError(`the config file ${path} is not valid JSON: ${jsonSyntaxProblem(error)}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new CliError(`the config file ${path} must hold a JSON object`);
  const config = json as Record<string, unknown>;
  for (const [key, value] of Object.entries(config)) {
    const type = Object.hasOwn(CONFIG_KEYS, key) ? CONFIG_KEYS[key] : undefined;
    if (!type) {
      const close = suggest(key, Object.keys(CONFIG_KEYS));
      throw new CliError(`the config file ${path} has an unknown key "${key}"`, `${close ? `did you mean "${close}"? ` : ''}the keys are ${Object.keys(CONFIG_KEYS).join(', ')}`);
    }
    const ok =
      type === 'string' ? typeof value === 'string' :
      type === 'number' ? typeof value === 'number' && Number.isFinite(value) :
      type === 'strings' ? typeof value === 'string' || (Array.isArray(value) && value.every((v) => typeof v === 'string')) :
      type === 'boolean' ? typeof value === 'boolean' :
      typeof value === 'string' || value === false;
    if (!ok) {
      const expected = { string: 'a string', number: 'a number', strings: 'a string or an array of strings', cache: 'a path or false', boolean: 'true or false' }[type];
      throw new CliError(`"${key}" in the config file ${path} must be ${expected}`);
    }
  }
  if (typeof config['clientSecret'] === 'string' && process.platform !== 'win32') {
    const mode = (await stat(path)).mode;
    if ((mode & 0o077) !== 0) out.warn(`the config file ${path} holds a clientSecret and other users may read it; run: chmod 600 ${path}`);
  }
  return { ...config, path };
}

/** A config file's string-or-strings value as a list, each with its source. */
function configStrings(config: ConfigFile, key: keyof typeof CONFIG_KEYS): Sourced<string>[] {
  const value = config[key];
  const list = typeof value === 'string' ? [value] : Array.isArray(value) ? (value as string[]) : [];
  return list.map((item) => ({ value: item, source: `"${key}" in ${config.path}` }));
}

function fromEnv(io: Io, names: readonly string[]): Sourced<string> | undefined {
  for (const name of names) {
    const value = io.env[name];
    if (value !== undefined && value !== '') return { value, source: `$${name}` };
  }
  return undefined;
}

/** The first of flag, environment, config file. */
function pick(flag: string | undefined, flagName: string, io: Io, envNames: readonly string[], config: ConfigFile, key: keyof typeof CONFIG_KEYS): Sourced<string> | undefined {
  if (flag !== undefined) return { value: flag, source: `--${flagName}` };
  const env = fromEnv(io, envNames);
  if (env) return env;
  const value = config[key];
  if (typeof value === 'string') return { value, source: `"${key}" in ${config.path}` };
  if (typeof value === 'number') return { value: String(value), source: `"${key}" in ${config.path}` };
  if (Array.isArray(value)) return { value: value.join(' '), source: `"${key}" in ${config.path}` };
  return undefined;
}

/** A path from a flag or the environment resolves against the working directory; one from the config file against the file's folder. */
function resolvePath(setting: Sourced<string>, io: Io, config: ConfigFile): string {
  if (isAbsolute(setting.value)) return setting.value;
  const base = setting.source.startsWith('"') && config.path ? dirname(config.path) : io.cwd;
  return resolve(base, setting.value);
}

function parseNumber(setting: Sourced<string> | undefined, what: string, min: number, max: number, integer = false): number | undefined {
  if (setting === undefined) return undefined;
  const n = Number(setting.value.trim());
  if (setting.value.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new CliError(`${setting.source} must be ${integer ? 'a whole number' : 'a number'} of ${what} between ${min} and ${max}, got "${setting.value}"`);
  }
  return n;
}

async function readSecretFile(path: string, source: string, out: Output): Promise<string> {
  let text: string;
  try {
    text = await readSmallRegularFile(path, MAX_FILE_BYTES.secret);
  } catch (error) {
    const reason = error instanceof CliError ? error.message : (error as NodeJS.ErrnoException).code ?? 'error';
    throw new CliError(`cannot read the client secret file ${path} (${source}): ${reason}`, 'a secret piped from a command goes in with --client-secret-stdin');
  }
  await warnIfOthersMayRead(path, 'client secret', (message) => out.warn(message));
  return secretText(windowsText(text, `the client secret file ${path} (${source})`));
}

async function resolveSecret(flags: Flags, io: Io, out: Output, config: ConfigFile): Promise<Sourced<string> | undefined> {
  const given = (['client-secret', 'client-secret-file', 'client-secret-stdin'] as const).filter((name) => flags[name] !== undefined && flags[name] !== false);
  if (given.length > 1) throw new CliError(`give the client secret one way only, not ${given.map((g) => `--${g}`).join(' and ')}`);
  let secret: Sourced<string> | undefined;
  if (flags['client-secret-stdin']) {
    if (io.stdinIsTTY) out.warn('reading the client secret from standard input: type it, then press Enter and Ctrl-D');
    secret = { value: secretText(await io.readStdin()), source: '--client-secret-stdin' };
  } else if (flags['client-secret-file'] !== undefined) {
    const path = resolve(io.cwd, flags['client-secret-file']);
    secret = { value: await readSecretFile(path, '--client-secret-file', out), source: `--client-secret-file ${path}` };
  } else if (flags['client-secret'] !== undefined) {
    out.warn('a secret given with --client-secret is visible to other users in the process list (ps); use --client-secret-file, --client-secret-stdin or $O_AUTH_CLIENT_SECRET instead');
    secret = { value: flags['client-secret'], source: '--client-secret' };
  } else {
    const env = fromEnv(io, ENVIRONMENT.clientSecret);
    const envFile = fromEnv(io, ENVIRONMENT.clientSecretFile);
    if (env) secret = env;
    else if (envFile) secret = { value: await readSecretFile(resolve(io.cwd, envFile.value), envFile.source, out), source: `${envFile.source} ${envFile.value}` };
    else if (typeof config.clientSecret === 'string') secret = { value: config.clientSecret, source: `"clientSecret" in ${config.path}` };
    else if (typeof config.clientSecretFile === 'string') {
      const path = resolvePath({ value: config.clientSecretFile, source: '"clientSecretFile"' }, io, config);
      secret = { value: await readSecretFile(path, `"clientSecretFile" in ${config.path}`, out), source: `"clientSecretFile" in ${config.path}` };
    }
  }
  // A secret pasted into the environment or a config file often brings a newline along; no real secret ends in one.
  if (secret && secret.value !== secret.value.trim() && !secret.source.startsWith('--client-secret-file') && !secret.source.startsWith('--client-secret-stdin')) {
    out.warn(`the client secret from ${secret.source} starts or ends with whitespace (a newline?); it was removed`);
    secret = { value: secret.value.trim(), source: secret.source };
  }
  if (secret && secret.value === '') throw new CliError(`the client secret from ${secret.source} is empty`);
  return secret;
}

/** Registers the password of `url` (as written and decoded) with the output's redactor. */
function learnUrlPassword(url: string, out: Output): void {
  const password = /^[a-z][a-z\d+.-]*:\/\/[^/?#@:]*:([^/?#@]*)@/i.exec(url)?.[1];
  if (!password) return;
  out.redactor.add(password);
  try {
    out.redactor.add(decodeURIComponent(password));
  } catch {
    // not percent-encoded
  }
}

/** Reads the settings of the `token` and `call` commands; registers the secret with the output's redactor at once. */
export async function resolveSettings(flags: Flags, io: Io, out: Output, defaultCachePath: () => string): Promise<Settings> {
  const configPath = flags.config ?? fromEnv(io, ENVIRONMENT.config)?.value;
  const config: ConfigFile = configPath ? await readConfig(resolve(io.cwd, configPath), out) : {};

  const clientSecret = await resolveSecret(flags, io, out, config);
  out.redactor.add(clientSecret?.value);

  const tokenUrl = pick(flags['token-url'], 'token-url', io, ENVIRONMENT.tokenUrl, config, 'tokenUrl');
  const baseUrl = pick(flags['base-url'], 'base-url', io, ENVIRONMENT.baseUrl, config, 'baseUrl');
  // A password in a URL is a credential too: never printed, whatever prints it.
  for (const setting of [tokenUrl, baseUrl]) if (setting) learnUrlPassword(setting.value, out);
  const clientId = pick(flags['client-id'], 'client-id', io, ENVIRONMENT.clientId, config, 'clientId');
  if (clientId && clientSecret) out.redactor.addBasic(clientId.value, clientSecret.value);

  const method = pick(flags['auth-method'], 'auth-method', io, ENVIRONMENT.authMethod, config, 'authMethod');
  if (method && !(CLIENT_AUTH_METHODS as readonly string[]).includes(method.value)) {
    throw new CliError(`${method.source} must be one of ${CLIENT_AUTH_METHODS.join(', ')}, got "${method.value}"`);
  }
  const keyFile = pick(flags['private-key-file'], 'private-key-file', io, ENVIRONMENT.privateKeyFile, config, 'privateKeyFile');
  let privateKey: Sourced<string> | undefined;
  if (keyFile) {
    const path = resolvePath(keyFile, io, config);
    privateKey = { value: await readFlagFile(path, 'private key', MAX_FILE_BYTES.pem), source: `${keyFile.source} ${path}` };
    await warnIfOthersMayRead(path, 'private key', (message) => out.warn(message));
  }

  const keyId = pick(flags['key-id'], 'key-id', io, ENVIRONMENT.keyId, config, 'keyId');
  const assertionFile = pick(flags['client-assertion-file'], 'client-assertion-file', io, ENVIRONMENT.clientAssertionFile, config, 'clientAssertionFile');
  let clientAssertion: Sourced<() => Promise<string>> | undefined;
  if (assertionFile) {
    const path = resolvePath(assertionFile, io, config);
    const read = async (): Promise<string> => {
      let text: string;
      try {
        text = (await readSmallRegularFile(path, MAX_FILE_BYTES.assertion)).trim();
      } catch (error) {
        const reason = error instanceof CliError ? error.message : (error as NodeJS.ErrnoException).code ?? 'error';
        throw new CliError(`cannot read the client assertion file ${path}: ${reason}`, 'the platform writes it (a Kubernetes projected service account token, a CI OIDC token); check the path');
      }
      out.redactor.add(text);
      return text;
    };
    await read(); // fails early on a missing file; read again for each token request (Kubernetes rotates it)
    clientAssertion = { value: read, source: `${assertionFile.source} ${path}` };
  }
  const basicEncoding = pick(flags['basic-encoding'], 'basic-encoding', io, ENVIRONMENT.basicEncoding, config, 'basicEncoding');
  if (basicEncoding && basicEncoding.value !== 'rfc6749' && basicEncoding.value !== 'raw') throw new CliError(`${basicEncoding.source} must be rfc6749 or raw, got "${basicEncoding.value}"`);
  const grantType = pick(flags['grant-type'], 'grant-type', io, ENVIRONMENT.grantType, config, 'grantType');
  const tokenParameters: Record<string, string> = {};
  const params = flags['token-param']?.length ? flags['token-param'].map((value) => ({ value, source: '--token-param' })) : configStrings(config, 'tokenParams');
  for (const param of params) {
    const eq = param.value.indexOf('=');
    if (eq <= 0) throw new CliError(`${param.source} must be NAME=VALUE, got "${param.value}"`);
    tokenParameters[param.value.slice(0, eq)] = param.value.slice(eq + 1);
  }

  const issuer = pick(flags.issuer, 'issuer', io, ENVIRONMENT.issuer, config, 'issuer');
  if (issuer) learnUrlPassword(issuer.value, out);
  const readPem = async (setting: Sourced<string> | undefined, what: string, secret = false): Promise<Sourced<string> | undefined> => {
    if (!setting) return undefined;
    const path = resolvePath(setting, io, config);
    const value = await readFlagFile(path, what, MAX_FILE_BYTES.pem);
    if (secret) await warnIfOthersMayRead(path, what, (message) => out.warn(message));
    return { value, source: `${setting.source} ${path}` };
  };
  const cert = await readPem(pick(flags.cert, 'cert', io, ENVIRONMENT.cert, config, 'cert'), 'client certificate');
  const tlsKey = await readPem(pick(flags.key, 'key', io, ENVIRONMENT.key, config, 'key'), 'client certificate key', true);
  const ca = await readPem(pick(flags.ca, 'ca', io, ENVIRONMENT.ca, config, 'ca'), 'CA certificate');
  const dpopEnv = fromEnv(io, ENVIRONMENT.dpop)?.value;
  const dpop = flags.dpop === true || (dpopEnv !== undefined ? /^(1|true|yes)$/i.test(dpopEnv) : config.dpop === true);

  const scopeSetting = flags.scope?.length ? { value: flags.scope.join(' '), source: '--scope' } : pick(undefined, 'scope', io, ENVIRONMENT.scope, config, 'scope');
  const resourceSetting = flags.resource?.length ? { value: flags.resource.join(' '), source: '--resource' } : pick(undefined, 'resource', io, ENVIRONMENT.resource, config, 'resource');
  const audience = pick(flags.audience, 'audience', io, ENVIRONMENT.audience, config, 'audience');

  const clockSkew = parseNumber(pick(flags['clock-skew'], 'clock-skew', io, ENVIRONMENT.clockSkew, config, 'clockSkew'), 'seconds', 0, 86_400);
  const timeout = parseNumber(pick(flags.timeout, 'timeout', io, ENVIRONMENT.timeout, config, 'timeout'), 'seconds', 0, 2_147_483);
  const retries = parseNumber(pick(flags.retries, 'retries', io, ENVIRONMENT.retries, config, 'retries'), 'retries', 0, 10, true);

  let cachePath: Sourced<string> | undefined;
  if (flags.cache !== undefined) cachePath = { value: flags.cache, source: '--cache' };
  else {
    const env = fromEnv(io, ENVIRONMENT.cache);
    if (env) cachePath = env;
    else if (config.cache === false) cachePath = { value: 'off', source: `"cache" in ${config.path}` };
    else if (typeof config.cache === 'string') cachePath = { value: config.cache, source: `"cache" in ${config.path}` };
  }
  if (cachePath?.value === 'off') cachePath = undefined;
  else cachePath = cachePath ? { value: resolvePath(cachePath, io, config), source: cachePath.source } : { value: defaultCachePath(), source: 'default' };

  let proxy: Sourced<string> | undefined = pick(flags.proxy, 'proxy', io, ENVIRONMENT.proxy, config, 'proxy') ?? { value: 'env', source: 'default: HTTPS_PROXY, HTTP_PROXY and NO_PROXY' };
  if (proxy.value === 'off' || proxy.value === 'none') proxy = undefined;
  else if (proxy.value !== 'env') {
    let url: URL | undefined;
    try {
      url = new URL(proxy.value);
      out.redactor.add(decodeURIComponent(url.password));
    } catch {
      url = undefined;
    }
    // The CLI's own words (the library's name no `off`); the value is not repeated: it may hold a password.
    if (url?.protocol !== 'http:' && url?.protocol !== 'https:') throw new CliError(`${proxy.source} must be 'env', 'off' or an http(s) URL such as http://proxy.internal:3128`);
  }

  return {
    tokenUrl,
    baseUrl,
    clientId,
    clientSecret,
    authMethod: method as Sourced<ClientAuthMethod> | undefined,
    privateKey,
    keyId: keyId?.value,
    clientAssertion,
    basicEncoding: basicEncoding?.value as Settings['basicEncoding'],
    grantType: grantType?.value,
    tokenParameters,
    issuer,
    cert,
    key: tlsKey,
    ca,
    dpop,
    scopes: scopeSetting ? scopeSetting.value.split(/\s+/).filter(Boolean) : [],
    resource: resourceSetting ? resourceSetting.value.split(/\s+/).filter(Boolean) : [],
    audience: audience?.value,
    clockSkew,
    timeoutMs: Math.round((timeout ?? DEFAULT_TIMEOUT_SECONDS) * 1000),
    retries,
    cachePath,
    noCache: flags['no-cache'] === true,
    proxy,
  };
}

/** Checks that the settings name a token endpoint and a client, with what its authentication method needs. */
export function requireCredentials(settings: Settings): void {
  if (!settings.tokenUrl && !settings.issuer) throw new CliError('no token URL is set', 'give --token-url (or --issuer to discover it), or set CLIENT_CREDENTIALS_TOKEN_URL, or "tokenUrl" in the --config file');
  if (settings.tokenUrl && settings.issuer) throw new CliError(`give a token URL or an issuer, not both (${settings.tokenUrl.source}, ${settings.issuer.source})`);
  if (!settings.clientId) throw new CliError('no client id is set', 'give --client-id, or set CLIENT_CREDENTIALS_CLIENT_ID (or O_AUTH_CLIENT_ID), or "clientId" in the --config file');
  const method = authMethodOf(settings);
  // With private_key_jwt, a --cert without --key is the signing key's certificate (its thumbprint goes in the header).
  if (Boolean(settings.cert) !== Boolean(settings.key) && !(method === 'private_key_jwt' && settings.cert && settings.privateKey)) {
    throw new CliError('a client certificate needs both --cert and --key', 'give the certificate (PEM) with --cert and its private key (PEM) with --key');
  }
  if (settings.clientAssertion && settings.privateKey) throw new CliError('give --client-assertion-file or --private-key-file, not both');
  if (settings.clientAssertion && method !== 'private_key_jwt') throw new CliError(`--client-assertion-file is sent as a private_key_jwt assertion, not with ${method}`);
  if (method === 'private_key_jwt' && !settings.privateKey && !settings.clientAssertion) throw new CliError('private_key_jwt needs a private key', 'give --private-key-file (PEM or JWK), or --client-assertion-file for an assertion the platform issues');
  if ((method === 'tls_client_auth' || method === 'self_signed_tls_client_auth') && !settings.cert) {
    throw new CliError(`${method} needs a client certificate`, 'give --cert FILE and --key FILE (PEM), and --ca FILE if the server\'s certificate is not publicly trusted');
  }
  // A credential the chosen method never sends is a mistake, not a fallback (as the library rules).
  const secretMethod = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt'].includes(method);
  if (settings.authMethod && settings.clientSecret && !secretMethod) {
    throw new CliError(
      `the authentication method ${method} (${settings.authMethod.source}) never sends a client secret, but one is set (${settings.clientSecret.source})`,
      method === 'none' ? 'a public client has no secret: remove it, or choose --auth-method client_secret_basic (or client_secret_post, client_secret_jwt)' : `remove the secret, or leave --auth-method unset`,
    );
  }
  if (settings.authMethod && settings.privateKey && method !== 'private_key_jwt') {
    throw new CliError(
      `the authentication method ${method} (${settings.authMethod.source}) signs no assertion, but a private key is set (${settings.privateKey.source})`,
      method === 'tls_client_auth' || method === 'self_signed_tls_client_auth' ? 'the TLS client key goes in --key' : 'remove it, or choose --auth-method private_key_jwt',
    );
  }
  if (secretMethod && !settings.clientSecret) {
    throw new CliError('no client secret is set', 'give --client-secret-file FILE or --client-secret-stdin, or set O_AUTH_CLIENT_SECRET (or CLIENT_CREDENTIALS_CLIENT_SECRET)');
  }
}

/** The authentication method: the configured one, else private_key_jwt for a key or an assertion without a secret. */
export function authMethodOf(settings: Settings): ClientAuthMethod {
  if (settings.authMethod) return settings.authMethod.value;
  return !settings.clientSecret && (settings.privateKey || settings.clientAssertion) ? 'private_key_jwt' : 'client_secret_basic';
}

/** The library configuration for these settings. */
export function clientConfiguration(settings: Settings, extra: Partial<ClientConfiguration>): ClientConfiguration {
  let privateKey: string | Record<string, unknown> | undefined = settings.privateKey?.value;
  if (privateKey !== undefined && privateKey.trimStart().startsWith('{')) {
    try {
      privateKey = JSON.parse(privateKey) as Record<string, unknown>;
    } catch {
      throw new CliError(`the private key file (${settings.privateKey!.source}) looks like JSON but does not parse`);
    }
  }
  // --cert without --key, with a private key for private_key_jwt: the key's certificate, for the assertion header.
  const assertionCertificate = settings.cert !== undefined && settings.key === undefined && privateKey !== undefined && authMethodOf(settings) === 'private_key_jwt';
  return {
    ...(settings.baseUrl ? { baseUrl: settings.baseUrl.value } : {}),
    ...(settings.tokenUrl ? { tokenUrl: settings.tokenUrl.value } : {}),
    ...(settings.issuer ? { issuer: settings.issuer.value } : {}),
    ...((settings.cert && !assertionCertificate) || settings.ca
      ? { tls: { ...(settings.cert && !assertionCertificate ? { cert: settings.cert.value } : {}), ...(settings.key ? { key: settings.key.value } : {}), ...(settings.ca ? { ca: withSystemRoots(settings.ca.value) } : {}) } }
      : {}),
    ...(settings.dpop ? { dpop: true } : {}),
    timeout: settings.timeoutMs,
    ...(settings.proxy ? { proxy: settings.proxy.value } : {}),
    ...(settings.retries !== undefined ? { retry: { maxAttempts: settings.retries + 1 } } : {}),
    // One short-lived process: a breaker would never see enough calls to open.
    circuitBreaker: false,
    ...(settings.clientId
      ? {
          clientCredentialsAuthCredentials: {
            oAuthClientId: settings.clientId.value,
            ...(settings.clientSecret ? { oAuthClientSecret: settings.clientSecret.value } : {}),
            ...(settings.scopes.length ? { oAuthScopes: settings.scopes } : {}),
            ...(settings.clockSkew !== undefined ? { clockSkew: settings.clockSkew } : {}),
            ...(settings.authMethod ? { clientAuthMethod: settings.authMethod.value } : {}),
            ...(privateKey !== undefined ? { privateKey } : {}),
            ...(assertionCertificate ? { certificate: settings.cert!.value } : {}),
            ...(settings.keyId !== undefined ? { keyId: settings.keyId } : {}),
            ...(settings.clientAssertion ? { clientAssertion: settings.clientAssertion.value } : {}),
            ...(settings.basicEncoding ? { basicEncoding: settings.basicEncoding } : {}),
            ...(settings.grantType !== undefined ? { grantType: settings.grantType } : {}),
            ...(Object.keys(settings.tokenParameters).length ? { tokenParameters: settings.tokenParameters } : {}),
            ...(settings.resource.length ? { resource: settings.resource } : {}),
            ...(settings.audience !== undefined ? { audience: settings.audience } : {}),
          },
        }
      : {}),
    ...extra,
  };
}

/** `pem` added to Node's bundled root certificates (a `ca` option alone would replace them). */
export function withSystemRoots(pem: string): string {
  return `${rootCertificates.join('\n')}\n${pem}`;
}

