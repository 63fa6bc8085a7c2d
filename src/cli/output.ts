/**
 * What the CLI writes and where: the result alone on stdout, everything else on stderr; colour only on a terminal
 * and never with `NO_COLOR`; every line passed through a redactor that knows the secret and the tokens in play.
 */
import { Redactor } from '../redaction.js';
import { escapeControl } from './terminal.js';

/** The shared redactor (see `src/redaction.ts`), re-exported for the commands. */
export { Redactor };

/** The process's streams and environment, injected so the commands never touch `process` directly. */
export interface Io {
  stdout: { write(data: string | Uint8Array): unknown; isTTY?: boolean | undefined };
  stderr: { write(text: string): unknown; isTTY?: boolean | undefined };
  /** Reads all of standard input. */
  readStdin(): Promise<string>;
  /** Whether standard input is a terminal (then it is not read implicitly). */
  stdinIsTTY: boolean;
  env: NodeJS.ProcessEnv;
  /** The current working directory, for relative paths. */
  cwd: string;
}

/** The standard {@link Io} of this process. */
export function processIo(): Io {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    stdinIsTTY: process.stdin.isTTY === true,
    env: process.env,
    cwd: process.cwd(),
  };
}

const STYLES = { bold: [1, 22], dim: [2, 22], red: [31, 39], green: [32, 39], yellow: [33, 39], cyan: [36, 39] } as const;

/** A text style. */
export type Style = keyof typeof STYLES;

/**
 * Whether to colour a stream: only a terminal, never when `NO_COLOR` is set to anything non-empty (no-color.org) or
 * `--no-color` was given; `FORCE_COLOR` (non-empty, not `0`) turns it on for a non-terminal, below `NO_COLOR`.
 */
export function wantsColor(stream: { isTTY?: boolean | undefined }, env: NodeJS.ProcessEnv, noColorFlag: boolean): boolean {
  if (noColorFlag || (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '')) return false;
  const force = env['FORCE_COLOR'];
  if (force !== undefined && force !== '' && force !== '0' && force !== 'false') return true;
  return stream.isTTY === true && env['TERM'] !== 'dumb';
}

/** The CLI's writer: results on stdout, diagnostics on stderr, both redacted and coloured only where wanted. */
export class Output {
  readonly redactor = new Redactor();
  readonly #io: Io;
  readonly #colorOut: boolean;
  readonly #colorErr: boolean;
  /** `--quiet`: no warnings or notes on stderr (errors still). */
  readonly quiet: boolean;
  /** `--verbose`: lifecycle events and HTTP exchanges on stderr. */
  readonly verbose: boolean;

  constructor(io: Io, options: { quiet: boolean; verbose: boolean; noColor: boolean }) {
    this.#io = io;
    this.quiet = options.quiet;
    this.verbose = options.verbose && !options.quiet;
    this.#colorOut = wantsColor(io.stdout, io.env, options.noColor);
    this.#colorErr = wantsColor(io.stderr, io.env, options.noColor);
  }

  /** Whether stdout is a terminal (then a missing final newline is added to bodies). */
  get stdoutIsTTY(): boolean {
    return this.#io.stdout.isTTY === true;
  }

  /** `text` in `style` on stdout's terms. */
  paintOut(style: Style, text: string): string {
    return this.#colorOut ? paint(style, text) : text;
  }

  /** `text` in `style` on stderr's terms. */
  paintErr(style: Style, text: string): string {
    return this.#colorErr ? paint(style, text) : text;
  }

  /**
   * Writes the result, redacted unless `raw` (only the `token` command prints a token on purpose). `untrusted` text
   * (a server's body and headers) has its control characters escaped when stdout is a terminal; piped, it is exact.
   */
  result(text: string, options: { raw?: boolean; untrusted?: boolean } = {}): void {
    const shown = options.untrusted && this.stdoutIsTTY ? escapeControl(text, { multiline: true }) : text;
    this.#io.stdout.write(options.raw ? shown : this.redactor.redact(shown));
  }

  /**
   * Writes a response body byte for byte (redacted): UTF-8 text goes through {@link result} (so a terminal gets its
   * final newline), anything else is written as the bytes it is.
   */
  resultBytes(bytes: Uint8Array): void {
    let text: string | undefined;
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      if (text !== '') this.result(this.stdoutIsTTY && !text.endsWith('\n') ? `${text}\n` : text);
      return;
    }
    this.#io.stdout.write(this.redactor.redactBytes(bytes));
  }

  /** An error line, always shown. */
  error(message: string): void {
    this.#err(`${this.paintErr('red', 'error:')} ${escapeControl(message)}`);
  }

  /** An indented detail under an error (hint, what the server said), always shown. */
  detail(label: string, text: string): void {
    this.#io.stderr.write(`${this.redactor.redact(`  ${this.paintErr('yellow', `${label}:`)} ${escapeControl(text)}`)}\n`);
  }

  /** A warning, hidden by `--quiet`. */
  warn(message: string): void {
    if (!this.quiet) this.#err(`${this.paintErr('yellow', 'warning:')} ${escapeControl(message)}`);
  }

  /** A `--verbose` line. */
  debug(message: string): void {
    if (this.verbose) this.#err(this.paintErr('dim', `* ${escapeControl(message)}`));
  }

  /** Plain text on stderr (usage on a usage error). */
  plainErr(text: string): void {
    this.#io.stderr.write(this.redactor.redact(text));
  }

  #err(line: string): void {
    this.#io.stderr.write(`${this.redactor.redact(`oauth-client-credentials: ${line}`)}\n`);
  }
}

function paint(style: Style, text: string): string {
  const [open, close] = STYLES[style];
  return `\u001b[${open}m${text}\u001b[${close}m`;
}
