/**
 * The option keys the Client knows, and the check that rejects any other key with a "did you mean" suggestion.
 * In JavaScript a misspelled option (`oAuthScope`, `retrys`) would otherwise be ignored in silence.
 *
 * To add an option: add it to its interface (`ClientConfiguration`, `ClientCredentialsAuthCredentials`,
 * `RetryOptions`, `CircuitBreakerOptions`) and to the matching list below. The lists are checked against the
 * interfaces at compile time (`satisfies Record<keyof …, true>`): a key missing here, or one here that the interface
 * lacks, is a type error in this file.
 */
import type { ClientConfiguration, ClientCredentialsAuthCredentials } from './types/options.js';
import type { CircuitBreakerOptions, RetryOptions } from './types/resilience.js';
import { InvalidOptionError } from './errors.js';

/** Every key of {@link ClientConfiguration}. */
export const CLIENT_OPTION_KEYS = {
  baseUrl: true,
  tokenUrl: true,
  timeout: true,
  clientCredentialsAuthCredentials: true,
  tokenRequestTimeout: true,
  maxTokenResponseBytes: true,
  refreshAhead: true,
  defaultTokenLifetime: true,
  maxTokenLifetime: true,
  retry: true,
  circuitBreaker: true,
  retryOnUnauthorized: true,
  maxCachedTokens: true,
  tokenStore: true,
  tokenStoreTimeout: true,
  clock: true,
  dispatcher: true,
  proxy: true,
  tls: true,
  headers: true,
  allowedOrigins: true,
  userAgent: true,
  issuer: true,
  dpop: true,
  allowInsecureHttp: true,
  maxResponseBytes: true,
  closeTimeout: true,
} as const satisfies Record<keyof ClientConfiguration, true>;

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

/**
 * Throws {@link InvalidOptionError} for the first own key of `options` that `known` lacks, naming it by its path
 * (`prefix` + key) with a "did you mean" when a known key is close. Keys whose value is `undefined` are checked too:
 * a misspelling is a mistake whatever its value.
 */
export function assertKnownKeys(options: object, known: Readonly<Record<string, true>>, prefix = ''): void {
  for (const key of Object.keys(options)) {
    if (Object.hasOwn(known, key)) continue;
    const hint = suggest(key, Object.keys(known));
    const where = prefix ? `of \`${prefix.replace(/\.$/, '')}\`` : 'of the Client';
    throw new InvalidOptionError(`${prefix}${key}`, `is not an option ${where}${hint ? `; did you mean \`${hint}\`?` : ''}`);
  }
}
