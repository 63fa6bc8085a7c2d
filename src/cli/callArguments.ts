/**
 * The arguments of `call`, checked before anything is read or opened: a missing URL or a bad header is a usage
 * error, not "no token URL is set". Pure, and light to load (a usage error never loads the Client).
 */
import type { Flags } from './args.js';
import { CliError } from './failure.js';

/** What `call` was asked to do. */
export interface CallArguments {
  /** The HTTP method, upper-case. */
  method: string;
  /** The URL as given (absolute, or relative to `--base-url`). */
  url: string;
  /** The `-H` headers, names lower-cased. */
  headers: Record<string, string>;
}

/** Parses `-H 'Name: value'` flags; a header without a colon is a usage error. */
export function parseHeaders(values: readonly string[] | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const value of values ?? []) {
    const colon = value.indexOf(':');
    const name = colon > 0 ? value.slice(0, colon).trim() : '';
    if (!name || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new CliError(`-H "${value}" is not a header; write it as 'Name: value'`);
    const key = name.toLowerCase();
    const text = value.slice(colon + 1).trim();
    headers[key] = headers[key] === undefined ? text : `${headers[key]}, ${text}`;
  }
  return headers;
}

/**
 * Checks `call`'s positionals (METHOD URL) and flags (`-H`, `--data`/`--json`).
 * @throws CliError (a usage error) naming what is wrong.
 */
export function checkCallArguments(positionals: readonly string[], flags: Flags): CallArguments {
  if (positionals.length !== 2) throw new CliError(`call takes a METHOD and a URL${positionals.length ? `, got ${positionals.length} argument(s)` : ''}`, 'usage: oauth-client-credentials call GET https://api.example.com/things');
  const [methodArg, url] = positionals as [string, string];
  if (!/^[A-Za-z]+$/.test(methodArg)) throw new CliError(`"${methodArg}" is not an HTTP method`, 'usage: oauth-client-credentials call METHOD URL');
  const headers = parseHeaders(flags.header);
  if (flags.data !== undefined && typeof flags.json === 'string') throw new CliError('give --data or --json, not both');
  return { method: methodArg.toUpperCase(), url, headers };
}
