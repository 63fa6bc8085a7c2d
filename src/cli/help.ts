/**
 * The help texts: `oauth-client-credentials help [COMMAND]`, `--help`.
 */
import type { CommandName } from './args.js';

const CONNECTION = `Connection and credentials:
  --token-url URL            the token endpoint
  --client-id ID             the client id
  --client-secret-file FILE  read the client secret from FILE (one line)
  --client-secret-stdin      read the client secret from standard input
  --client-secret SECRET     works, but other users see it in the process list: avoid it
  --auth-method METHOD       client_secret_basic (default), client_secret_post, client_secret_jwt,
                             private_key_jwt, tls_client_auth, self_signed_tls_client_auth, none
  --private-key-file FILE    the key for private_key_jwt (PEM or JWK; a JWK's kid goes in the header)
  --key-id KID               the kid header of private_key_jwt and client_secret_jwt assertions
  --client-assertion-file FILE
                             a client assertion the platform issues (a Kubernetes service account token, a
                             CI OIDC token), read again for each token request; sent with no secret
  --basic-encoding rfc6749|raw
                             how client_secret_basic encodes the id and secret (default: RFC 6749, then raw
                             once if the server refuses the client)
  --grant-type TYPE          the grant_type (default client_credentials; Zoom: account_credentials)
  --token-param NAME=VALUE   an extra token request parameter (Zoom: account_id=...); repeatable
  --issuer URL               the authorization server's issuer, instead of --token-url: the token endpoint
                             (its mTLS alias with a certificate), methods and algorithms are discovered
  --cert FILE, --key FILE    a TLS client certificate and its key (PEM), for tls_client_auth and
                             self_signed_tls_client_auth (and certificate-bound tokens); with private_key_jwt
                             and no --key, the certificate of the private key: its x5t#S256 goes in the
                             assertion header (Entra ID certificate credentials)
  --ca FILE                  CA certificates (PEM) to trust for the servers, besides the system's
  --dpop                     DPoP-bound tokens (RFC 9449) with a key made for this run (not cached)
  --scope SCOPE              scopes to ask for; repeatable, or space-separated
  --resource URI             RFC 8707 resource indicator; repeatable
  --audience AUDIENCE        the audience parameter some servers want
  --base-url URL             what relative URLs of \`call\` are resolved against
  --clock-skew SECONDS       treat tokens as expired this much early (default 0)
  --timeout SECONDS          time limit of the whole command: token (retries included) and API call;
                             0 for none (default 30)
  --retries N                retries of the token endpoint after network errors, timeouts, 408/429/5xx
                             (never after invalid_client and the like), 0 to 10 (default 3)
  --cache FILE|off           the token cache file (default $XDG_CACHE_HOME/client-credentials/tokens.json,
                             else ~/.cache/client-credentials/tokens.json)
  --no-cache                 do not reuse a cached token: get a new one (it replaces the cached one)
  --proxy URL|env|off        the HTTP(S) proxy (default env: HTTPS_PROXY, HTTP_PROXY and NO_PROXY, as curl)
  --allow-insecure-http      allow plain http to hosts other than this machine (token URL, API); off by default
  --config FILE              a JSON file with any of: tokenUrl, baseUrl, clientId, clientSecretFile,
                             clientSecret, authMethod, privateKeyFile, keyId, clientAssertionFile,
                             basicEncoding, grantType, tokenParams, issuer, cert, key, ca, dpop,
                             scope, resource, audience, clockSkew, timeout, retries, cache, proxy

Environment (a flag wins over the environment, which wins over the config file):
  CLIENT_CREDENTIALS_TOKEN_URL  CLIENT_CREDENTIALS_BASE_URL
  CLIENT_CREDENTIALS_CLIENT_ID or O_AUTH_CLIENT_ID
  CLIENT_CREDENTIALS_CLIENT_SECRET or O_AUTH_CLIENT_SECRET  CLIENT_CREDENTIALS_CLIENT_SECRET_FILE
  CLIENT_CREDENTIALS_AUTH_METHOD  CLIENT_CREDENTIALS_PRIVATE_KEY_FILE  CLIENT_CREDENTIALS_KEY_ID
  CLIENT_CREDENTIALS_CLIENT_ASSERTION_FILE  CLIENT_CREDENTIALS_BASIC_ENCODING  CLIENT_CREDENTIALS_GRANT_TYPE
  CLIENT_CREDENTIALS_SCOPE
  CLIENT_CREDENTIALS_RESOURCE  CLIENT_CREDENTIALS_AUDIENCE  CLIENT_CREDENTIALS_ISSUER
  CLIENT_CREDENTIALS_CERT  CLIENT_CREDENTIALS_KEY  CLIENT_CREDENTIALS_CA  CLIENT_CREDENTIALS_DPOP
  CLIENT_CREDENTIALS_CLOCK_SKEW or O_AUTH_CLOCK_SKEW  CLIENT_CREDENTIALS_TIMEOUT  CLIENT_CREDENTIALS_RETRIES
  CLIENT_CREDENTIALS_CACHE  CLIENT_CREDENTIALS_PROXY  CLIENT_CREDENTIALS_CONFIG  NO_COLOR  XDG_CACHE_HOME
  HTTPS_PROXY  HTTP_PROXY  NO_PROXY (with the default --proxy env)`;

const GLOBAL = `Output:
  -q, --quiet                no warnings on stderr (errors still)
  -v, --verbose              settings, cache and lifecycle events on stderr (secrets redacted)
  --no-color                 no colour (also: NO_COLOR=1; colour is only used on a terminal)
  -h, --help                 this help
  -V, --version              the version`;

