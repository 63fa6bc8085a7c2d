/**
 * Reading the files the CLI's flags name (`--config`, `--client-secret-file`, `--private-key-file`, `--cert`, `--key`,
 * `--ca`, `--client-assertion-file`, `--data @FILE`): each must be a small regular file (src/io/smallFile.ts), so that
 * a FIFO, a device or a huge file given by mistake is refused at once with a CliError instead of hanging or filling memory.
 */
import { MAX_FILE_BYTES, NotSmallRegularFileError, readSmallRegularFile as readSmallFile } from '../io/smallFile.js';
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
  try {
    return await readSmallRegularFile(path, maxBytes);
  } catch (error) {
    const reason = error instanceof CliError ? error.message : (error as NodeJS.ErrnoException).code ?? 'error';
    throw new CliError(`cannot read the ${what} file ${path}: ${reason}`, hint);
  }
}
