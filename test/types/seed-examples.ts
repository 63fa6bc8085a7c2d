/**
 * The seed's three code examples, verbatim but for `baseUrl` and `tokenUrl`, compiled by tsc with the build,
 * and misuse of the public API that must NOT compile (`@ts-expect-error`: an unused one is itself an error).
 * test/types.test.ts type-checks this file, and runs the examples against real servers.
 * `saveTokenToDatabase` and `loadTokenFromDatabase` are the application's own; the runtime test provides them.
 */
import {
  ApiError,
  Client,
  ClientCredentialsAuthManager,
  OAuthAuthorizationController,
  OAuthProviderError,
  type OAuthToken,
} from '../../src/index.js';

declare function saveTokenToDatabase(token: OAuthToken): void;
declare function loadTokenFromDatabase(): OAuthToken | undefined;

/** Seed example 1: Client Initialization. */
export function clientInitialization(baseUrl: string, tokenUrl: string): Client {
  const client = new Client({
    baseUrl,
    tokenUrl,
    clientCredentialsAuthCredentials: {
      oAuthClientId: 'OAuthClientId',
      oAuthClientSecret: 'OAuthClientSecret'
    },
  });
  return client;
}

/** Seed example 2: Adding OAuth Token Update Callback. */
export function tokenUpdateCallback(baseUrl: string, tokenUrl: string): Client {
  const client = new Client({
    baseUrl,
    tokenUrl,
    clientCredentialsAuthCredentials: {
      oAuthClientId: 'OAuthClientId',
      oAuthClientSecret: 'OAuthClientSecret',
      oAuthOnTokenUpdate: (token: OAuthToken) => {
        // Add the callback handler to perform operations like save to DB or file etc.
        // It will be triggered whenever the token gets updated
        saveTokenToDatabase(token);
      }
    },
  });
  return client;
}

/** Seed example 3: Adding Custom OAuth Token Provider. */
export function customTokenProvider(baseUrl: string, tokenUrl: string): Client {
  const client = new Client({
    baseUrl,
    tokenUrl,
    clientCredentialsAuthCredentials: {
      oAuthClientId: 'OAuthClientId',
      oAuthClientSecret: 'OAuthClientSecret',
      oAuthTokenProvider: (lastOAuthToken: OAuthToken | undefined, authManager: ClientCredentialsAuthManager) => {
        // Add the callback handler to provide a new OAuth token
        // It will be triggered whenever the lastOAuthToken is undefined or expired
        return loadTokenFromDatabase() ?? authManager.fetchToken();
      }
    },
  });
  return client;
}

/**
 * Seed example 3 as the README shows it: a real provider checks that the stored token has not expired, since
 * once it has, returning it fails every call with ERR_TOKEN_EXPIRED for good.
 */
export function customTokenProviderChecked(baseUrl: string, tokenUrl: string): Client {
  const client = new Client({
    baseUrl,
    tokenUrl,
    clientCredentialsAuthCredentials: {
      oAuthClientId: 'OAuthClientId',
      oAuthClientSecret: 'OAuthClientSecret',
      oAuthTokenProvider: (lastOAuthToken: OAuthToken | undefined, authManager: ClientCredentialsAuthManager) => {
        // Add the callback handler to provide a new OAuth token
        // It will be triggered whenever the lastOAuthToken is undefined or expired
        const stored = loadTokenFromDatabase();
        return stored && !authManager.isExpired(stored) ? stored : authManager.fetchToken();
      }
    },
  });
  return client;
}

