/**
 * One token request to the token endpoint (RFC 6749 §4.4.2) and the mapping of its response (§5.1, §5.2)
 * to an {@link OAuthToken} or a typed error, including the quirks of real servers: an RFC 6749 error in a 2xx answer,
 * form-encoded token responses, and error bodies of other shapes (kept as a short excerpt in the message).
 * No retries here: those are `tokenFetcher.ts`'s.
 */
import { AbortError, ApiError, DiscoveryError, MalformedTokenResponseError, OAuthProviderError, TimeoutError, TokenEndpointRedirectError, type OAuthProviderErrorBody } from '../errors.js';
import { BodyTooLargeError, describeUrl, type HttpResponse, type Transport } from '../http/transport.js';
import { variantsOf } from '../redaction.js';
import { clientAuthParts, platformAssertion, platformAssertionParts, rawBasicDiffers, type BasicEncoding, type ClientAuthInput, type ClientAuthParts } from './clientAuthentication.js';
import { quotedList, staleMetadataFailure, type Discovery } from './discovery.js';
import type { DpopSigner } from './dpop.js';
import { tokenFromResponse, type LifetimePolicy, type OAuthToken, type TokenResponseWire } from '../token.js';

/** What one token request asks for, besides client authentication. */
export interface TokenRequestParameters {
  /** Scopes to request, sent space-separated in `scope`. */
  scopes: readonly string[];
  /** RFC 8707 resource indicators, each sent as `resource`. */
  resource: readonly string[];
  /** The `audience` parameter some servers (Auth0, Okta) use instead of `resource`. */
  audience: string | undefined;
  /** Extra form parameters, sent as they are. */
  extra: Readonly<Record<string, string>>;
}

/** Everything needed to POST to the token endpoint. */
export interface TokenEndpointContext {
  /** The token endpoint; with `discovery`, the issuer (an identity only: the endpoint comes from the metadata). */
  tokenUrl: string;
  /** With the `issuer` option: where the token endpoint, methods and algorithms come from. */
  discovery?: Discovery | undefined;
  /** With the `dpop` option: signs a DPoP proof for each token request (RFC 9449 §5). */
  dpop?: DpopSigner | undefined;
  transport: Transport;
  /** Total timeout in ms of one token request. */
  timeout: number;
  /** Largest token response body, in bytes. */
  maxBodyBytes: number;
  lifetime: LifetimePolicy;
  now: () => number;
  userAgent: string;
  /** Removes the client's credentials and tokens from an error (in place) before it leaves the token request. */
  redact?: (<T>(value: T) => T) | undefined;
  /** Told of each short-lived credential a request carries (a client assertion) before it is sent, to be redacted. */
  learn?: ((value: string) => void) | undefined;
  /** Told when automatic `client_secret_basic` learnt which encoding a token endpoint accepts. */
  onBasicEncoding?: ((event: { url: string; encoding: BasicEncoding }) => void) | undefined;
}

