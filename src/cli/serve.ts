/**
 * `oauth-client-credentials serve --config broker.json`: runs the token broker (src/broker/) until SIGTERM or Ctrl-C;
 * SIGHUP reloads its configuration. `--check` validates the configuration and the files it names, and exits.
 */
import { dirname, resolve } from 'node:path';
import { loadBrokerConfig, startBroker, type Broker } from '../broker/broker.js';
import { openBrokerClient } from '../broker/clients.js';
import type { Flags } from './args.js';
import { CliError, ExitCode } from './failure.js';
import type { Io, Output } from './output.js';

/** Runs the broker; resolves with the exit code once it has stopped. */
export async function serveCommand(positionals: readonly string[], flags: Flags, io: Io, out: Output, signal: AbortSignal, version: string): Promise<ExitCode> {
  if (positionals.length > 0) throw new CliError(`serve takes no arguments, got "${positionals[0]}"`, 'usage: oauth-client-credentials serve --config broker.json');
  const given = flags.config ?? io.env['CLIENT_CREDENTIALS_CONFIG'];
  if (given === undefined || given === '') throw new CliError('serve needs a configuration file', 'give --config broker.json (see docs/broker.md)');
  const configPath = resolve(io.cwd, given);
  const userAgent = `oauth-client-credentials-broker/${version}`;
  if (flags.check) {
    const config = await loadBrokerConfig(configPath, io.env);
    for (const client of config.clients.values()) {
      const opened = await openBrokerClient(client, { baseDir: dirname(configPath), userAgent });
      await opened.client.close();
    }
    out.result(`ok: ${config.clients.size} client(s), ${config.routes.length} route(s)\n`);
    return ExitCode.Ok;
  }
  // The handlers are in place before startup, which may take a while (a token store to reach): a SIGHUP's default
  // action would kill the broker. A reload asked for during startup is done once it listens; a SIGTERM stops it then.
  let broker: Broker | undefined;
  let reloadAsked = false;
  const onHup = (): void => {
    if (broker) void broker.reload();
    else reloadAsked = true;
  };
  let resolveStop!: () => void;
  const stopped = new Promise<void>((r) => (resolveStop = r));
  const onTerm = (): void => resolveStop();
  process.on('SIGHUP', onHup);
  process.on('SIGTERM', onTerm);
  signal.addEventListener('abort', onTerm, { once: true });
  try {
    broker = await startBroker({ configPath, env: io.env, write: (line) => io.stdout.write(line), userAgent });
    if (reloadAsked) void broker.reload();
    await stopped;
    await broker.shutdown();
  } finally {
    process.off('SIGHUP', onHup);
    process.off('SIGTERM', onTerm);
    signal.removeEventListener('abort', onTerm);
  }
  // A handle a library left open (a Redis socket in its back-off) must not keep a stopped broker alive.
  setTimeout(() => process.exit(process.exitCode ?? ExitCode.Ok), 2_000).unref();
  return ExitCode.Ok;
}