const EXIT_CODES = `Exit codes:
  0 ok   1 the API answered HTTP >= 400   2 usage or configuration   3 token refused or unusable
  4 network failure or timeout   5 internal error   130 interrupted`;

const TEXTS: Record<CommandName | 'main', string> = {
  main: `oauth-client-credentials: OAuth 2.0 Client Credentials from the command line

Usage:
  oauth-client-credentials token [--json] [--no-cache]   print an access token (cached between runs)
  oauth-client-credentials call METHOD URL [-H ...] [--data ...|--json ...] [-i]
                                                         call an API with the token; body on stdout
  oauth-client-credentials inspect [TOKEN|-] [--verify]  decode a JWT; --verify checks it against --issuer
  oauth-client-credentials serve --config broker.json    run the token broker and credential-injecting proxy
  oauth-client-credentials help [COMMAND]                help on a command

Example:
  export CLIENT_CREDENTIALS_TOKEN_URL=https://auth.example.com/oauth2/token
  export O_AUTH_CLIENT_ID=my-service
  oauth-client-credentials token --client-secret-file ~/.secrets/my-service
  oauth-client-credentials call GET https://api.example.com/things --client-secret-file ~/.secrets/my-service

${CONNECTION}

${GLOBAL}

${EXIT_CODES}
`,
  token: `Usage: oauth-client-credentials token [options]

Prints the access token alone, so that $(oauth-client-credentials token) works in scripts. The token is cached in a
file between runs and reused while more than a quarter of its lifetime is left; repeated runs make no request.

  --json                     print the whole token: accessToken, tokenType, expiresIn, expiry, scope
  --no-cache                 do not reuse the cached token; get a new one (it replaces the cached one)

${CONNECTION}

${GLOBAL}

${EXIT_CODES}
`,
  call: `Usage: oauth-client-credentials call METHOD URL [options]

Sends one request with the access token, like curl. The response body goes to stdout; the exit code is 1 when the
API answers HTTP 400 or more. A 401 makes the tool drop the token, get a new one and try once more.
URL is absolute, or relative to --base-url. Secrets and tokens echoed back by the API are shown as [redacted].

  -H, --header 'Name: value' a request header, repeatable
  -d, --data TEXT|@FILE|@-   a request body (content-type application/x-www-form-urlencoded unless -H sets one)
  --json TEXT|@FILE|@-       a JSON body (checked; content-type and accept application/json)
  -i, --include              print the status line and headers before the body
  --scope SCOPE              the token's scope for this call

${CONNECTION}

${GLOBAL}

${EXIT_CODES}
`,
  inspect: `Usage: oauth-client-credentials inspect [TOKEN|-] [--json] [--verify --issuer URL [--audience AUD]]

Decodes a JWT's header and claims, and shows exp, iat and nbf as local times and relative to now ("expires in 4 min").
Without --verify the signature is NOT verified: this only reads what the token says about itself. An opaque token is said to be one.
With - (or no argument and a pipe), the token is read from standard input; "Bearer ..." and the output of
\`oauth-client-credentials token --json\` are accepted too (a token that starts with - goes after --, or through stdin).
The token itself is never printed.

  --json                     the decoded header and claims as JSON, with "signatureVerified"
  --verify                   verify the signature with the issuer's keys (JWKS, found through discovery) and
                             the RFC 9068 claims: typ at+jwt, iss, aud, exp, iat; says which check failed
                             (exit code 3)
  --issuer URL               with --verify: the issuer to trust (or CLIENT_CREDENTIALS_ISSUER)
  --audience AUD             with --verify: the audience the token must be for
  --ca FILE                  with --verify: CA certificates (PEM) to trust for the issuer
  --timeout SECONDS          with --verify: per request (default 30)

${GLOBAL}
`,
  serve: `Usage: oauth-client-credentials serve --config FILE [--check]

Runs the token broker: a reverse proxy that sets each route's Authorization to its OAuth client's token (for
services in any language, which never see a secret), a token API (GET /v1/token/<client>) on a Unix socket, and
admin endpoints (/healthz, /readyz, /metrics). Tokens come from the library's lifecycle: one shared request per
window (per fleet with a Redis tokenStore), refreshed ahead, kept through token endpoint outages.
One JSON log line per event on stdout; secrets and tokens never appear in it. See docs/broker.md.

  --config FILE              the broker's JSON configuration (or CLIENT_CREDENTIALS_CONFIG); \${ENV} references
                             in its values are replaced by the environment's
  --check                    validate the configuration (and read its files), print "ok" and exit

Signals: SIGHUP reloads the configuration (a bad one keeps the old and logs why); SIGTERM (or Ctrl-C) stops
accepting, finishes in-flight requests within shutdownGraceSeconds (default 30) and exits.
Secret, key and certificate files are re-read when they change.

${GLOBAL}

Exit codes:
  0 stopped cleanly   2 bad configuration or a file that cannot be read   5 internal error
`,
  help: `Usage: oauth-client-credentials help [token|call|inspect|serve]
`,
};

/** The main help's usage lines, for a usage error on stderr. */
export function usageText(): string {
  return `${TEXTS.main.slice(0, TEXTS.main.indexOf('\nExample:'))}\n`;
}

/** The help text of a command, or the main one. */
export function helpText(command?: string): string | undefined {
  if (command === undefined) return TEXTS.main;
  return Object.hasOwn(TEXTS, command) && command !== 'main' ? TEXTS[command as CommandName] : undefined;
}
