/**
 * The secrets the CLI can know before it has read any setting: the client secret from the environment and from
 * `--client-secret` on the command line. The output's redactor learns them first thing, so that no message (a usage
 * error quoting an argument, a path that cannot be read) prints them. Pure, and loads nothing: it runs before parsing.
 */

/** The environment variables that hold the client secret itself, the first one set wins (`O_AUTH_*`: the reference SDK's name). */
export const SECRET_ENVIRONMENT = ['CLIENT_CREDENTIALS_CLIENT_SECRET', 'O_AUTH_CLIENT_SECRET'] as const;

/**
 * Every client secret in `env` and `argv` (`--client-secret VALUE` or `--client-secret=VALUE`, wherever it stands),
 * with and without surrounding whitespace. Over-collecting is harmless: the redactor only hides values.
 */
export function knownSecrets(argv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const found: string[] = [];
  for (const name of SECRET_ENVIRONMENT) {
    const value = env[name];
    if (value !== undefined && value !== '') found.push(value);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') break;
    if (arg === '--client-secret' && i + 1 < argv.length) found.push(argv[i + 1]!);
    else if (arg.startsWith('--client-secret=')) found.push(arg.slice('--client-secret='.length));
  }
  return [...new Set(found.flatMap((value) => (value.trim() !== value && value.trim() !== '' ? [value, value.trim()] : [value])))].filter((value) => value !== '');
}
