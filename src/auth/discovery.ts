/**
 * Authorization server metadata discovery: RFC 8414 (`/.well-known/oauth-authorization-server`, path-aware), then
 * OpenID Connect Discovery 1.0 (`/.well-known/openid-configuration`). The metadata's `issuer` must equal the
 * configured one. The metadata is fetched once (single flight), cached for a TTL on the Client's clock, and
 * dropped after the token endpoint answers 404 or cannot be reached, so the next token request reads it again.
 *
 * It gives the token endpoint (or its RFC 8705 §5 mTLS alias for a TLS client authentication method), and the
 * supported authentication methods and signing algorithms, used to choose defaults and to fail early with a
 * {@link DiscoveryError} when the configured method or algorithm is not offered.
 */
import { ApiError, DiscoveryError, NetworkError, TimeoutError, escapeControls } from '../errors.js';
import { isInsecureRemote } from '../http/requestGuard.js';
import { describeUrl, type Transport } from '../http/transport.js';
import type { ClientAuthInput, ClientAuthMethod } from './clientAuthentication.js';

/** The RFC 8414 §2 / OpenID Connect Discovery §3 members this library reads. Other members are kept as they are. */
export interface AuthorizationServerMetadata {
  issuer: string;
  token_endpoint?: string;
  jwks_uri?: string;
  token_endpoint_auth_methods_supported?: string[];
  token_endpoint_auth_signing_alg_values_supported?: string[];
  /** RFC 8705 §5: endpoints to use with mutual TLS. */
  mtls_endpoint_aliases?: { token_endpoint?: string; [endpoint: string]: unknown };
  /** RFC 9449 §5.1. */
  dpop_signing_alg_values_supported?: string[];
  /** RFC 8705 §3. */
  tls_client_certificate_bound_access_tokens?: boolean;
  [member: string]: unknown;
}

/** What discovery needs. */
export interface DiscoveryOptions {
  /** The issuer identifier (an https URL; http is accepted for loopback tests). */
  issuer: string;
  transport: Transport;
  /** The Client's clock, in ms. */
  now: () => number;
  /** How long metadata is reused, in ms. Default one hour. */
  ttl?: number;
  /** Timeout of each metadata request, in ms. */
  timeout: number;
  userAgent: string;
  /** Largest metadata document, in bytes. Default 262,144. */
  maxBodyBytes?: number;
  /** Accept a `token_endpoint` (or mTLS alias) on plain http to a host other than this machine. Default false. */
  allowInsecureHttp?: boolean;
}

/** How a token request is made, once the metadata is known. */
export interface ResolvedTokenEndpoint {
  /** The token endpoint (the mTLS alias for a TLS client authentication method, when the server has one). */
  tokenUrl: string;
  /** The client authentication, with the method chosen from the metadata when none was configured. */
  clientAuth: ClientAuthInput;
  /** The server's `token_endpoint_auth_signing_alg_values_supported`, to choose the assertion algorithm. */
  signingAlgorithms: readonly string[] | undefined;
  metadata: AuthorizationServerMetadata;
}

/** Default metadata TTL: one hour. */
export const DEFAULT_METADATA_TTL = 3_600_000;

/** The two metadata URLs of `issuer`, in the order they are tried: RFC 8414 §3.1 (path-aware), then OpenID Connect. */
export function metadataUrls(issuer: string): [string, string] {
  const url = new URL(issuer);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '');
  return [`${url.origin}/.well-known/oauth-authorization-server${path}`, `${url.origin}${path}/.well-known/openid-configuration`];
}

const TLS_METHODS: readonly ClientAuthMethod[] = ['tls_client_auth', 'self_signed_tls_client_auth'];

/** An http(s) URL that parses (the scheme in any case, RFC 3986 §3.1). */
function isHttpUrl(value: unknown): value is string {
  return typeof value === 'string' && /^https?:\/\//i.test(value) && URL.canParse(value);
}

/** Longest piece of metadata text quoted in an error, and most list entries. */
const QUOTE_LENGTH = 100;
const QUOTE_ENTRIES = 20;

/**
 * Server text for an error message: JSON-escaped (no control character can forge a log line) and bounded (no
 * document can flood one).
 */
function quoted(value: string): string {
  return escapeControls(JSON.stringify(value.length > QUOTE_LENGTH ? `${value.slice(0, QUOTE_LENGTH)}…` : value).slice(1, -1));
}

/** A server's list for an error message: each entry {@link quoted}, at most {@link QUOTE_ENTRIES} of them. */
export function quotedList(values: readonly string[]): string {
  const shown = values.slice(0, QUOTE_ENTRIES).map(quoted).join(', ');
  return values.length > QUOTE_ENTRIES ? `${shown} and ${values.length - QUOTE_ENTRIES} more` : shown;
}

