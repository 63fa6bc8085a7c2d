/**
 * What a first-time user of the CLI meets: docs/cli.md lists every flag of every command's --help (and mentions no
 * flag the tool lacks); the library's `allowInsecureHttp: true` advice reaches the user as `--allow-insecure-http`;
 * an option given without a command says the command is missing; a JSON 404 from the token URL is called a wrong URL,
 * not a refusal.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { COMMANDS } from '../src/cli/args.js';
import { helpText } from '../src/cli/help.js';
import { startStack, type Stack } from './helpers/fixtures.js';
import { runCli, type Run } from './helpers/cliRun.js';

const CLI_MD = fileURLToPath(new URL('../../docs/cli.md', import.meta.url));

/** Every `--long` flag and `-x` short flag of each command, from the parser's own table. */
function parserFlags(): Map<string, string[]> {
  const flags = new Map<string, string[]>();
  for (const [command, spec] of Object.entries(COMMANDS)) {
    for (const [name, option] of Object.entries(spec as Record<string, { short?: string }>)) {
      for (const flag of [`--${name}`, ...(option.short ? [`-${option.short}`] : [])]) flags.set(flag, [...(flags.get(flag) ?? []), command]);
    }
  }
  return flags;
}

/** The `--long` flags a text mentions. */
const longFlagsIn = (text: string): Set<string> => new Set([...text.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)].map((m) => m[0]));
const mentions = (text: string, flag: string): boolean => new RegExp(`(?<![\\w-])${flag.replace(/[-]/g, '\\-')}(?![\\w-])`).test(text);

describe('docs/cli.md against --help', () => {
  const doc = readFileSync(CLI_MD, 'utf8');
  const flags = parserFlags();

  test('every command has help, and each help text lists every flag its command takes', () => {
    for (const [command, spec] of Object.entries(COMMANDS)) {
      const help = helpText(command === 'help' ? undefined : command);
      assert.ok(help, `\`client-credentials help ${command}\` has no text (src/cli/help.ts)`);
      const missing = Object.entries(spec as Record<string, { short?: string }>)
        .filter(([name]) => command !== 'help' && !mentions(help!, `--${name}`))
        .map(([name]) => `--${name}`);
      assert.deepEqual(missing, [], `\`client-credentials help ${command}\` does not mention ${missing.join(', ')} (src/cli/help.ts)`);
    }
  });

  test('every flag of --help is in docs/cli.md', () => {
    const missing = [...flags].filter(([flag]) => !mentions(doc, flag)).map(([flag, commands]) => `${flag} (${commands.filter((c) => c !== 'help').join(', ') || 'every command'})`);
    assert.deepEqual(missing, [], `docs/cli.md does not mention ${missing.join('; ')}: add each to its table in docs/cli.md (the Options table, or the command's own options table)`);
  });

  test('every command is in docs/cli.md', () => {
    const missing = Object.keys(COMMANDS).filter((command) => !doc.includes(`\`${command}`));
    assert.deepEqual(missing, [], `docs/cli.md does not describe the command(s) ${missing.join(', ')}: add a row to its Commands table`);
  });

  /** Flags docs/cli.md names as examples of a misspelling. */
  const MISSPELLINGS = new Set(['--retry']);

  test('every flag docs/cli.md or a help text mentions is one the tool takes', () => {
    const texts: [string, string][] = [['docs/cli.md', doc], ...Object.keys(COMMANDS).map((c): [string, string] => [`client-credentials help ${c}`, helpText(c === 'help' ? undefined : c)!])];
    for (const [where, text] of texts) {
      const unknown = [...longFlagsIn(text)].filter((flag) => !flags.has(flag) && !MISSPELLINGS.has(flag));
      assert.deepEqual(unknown, [], `${where} mentions ${unknown.join(', ')}, which no command takes (src/cli/args.ts COMMANDS)`);
    }
  });

  test('the check sees a flag that is missing from the docs', () => {
    assert.ok(mentions('`--dpop` |', '--dpop') && !mentions('`--dpop-key` |', '--dpop'));
    assert.ok(!mentions('--client-secret-file', '--client-secret'), 'a longer flag does not count as a shorter one');
  });
});

