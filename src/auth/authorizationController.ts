/**
 * `OAuthAuthorizationController`: the raw token endpoint call, as the reference SDK exposes it. Most users never
 * need it; the Client calls the token endpoint by itself.
 */
import type { Client } from '../client.js';
import { InvalidOptionError } from '../errors.js';
import { requestToken, type TokenEndpointResponse } from './tokenEndpoint.js';

/** Calls the token endpoint of a Client directly. */
export class OAuthAuthorizationController {
  readonly #client: Client;

  constructor(client: Client) {
    this.#client = client;
  }

  /**
   * POSTs `grant_type=client_credentials` to the Client's token URL with the given `Authorization` header
   * (e.g. `Basic …`) and optional `scope`, plus `fieldParameters` as extra form fields. No retries, no caching.
   *
   * @returns the HTTP response with `result`, the parsed {@link OAuthToken}.
   * @throws OAuthProviderError on an RFC 6749 §5.2 error response.
   * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.4.2
   */
  async requestToken(
    { authorization, scope }: { authorization?: string; scope?: string },
    fieldParameters?: Record<string, string>,
    requestOptions?: { signal?: AbortSignal },
  ): Promise<TokenEndpointResponse> {
    const context = this.#client.tokenEndpointContext();
    if (!context) throw new InvalidOptionError('tokenUrl', 'is required to request a token');
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (scope) form.set('scope', scope);
    for (const [name, value] of Object.entries(fieldParameters ?? {})) form.set(name, value);
    return requestToken(context, form, authorization ? { authorization } : {}, requestOptions?.signal);
  }
}
