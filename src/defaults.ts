/**
 * Every default of the Client's options, in one place: the configuration resolver reads them from here, and
 * test/defaults.test.ts checks docs/configuration.md and the options' TSDoc against them. Ground floor: imports
 * nothing of ours but types.
 */
import type { ClientAuthMethod } from './types/keys.js';

/** The defaults of the Client's options (times in ms unless the option is in seconds, sizes in bytes). */
export const DEFAULTS = {
  /** `timeout`: no overall limit (undici's own limits apply). */
  timeout: 0,
  /** `tokenRequestTimeout`, when `timeout` is 0 (else `timeout`). */
  tokenRequestTimeout: 30_000,
  maxTokenResponseBytes: 65_536,
  /** `defaultTokenLifetime`, in seconds. */
  defaultTokenLifetime: 300,
  /** `maxTokenLifetime`, in seconds: one year. */
  maxTokenLifetime: 31_536_000,
  retry: { maxAttempts: 4, baseDelay: 200, maxDelay: 5_000, maxElapsed: 30_000, maxRetryAfter: 60_000 },
  circuitBreaker: { failureThreshold: 5, maxProbeInterval: 1_000 },
  retryOnUnauthorized: true,
  maxCachedTokens: 1_000,
  tokenStoreTimeout: 1_000,
  userAgent: 'oauth-client-credentials/0.1',
  allowInsecureHttp: false,
  /** `maxResponseBytes`: 10 MiB. */
  maxResponseBytes: 10_485_760,
  closeTimeout: 5_000,
  /** `clientCredentialsAuthCredentials.clockSkew`, in seconds. */
  clockSkew: 0,
  /** `clientCredentialsAuthCredentials.clientAuthMethod`. */
  clientAuthMethod: 'client_secret_basic' as ClientAuthMethod,
} as const;

/**
 * The longest delay Node's timers keep, in ms (2^31 − 1, about 24.8 days): a longer one fires after 1 ms with a
 * `TimeoutOverflowWarning`. Every option that ends up in a timer is bounded by it.
 */
export const MAX_TIMER_MS = 2_147_483_647;
