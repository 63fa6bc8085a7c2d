/**
 * Exit codes, and how a failure is told to a person: a one-line cause, a hint of what to check, and what the
 * server said. Built on the library's public error classes and codes only.
 */
import { STATUS_CODES } from 'node:http';
import { ApiError, ClientCredentialsError, ErrorCode, InvalidOptionError, OAuthProviderError, RetriesExhaustedError, TimeoutError } from '../errors.js';

/** The CLI's exit codes. Stable: scripts may test them. */
export const ExitCode = {
  /** Success. */
  Ok: 0,
  /** The API answered with an HTTP status of 400 or more (`call`). */
  Http: 1,
  /** Bad usage: unknown option, missing or invalid setting, unreadable file. */
  Usage: 2,
  /** The token could not be had: the authorization server refused the credentials or answered something unusable. */
  Auth: 3,
  /** Network failure or timeout, to the token endpoint or the API. */
  Network: 4,
  /** An unexpected internal error (a bug: please report it). */
  Internal: 5,
  /** Interrupted (Ctrl-C). */
  Interrupted: 130,
} as const;

/** One of the {@link ExitCode} values. */
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure the CLI itself detects (bad flags, unreadable file); `exitCode` is usually {@link ExitCode.Usage}. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly hint?: string,
    readonly exitCode: ExitCode = ExitCode.Usage,
  ) {
    super(message);
  }
}

/**
 * What is wrong with a text that `JSON.parse` rejected, without the excerpt of the text that V8 quotes in some of its
 * messages (`Unexpected token 's', ..."Secret": s3cr}" is not valid JSON`): the text may be a config file holding the
 * client secret, and the redactor cannot recognise a secret cut in half.
 */
export function jsonSyntaxProblem(error: unknown): string {
  const message = error instanceof Error ? error.message : '';
  const position = /\bat position (\d+)/.exec(message)?.[1];
  if (/^Unexpected token\b/.test(message) || message.includes('"')) return `unexpected character${position === undefined ? '' : ` at position ${position}`}`;
  return lowerFirst(message.replace(/ \(line \d+ column \d+\)$/, '')) || 'not JSON';
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/** How a failure is reported. */
export interface FailureReport {
  exitCode: ExitCode;
  /** One line: what went wrong. */
  cause: string;
  /** What to check. */
  hint?: string | undefined;
  /** What the server said, when it said something. */
  serverSaid?: string | undefined;
}

/** Where a failure happened: getting the token, or calling the API. */
export type Phase = 'token' | 'api';

/** Library option paths → the CLI flag that sets them. */
const OPTION_FLAGS: Record<string, string> = {
  baseUrl: '--base-url',
  tokenUrl: '--token-url',
  timeout: '--timeout',
  path: 'URL',
  'clientCredentialsAuthCredentials.oAuthClientId': '--client-id',
  'clientCredentialsAuthCredentials.oAuthClientSecret': 'the client secret',
  'clientCredentialsAuthCredentials.clockSkew': '--clock-skew',
  'clientCredentialsAuthCredentials.clientAuthMethod': '--auth-method',
  'clientCredentialsAuthCredentials.oAuthScopes': '--scope',
  'clientCredentialsAuthCredentials.privateKey': '--private-key-file',
  'clientCredentialsAuthCredentials.keyId': '--key-id',
  'clientCredentialsAuthCredentials.certificate': '--cert',
  'clientCredentialsAuthCredentials.clientAssertion': '--client-assertion-file',
  'clientCredentialsAuthCredentials.basicEncoding': '--basic-encoding',
  'clientCredentialsAuthCredentials.grantType': '--grant-type',
  'clientCredentialsAuthCredentials.tokenParameters': '--token-param',
  'clientCredentialsAuthCredentials.resource': '--resource',
  'clientCredentialsAuthCredentials.audience': '--audience',
  scopes: '--scope',
  proxy: '--proxy',
  allowInsecureHttp: '--allow-insecure-http',
  allowedOrigins: '--base-url',
};

/** The option path of one `--token-param NAME`, up to NAME. */
const TOKEN_PARAMETERS = 'clientCredentialsAuthCredentials.tokenParameters.';

/** The library's options that set a reserved token parameter (the advice of its error) → the CLI's flags. */
const RESERVED_PARAMETER_FLAGS: Record<string, string> = {
  '`grantType`': '--grant-type',
  '`oAuthScopes`': '--scope',
  '`resource`': '--resource',
  '`audience`': '--audience',
  '`oAuthClientId`': '--client-id',
  '`oAuthClientSecret`': '--client-secret-file, --client-secret-stdin or $O_AUTH_CLIENT_SECRET',
  '`clientAssertion` or `privateKey`': '--client-assertion-file or --private-key-file',
};

const PROVIDER_HINTS: Record<string, string> = {
  invalid_client: 'check the client id and secret and the authentication method (--auth-method)',
  invalid_scope: 'check --scope: the client may not be allowed that scope, or the server does not know it',
  unauthorized_client: 'this client is not allowed the client_credentials grant; check its registration at the authorization server',
  unsupported_grant_type: 'the server does not offer client_credentials at this URL; check --token-url',
  invalid_request: 'the server rejected the request itself; check --auth-method and --token-url',
  invalid_target: 'check --resource: the server does not know that resource',
  invalid_grant: 'check --token-url and the client registration',
};

/** `404 Not Found`. */
export function statusLine(statusCode: number): string {
  const text = STATUS_CODES[statusCode];
  return text ? `${statusCode} ${text}` : String(statusCode);
}

/** The innermost cause that is one of the library's errors (retries and circuits wrap the real failure). */
function rootCause(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 5; depth++) {
    if ((current instanceof RetriesExhaustedError || (current instanceof ClientCredentialsError && current.code === ErrorCode.CircuitOpen)) && current.cause instanceof Error) {
      current = current.cause;
    } else break;
  }
  return current;
}

