/**
 * Reading a small regular file named by a person (a CLI flag, the broker's configuration and the files it names): a
 * FIFO, a device or a huge file given by mistake is refused at once instead of hanging or filling memory. Imports
 * nothing of ours, so the CLI and the broker may both use it.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/** Most bytes read from each kind of file. */
export const MAX_FILE_BYTES = {
  /** A JSON configuration file (`--config`, the broker's configuration). */
  config: 1_048_576,
  /** A client secret file (and the broker's key file). */
  secret: 65_536,
  /** A client assertion file (the library takes assertions of at most 16,384 characters). */
  assertion: 65_536,
  /** A PEM or JWK file: a private key, a certificate, CA certificates (a bundle of every public root is about 250 kB). */
  pem: 10_485_760,
  /** A request body (`--data @FILE`, `--json @FILE`). */
  body: 67_108_864,
} as const;

/** The file is not a small regular file: `message` says why (`not a regular file …`, `larger than … bytes`). */
export class NotSmallRegularFileError extends Error {
  override name = 'NotSmallRegularFileError';
}

/**
 * Reads a file that must be a small regular file: a FIFO or a device (`/dev/zero`, `/dev/stdin`) is refused at once
 * instead of blocking for a writer or reading without end, and a file past `maxBytes` is refused after reading
 * `maxBytes + 1` bytes at most. Opened non-blocking, so that opening a FIFO with no writer does not wait.
 * @throws NotSmallRegularFileError naming what the file is; the fs error (ENOENT, EACCES) otherwise.
 */
export async function readSmallRegularFile(path: string, maxBytes: number): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new NotSmallRegularFileError('not a regular file (a FIFO, a device or a directory)');
    if (info.size > maxBytes) throw new NotSmallRegularFileError(`larger than ${maxBytes} bytes`);
    // Read to the end, not to the size stat gave: the file may have grown since, and must still stay under maxBytes.
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(65_536, maxBytes + 1 - length));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      length += bytesRead;
      if (length > maxBytes) throw new NotSmallRegularFileError(`larger than ${maxBytes} bytes`);
    }
    return Buffer.concat(chunks, length).toString('utf8');
  } finally {
    await handle.close();
  }
}

/** Why reading a file failed, in a few words: the refusal's message, or the fs error code (ENOENT, EACCES). */
export function fileReadProblem(error: unknown): string {
  return error instanceof NotSmallRegularFileError ? error.message : (error as NodeJS.ErrnoException)?.code ?? 'error';
}

/**
 * A client secret as read from a file or standard input: every trailing CR and LF removed. RFC 6749 Appendix A.2
 * makes a client secret `*VSCHAR` (%x20-7E), so a line break is never part of one, while `echo`, editors, heredocs
 * and YAML block scalars add one or more (most tools strip exactly one; Kubernetes and Prometheus strip all
 * whitespace). A trailing space is a legal VSCHAR and is kept.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#appendix-A.2
 */
export function secretText(text: string): string {
  return text.replace(/[\r\n]+$/, '');
}
