/**
 * Type-level tests of the options real providers need (issue 19): what compiles, and (`@ts-expect-error`) what must
 * not. Checked by test/types.test.ts like seed-examples.ts; never run.
 */
import { Client, type JsonValue, type OAuthToken } from '../../src/index.js';

export function providerOptions(token: OAuthToken): void {
  const instanceUrl: JsonValue | undefined = token.extra?.['instance_url'];
  void instanceUrl;
  new Client({ tokenUrl: 'https://x/token', clientCredentialsAuthCredentials: { oAuthClientId: 'id', clientAssertion: () => 'jwt' } });
  new Client({ tokenUrl: 'https://x/token', clientCredentialsAuthCredentials: { oAuthClientId: 'id', clientAssertion: async () => 'jwt' } });
  new Client({ tokenUrl: 'https://x/token', clientCredentialsAuthCredentials: { oAuthClientId: 'id', oAuthClientSecret: 's', basicEncoding: 'rfc6749', grantType: 'account_credentials', tokenParameters: { account_id: 'a' } } });
  new Client({ tokenUrl: 'https://x/token', clientCredentialsAuthCredentials: { oAuthClientId: 'id', privateKey: 'pem', certificate: 'pem', certificateThumbprints: ['x5t'] } });
  new Client({
    tokenUrl: 'https://x/token',
    // @ts-expect-error clientAssertion is a function, not the assertion itself
    clientCredentialsAuthCredentials: { oAuthClientId: 'id', clientAssertion: 'eyJhbGciOi...' },
  });
  new Client({
    tokenUrl: 'https://x/token',
    // @ts-expect-error clientAssertion resolves to a string
    clientCredentialsAuthCredentials: { oAuthClientId: 'id', clientAssertion: async () => 42 },
  });
  new Client({
    tokenUrl: 'https://x/token',
    // @ts-expect-error basicEncoding is 'rfc6749' or 'raw'
    clientCredentialsAuthCredentials: { oAuthClientId: 'id', oAuthClientSecret: 's', basicEncoding: 'auto' },
  });
  new Client({
    tokenUrl: 'https://x/token',
    // @ts-expect-error certificateThumbprints names header members
    clientCredentialsAuthCredentials: { oAuthClientId: 'id', privateKey: 'pem', certificate: 'pem', certificateThumbprints: ['sha256'] },
  });
  new Client({
    tokenUrl: 'https://x/token',
    // @ts-expect-error tokenParameters are strings
    clientCredentialsAuthCredentials: { oAuthClientId: 'id', oAuthClientSecret: 's', tokenParameters: { account_id: 1 } },
  });
  // @ts-expect-error extra holds JSON values only
  const bad: OAuthToken = { accessToken: 'a', tokenType: 'Bearer', extra: { when: new Date() } };
  void bad;
}
