/**
 * `oauth-client-credentials call METHOD URL`: one authenticated request, curl-like. The body goes to stdout; `-i` puts the
 * status line and headers before it. A 401 goes through the library's recovery (new token, one retry). Any secret or
 * token the response echoes back is shown as `[redacted]`.
 */
import { resolve } from 'node:path';
import { ApiError, type ApiResponse } from '../index.js';
import type { Flags } from './args.js';
import { checkCallArguments } from './callArguments.js';
import { CliError, ExitCode, jsonSyntaxProblem, statusLine, type Phase } from './failure.js';
import { MAX_FILE_BYTES, readSmallRegularFile } from './files.js';
import { withoutCredentials } from './format.js';
import type { Io, Output } from './output.js';
import type { Session } from './session.js';

/** The text of `--data`/`--json`: the value itself, `@FILE` for a file's contents, or `@-` for standard input. */
async function bodyText(value: string, flag: string, io: Io): Promise<string> {
  if (!value.startsWith('@')) return value;
  const source = value.slice(1);
  if (source === '-') return io.readStdin();
  try {
    return await readSmallRegularFile(resolve(io.cwd, source), MAX_FILE_BYTES.body);
  } catch (error) {
    const reason = error instanceof CliError ? error.message : (error as NodeJS.ErrnoException).code ?? 'error';
    throw new CliError(`cannot read ${flag} file ${source}: ${reason}`, `to send what a command writes, pipe it in with ${flag} @-`);
  }
}

function headBlock(statusCode: number, headers: Record<string, string>): string {
  const lines = [`HTTP/1.1 ${statusLine(statusCode)}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return `${lines.join('\n')}\n\n`;
}

/**
 * The Client for a call to `url`: without `--base-url`, nothing else says where the token may go, so exactly the
 * origin of the URL given on the command line is allowed (a clone sharing the session's token cache).
 */
function clientFor(session: Session, url: string): Session['client'] {
  if (session.settings.baseUrl || !/^https?:\/\//i.test(url)) return session.client;
  let origin: string;
  try {
    origin = new URL(url).origin;
  } catch {
    return session.client;
  }
  return session.client.withConfiguration({ allowedOrigins: [origin] });
}

/** Runs `call`. */
export async function callCommand(session: Session, positionals: string[], flags: Flags, io: Io, out: Output, signal: AbortSignal, context: { phase: Phase }): Promise<ExitCode> {
  const { method, url, headers } = checkCallArguments(positionals, flags);
  if (headers['authorization'] !== undefined) out.warn('-H Authorization is replaced by the OAuth access token');

  let body: string | undefined;
  if (flags.data !== undefined) {
    body = await bodyText(flags.data, '--data', io);
    headers['content-type'] ??= 'application/x-www-form-urlencoded';
  } else if (typeof flags.json === 'string') {
    body = await bodyText(flags.json, '--json', io);
    try {
      JSON.parse(body);
    } catch (error) {
      throw new CliError(`--json is not valid JSON: ${jsonSyntaxProblem(error)}`);
    }
    headers['content-type'] ??= 'application/json';
    headers['accept'] ??= 'application/json';
  }

  // The token first, so that a failure to get one is told as such (exit 3), apart from the API's answer.
  const manager = session.client.clientCredentialsAuthManager;
  context.phase = 'token';
  const token = await manager.getToken({ signal });
  out.redactor.add(token.accessToken);

  // A 401 makes the library drop the token and fetch another: a failure between the two is the token's.
  context.phase = 'api';
  let recovered = false;
  const offInvalidated = session.client.on('tokenInvalidated', (event) => {
    if (event.reason === 'unauthorized') context.phase = 'token';
  });
  const offRetried = session.client.on('unauthorizedRetried', () => {
    context.phase = 'api';
    recovered = true;
  });

  const started = Date.now();
  out.debug(`> ${method} ${withoutCredentials(url)}`);
  for (const [name, value] of Object.entries(headers)) out.debug(`> ${name}: ${value}`);
  let response: ApiResponse<undefined, Uint8Array> | undefined;
  let failure: ApiError | undefined;
  try {
    response = await clientFor(session, url).request({ method, path: url, headers, ...(body !== undefined ? { body } : {}), signal, responseType: 'bytes' });
  } catch (error) {
    if (!(error instanceof ApiError) || (context.phase as Phase) === 'token') throw error;
    failure = error;
  } finally {
    offInvalidated();
    offRetried();
  }
  if (recovered) {
    out.debug('the API refused the cached token (401); it was replaced and the request sent again');
    try {
      out.redactor.add((await manager.getToken({ signal })).accessToken);
    } catch {
      // only needed for redaction; the request already went through
    }
  }

  const statusCode = response?.statusCode ?? failure!.statusCode;
  const responseHeaders = response?.headers ?? failure!.headers;
  out.debug(`< ${statusLine(statusCode)} in ${Date.now() - started} ms`);
  if (flags.include) out.result(headBlock(statusCode, responseHeaders), { untrusted: true });
  // The body byte for byte when piped (binary downloads included); on a terminal, as text with control characters
  // escaped (a server must not drive the terminal). An error's body was read as text.
  const bytes = response ? response.body : new TextEncoder().encode(failure!.body);
  if (out.stdoutIsTTY) {
    const text = new TextDecoder().decode(bytes);
    if (text !== '') out.result(text.endsWith('\n') ? text : `${text}\n`, { untrusted: true });
  } else {
    out.resultBytes(bytes);
  }
  if (failure && statusCode >= 400) throw failure;
  if (statusCode >= 300 && statusCode < 400) {
    out.warn(`the API answered ${statusLine(statusCode)}${responseHeaders['location'] ? ` with Location ${responseHeaders['location']}` : ''}; redirects are not followed`);
  }
  return ExitCode.Ok;
}
