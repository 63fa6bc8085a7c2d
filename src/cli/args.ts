/**
 * Command-line parsing with `node:util` `parseArgs`: the commands, their options, and the split of argv into a
 * command, its positionals and its flags. Options may come before or after the command.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { suggest } from '../optionKeys.js';
import { CliError } from './failure.js';

type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** Options every command takes. */
const GLOBAL_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
  quiet: { type: 'boolean', short: 'q' },
  verbose: { type: 'boolean', short: 'v' },
  'no-color': { type: 'boolean' },
} as const satisfies OptionSpec;

/** Options of the commands that talk to servers (`token`, `call`). */
const CONNECTION_OPTIONS = {
  config: { type: 'string' },
  'token-url': { type: 'string' },
  'base-url': { type: 'string' },
  'client-id': { type: 'string' },
  'client-secret': { type: 'string' },
  'client-secret-file': { type: 'string' },
  'client-secret-stdin': { type: 'boolean' },
  'auth-method': { type: 'string' },
  'private-key-file': { type: 'string' },
  'key-id': { type: 'string' },
  'client-assertion-file': { type: 'string' },
  'basic-encoding': { type: 'string' },
  'grant-type': { type: 'string' },
  'token-param': { type: 'string', multiple: true },
  issuer: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  ca: { type: 'string' },
  dpop: { type: 'boolean' },
  scope: { type: 'string', multiple: true },
  resource: { type: 'string', multiple: true },
  audience: { type: 'string' },
  'clock-skew': { type: 'string' },
  timeout: { type: 'string' },
  retries: { type: 'string' },
  cache: { type: 'string' },
  'no-cache': { type: 'boolean' },
  proxy: { type: 'string' },
  'allow-insecure-http': { type: 'boolean' },
} as const satisfies OptionSpec;

/** The commands and their own options. */
export const COMMANDS = {
  token: { ...GLOBAL_OPTIONS, ...CONNECTION_OPTIONS, json: { type: 'boolean' } },
  call: {
    ...GLOBAL_OPTIONS,
    ...CONNECTION_OPTIONS,
    header: { type: 'string', short: 'H', multiple: true },
    data: { type: 'string', short: 'd' },
    json: { type: 'string' },
    include: { type: 'boolean', short: 'i' },
  },
  inspect: {
    ...GLOBAL_OPTIONS,
    json: { type: 'boolean' },
    verify: { type: 'boolean' },
    issuer: { type: 'string' },
    audience: { type: 'string' },
    ca: { type: 'string' },
    timeout: { type: 'string' },
  },
  serve: { ...GLOBAL_OPTIONS, config: { type: 'string' }, check: { type: 'boolean' } },
  help: { ...GLOBAL_OPTIONS },
} as const satisfies Record<string, OptionSpec>;

/** A command name. */
export type CommandName = keyof typeof COMMANDS;

/** Every flag of every command, as parsed (absent ones undefined). */
export interface Flags {
  help?: boolean;
  version?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  'no-color'?: boolean;
  config?: string;
  'token-url'?: string;
  'base-url'?: string;
  'client-id'?: string;
  'client-secret'?: string;
  'client-secret-file'?: string;
  'client-secret-stdin'?: boolean;
  'auth-method'?: string;
  'private-key-file'?: string;
  'key-id'?: string;
  'client-assertion-file'?: string;
  'basic-encoding'?: string;
  'grant-type'?: string;
  'token-param'?: string[];
  issuer?: string;
  cert?: string;
  key?: string;
  ca?: string;
  dpop?: boolean;
  /** `inspect`: verify the signature and RFC 9068 claims. */
  verify?: boolean;
  scope?: string[];
  resource?: string[];
  audience?: string;
  'clock-skew'?: string;
  timeout?: string;
  retries?: string;
  cache?: string;
  'no-cache'?: boolean;
  proxy?: string;
  'allow-insecure-http'?: boolean;
  /** `token`/`inspect`: boolean; `call`: the JSON body. */
  json?: boolean | string;
  header?: string[];
  data?: string;
  include?: boolean;
  /** `serve`: validate the configuration and exit. */
  check?: boolean;
}

/** The parsed command line. */
export interface ParsedArgs {
  /** The command, or undefined when none was given (only `--help`/`--version` or nothing). */
  command: CommandName | undefined;
  positionals: string[];
  flags: Flags;
}

const ALL_STRING_OPTIONS = new Set<string>();
const SHORT_STRING_OPTIONS = new Set<string>();
for (const spec of Object.values(COMMANDS)) {
  for (const [name, option] of Object.entries(spec as OptionSpec)) {
    if (option.type === 'string' && name !== 'json') {
      ALL_STRING_OPTIONS.add(name);
      if (option.short) SHORT_STRING_OPTIONS.add(option.short);
    }
  }
}