function stringArray(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : undefined;
}

/**
 * Fetches, checks and caches the metadata of one issuer. One instance per Client (shared by its clones); at most
 * one metadata request in flight.
 */
export class Discovery {
  readonly issuer: string;
  readonly #options: DiscoveryOptions;
  #cached: { metadata: AuthorizationServerMetadata; until: number } | undefined;
  #inFlight: Promise<AuthorizationServerMetadata> | undefined;
  /** Metadata documents fetched (for stats and tests). */
  fetches = 0;

  constructor(options: DiscoveryOptions) {
    this.issuer = options.issuer;
    this.#options = options;
  }

  /** The issuer's metadata: cached while fresh, else fetched (callers arriving meanwhile share the fetch). */
  metadata(signal?: AbortSignal): Promise<AuthorizationServerMetadata> {
    const cached = this.#cached;
    if (cached && this.#options.now() < cached.until) return Promise.resolve(cached.metadata);
    // The shared fetch is not tied to the first caller's signal: a caller that gives up leaves it to the others.
    this.#inFlight ??= this.#fetch().finally(() => {
      this.#inFlight = undefined;
    });
    if (!signal) return this.#inFlight;
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#inFlight!.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /** Drops the cached metadata, so the next token request reads it again (after a 404 or connection failure). */
  invalidate(): void {
    this.#cached = undefined;
  }

  /**
   * The token endpoint and client authentication for `clientAuth`.
   * @throws DiscoveryError when the server does not offer the configured method or algorithm, or has no token endpoint.
   */
  async resolve(clientAuth: ClientAuthInput, signal?: AbortSignal): Promise<ResolvedTokenEndpoint> {
    const metadata = await this.metadata(signal);
    const methods = metadata.token_endpoint_auth_methods_supported;
    let auth = clientAuth;
    if (methods && !methods.includes(clientAuth.method)) {
      const fallback = clientAuth.methodExplicit ? undefined : defaultMethod(clientAuth, methods);
      if (!fallback) {
        throw new DiscoveryError(
          'unsupported_method',
          `The authorization server ${this.issuer} does not offer client authentication method ${clientAuth.method} (it offers ${quotedList(methods) || 'none'})`,
        );
      }
      auth = { ...clientAuth, method: fallback };
    }
    const algorithms = metadata.token_endpoint_auth_signing_alg_values_supported;
    const signs = auth.method === 'client_secret_jwt' || auth.method === 'private_key_jwt';
    if (signs && auth.algorithm && algorithms && !algorithms.includes(auth.algorithm)) {
      throw new DiscoveryError(
        'unsupported_algorithm',
        `The authorization server ${this.issuer} does not accept ${auth.algorithm} client assertions (it accepts ${quotedList(algorithms) || 'none'})`,
      );
    }
    const alias = TLS_METHODS.includes(auth.method) ? metadata.mtls_endpoint_aliases?.token_endpoint : undefined;
    const tokenUrl = typeof alias === 'string' ? alias : metadata.token_endpoint;
    if (!tokenUrl) throw new DiscoveryError('invalid_metadata', `The metadata of ${this.issuer} has no token_endpoint`);
    return { tokenUrl, clientAuth: auth, signingAlgorithms: algorithms, metadata };
  }

