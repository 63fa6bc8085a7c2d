/**
 * The cap on a response body (`maxBodyBytes`): the error a larger body raises, and the length a response declares,
 * which lets the cap be checked before the body is read.
 */

/** Raised by the transport when a body exceeds `maxBodyBytes`. */
export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
  constructor(readonly limit: number, readonly statusCode: number, readonly headers: Record<string, string>) {
    super(`Response body is larger than ${limit} bytes`);
  }
}

/**
 * The body's declared `content-length` when it is a single valid number, else undefined (chunked, or repeated
 * values): with one, the HTTP parser delivers exactly that many bytes, so the cap can be checked before reading.
 */
export function declaredLength(headers: Record<string, string>): number | undefined {
  const value = headers['content-length'];
  if (value === undefined || value === '') return undefined;
  const length = Number(value);
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}

/**
 * Whether a response to `method` has a body: the `content-length` of a HEAD answer is the length of the
 * representation, and no body follows (RFC 9110 §9.3.2), so it is no body past the cap.
 */
export function bodyFollows(method: string | undefined): boolean {
  return method !== 'HEAD';
}
