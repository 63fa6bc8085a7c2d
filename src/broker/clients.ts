/**
 * The broker's OAuth clients: one library `Client` per entry of `clients`, built from the entry and the files it
 * names (secret, private key, certificate, key, CA, DPoP key), read fresh each time one is opened. The proxy and the
 * token API reach the token through the Client's own token access (the library's lifecycle: one shared fetch,
 * refresh ahead, stale-if-error, the token store's lease), never around it.
 */
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import { rootCertificates } from 'node:tls';
import { Client } from '../client.js';
import type { ClientConfiguration } from '../configuration.js';
import { InvalidOptionError } from '../errors.js';
import { fileReadProblem, MAX_FILE_BYTES, readSmallRegularFile, secretText } from '../io/smallFile.js';
import { createDpopSigner, type DpopSigner } from '../auth/dpop.js';
import { toKeyObject } from '../auth/jws.js';
import type { AccessKey, TokenAccess } from '../adapters/tokenAccess.js';
import type { TokenStore } from '../stores/tokenStore.js';
import type { OAuthToken } from '../token.js';
import type { BrokerClientConfig } from './config.js';
import type { UpstreamTls } from './upstreams.js';

/** One open client of the broker. */
export interface BrokerClient {
  readonly name: string;
  readonly config: BrokerClientConfig;
  readonly client: Client;
  readonly access: TokenAccess;
  /** The token selection of the client's configured scopes, resource and audience. */
  readonly key: AccessKey;
  /** The DPoP signer (the same key as the Client's), when the client uses DPoP. */
  readonly signer: DpopSigner | undefined;
  /** The DPoP key, kept across re-opens so that a held DPoP-bound token stays usable. */
  readonly dpopKey: KeyObject | undefined;
  /** Absolute paths of the files the client was built from (watched for changes). */
  readonly files: readonly string[];
  /** A digest of the configuration and the files' contents: equal digests make equal clients. */
  readonly fingerprint: string;
  /** Secrets read from files, for the log's redactor. */
  readonly secrets: readonly string[];
  /**
   * The client's certificate and CAs (`cert`, `key`, `ca`), for its routes' upstream connections too: a
   * certificate-bound token is accepted only with its certificate (RFC 8705 §3). Undefined when it has none.
   */
  readonly upstreamTls: UpstreamTls | undefined;
}

/** What opening a client needs besides its configuration. */
export interface OpenClientOptions {
  /** Relative file paths resolve against this folder (the config file's). */
  readonly baseDir: string;
  readonly tokenStore?: TokenStore | undefined;
  readonly userAgent: string;
  /** A token to start with (the previous client's, when a secret file changed). */
  readonly presetToken?: OAuthToken | undefined;
  /** The previous client's DPoP key, reused when the client still asks for an ephemeral one. */
  readonly dpopKey?: KeyObject | undefined;
}

async function readSetting(baseDir: string, file: string, path: string, files: string[]): Promise<string> {
  const absolute = isAbsolute(file) ? file : resolve(baseDir, file);
  files.push(absolute);
  try {
    return await readSmallRegularFile(absolute, MAX_FILE_BYTES.pem);
  } catch (error) {
    throw new InvalidOptionError(path, `names a file that cannot be read (${absolute}: ${fileReadProblem(error)})`);
  }
}

/**
 * Opens the client `config` describes: reads its files and builds its `Client`.
 * @throws InvalidOptionError naming the JSON path of an unreadable file or a value the library refuses.
 */