/** The index of the command word: the first argument that is neither an option nor an option's value. */
function commandIndex(argv: readonly string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return i + 1 < argv.length ? i + 1 : -1;
    if (arg.startsWith('--')) {
      if (!arg.includes('=') && ALL_STRING_OPTIONS.has(arg.slice(2))) i++;
      continue;
    }
    if (arg.startsWith('-') && arg !== '-') {
      if (arg.length === 2 && SHORT_STRING_OPTIONS.has(arg[1]!)) i++;
      continue;
    }
    return i;
  }
  return -1;
}

/** Splits argv into the command, its positionals and its flags; unknown options and commands are usage errors. */
export function parseCommandLine(argv: readonly string[]): ParsedArgs {
  const at = commandIndex(argv);
  const word = at >= 0 ? argv[at]! : undefined;
  if (word !== undefined && !Object.hasOwn(COMMANDS, word)) {
    throw new CliError(`unknown command '${word}'`, commandHint(word));
  }
  const command = word as CommandName | undefined;
  const rest = joinNegativeValues(at >= 0 ? [...argv.slice(0, at), ...argv.slice(at + 1)] : [...argv]);
  const options = COMMANDS[command ?? 'help'];
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (error) {
    const unknown = /^Unknown option '(--?[^']+)'/.exec((error as Error).message)?.[1];
    if (unknown !== undefined && command === undefined && commandsWith(unknown).length > 0) {
      // `oauth-client-credentials --client-id x` (the command forgotten): the option exists, the command is missing.
      throw new CliError(`no command given (${unknown} is an option of ${commandsWith(unknown).join(', ')})`, 'put a command first, e.g. `oauth-client-credentials token ' + unknown + ' …`; see `oauth-client-credentials help`');
    }
    if (unknown !== undefined) {
      const names = Object.entries(options as OptionSpec).flatMap(([name, o]) => [`--${name}`, ...(o.short ? [`-${o.short}`] : [])]);
      const close = unknown.startsWith('--') ? suggest(unknown, names.filter((n) => n.startsWith('--'))) : undefined;
      const where = command && command !== 'help' ? ` ${command}` : '';
      throw new CliError(`unknown option '${unknown}'${command && command !== 'help' ? ` for ${command}` : ''}`, close ? `did you mean ${close}? (see \`oauth-client-credentials help${where}\`)` : `see \`oauth-client-credentials help${where}\``);
    }
    const ambiguous = /^Option '(-[^',]+)(?:, [^']*)?' argument is ambiguous/.exec((error as Error).message)?.[1];
    if (ambiguous !== undefined) {
      // `--client-id --client-secret X`: the value was forgotten, and parseArgs will not take a flag for it.
      const next = rest[rest.indexOf(ambiguous) + 1];
      const long = ambiguous.startsWith('--') ? ambiguous : `--${Object.entries(options as OptionSpec).find(([, o]) => `-${o.short}` === ambiguous)?.[0] ?? 'OPTION'}`;
      throw new CliError(
        `${ambiguous} needs a value${next === undefined ? '' : `; got the next flag ${next}`}`,
        `give the value right after ${ambiguous} (a value that starts with a dash: ${long}=-VALUE); see \`oauth-client-credentials help${command && command !== 'help' ? ` ${command}` : ''}\``,
      );
    }
    const message = (error as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument starting with a '-'.*$/, '');
    throw new CliError(lowerFirst(message), `see \`oauth-client-credentials help${command && command !== 'help' ? ` ${command}` : ''}\``);
  }
  return { command, positionals: parsed.positionals, flags: parsed.values as Flags };
}

/** The list of the commands. */
const COMMAND_LIST = 'the commands are token, call, inspect, serve and help';

/**
 * The hint for a word that is not a command: "did you mean `token`?" for a close command (`tokn`, `cal`), or for a
 * global option written without its dashes (`version`: `--version`); the list of the commands otherwise.
 */
export function commandHint(word: string): string {
  const close = suggest(word, Object.keys(COMMANDS)) ?? (Object.hasOwn(GLOBAL_OPTIONS, word.toLowerCase()) ? `--${word.toLowerCase()}` : undefined);
  return close ? `did you mean \`${close}\`? (${COMMAND_LIST}; see \`oauth-client-credentials help\`)` : `${COMMAND_LIST}; see \`oauth-client-credentials help\``;
}

/** The commands that take the option `flag` (`--client-id` or `-H`). */
function commandsWith(flag: string): string[] {
  return Object.entries(COMMANDS)
    .filter(([name, spec]) => name !== 'help' && Object.entries(spec as OptionSpec).some(([long, o]) => flag === `--${long}` || (o.short !== undefined && flag === `-${o.short}`)))
    .map(([name]) => name);
}

/**
 * `--retries -1` as `--retries=-1`: parseArgs takes a value that starts with `-` for an option and calls it
 * ambiguous; a negative number after a string option is that option's value (and then gets a range error).
 */
function joinNegativeValues(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    if (arg.startsWith('--') && !arg.includes('=') && ALL_STRING_OPTIONS.has(arg.slice(2)) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}
