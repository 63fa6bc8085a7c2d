/**
 * The CLI's dispatcher: parses the command line, runs one command, and turns any failure into a one-line cause,
 * a hint, what the server said, and an exit code. Nothing but the result is written to stdout.
 */
import { readFileSync } from 'node:fs';
import { TimeoutError } from '../errors.js';
import { commandHint, parseCommandLine, type Flags } from './args.js';
import { CliError, describeFailure, ExitCode, type Phase } from './failure.js';
import { helpText, usageText } from './help.js';
import { knownSecrets } from './knownSecrets.js';
import { Output, type Io } from './output.js';
import type { Session } from './session.js';

// Each command's module, and the library under it, is loaded when the command runs: `--help`, `--version`, a usage
// error and `inspect` never load undici or the Client, and `token` never loads the broker (test/cliStartup.test.ts).

/** The package version, read from package.json beside the compiled files. */
export function version(): string {
  for (const relative of ['../../../package.json', '../../package.json']) {
    try {
      const json = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (json.name === 'oauth-client-credentials' && json.version) return json.version;
    } catch {
      // try the next place
    }
  }
  return 'unknown';
}

/** Output options from the raw argv, for reporting a usage error that happened before the flags were parsed. */
function earlyOutput(argv: readonly string[], io: Io): Output {
  return knowing(new Output(io, { quiet: argv.includes('-q') || argv.includes('--quiet'), verbose: false, noColor: argv.includes('--no-color') }), argv, io);
}

/** `out`, its redactor taught the secrets known before any setting is read (see `knownSecrets.ts`). */
function knowing(out: Output, argv: readonly string[], io: Io): Output {
  for (const secret of knownSecrets(argv, io.env)) out.redactor.add(secret);
  return out;
}

/**
 * `signal`, aborted also when `timeoutMs` (0: never) has passed, with a TimeoutError naming `--timeout`: the
 * CLI's `--timeout` is the time limit of the whole command, not of each attempt.
 */
function commandDeadline(signal: AbortSignal, timeoutMs: number): { signal: AbortSignal; clear(): void } {
  if (timeoutMs <= 0) return { signal, clear: () => undefined };
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new TimeoutError(`gave up after ${timeoutMs / 1000} s (--timeout: the time limit of the whole command)`, timeoutMs)), timeoutMs);
  return { signal: AbortSignal.any([signal, controller.signal]), clear: () => clearTimeout(timer) };
}

function report(out: Output, error: unknown, phase: Phase, command: string | undefined): ExitCode {
  const failure = describeFailure(error, phase);
  out.error(failure.cause);
  if (failure.hint) out.detail('hint', failure.hint);
  if (failure.serverSaid) out.detail('server said', failure.serverSaid);
  if (failure.exitCode === ExitCode.Usage && !failure.hint && command) out.detail('help', `oauth-client-credentials help ${command}`);
  return failure.exitCode;
}

/**
 * Runs the CLI with `argv` (without `node` and the script) and returns the exit code.
 * `signal` aborts a running command (Ctrl-C).
 */
export async function run(argv: readonly string[], io: Io, signal: AbortSignal = new AbortController().signal): Promise<ExitCode> {
  let parsed;
  try {
    parsed = parseCommandLine(argv);
  } catch (error) {
    return report(earlyOutput(argv, io), error, 'token', undefined);
  }
  const { command, positionals, flags } = parsed;
  const out = knowing(new Output(io, { quiet: flags.quiet === true, verbose: flags.verbose === true, noColor: flags['no-color'] === true }), argv, io);

  if (flags.version) {
    out.result(`${version()}\n`);
    return ExitCode.Ok;
  }
  if (flags.help || command === 'help') {
    const topic = command === 'help' ? positionals[0] : command;
    const text = helpText(topic);
    if (text === undefined) return report(out, new CliError(`no help on '${topic}'`, commandHint(topic ?? '')), 'token', undefined);
    out.result(text);
    return ExitCode.Ok;
  }
  if (command === undefined) {
    out.plainErr(usageText());
    return report(out, new CliError('no command given', 'try: oauth-client-credentials token --help'), 'token', undefined);
  }

  const context: { phase: Phase } = { phase: 'token' };
  let session: Session | undefined;
  let deadline: { signal: AbortSignal; clear(): void } | undefined;
  try {
    if (command === 'inspect') return await (await import('./inspect.js')).inspectCommand(positionals, flags, io, out);
    if (command === 'serve') return await (await import('./serve.js')).serveCommand(positionals, flags, io, out, signal, version());
    if (command === 'token' && positionals.length > 0) throw new CliError(`token takes no arguments, got "${positionals[0]}"`, 'usage: oauth-client-credentials token [--json] [--no-cache]');
    if (flags['client-secret-stdin'] && (flags.data === '@-' || flags.json === '@-')) {
      throw new CliError(`--${flags.data === '@-' ? 'data' : 'json'} @- and --client-secret-stdin both want standard input`, 'read the secret from --client-secret-file instead');
    }
    // The arguments first: `call GET` with no URL is a usage error, whatever the settings lack.
    if (command === 'call') (await import('./callArguments.js')).checkCallArguments(positionals, flags as Flags);
    session = await (await import('./session.js')).openSession(flags as Flags, io, out, version());
    // --timeout bounds the whole command: the token (retries included) and the API call.
    deadline = commandDeadline(signal, session.settings.timeoutMs);
    if (command === 'token') return await (await import('./token.js')).tokenCommand(session, flags, out, deadline.signal);
    return await (await import('./call.js')).callCommand(session, positionals, flags, io, out, deadline.signal, context);
  } catch (error) {
    // An abort caused by the deadline (not by Ctrl-C) is the deadline's TimeoutError, however a layer wrapped it.
    const timedOut = deadline?.signal.aborted && !signal.aborted ? (deadline.signal.reason as unknown) : undefined;
    return report(out, timedOut instanceof TimeoutError ? timedOut : error, context.phase, command);
  } finally {
    deadline?.clear();
    await session?.close();
  }
}