/** The response of a token request, with the parsed token. */
export interface TokenEndpointResponse extends HttpResponse {
  result: OAuthToken;
  /** The Client's clock (ms) just before the request was sent: the token's issue time. */
  sentAt: number;
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * A form-encoded token response (`access_token=…&token_type=bearer`, as GitHub's legacy endpoint answers), as an
 * object; undefined unless the content-type says form, or says nothing or text/plain and the body has an
 * `access_token` or `error` field.
 */
function parseForm(body: string, contentType: string | undefined): Record<string, string> | undefined {
  const type = (contentType ?? '').toLowerCase();
  const declared = type.includes('application/x-www-form-urlencoded');
  if (!declared && type !== '' && !type.startsWith('text/plain')) return undefined;
  if (!/^[A-Za-z0-9_.~%+-]+=/.test(body.trim())) return undefined;
  const form = Object.fromEntries(new URLSearchParams(body.trim()));
  return declared || 'access_token' in form || 'error' in form ? form : undefined;
}

function isErrorBody(value: unknown): value is OAuthProviderErrorBody {
  return typeof value === 'object' && value !== null && typeof (value as OAuthProviderErrorBody).error === 'string';
}

/** The origin a `Location` header points at, resolved against the token URL; undefined when there is none. */
function redirectOrigin(location: string | undefined, tokenUrl: string): string | undefined {
  if (!location) return undefined;
  try {
    const origin = new URL(location, tokenUrl || undefined).origin;
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

/**
 * An RFC 6749 §5.2 error in a 2xx answer: `{"error": "…"}` (not empty), or a nested `{"error": {"code"|"type": "…", "message": "…"}}`
 * (only when no `access_token` came with it).
 */
function errorIn2xx(value: unknown): OAuthProviderErrorBody | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  // An empty `error` is no RFC 6749 error code (`1*NQSCHAR`): some frameworks serialise "no error" so.
  if (isErrorBody(record) && record.error !== '') return record;
  const nested = record['error'];
  if (typeof record['access_token'] === 'string' || typeof nested !== 'object' || nested === null) return undefined;
  const inner = nested as Record<string, unknown>;
  const code = [inner['code'], inner['type'], inner['error']].find((v) => typeof v === 'string' && v !== '') as string | undefined;
  const description = [inner['message'], inner['description'], inner['error_description']].find((v) => typeof v === 'string') as string | undefined;
  return { error: code ?? 'server_error', ...(description !== undefined ? { error_description: description } : {}) };
}

/** Longest body excerpt kept in an error message, in characters. */
const EXCERPT_LENGTH = 160;

/**
 * A short, single-line excerpt of an error body for a message: `secrets` (what the request carried) masked in the
 * whole body first (a secret straddling the cut would otherwise survive minus its tail), then control characters
 * stripped, whitespace collapsed, truncated to {@link EXCERPT_LENGTH} characters. The Client's redactor scrubs the
 * message again afterwards.
 */
export function bodyExcerpt(body: string, secrets: readonly string[] = []): string {
  let text = body;
  for (const secret of secrets) if (secret.length >= 4 && text.includes(secret)) text = text.replaceAll(secret, '[redacted]');
  text = text.slice(0, EXCERPT_LENGTH * 4);
  // eslint-disable-next-line no-control-regex
  text = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').replace(/\s+/g, ' ').trim();
  return text.length > EXCERPT_LENGTH ? `${text.slice(0, EXCERPT_LENGTH)}…` : text;
}

/**
 * Maps a token endpoint's HTTP response to a token, or throws the matching typed error. `secrets` (the request's
 * credentials) are masked in any body excerpt.
 */
export function parseTokenResponse(response: HttpResponse, sentAtMs: number, lifetime: LifetimePolicy, secrets: readonly string[] = [], tokenUrl = ''): OAuthToken {
  if (response.statusCode >= 300 && response.statusCode < 400) throw new TokenEndpointRedirectError(response.statusCode, redirectOrigin(response.headers['location'], tokenUrl), describeUrl(tokenUrl));
  const json = parseJson(response.body) ?? parseForm(response.body, response.headers['content-type']);
  if (response.statusCode < 200 || response.statusCode >= 300) {
    if (isErrorBody(json)) throw new OAuthProviderError({ ...response, result: json });
    const excerpt = bodyExcerpt(response.body, secrets);
    throw new ApiError({ ...response, result: json }, `Token endpoint responded with status ${response.statusCode}${excerpt ? `: ${excerpt}` : ''}`);
  }
  if (json === undefined) {
    const type = response.headers['content-type'] ?? 'no content-type';
    throw new MalformedTokenResponseError(`Token response is not JSON (${type})`, response.statusCode);
  }
  const error = errorIn2xx(json);
  if (error) throw new OAuthProviderError({ ...response, result: error });
  return tokenFromResponse(json as TokenResponseWire, sentAtMs, lifetime, response.statusCode);
}

/** A form parameter whose name says it holds a credential. */
const CREDENTIAL_PARAMETER = /(?:token|secret|signature|assertion|password|key)$/i;

/**
 * The values of token request parameters named like a credential (`api_key`, `password`, `subject_token`): they are
 * masked like the client secret wherever a server's answer or an error could quote them.
 */
export function credentialParameterValues(parameters: Readonly<Record<string, string>>): string[] {
  return Object.entries(parameters).filter(([name, value]) => value !== '' && CREDENTIAL_PARAMETER.test(name)).map(([, value]) => value);
}

/**
 * The credentials a token request carries (Basic value and its decoded parts, `client_secret`, `client_assertion`,
 * each in every form it takes on the wire), to mask in excerpts; longest first.
 */
export function requestSecrets(form: URLSearchParams, headers: Record<string, string>): string[] {
  const secrets: string[] = [];
  for (const name of ['client_secret', 'client_assertion']) {
    const value = form.get(name);
    if (value) secrets.push(...variantsOf(value));
  }
  for (const value of credentialParameterValues(Object.fromEntries(form))) secrets.push(...variantsOf(value));
  const authorization = headers['authorization'];
  if (authorization) {
    const value = authorization.slice(authorization.indexOf(' ') + 1);
    secrets.push(value);
    if (/^basic /i.test(authorization)) {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const secret = decoded.slice(decoded.indexOf(':') + 1);
      secrets.push(secret);
      try {
        secrets.push(...variantsOf(decodeURIComponent(secret.replace(/\+/g, ' '))));
      } catch {
        // not percent-encoded
      }
    }
  }
  return secrets.sort((a, b) => b.length - a.length);
}

/**
 * Encodes token request parameters and authentication fields as an `application/x-www-form-urlencoded` body. A
 * `grant_type` in `parameters.extra` (the `grantType` option) replaces `client_credentials` in place.
 */
export function tokenRequestForm(parameters: TokenRequestParameters, authFields: Record<string, string>): URLSearchParams {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (parameters.scopes.length > 0) form.set('scope', parameters.scopes.join(' '));
  for (const resource of parameters.resource) form.append('resource', resource);
  if (parameters.audience !== undefined) form.set('audience', parameters.audience);
  for (const [name, value] of Object.entries(parameters.extra)) form.set(name, value);
  for (const [name, value] of Object.entries(authFields)) form.set(name, value);
  return form;
}

/**
 * POSTs one token request and returns the raw response; the total `timeout` and `signal` both apply.
 * `sentAt` is the clock reading taken just before sending, to anchor the expiry.
 */
export async function postTokenRequest(
  context: TokenEndpointContext,
  form: URLSearchParams,
  headers: Record<string, string>,
  signal?: AbortSignal,
): Promise<{ response: HttpResponse; sentAt: number }> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => {
    controller.abort(new TimeoutError(`Token request to ${describeUrl(context.tokenUrl)} timed out after ${context.timeout} ms`, context.timeout));
  }, context.timeout);
  timer.unref?.();
  const sentAt = context.now();
  try {
    const response = await context.transport({
      method: 'POST',
      url: context.tokenUrl,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', 'user-agent': context.userAgent, ...headers },
      body: form.toString(),
      signal: controller.signal,
      maxBodyBytes: context.maxBodyBytes,
      noRedirects: true,
    });
    return { response, sentAt };
  } catch (error) {
    if (error instanceof BodyTooLargeError) {
      throw new MalformedTokenResponseError(`Token response is larger than ${context.maxBodyBytes} bytes`, error.statusCode, { cause: error });
    }
    throw error;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Sends one token request and parses it into an {@link OAuthToken}. */
export async function requestToken(
  context: TokenEndpointContext,
  form: URLSearchParams,
  headers: Record<string, string>,
  signal?: AbortSignal,
): Promise<TokenEndpointResponse> {
  if (context.discovery) {
    const tokenUrl = (await context.discovery.metadata(signal)).token_endpoint;
    if (!tokenUrl) throw new DiscoveryError('invalid_metadata', `The metadata of ${context.discovery.issuer} has no token_endpoint`);
    context = { ...context, tokenUrl, discovery: undefined };
  }
  const assertion = form.get('client_assertion');
  if (assertion) context.learn?.(assertion);
  try {
    const { response, sentAt } = await postTokenRequest(context, form, headers, signal);
    const token = parseTokenResponse(response, sentAt, context.lifetime, requestSecrets(form, headers), context.tokenUrl);
    // The server's own members may echo the request (a debug endpoint): the token leaves without its credentials
    // (scrubbed before this token's own id_token is learnt, so that one is kept).
    if (token.extra && context.redact) token.extra = context.redact(token.extra);
    return { ...response, result: token, sentAt };
  } catch (error) {
    throw context.redact ? context.redact(error) : error;
  }
}

/**
 * One authenticated token request: resolves the endpoint through discovery when configured, authenticates the
 * client, adds a DPoP proof when configured, POSTs and parses. A 404 or a connection failure drops the cached
 * metadata, so the next attempt reads it again. A DPoP `use_dpop_nonce` error is retried once when a nonce other than the proof's is known.
 */
export async function sendTokenRequest(
  context: TokenEndpointContext,
  clientAuth: ClientAuthInput,
  parameters: TokenRequestParameters,
  extraFields: Record<string, string>,
  signal?: AbortSignal,
): Promise<TokenEndpointResponse> {
  const { discovery, dpop } = context;
  let auth = clientAuth;
  let algorithms: readonly string[] | undefined;
  if (discovery) {
    const resolved = await discovery.resolve(clientAuth, signal);
    context = { ...context, tokenUrl: resolved.tokenUrl, discovery: undefined };
    auth = resolved.clientAuth;
    algorithms = resolved.signingAlgorithms;
    const dpopAlgorithms = resolved.metadata.dpop_signing_alg_values_supported;
    if (dpop && dpopAlgorithms && !dpopAlgorithms.includes(dpop.algorithm)) {
      throw new DiscoveryError('unsupported_algorithm', `The authorization server ${discovery.issuer} does not accept ${dpop.algorithm} DPoP proofs (it accepts ${quotedList(dpopAlgorithms) || 'none'})`);
    }
  }
  // Automatic client_secret_basic: RFC 6749 first, unless this endpoint is known to want the raw pair.
  const automaticBasic = auth.method === 'client_secret_basic' && auth.basicEncoding === undefined && auth.basicMemory !== undefined
    && rawBasicDiffers(auth.clientId, auth.clientSecret ?? '');
  const memory = automaticBasic ? auth.basicMemory : undefined;
  const alone = memory?.nextAfterRefusals(context.tokenUrl);
  let encoding: BasicEncoding | undefined = memory ? (alone ?? memory.get(context.tokenUrl) ?? 'rfc6749') : undefined;
  // After both encodings were refused here, one attempt per token request (see BasicEncodingMemory).
  let triedOther = alone !== undefined;
  let nonceRetried = false;
  for (;;) {
    // Rebuilt for each retry too: a client assertion's jti may not be replayed.
    const parts = await authParts(context, auth, algorithms, encoding, signal);
    const form = tokenRequestForm(parameters, { ...extraFields, ...parts.form });
    const headers = dpop ? { ...parts.headers, dpop: dpop.proof('POST', context.tokenUrl) } : parts.headers;
    try {
      const response = await requestToken(context, form, headers, signal);
      dpop?.remember(context.tokenUrl, response.headers);
      if (memory !== undefined && encoding !== undefined && memory.get(context.tokenUrl) !== encoding) {
        memory.set(context.tokenUrl, encoding);
        // Told only when the other form had to be tried: a server that takes the first costs nothing, not even an event.
        if (triedOther) context.onBasicEncoding?.({ url: describeUrl(context.tokenUrl), encoding });
      }
      return response;
    } catch (error) {
      if (dpop && error instanceof ApiError) {
        dpop.remember(context.tokenUrl, error.headers);
        if (!nonceRetried && error instanceof OAuthProviderError && error.error === 'use_dpop_nonce' && dpop.hasNewerNonce(context.tokenUrl, headers.dpop!)) {
          nonceRetried = true;
          continue;
        }
      }
      if (memory !== undefined && encoding !== undefined && refusedClient(error)) {
        if (!triedOther) {
          triedOther = true;
          encoding = encoding === 'raw' ? 'rfc6749' : 'raw';
          continue;
        }
        memory.refused(context.tokenUrl, encoding);
      }
      if (discovery && staleMetadataFailure(error)) discovery.invalidate();
      throw error;
    }
  }
}

/**
 * True when the token endpoint refused the client's authentication: `invalid_client`, or a 401 or 403 with no RFC
 * 6749 error (Glewlwyd answers a bare 403 with an empty body).
 */
function refusedClient(error: unknown): boolean {
  if (error instanceof OAuthProviderError) return error.error === 'invalid_client';
  return error instanceof ApiError && (error.statusCode === 401 || error.statusCode === 403);
}

/** The authentication of one token request: a platform assertion (fetched now; `requestToken` hands it to the redactor), or `clientAuthParts`. */
async function authParts(context: TokenEndpointContext, auth: ClientAuthInput, algorithms: readonly string[] | undefined, encoding: BasicEncoding | undefined, signal?: AbortSignal): Promise<ClientAuthParts> {
  if (auth.clientAssertion && auth.method === 'private_key_jwt') {
    try {
      const assertion = await boundedAssertion(platformAssertion(auth.clientAssertion), context.timeout, signal);
      return platformAssertionParts(auth.clientId, assertion);
    } catch (error) {
      // The callback's own error may quote an assertion sent before (learnt by the redactor then).
      throw context.redact ? context.redact(error) : error;
    }
  }
  return clientAuthParts(auth, context.tokenUrl, context.now(), algorithms, encoding);
}

/**
 * Waits for the platform's assertion no longer than the token request timeout, and not past `signal` (the Client's
 * `close()`): a `clientAssertion` that never settles (a hung file system, a metadata service that does not answer)
 * fails the token request like a token endpoint that does not answer, instead of holding the fetch forever.
 */
function boundedAssertion(assertion: Promise<string>, timeout: number, signal: AbortSignal | undefined): Promise<string> {
  if (signal?.aborted) return Promise.reject(new AbortError('The token request was aborted before clientAssertion gave an assertion', { cause: signal.reason }));
  return new Promise<string>((resolve, reject) => {
    const settle = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      settle();
      reject(new AbortError('The token request was aborted while clientAssertion was running', { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      settle();
      reject(new TimeoutError(`clientAssertion gave no assertion within ${timeout} ms (the token request timeout); no token request was sent`, timeout));
    }, timeout);
    timer.unref?.();
    signal?.addEventListener('abort', onAbort, { once: true });
    assertion.then((value) => {
      settle();
      resolve(value);
    }, (error: unknown) => {
      settle();
      reject(error);
    });
  });
}
