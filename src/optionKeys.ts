/**
 * The option keys the Client knows, and the check that rejects any other key with a "did you mean" suggestion.
 * In JavaScript a misspelled option (`oAuthScope`, `retrys`) would otherwise be ignored in silence.
 *
 * To add an option: add it to its interface (`ClientConfiguration`, `ClientCredentialsAuthCredentials`,
 * `RetryOptions`, `CircuitBreakerOptions`) and to the matching list below (for the Client's own options, with what it
 * touches: {@link OptionKind}). The lists are checked against the interfaces at compile time (`satisfies Record<keyof
 * …, …>`): a key missing here, or one here that the interface lacks, is a type error in this file.
 */
import type { ClientConfiguration, ClientCredentialsAuthCredentials } from './types/options.js';
import type { CircuitBreakerOptions, RetryOptions } from './types/resilience.js';
import type { TokenSelector } from './types/selector.js';
import { InvalidOptionError } from './errors.js';

/**
 * What changing an option of {@link ClientConfiguration} touches, e.g. in `withConfiguration`:
 *
 * - `token`: how tokens are got or kept; a Client that differs in one has a token cache of its own.
 * - `connection`: the connections (dispatcher, proxy, TLS); a Client that differs in one has its own connections, and,
 *   since the token requests go through them too, its own token cache.
 * - `request`: only how API requests are made; a clone that differs only in these shares the token cache and the
 *   connections.
 */
export type OptionKind = 'token' | 'connection' | 'request';

/** Every key of {@link ClientConfiguration}, by what it touches. Checked against the interface at compile time. */
export const CLIENT_OPTION_KINDS = {
  baseUrl: 'request',
  tokenUrl: 'token',
  timeout: 'request',
  clientCredentialsAuthCredentials: 'token',
  tokenRequestTimeout: 'token',
  maxTokenResponseBytes: 'token',
  refreshAhead: 'token',
  defaultTokenLifetime: 'token',
  maxTokenLifetime: 'token',
  retry: 'token',
  circuitBreaker: 'token',
  retryOnUnauthorized: 'request',
  maxCachedTokens: 'token',
  tokenStore: 'token',
  tokenStoreTimeout: 'token',
  tokenStoreKey: 'token',
  clock: 'token',
  dispatcher: 'connection',
  proxy: 'connection',
  tls: 'connection',
  headers: 'request',
  allowedOrigins: 'request',
  userAgent: 'request',
  issuer: 'token',
  dpop: 'token',
  allowInsecureHttp: 'request',
  maxResponseBytes: 'request',
  closeTimeout: 'request',
} as const satisfies Record<keyof ClientConfiguration, OptionKind>;

/** The options of {@link ClientConfiguration} of the given kinds. */
export function optionsOfKind(...kinds: OptionKind[]): (keyof ClientConfiguration)[] {
  return (Object.keys(CLIENT_OPTION_KINDS) as (keyof ClientConfiguration)[]).filter((name) => kinds.includes(CLIENT_OPTION_KINDS[name]));
}

/** Every key of {@link ClientConfiguration}. */
export const CLIENT_OPTION_KEYS: Readonly<Record<keyof ClientConfiguration, true>> = Object.fromEntries(Object.keys(CLIENT_OPTION_KINDS).map((k) => [k, true])) as Record<keyof ClientConfiguration, true>;

/** Every key of {@link ClientCredentialsAuthCredentials}. */
export const CREDENTIALS_OPTION_KEYS = {
  oAuthClientId: true,
  oAuthClientSecret: true,
  oAuthScopes: true,
  oAuthToken: true,
  clockSkew: true,
  oAuthClockSkew: true,
  oAuthTokenProvider: true,
  oAuthOnTokenUpdate: true,
  clientAuthMethod: true,
  privateKey: true,
  privateKeyAlgorithm: true,
  keyId: true,
  assertionAudience: true,
  resource: true,
  audience: true,
  tokenParameters: true,
  grantType: true,
  basicEncoding: true,
  certificate: true,
  certificateThumbprints: true,
  clientAssertion: true,
} as const satisfies Record<keyof ClientCredentialsAuthCredentials, true>;

/** Every key of {@link RetryOptions}. */
export const RETRY_OPTION_KEYS = {
  maxAttempts: true,
  baseDelay: true,
  maxDelay: true,
  maxElapsed: true,
  maxRetryAfter: true,
} as const satisfies Record<keyof RetryOptions, true>;

/** Every key of {@link CircuitBreakerOptions}, and `cooldown`, the old name of `maxProbeInterval`. */
export const CIRCUIT_BREAKER_OPTION_KEYS = {
  failureThreshold: true,
  maxProbeInterval: true,
  cooldown: true,
} as const satisfies Record<keyof CircuitBreakerOptions | 'cooldown', true>;

