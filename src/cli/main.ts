#!/usr/bin/env node
/**
 * The `oauth-client-credentials` executable: get a token, call an API, inspect a token, run the broker.
 * Run `oauth-client-credentials help` for the commands and options.
 */
import { processIo } from './output.js';
import { run } from './run.js';
import { ExitCode } from './failure.js';

const controller = new AbortController();
let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  controller.abort();
});
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  // A closed pipe (`oauth-client-credentials call … | head -1`) is not a failure of ours.
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  // A full disk or a broken device: say so in one line (never the data), rather than crash with a stack trace.
  process.stderr.write(`oauth-client-credentials: error: cannot write to standard output: ${error.code ?? error.message}\n`);
  process.exit(ExitCode.Usage);
});
// Nothing more can be said when stderr itself fails; the exit code still tells.
process.stderr.on('error', () => {
  process.exitCode ||= ExitCode.Usage;
});

process.exitCode = await run(process.argv.slice(2), processIo(), controller.signal);
