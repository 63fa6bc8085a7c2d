/**
 * A session of the `token` and `call` commands: the settings, a `Client` built from them with the file token cache,
 * and, under `--verbose`, the Client's lifecycle events on stderr (they never carry a secret or a token; the output's
 * redactor is a second guard).
 */
import { Client, FileTokenStore, type ClientEvents, type TokenStore } from '../index.js';
import type { Flags } from './args.js';
import { cacheKey, cacheStoreKey, cliTokenCache, defaultCachePath } from './cache.js';
import { expiryPhrase, withoutCredentials } from './format.js';
import type { Io, Output } from './output.js';
import { authMethodOf, clientConfiguration, requireCredentials, resolveSettings, type Settings } from './settings.js';

/** An open session; `close()` it when done. */
export interface Session {
  client: Client;
  settings: Settings;
  close(): Promise<void>;
}

function describeEvent<K extends keyof ClientEvents>(name: K, event: ClientEvents[K], now: number): string {
  const e = event as Record<string, unknown>;
  switch (name) {
    case 'tokenFetched':
    case 'tokenRefreshed': {
      const source = { endpoint: 'the token endpoint', store: 'the cache', provider: 'the token provider', preset: 'the preset token', manual: 'updateToken' }[e['source'] as string] ?? String(e['source']);
      const scope = e['scope'] === undefined ? '' : `, scope "${String(e['scope'])}"`;
      const expiry = typeof e['expiresAtMs'] === 'number' ? `, ${expiryPhrase(Math.floor(e['expiresAtMs'] / 1000), now)}` : '';
      return `${name}: token from ${source}${scope}${expiry}`;
    }
    case 'requestRetried':
      return `requestRetried: token request attempt ${String(e['attempt'])} failed (${(e['error'] as Error).message}); retrying in ${String(e['delayMs'])} ms`;
    case 'refreshFailed':
      return `refreshFailed: background refresh failed (${(e['error'] as Error).message})`;
    case 'tokenInvalidated':
      return `tokenInvalidated: the token was dropped (${String(e['reason'])}${e['reason'] === 'unauthorized' ? ': the API answered 401' : ''})`;
    case 'tokenWait':
      return 'tokenWait: no usable token in memory; getting one';
    case 'unauthorizedRetried':
      return 'unauthorizedRetried: the request was sent again with a new token';
    case 'storeError':
      return `storeError: the token cache failed on ${String(e['operation'])} (${(e['error'] as Error).message}); going on without it`;
    case 'callbackError':
      return `callbackError: ${String(e['callback'])} threw`;
    case 'circuitOpen':
      return `circuitOpen: after ${String(e['failures'])} failures`;
    default:
      return name;
  }
}

const EVENTS: (keyof ClientEvents)[] = [
  'tokenFetched', 'tokenRefreshed', 'refreshFailed', 'tokenInvalidated', 'requestRetried', 'unauthorizedRetried',
  'circuitOpen', 'circuitClosed', 'tokenWait', 'callbackError', 'storeError',
];

/** Reads the settings and opens a Client with the token cache. */
export async function openSession(flags: Flags, io: Io, out: Output, version: string): Promise<Session> {
  const settings = await resolveSettings(flags, io, out, () => defaultCachePath(io.env));
  requireCredentials(settings);
  if (out.verbose) {
    if (settings.tokenUrl) out.debug(`token URL ${withoutCredentials(settings.tokenUrl.value)} (${settings.tokenUrl.source})`);
    if (settings.issuer) out.debug(`issuer ${withoutCredentials(settings.issuer.value)} (${settings.issuer.source}): the token endpoint is discovered`);
    if (settings.cert) out.debug(settings.key ? `client certificate from ${settings.cert.source}, key from ${settings.key.source} (not shown)` : `certificate of the private key from ${settings.cert.source}: its x5t#S256 goes in the assertion header`);
    if (settings.clientAssertion) out.debug(`client assertion from ${settings.clientAssertion.source}, read for each token request (not shown)`);
    if (settings.ca) out.debug(`trusted CA certificates from ${settings.ca.source}`);
    if (settings.dpop) out.debug('DPoP: tokens are bound to a key made for this run, so they are not cached between runs');
    if (settings.baseUrl) out.debug(`base URL ${withoutCredentials(settings.baseUrl.value)} (${settings.baseUrl.source})`);
    out.debug(`client id ${settings.clientId!.value} (${settings.clientId!.source}), authentication ${authMethodOf(settings)}`);
    if (settings.clientSecret) out.debug(`client secret from ${settings.clientSecret.source} (not shown)`);
    if (settings.scopes.length) out.debug(`scope "${settings.scopes.join(' ')}"`);
    out.debug(settings.proxy ? `proxy ${settings.proxy.value.replace(/\/\/[^/@]*@/, '//')} (${settings.proxy.source})` : 'proxy off');
    out.debug(settings.cachePath && !settings.dpop ? `token cache ${settings.cachePath.value} (${settings.cachePath.source})${settings.noCache ? ', not read (--no-cache)' : ''}` : 'token cache off');
  }

  let tokenStore: TokenStore | undefined;
  let tokenStoreKey: Buffer | undefined;
  let lastRead: string | undefined;
  // A DPoP-bound token is useless to the next run, which has another key.
  const nameKey = settings.cachePath && !settings.dpop
    ? await cacheKey(settings.cachePath.value).catch((error: unknown) => {
      if (out.verbose) out.debug(`token cache off: its key file cannot be read or created (${(error as NodeJS.ErrnoException)?.code ?? 'error'})`);
      return undefined;
    })
    : undefined;
  if (settings.cachePath && nameKey) {
    tokenStoreKey = cacheStoreKey(nameKey);
    tokenStore = cliTokenCache(new FileTokenStore({ path: settings.cachePath.value }), {
      nameKey,
      reuse: !settings.noCache,
      credential: settings.clientSecret?.value ?? settings.privateKey?.value ?? settings.key?.value,
      clockSkew: settings.clockSkew ?? 0,
      now: () => Date.now(),
      onRead: (outcome, token) => {
        if (!out.verbose || outcome === lastRead) return;
        lastRead = outcome;
        if (outcome === 'hit') out.debug(`cache: reusing the cached token (${token?.expiry ? expiryPhrase(token.expiry, Date.now()) : 'no expiry'})`);
        else if (outcome === 'miss') out.debug('cache: no token cached for these settings');
        else if (outcome === 'too-old') out.debug('cache: the cached token has less than a quarter of its lifetime left; getting a new one');
        else out.debug('cache: not read (--no-cache)');
      },
    });
  }

  const client = new Client(
    clientConfiguration(settings, { ...(tokenStore ? { tokenStore, tokenStoreKey } : {}), userAgent: `oauth-client-credentials-cli/${version}`, ...(flags['allow-insecure-http'] ? { allowInsecureHttp: true } : {}) }),
  );
  if (out.verbose) {
    for (const name of EVENTS) client.on(name, (event) => out.debug(describeEvent(name, event, Date.now())));
  }
  return {
    client,
    settings,
    close: () => client.close(),
  };
}
