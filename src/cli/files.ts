/**
 * Reading the files the CLI's flags name (`--config`, `--client-secret-file`, `--private-key-file`, `--cert`, `--key`,
 * `--ca`, `--client-assertion-file`, `--data @FILE`): each must be a small regular file, so that a FIFO, a device
 * or a huge file given by mistake is refused at once with a CliError instead of hanging or filling memory.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { CliError } from './failure.js';

/** Most bytes read from each kind of file a flag names. */
export const MAX_FILE_BYTES = {
  /** `--config`. */
  config: 1_048_576,
  /** `--client-secret-file` (and its environment variable and config key). */
  secret: 65_536,
  /** `--client-assertion-file` (the library takes assertions of at most 16,384 characters). */
  assertion: 65_536,
  /** `--private-key-file`, `--cert`, `--key`, `--ca` (a CA bundle of every public root is about 250 kB). */
  pem: 10_485_760,
  /** `--data @FILE`, `--json @FILE`. */
  body: 67_108_864,
} as const;

/**
 * Reads a file that must be a small regular file: a FIFO or a device (`/dev/zero`, `/dev/stdin`) is refused at once
 * instead of blocking for a writer or reading without end, and a file past `maxBytes` is refused after reading
 * `maxBytes + 1` bytes at most. Opened non-blocking, so that opening a FIFO with no writer does not wait.
 * @throws CliError naming what the file is; the fs error (ENOENT, EACCES) otherwise.
 */
export async function readSmallRegularFile(path: string, maxBytes: number): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new CliError('not a regular file (a FIFO, a device or a directory)');
    if (info.size > maxBytes) throw new CliError(`larger than ${maxBytes} bytes`);
    // Read to the end, not to the size stat gave: the file may have grown since, and must still stay under maxBytes.
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(65_536, maxBytes + 1 - length));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      length += bytesRead;
      if (length > maxBytes) throw new CliError(`larger than ${maxBytes} bytes`);
    }
    return Buffer.concat(chunks, length).toString('utf8');
  } finally {
    await handle.close();
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