export async function openBrokerClient(config: BrokerClientConfig, options: OpenClientOptions): Promise<BrokerClient> {
  const at = `clients.${config.name}`;
  const files: string[] = [];
  const read = (file: string | undefined, key: string): Promise<string | undefined> => (file === undefined ? Promise.resolve(undefined) : readSetting(options.baseDir, file, `${at}.${key}`, files));
  const secretFileText = await read(config.clientSecretFile, 'clientSecretFile');
  const secret = secretFileText !== undefined ? secretText(secretFileText) : config.clientSecret;
  if (secret !== undefined && secret === '') throw new InvalidOptionError(`${at}.clientSecretFile`, 'names an empty file');
  const privateKeyText = await read(config.privateKeyFile, 'privateKeyFile');
  const cert = await read(config.certFile, 'cert');
  const key = await read(config.keyFile, 'key');
  const ca = await read(config.caFile, 'ca');
  const dpopText = config.dpop !== undefined && config.dpop !== true ? await read(config.dpop.privateKeyFile, 'dpop.privateKeyFile') : undefined;

  let privateKey: string | Record<string, unknown> | undefined = privateKeyText;
  if (privateKeyText !== undefined && privateKeyText.trimStart().startsWith('{')) {
    try {
      privateKey = JSON.parse(privateKeyText) as Record<string, unknown>;
    } catch {
      throw new InvalidOptionError(`${at}.privateKeyFile`, 'looks like a JWK but is not valid JSON');
    }
  }
  let dpopKey: KeyObject | undefined;
  if (config.dpop === true) dpopKey = options.dpopKey ?? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  else if (dpopText !== undefined) {
    try {
      dpopKey = toKeyObject(dpopText.trimStart().startsWith('{') ? (JSON.parse(dpopText) as Record<string, unknown>) : dpopText);
    } catch {
      throw new InvalidOptionError(`${at}.dpop.privateKeyFile`, 'is not a private key (PEM or JWK)');
    }
  }
  const signer = dpopKey ? createDpopSigner({ privateKey: dpopKey }, Date.now) : undefined;

  const tls: UpstreamTls | undefined = cert !== undefined || ca !== undefined ? { ...(cert !== undefined ? { cert } : {}), ...(key !== undefined ? { key } : {}), ...(ca !== undefined ? { ca: `${rootCertificates.join('\n')}\n${ca}` } : {}) } : undefined;
  const configuration: ClientConfiguration = {
    ...(config.tokenUrl !== undefined ? { tokenUrl: config.tokenUrl } : {}),
    ...(config.issuer !== undefined ? { issuer: config.issuer } : {}),
    ...(tls !== undefined ? { tls: { ...tls } } : {}),
    ...(dpopKey ? { dpop: { privateKey: dpopKey } } : {}),
    ...(options.tokenStore ? { tokenStore: options.tokenStore } : {}),
    ...(config.retries !== undefined ? { retry: { maxAttempts: config.retries + 1 } } : {}),
    ...(config.allowInsecureHttp ? { allowInsecureHttp: true } : {}),
    // Each token request, and each wait for a token (a proxied request or a token API call with none held).
    timeout: config.tokenTimeoutMs,
    userAgent: options.userAgent,
    clientCredentialsAuthCredentials: {
      oAuthClientId: config.clientId,
      ...(secret !== undefined ? { oAuthClientSecret: secret } : {}),
      ...(config.scopes.length ? { oAuthScopes: [...config.scopes] } : {}),
      ...(config.clockSkew !== undefined ? { clockSkew: config.clockSkew } : {}),
      ...(config.authMethod !== undefined ? { clientAuthMethod: config.authMethod } : {}),
      ...(privateKey !== undefined ? { privateKey } : {}),
      ...(config.resource.length ? { resource: [...config.resource] } : {}),
      ...(config.audience !== undefined ? { audience: config.audience } : {}),
      ...(options.presetToken ? { oAuthToken: options.presetToken } : {}),
    },
  };
  let client: Client;
  try {
    client = new Client(configuration);
  } catch (error) {
    if (error instanceof InvalidOptionError) throw new InvalidOptionError(`${at} (${error.option})`, error.message.replace(/^The `[^`]*` option /, ''));
    throw error;
  }
  const access = client.tokenAccess();
  const digest = createHash('sha256').update(JSON.stringify(config));
  for (const text of [secret, privateKeyText, cert, key, ca, dpopText]) digest.update(`\u0000${text ?? ''}`);
  return {
    name: config.name,
    config,
    client,
    access,
    key: access.key(),
    signer,
    dpopKey,
    files,
    fingerprint: digest.digest('hex'),
    secrets: [secret, privateKeyText, key, dpopText].filter((s): s is string => s !== undefined && s !== ''),
    upstreamTls: tls,
  };
}
