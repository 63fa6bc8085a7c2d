/**
 * Content codings (RFC 9110 §8.4.1) of a response read as text or bytes. The Client sends no `Accept-Encoding`,
 * which RFC 9110 §12.5.3 reads as "any coding is acceptable", and undici's `request()` and dispatch handlers hand
 * the body over as it came: so a server (or a gateway in front of it) may gzip a token answer or an API's JSON, and
 * the body is decoded here, as `fetch` decodes it. The decoded size is held to the same cap as the body
 * (`maxBodyBytes`), so a few kilobytes that expand to gigabytes are refused, not inflated.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-8.4.1
 */
import { constants as bufferConstants } from 'node:buffer';
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync, type ZlibOptions } from 'node:zlib';
import { BodyTooLargeError } from './bodyLimit.js';

/** The decoder of each coding this module knows, by its lower-cased name. */
const DECODERS: Record<string, (body: Buffer, options: ZlibOptions) => Buffer> = {
  gzip: gunzipSync,
  'x-gzip': gunzipSync,
  // RFC 9110 `deflate` is the zlib format; some servers send raw deflate, which fetch also accepts.
  deflate: (body, options) => ((body[0]! & 0x0f) === 0x08 ? inflateSync(body, options) : inflateRawSync(body, options)),
  br: brotliDecompressSync,
};

/**
 * `body` with the codings of a `Content-Encoding` value undone, last applied first. A coding this module does not
 * know (or an undecodable body) leaves the body as it came, as `fetch` leaves it; `identity` is no coding.
 *
 * @param limit largest decoded size, in bytes (undefined: no cap of ours).
 * @throws BodyTooLargeError when the decoded body would be larger than `limit`.
 */
export function decodeContent(body: Buffer, contentEncoding: string, limit: number | undefined, statusCode: number, headers: Record<string, string>): Buffer {
  if (body.length === 0) return body;
  const codings = contentEncoding.toLowerCase().split(',').map((c) => c.trim()).filter((c) => c !== '' && c !== 'identity');
  let out = body;
  for (let i = codings.length - 1; i >= 0; i--) {
    const decode = DECODERS[codings[i]!];
    if (decode === undefined) return body;
    try {
      out = decode(out, { maxOutputLength: limit ?? bufferConstants.MAX_LENGTH });
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') throw new BodyTooLargeError(limit!, statusCode, headers);
      return body;
    }
  }
  return out;
}

/** `bytes` as UTF-8 text, a byte order mark dropped (as undici's `text()` and fetch drop it). */
export function utf8Text(bytes: Buffer): string {
  const bom = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
  return bytes.toString('utf8', bom ? 3 : 0);
}