function oneLine(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** A short excerpt of a server's error body, for "server said". */
function bodyExcerpt(error: ApiError): string | undefined {
  if (error.body === '') return undefined;
  const result = error.result as { error?: unknown; error_description?: unknown; message?: unknown } | undefined;
  if (result && typeof result === 'object') {
    if (typeof result.error === 'string') return typeof result.error_description === 'string' ? `${result.error}: ${result.error_description}` : result.error;
    if (typeof result.message === 'string') return result.message;
  }
  const type = error.headers['content-type'] ?? '';
  if (type.includes('html')) return `an HTML page (${error.body.length} bytes)`;
  return oneLine(error.body, 200);
}

/** The library's advice in the CLI's words: `allowInsecureHttp: true` is the flag `--allow-insecure-http` here. */
function inCliTerms(text: string): string {
  return text.replace(/set `allowInsecureHttp: true`/g, 'pass --allow-insecure-http').replace(/`allowInsecureHttp: true`/g, '--allow-insecure-http');
}

/** Turns any failure into what the CLI prints and the exit code it returns. */
export function describeFailure(error: unknown, phase: Phase): FailureReport {
  const report = describe(error, phase);
  return { ...report, cause: inCliTerms(report.cause), ...(report.hint === undefined ? {} : { hint: inCliTerms(report.hint) }) };
}

function describe(error: unknown, phase: Phase): FailureReport {
  if (error instanceof CliError) return { exitCode: error.exitCode, cause: error.message, hint: error.hint };
  if (error instanceof InvalidOptionError) {
    const param = error.option.startsWith(TOKEN_PARAMETERS) ? error.option.slice(TOKEN_PARAMETERS.length) : undefined;
    const flag = OPTION_FLAGS[error.option] ?? (param ? `--token-param ${param}` : `\`${error.option}\``);
    const prefix = `The \`${error.option}\` option `;
    let problem = (error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message).replace(/ \(add it to `allowedOrigins`\)$/, '');
    if (param) problem = problem.replace(/; use (.+)$/, (whole, library: string) => (Object.hasOwn(RESERVED_PARAMETER_FLAGS, library) ? `; use ${RESERVED_PARAMETER_FLAGS[library]}` : whole));
    const hint = error.option === 'path' ? 'the access token is only sent to the origin of --base-url; give a URL on it, or leave --base-url unset' : undefined;
    return { exitCode: ExitCode.Usage, cause: `${flag} ${problem}`, hint };
  }
  if (error instanceof ClientCredentialsError && error.code === ErrorCode.Aborted) {
    return { exitCode: ExitCode.Interrupted, cause: 'interrupted' };
  }
  if (error instanceof ClientCredentialsError && error.code === ErrorCode.MissingCredentials) {
    return { exitCode: ExitCode.Usage, cause: 'no client credentials are configured', hint: 'set --client-id and a client secret (see `oauth-client-credentials help`)' };
  }

  const root = rootCause(error);
  if (root instanceof ClientCredentialsError && root.code === ErrorCode.RuntimeUnsupported) {
    return { exitCode: ExitCode.Usage, cause: root.message, hint: 'give the runtime what the message names (e.g. deno run --allow-net --allow-env), or run the tool with Node.js' };
  }
  const attempts = error instanceof RetriesExhaustedError ? ` (after ${error.attempts} attempt${error.attempts === 1 ? '' : 's'})` : '';
  const where = phase === 'token' ? 'the token endpoint' : 'the API';

  if (root instanceof ClientCredentialsError && root.code === ErrorCode.Network) {
    return {
      exitCode: ExitCode.Network,
      cause: `could not reach ${where}${attempts}: ${root.message}`,
      hint: phase === 'token' ? 'check --token-url and that the authorization server is up and reachable' : 'check the URL (and --base-url) and that the API is up and reachable',
    };
  }
  if (root instanceof TimeoutError) {
    return {
      exitCode: ExitCode.Network,
      cause: `${where} did not answer in time${attempts}: ${root.message}`,
      hint: 'the server may be overloaded or unreachable; raise --timeout (seconds) or check the URL',
    };
  }
  if (root instanceof OAuthProviderError && (root.statusCode === 404 || root.statusCode === 405)) {
    // A JSON error body from a URL that is not a token endpoint (`{"error":"not_found"}`): no refusal, a wrong URL.
    return {
      exitCode: ExitCode.Auth,
      cause: `the token endpoint answered ${statusLine(root.statusCode)}${attempts}: the token URL is probably wrong`,
      hint: 'check --token-url (or --issuer): nothing answers token requests there',
      serverSaid: root.errorDescription ? `${root.error}: ${root.errorDescription}` : root.error,
    };
  }
  if (root instanceof OAuthProviderError) {
    const said = root.errorDescription ? `${root.error}: ${root.errorDescription}` : root.error;
    return {
      exitCode: ExitCode.Auth,
      cause: `the authorization server refused the token request (${statusLine(root.statusCode)} ${root.error})${attempts}`,
      hint: PROVIDER_HINTS[root.error] ?? 'check the client registration and the settings (see `oauth-client-credentials help`)',
      serverSaid: said,
    };
  }
  if (root instanceof ClientCredentialsError && root.code === ErrorCode.MalformedTokenResponse) {
    return {
      exitCode: ExitCode.Auth,
      cause: `the token endpoint's answer is not a usable token response: ${root.message}`,
      hint: 'check that --token-url points at the OAuth 2.0 token endpoint (often …/oauth2/token or …/token)',
    };
  }
  if (root instanceof ApiError && phase === 'token') {
    return {
      exitCode: ExitCode.Auth,
      cause: `the token endpoint answered ${statusLine(root.statusCode)}${attempts}`,
      hint: tokenEndpointHint(root.statusCode),
      serverSaid: bodyExcerpt(root),
    };
  }
  if (root instanceof ApiError) {
    const hints: Record<number, string> = {
      401: 'the API rejected the access token, a freshly fetched one too: check --scope, --resource/--audience, and that this token URL issues tokens for this API',
      403: 'the token is valid but not allowed this: check --scope',
      404: 'check the URL',
      405: 'check the method',
      429: 'slow down; the API is rate limiting',
    };
    return {
      exitCode: ExitCode.Http,
      cause: / responded with status \d+$/.test(root.message) ? root.message.replace(/ responded with status \d+$/, ` answered ${statusLine(root.statusCode)}`) : `the API answered ${statusLine(root.statusCode)}`,
      hint: hints[root.statusCode],
      serverSaid: bodyExcerpt(root),
    };
  }
  if (root instanceof ClientCredentialsError) {
    return { exitCode: ExitCode.Auth, cause: root.message, hint: undefined };
  }
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { exitCode: ExitCode.Internal, cause: `unexpected error: ${oneLine(message)}`, hint: 'this is a bug in oauth-client-credentials; please report it with the output of --verbose' };
}

/** The hint for a token endpoint that answered `status` without an RFC 6749 error. */
function tokenEndpointHint(status: number): string {
  if (status === 404 || status === 405) return 'check --token-url: nothing answers token requests there';
  if (status === 401 || status === 403) {
    return 'the authorization server refused the client: check --client-id and the secret or key, --auth-method, and the scopes the client may ask for (some servers, such as Glewlwyd, answer every refusal with a bare 403)';
  }
  if (status === 429) return 'the authorization server is rate limiting token requests; try again later';
  return status >= 500 ? 'the authorization server failed; check --token-url, or try again later' : 'the authorization server did not accept the request; check --token-url and the settings';
}