/** The public API as issue 2 spells it: these lines must compile. */
export async function publicApi(baseUrl: string, tokenUrl: string, signal: AbortSignal): Promise<OAuthToken> {
  const client = new Client({
    baseUrl,
    tokenUrl,
    timeout: 30_000,
    clientCredentialsAuthCredentials: {
      oAuthClientId: 'OAuthClientId',
      oAuthClientSecret: 'OAuthClientSecret',
      oAuthScopes: ['api:read'],
      oAuthToken: undefined,
      clockSkew: 0,
      oAuthTokenProvider: async (lastOAuthToken, authManager) => lastOAuthToken ?? authManager.fetchToken(),
      oAuthOnTokenUpdate: (token) => {
        void token.accessToken;
      },
    },
  });
  const alias = client.withConfiguration({ clientCredentialsAuthCredentials: { oAuthClientId: 'OAuthClientId', oAuthClockSkew: 5, oAuthScopes: 'api:read api:write' } });
  const res = await client.request({ method: 'GET', path: '/echo', query: { a: 1, b: ['x'] }, headers: { 'x-a': 'b' }, body: 'raw', auth: true, signal });
  const status: number = res.statusCode;
  const headers: Record<string, string> = res.headers;
  const body: string = res.body;
  const result: unknown = res.result;
  void [status, headers, body, result];
  const typed = await alias.post<{ id: number }>('/echo', { json: true });
  const id: number = typed.result.id;
  void id;
  try {
    await client.get('/things', { auth: false });
  } catch (error) {
    if (error instanceof OAuthProviderError) {
      const oauthError: string = error.error;
      const description: string | undefined = error.errorDescription;
      void [oauthError, description, error.statusCode, error.code];
    }
    if (error instanceof ApiError) void [error.statusCode, error.headers, error.body, error.result, error.code];
  }
  const manager: ClientCredentialsAuthManager = client.clientCredentialsAuthManager;
  const fetched: OAuthToken = await manager.fetchToken();
  const valid: boolean = manager.isValid(fetched) && !manager.isExpired(fetched);
  void valid;
  await manager.updateToken(fetched);
  await manager.updateToken();
  const raw = await new OAuthAuthorizationController(client).requestToken({ authorization: 'Basic xyz', scope: 'api:read' }, { resource: 'https://api.example.test' });
  return raw.result;
}

/** Misuse that must not compile. Never called. */
export function misuse(baseUrl: string, tokenUrl: string, client: Client): void {
  new Client({
    baseUrl,
    tokenUrl,
    clientCredentialsAuthCredentials: {
      // @ts-expect-error the client id is a string
      oAuthClientId: 1234,
      oAuthClientSecret: 'OAuthClientSecret',
    },
  });
  new Client({
    baseUrl,
    tokenUrl,
    clientCredentialsAuthCredentials: {
      oAuthClientId: 'OAuthClientId',
      // @ts-expect-error unknown option (a typo of oAuthClientSecret)
      oAuthClientSecrett: 'OAuthClientSecret',
    },
  });
  new Client({
    // @ts-expect-error unknown top-level option
    tokenURL: tokenUrl,
  });
  new Client({
    clientCredentialsAuthCredentials: {
      oAuthClientId: 'OAuthClientId',
      oAuthClientSecret: 'OAuthClientSecret',
      // @ts-expect-error oAuthOnTokenUpdate receives an OAuthToken, not a string
      oAuthOnTokenUpdate: (token: string) => saveTokenToDatabase({ accessToken: token, tokenType: 'Bearer' }),
    },
  });
  new Client({
    clientCredentialsAuthCredentials: {
      oAuthClientId: 'OAuthClientId',
      oAuthClientSecret: 'OAuthClientSecret',
      // @ts-expect-error oAuthTokenProvider must return an OAuthToken (or a promise of one)
      oAuthTokenProvider: async () => 'access-token',
    },
  });
  new Client({
    clientCredentialsAuthCredentials: {
      oAuthClientId: 'OAuthClientId',
      oAuthClientSecret: 'OAuthClientSecret',
      // @ts-expect-error clockSkew is a number of seconds
      clockSkew: '30s',
    },
  });
  new Client({
    clientCredentialsAuthCredentials: {
      oAuthClientId: 'OAuthClientId',
      // @ts-expect-error oAuthScopes is a string or an array of strings
      oAuthScopes: [1, 2],
    },
  });
  // @ts-expect-error an OAuthToken needs an accessToken
  const noAccessToken: OAuthToken = { tokenType: 'Bearer' };
  void noAccessToken;
  // @ts-expect-error auth is a boolean
  void client.request({ path: '/things', auth: 'yes' });
  // @ts-expect-error headers are strings
  void client.get('/things', { headers: { 'x-count': 1 } });
  // @ts-expect-error isValid takes a token, not a string
  client.clientCredentialsAuthManager.isValid('token');
}
