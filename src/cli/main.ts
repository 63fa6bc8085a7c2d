#!/usr/bin/env node
/**
 * The `oauth-client-credentials` executable: get a token, call an API, inspect a token, run the broker.
 * Run `oauth-client-credentials help` for the commands and options.
 */
import { processIo } from './output.js';
import { run } from './run.js';

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
  throw error;
});

process.exitCode = await run(process.argv.slice(2), processIo(), controller.signal);