/**
 * Every key of the per-call token options: {@link TokenSelector} and `retryOnUnauthorized` (`init.oauth` of
 * `client.fetch`, `client.interceptor()`, `attachClientCredentials()` and axios's `config.oauth`).
 */
export const SELECTOR_OPTION_KEYS = {
  scopes: true,
  resource: true,
  audience: true,
  retryOnUnauthorized: true,
} as const satisfies Record<keyof TokenSelector | 'retryOnUnauthorized', true>;

/**
 * The edit distance between `a` and `b` (optimal string alignment: insertions, deletions, substitutions and
 * transpositions of neighbours each count one), ignoring case.
 */
export function editDistance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}

/**
 * The known name closest to `name`, if one is close enough to be a likely misspelling: a different case, an edit
 * distance of at most a third of the name's length (at least 1, at most 3), or else the only known name that shares all
 * of it but its last letter (at least 4 characters).
 */
export function suggest(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.min(3, Math.max(1, Math.floor(name.length / 3)));
  for (const candidate of known) {
    if (candidate.toLowerCase() === name.toLowerCase()) return candidate;
    const distance = editDistance(name, candidate);
    if (distance <= bestDistance && (best === undefined || distance < bestDistance)) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best !== undefined) return best;
  // A cut-short name (`--retry` for `--retries`): the one known name that shares all of it but its last letter.
  const stem = name.replace(/^-+/, '').toLowerCase();
  const shared = (candidate: string): number => {
    const other = candidate.replace(/^-+/, '').toLowerCase();
    let n = 0;
    while (n < stem.length && stem[n] === other[n]) n++;
    return n;
  };
  const longer = [...known].filter((candidate) => {
    const n = shared(candidate);
    return n >= 4 && n >= stem.length - 1;
  });
  return longer.length === 1 ? longer[0] : undefined;
}

const CREDENTIALS = 'clientCredentialsAuthCredentials';

/**
 * Option names of other OAuth clients (openid-client, simple-oauth2, @badgateway/oauth2-client, axios-oauth-client,
 * MSAL) and of the RFCs' wire names, by meaning: the path of our option that does the same. Keys are compared
 * without case, `_` or `-`.
 */
const PEER_OPTION_NAMES: Readonly<Record<string, string>> = {
  clientid: `${CREDENTIALS}.oAuthClientId`,
  clientsecret: `${CREDENTIALS}.oAuthClientSecret`,
  secret: `${CREDENTIALS}.oAuthClientSecret`,
  scope: `${CREDENTIALS}.oAuthScopes`,
  scopes: `${CREDENTIALS}.oAuthScopes`,
  audience: `${CREDENTIALS}.audience`,
  resource: `${CREDENTIALS}.resource`,
  token: `${CREDENTIALS}.oAuthToken`,
  accesstoken: `${CREDENTIALS}.oAuthToken`,
  tokenendpointauthmethod: `${CREDENTIALS}.clientAuthMethod`,
  authmethod: `${CREDENTIALS}.clientAuthMethod`,
  authorizationmethod: `${CREDENTIALS}.clientAuthMethod`,
  clientassertiontype: `${CREDENTIALS}.clientAuthMethod`,
  tokenendpointauthsigningalg: `${CREDENTIALS}.privateKeyAlgorithm`,
  kid: `${CREDENTIALS}.keyId`,
  extraparams: `${CREDENTIALS}.tokenParameters`,
  tokenparams: `${CREDENTIALS}.tokenParameters`,
  tokenendpoint: 'tokenUrl',
  tokenendpointurl: 'tokenUrl',
  accesstokenuri: 'tokenUrl',
  tokenuri: 'tokenUrl',
  tokenhost: 'tokenUrl',
  tokenpath: 'tokenUrl',
  authority: 'issuer',
  issuerurl: 'issuer',
  discoveryendpoint: 'issuer',
  server: 'issuer',
  ontokenupdate: `${CREDENTIALS}.oAuthOnTokenUpdate`,
  ontoken: `${CREDENTIALS}.oAuthOnTokenUpdate`,
  tokenprovider: `${CREDENTIALS}.oAuthTokenProvider`,
  provider: `${CREDENTIALS}.oAuthTokenProvider`,
  gettoken: `${CREDENTIALS}.oAuthTokenProvider`,
  credentials: CREDENTIALS,
  auth: CREDENTIALS,
  retries: 'retry',
  maxretries: 'retry',
  retrypolicy: 'retry',
  breaker: 'circuitBreaker',
};

const normalise = (name: string): string => name.toLowerCase().replace(/[_-]/g, '');