test('no doc, demo or help text tells anyone to run `npx client-credentials` (a different package on the registry)', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const files = ['README.md', ...readdirSync(`${root}docs`).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`), ...readdirSync(`${root}examples`).map((f) => `examples/${f}`), ...readdirSync(`${root}src/cli`).map((f) => `src/cli/${f}`)];
  const offenders = files.filter((f) => /npx\s+(--\S+\s+)*client-credentials\b/.test(readFileSync(`${root}${f}`, 'utf8')));
  assert.deepEqual(offenders, [], 'write `npx oauth-client-credentials …`');
  assert.ok(/npx oauth-client-credentials/.test(readFileSync(`${root}examples/cli-demo.ts`, 'utf8')), 'the demo prints commands one can paste');
});

/** `client-credentials token`, `client-credentials help …` with no `oauth-` before: the command under a name the docs do not use. */
const BARE_COMMAND = /(?<![\w/.-])client-credentials (help|token|call|inspect|serve)\b/;

test('help texts name the command as installed by the package: `oauth-client-credentials …`', () => {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { name: string; bin: Record<string, string> };
  assert.ok(pkg.bin[pkg.name], `package.json has a bin named ${pkg.name}`);
  for (const topic of [undefined, ...Object.keys(COMMANDS).filter((c) => c !== 'help')]) {
    const text = helpText(topic)!;
    assert.doesNotMatch(text, BARE_COMMAND, `help ${topic ?? ''}`);
    assert.ok(text.includes(`${pkg.name} `), `help ${topic ?? ''} names ${pkg.name}`);
  }
});

describe('CLI messages', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(async () => {
    await stack.close();
  });

  function cli(args: string[]): Promise<Run> {
    return runCli(args, { env: { HOME: '/nonexistent', CLIENT_CREDENTIALS_CACHE: 'off', CLIENT_CREDENTIALS_CLIENT_SECRET: 'svc-secret', NO_PROXY: '*' } });
  }

  test('plain http to another machine names the flag --allow-insecure-http, not the library option', async () => {
    const run = await cli(['token', '--token-url', 'http://192.0.2.1/token', '--client-id', 'svc', '--retries', '0']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /--allow-insecure-http/);
    assert.doesNotMatch(run.stderr, /allowInsecureHttp/);
  });

  test('an option with no command says the command is missing, not that the option is unknown', async () => {
    const run = await cli(['--client-id', 'svc']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /no command given \(--client-id is an option of token, call\)/);
    assert.doesNotMatch(run.stderr, /unknown option/);
    const bogus = await cli(['--bogus']);
    assert.match(bogus.stderr, /unknown option '--bogus'/, 'an option no command takes is still unknown');
  });

  test('a JSON 404 from the token URL is a wrong URL, not a refusal', async () => {
    // The API answers {"error":"not_found"} with 404 on paths it does not serve: a token URL pointing at the wrong server.
    const run = await cli(['token', '--token-url', `${stack.api.url}/oauth2/token`, '--client-id', 'svc', '--retries', '0']);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /the token endpoint answered 404 Not Found: the token URL is probably wrong/);
    assert.match(run.stderr, /hint: check --token-url/);
    assert.doesNotMatch(run.stderr, /refused/);
  });

  test('hints name the command `oauth-client-credentials …`', async () => {
    const runs = await Promise.all([['nope'], ['--client-id', 'svc'], ['token', '--retry', '1'], ['token', 'extra'], ['inspect', 'a', 'b'], []].map((args) => cli(args)));
    for (const run of runs) {
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /oauth-client-credentials (help|token|call|inspect)/);
      assert.doesNotMatch(run.stderr, BARE_COMMAND);
    }
  });
});
