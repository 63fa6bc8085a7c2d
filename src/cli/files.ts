/**
 * Reading the files the CLI's flags name (`--config`, `--client-secret-file`, `--private-key-file`, `--cert`, `--key`,
 * `--ca`, `--client-assertion-file`, `--data @FILE`): each must be a small regular file (src/io/smallFile.ts), so that
 * a FIFO, a device or a huge file given by mistake is refused at once with a CliError instead of hanging or filling memory.
 */
import { MAX_FILE_BYTES, NotSmallRegularFileError, readSmallRegularFile as readSmallFile } from '../io/smallFile.js';
import { stat } from 'node:fs/promises';
import { CliError } from './failure.js';

export { MAX_FILE_BYTES };

/**
 * The shared small-regular-file reader, its refusals as CliErrors.
 * @throws CliError naming what the file is; the fs error (ENOENT, EACCES) otherwise.
 */
export async function readSmallRegularFile(path: string, maxBytes: number): Promise<string> {
  try {
    return await readSmallFile(path, maxBytes);
  } catch (error) {
    throw error instanceof NotSmallRegularFileError ? new CliError(error.message) : error;
  }
}

/**
 * {@link readSmallRegularFile} for a flag: any failure becomes a CliError `cannot read the WHAT file PATH: REASON`
 * (REASON: the fs error code, `not a regular file …` or `larger than … bytes`), with `hint` when given.
 */
export async function readFlagFile(path: string, what: string, maxBytes: number, hint?: string): Promise<string> {
  let text: string;
  try {
    text = await readSmallRegularFile(path, maxBytes);
  } catch (error) {
    const reason = error instanceof CliError ? error.message : (error as NodeJS.ErrnoException).code ?? 'error';
    throw new CliError(`cannot read the ${what} file ${path}: ${reason}`, hint);
  }
  return windowsText(text, `the ${what} file ${path}`);
}

/**
 * The text of a file as a Windows editor may have written it: a UTF-8 byte order mark (older Notepad, PowerShell 5's
 * `-Encoding utf8`) dropped, as it is no part of the content. UTF-16 (PowerShell 5's `>` and `Out-File`), read as
 * UTF-8, is two replacement characters then NULs: refused, rather than sent as mangled bytes.
 * @throws CliError naming `what` (e.g. `the config file PATH`) when the text is UTF-16.
 */
export function windowsText(text: string, what: string): string {
  if (text.startsWith('\uFFFD\uFFFD') && text.includes('\u0000')) {
    throw new CliError(`${what} is UTF-16 (as PowerShell 5's \`>\` and Out-File write), not UTF-8`, 'save it as UTF-8, e.g. `Set-Content -Encoding ascii` or `-Encoding utf8`');
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * Warns through `warn` when a file holding a secret (a client secret, a private key) may be read by group or others,
 * as for a config file holding `clientSecret`: ssh refuses such a key; this says how to fix it. Not on Windows.
 */
export async function warnIfOthersMayRead(path: string, what: string, warn: (message: string) => void): Promise<void> {
  if (process.platform === 'win32') return;
  try {
    if (((await stat(path)).mode & 0o044) !== 0) warn(`the ${what} file ${path} may be read by other users; run: chmod 600 ${path}`);
  } catch {
    // it was read a moment ago; a file gone since is not worth a warning
  }
}