  async #fetch(): Promise<AuthorizationServerMetadata> {
    const [rfc8414, oidc] = metadataUrls(this.issuer);
    const redirects: string[] = [];
    let metadata = await this.#get(rfc8414, redirects);
    metadata ??= await this.#get(oidc, redirects);
    if (!metadata) {
      const moved = redirects.length > 0 ? ` (${redirects.join('; ')}: metadata is read only at these two URLs, so check the issuer)` : '';
      throw new DiscoveryError('not_found', `No authorization server metadata for ${this.issuer} at ${describeUrl(rfc8414)} nor ${describeUrl(oidc)}${moved}`);
    }
    this.#cached = { metadata, until: this.#options.now() + (this.#options.ttl ?? DEFAULT_METADATA_TTL) };
    return metadata;
  }

  /**
   * One metadata document, or undefined when the server has none there (3xx, 4xx, not JSON; a redirect is described
   * in `redirects`). Network errors propagate.
   */
  async #get(url: string, redirects: string[]): Promise<AuthorizationServerMetadata | undefined> {
    const { transport, timeout, userAgent } = this.#options;
    const signal = AbortSignal.timeout(timeout);
    this.fetches++;
    let response;
    try {
      // Never a redirect, whatever the dispatcher (as token requests): another origin could supply metadata naming this issuer.
      response = await transport({ method: 'GET', url, headers: { accept: 'application/json', 'user-agent': userAgent }, signal, timeout, maxBodyBytes: this.#options.maxBodyBytes ?? 262_144, noRedirects: true });
    } catch (error) {
      if (error instanceof NetworkError || error instanceof TimeoutError) throw error;
      if (signal.aborted) throw new TimeoutError(`Metadata request to ${describeUrl(url)} timed out after ${timeout} ms`, timeout, { cause: error });
      throw new DiscoveryError('invalid_metadata', `The metadata at ${describeUrl(url)} could not be read`, { cause: error });
    }
    if (response.statusCode >= 500) throw new ApiError(response, `Metadata request to ${describeUrl(url)} responded with status ${response.statusCode}`);
    if (response.statusCode >= 300 && response.statusCode < 400) {
      const location = response.headers['location'];
      let target = 'nowhere';
      try {
        if (location) target = describeUrl(new URL(location, url).href);
      } catch {
        target = 'an invalid Location';
      }
      redirects.push(`${describeUrl(url)} answered ${response.statusCode}, a redirect to ${target}`);
    }
    if (response.statusCode < 200 || response.statusCode >= 300) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(response.body);
    } catch {
      return undefined;
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
    return this.#check(json as Record<string, unknown>, url);
  }

  #check(json: Record<string, unknown>, url: string): AuthorizationServerMetadata {
    if (json['issuer'] !== this.issuer) {
      const found = typeof json['issuer'] === 'string' ? quoted(json['issuer']) : 'none';
      throw new DiscoveryError('issuer_mismatch', `The metadata at ${describeUrl(url)} names issuer ${found}, not ${this.issuer} (RFC 8414 §3.3)`);
    }
    for (const member of ['token_endpoint', 'jwks_uri'] as const) {
      const value = json[member];
      if (value !== undefined && !isHttpUrl(value)) {
        throw new DiscoveryError('invalid_metadata', `The metadata of ${this.issuer} has an invalid ${member} (an http(s) URL is required)`);
      }
    }
    const aliases = json['mtls_endpoint_aliases'];
    if (aliases !== undefined && (typeof aliases !== 'object' || aliases === null || Array.isArray(aliases))) {
      throw new DiscoveryError('invalid_metadata', `The metadata of ${this.issuer} has an invalid mtls_endpoint_aliases`);
    }
    const alias = (aliases as Record<string, unknown> | undefined)?.['token_endpoint'];
    if (alias !== undefined && !isHttpUrl(alias)) {
      throw new DiscoveryError('invalid_metadata', `The metadata of ${this.issuer} has an invalid mtls_endpoint_aliases.token_endpoint (an http(s) URL is required)`);
    }
    // The client secret goes where these point: plain http only to this machine, as for the `tokenUrl` option, and
    // never from an https issuer (a downgrade: on loopback, any local user may be listening on that port).
    const secureIssuer = /^https:/i.test(this.issuer);
    for (const [member, value] of [['token_endpoint', json['token_endpoint']], ['mtls_endpoint_aliases.token_endpoint', alias]] as const) {
      if (typeof value !== 'string' || this.#options.allowInsecureHttp) continue;
      if (isInsecureRemote(value)) {
        throw new DiscoveryError('insecure_endpoint', `The metadata of ${this.issuer} names a ${member} on plain http to another host (${describeUrl(value)}): the client secret would travel unencrypted (set \`allowInsecureHttp: true\` to allow it)`);
      }
      if (secureIssuer && /^http:/i.test(value)) {
        throw new DiscoveryError('insecure_endpoint', `The metadata of the https issuer ${this.issuer} names a ${member} on plain http (${describeUrl(value)}): the client secret would leave TLS (set \`allowInsecureHttp: true\` to allow it)`);
      }
    }
    for (const member of ['token_endpoint_auth_methods_supported', 'token_endpoint_auth_signing_alg_values_supported', 'dpop_signing_alg_values_supported'] as const) {
      if (json[member] !== undefined && !stringArray(json[member])) throw new DiscoveryError('invalid_metadata', `The metadata of ${this.issuer} has an invalid ${member}`);
    }
    return json as AuthorizationServerMetadata;
  }
}

/** The method to use when none was configured and the default is not offered: the first offered that the credentials allow. */
function defaultMethod(clientAuth: ClientAuthInput, offered: readonly string[]): ClientAuthMethod | undefined {
  const candidates: ClientAuthMethod[] = clientAuth.privateKey
    ? ['private_key_jwt']
    : clientAuth.clientSecret !== undefined
      ? ['client_secret_basic', 'client_secret_post', 'client_secret_jwt']
      : [];
  return candidates.find((m) => offered.includes(m));
}

/** True when a token endpoint failure means the metadata may be stale: a 404, or no connection. */
export function staleMetadataFailure(error: unknown): boolean {
  return error instanceof NetworkError || (error instanceof ApiError && error.statusCode === 404);
}
