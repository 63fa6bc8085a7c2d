/**
 * One token request to the token endpoint (RFC 6749 §4.4.2) and the mapping of its response (§5.1, §5.2)
 * to an {@link OAuthToken} or a typed error. No retries here: those are `tokenFetcher.ts`'s.
 */
import { ApiError, MalformedTokenResponseError, OAuthProviderError, TimeoutError, TokenEndpointRedirectError, type OAuthProviderErrorBody } from '../errors.js';
import { BodyTooLargeError, describeUrl, type HttpResponse, type Transport } from '../http/transport.js';
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
  tokenUrl: string;
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
}

/** The response of a token request, with the parsed token. */
export interface TokenEndpointResponse extends HttpResponse {
  result: OAuthToken;
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
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

/** Maps a token endpoint's HTTP response to a token, or throws the matching typed error. */
export function parseTokenResponse(response: HttpResponse, sentAtMs: number, lifetime: LifetimePolicy, tokenUrl = ''): OAuthToken {
  if (response.statusCode >= 300 && response.statusCode < 400) throw new TokenEndpointRedirectError(response.statusCode, redirectOrigin(response.headers['location'], tokenUrl), describeUrl(tokenUrl));
  const json = parseJson(response.body);
  if (response.statusCode < 200 || response.statusCode >= 300) {
    if (isErrorBody(json)) throw new OAuthProviderError({ ...response, result: json });
    throw new ApiError({ ...response, result: json }, `Token endpoint responded with status ${response.statusCode}`);
  }
  if (json === undefined) {
    const type = response.headers['content-type'] ?? 'no content-type';
    throw new MalformedTokenResponseError(`Token response is not JSON (${type})`, response.statusCode);
  }
  return tokenFromResponse(json as TokenResponseWire, sentAtMs, lifetime, response.statusCode);
}

/** Encodes token request parameters and authentication fields as an `application/x-www-form-urlencoded` body. */
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
  try {
    const { response, sentAt } = await postTokenRequest(context, form, headers, signal);
    return { ...response, result: parseTokenResponse(response, sentAt, context.lifetime, context.tokenUrl) };
  } catch (error) {
    throw context.redact ? context.redact(error) : error;
  }
}