/**
 * Another library's name for one of our options (`clientId`), as the path of ours relative to the object it was found
 * in (`prefix`: `''` for the Client's options, `clientCredentialsAuthCredentials.` for the credentials).
 */
function peerMeaning(key: string, prefix: string): string | undefined {
  const name = normalise(key);
  const peer = Object.hasOwn(PEER_OPTION_NAMES, name) ? PEER_OPTION_NAMES[name] : undefined;
  if (peer === undefined) return undefined;
  if (prefix === '') return peer;
  return peer.startsWith(prefix) ? peer.slice(prefix.length) : undefined;
}

/**
 * Throws {@link InvalidOptionError} for the first own key of `options` that `known` lacks, naming it by its path
 * (`prefix` + key) with a "did you mean" when a known key is close, or when the key is another library's name for one
 * of ours (`clientId` → `clientCredentialsAuthCredentials.oAuthClientId`). Keys whose value is `undefined` are
 * checked too: a misspelling is a mistake whatever its value.
 */
export function assertKnownKeys(options: object, known: Readonly<Record<string, true>>, prefix = ''): void {
  for (const key of Object.keys(options)) {
    if (Object.hasOwn(known, key)) continue;
    // A peer's name first (`scope` is ours inside the credentials), then a misspelling, then, on the Client, a
    // credentials option given one level too high (`oAuthClientId`).
    const nested = prefix === '' ? suggest(key, Object.keys(CREDENTIALS_OPTION_KEYS)) : undefined;
    const hint = peerMeaning(key, prefix) ?? suggest(key, Object.keys(known)) ?? (nested === undefined ? undefined : `${CREDENTIALS}.${nested}`);
    const where = prefix ? `of \`${prefix.replace(/\.$/, '')}\`` : 'of the Client';
    throw new InvalidOptionError(`${prefix}${key}`, `is not an option ${where}${hint ? `; did you mean \`${hint}\`?` : ''}`);
  }
}

/**
 * Names other HTTP clients (axios, got, ky, fetch) give to the options of a call, by meaning: ours in the same object.
 * Keys are compared without case, `_` or `-`.
 */
const PEER_CALL_NAMES: Readonly<Record<string, string>> = {
  data: 'json',
  params: 'query',
  searchparams: 'query',
  qs: 'query',
  url: 'path',
  scope: 'scopes',
  oauth: 'scopes',
};

/**
 * The error for a key that the options of a call (`known`, described by `where`: `of a request`) lack, with a "did you
 * mean" when a known key is close or the key is another client's name for one of ours (`params` → `query`).
 * Kept out of {@link assertCallKeys} so that the check itself stays small enough to inline.
 */
export function unknownCallOption(key: string, known: Readonly<Record<string, true>>, where: string, prefix = ''): InvalidOptionError {
  const name = normalise(key);
  const peer = Object.hasOwn(PEER_CALL_NAMES, name) ? PEER_CALL_NAMES[name] : undefined;
  const hint = (peer !== undefined && Object.hasOwn(known, peer) ? peer : undefined) ?? suggest(key, Object.keys(known));
  return new InvalidOptionError(`${prefix}${key}`, `is not an option ${where}${hint ? `; did you mean \`${hint}\`?` : ''}`);
}

/**
 * Throws {@link InvalidOptionError} for the first key of the options of a call that `known` lacks (see
 * {@link unknownCallOption}). On the hot path of every request: a `for…in` and one property read per key, no
 * allocation. Inherited enumerable keys are checked too, as the call reads them like its own.
 */
export function assertCallKeys(options: object, known: Readonly<Record<string, true>>, where: string, prefix = ''): void {
  for (const key in options) if (known[key] !== true) throw unknownCallOption(key, known, where, prefix);
}

/**
 * The per-call token options (`selector`), checked: an object with the keys of {@link SELECTOR_OPTION_KEYS} only
 * (undefined and null select nothing, as before). `path` names it in the error (`oauth`; `''` for the options object
 * itself), `where` says whose options they are (`of client.interceptor()`).
 */
export function assertSelectorKeys(selector: unknown, path: string, where: string): void {
  if (selector === undefined || selector === null) return;
  if (typeof selector !== 'object' || Array.isArray(selector)) {
    throw new InvalidOptionError(path || 'options', `${path ? '' : `${where} `}must be an object (${Object.keys(SELECTOR_OPTION_KEYS).map((k) => `\`${k}\``).join(', ')}), got ${Array.isArray(selector) ? 'an array' : typeof selector}`);
  }
  assertCallKeys(selector, SELECTOR_OPTION_KEYS, where, path === '' ? '' : `${path}.`);
}
