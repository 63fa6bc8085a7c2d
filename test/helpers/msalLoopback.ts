/**
 * Points MSAL Node (`@azure/msal-node`) at a plain-http token endpoint on 127.0.0.1, for the benchmark and the tests
 * that measure MSAL beside this library.
 *
 * MSAL accepts only an https authority and, by default, looks the authority up on the network (instance discovery and
 * OpenID metadata). It documents extension points for authorities it does not know, and this uses only those:
 * `auth.authority` + `auth.knownAuthorities` (a fixed https authority, trusted as given), `auth.authorityMetadata`
 * (its endpoints, so no discovery request is made), `auth.cloudDiscoveryMetadata` (no instance discovery) and
 * `system.networkClient` (MSAL's `INetworkModule`, the transport). The network client here is MSAL's own default
 * (`fetch`, the response's headers, status and JSON body) with one difference: a URL on the fixed authority's origin
 * is sent to the local http origin instead. It is transport only: MSAL's token cache, its expiry and refresh logic and
 * its throttling are MSAL's own and are what the benchmark and the tests measure.
 */
import type { Configuration, INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';

/** The https origin MSAL is configured with; its requests are sent to the local token endpoint's origin. */
export const MSAL_AUTHORITY_ORIGIN = 'https://login.bench.test';
/** A tenant id in the authority's path (MSAL refuses `common` and `organizations` for client credentials). */
const TENANT = 'bench-tenant';

/** MSAL's network client with the fixed https origin mapped to `localOrigin` (e.g. `http://127.0.0.1:PORT`). */
export function loopbackNetworkClient(localOrigin: string): INetworkModule {
  const target = (url: string): string => (url.startsWith(`${MSAL_AUTHORITY_ORIGIN}/`) ? localOrigin + url.slice(MSAL_AUTHORITY_ORIGIN.length) : url);
  const send = async <T>(method: 'GET' | 'POST', url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> => {
    const res = await fetch(target(url), { method, headers: options?.headers ?? {}, ...(method === 'POST' ? { body: options?.body ?? '' } : {}) });
    return { headers: Object.fromEntries(res.headers), body: (await res.json()) as T, status: res.status };
  };
  return {
    sendGetRequestAsync: (url, options) => send('GET', url, options),
    sendPostRequestAsync: (url, options) => send('POST', url, options),
  };
}

/**
 * The MSAL configuration for a confidential client whose token endpoint is `tokenUrl` (plain http on loopback): the
 * token endpoint's path is kept, its origin replaced by {@link MSAL_AUTHORITY_ORIGIN} in what MSAL sees.
 */
export function msalLoopbackConfiguration(tokenUrl: string, clientId: string, clientSecret: string): Configuration {
  const local = new URL(tokenUrl);
  const authority = `${MSAL_AUTHORITY_ORIGIN}/${TENANT}`;
  const host = new URL(MSAL_AUTHORITY_ORIGIN).host;
  const endpoint = (path: string) => `${MSAL_AUTHORITY_ORIGIN}${path}`;
  return {
    auth: {
      clientId,
      clientSecret,
      authority,
      knownAuthorities: [host],
      authorityMetadata: JSON.stringify({
        issuer: authority,
        token_endpoint: endpoint(local.pathname),
        authorization_endpoint: endpoint('/authorize'),
        end_session_endpoint: endpoint('/logout'),
        jwks_uri: endpoint('/jwks'),
      }),
      cloudDiscoveryMetadata: JSON.stringify({
        tenant_discovery_endpoint: `${authority}/v2.0/.well-known/openid-configuration`,
        'api-version': '1.1',
        metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
      }),
    },
    system: { networkClient: loopbackNetworkClient(local.origin) },
  };
}
