/**
 * Decoding (never verifying) JSON Web Tokens, for reading an access token's `exp` and for the CLI's `inspect`.
 */

/** The decoded parts of a JWT. The signature is not verified. */
export interface DecodedJwt {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

function decodePart(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Decodes a compact JWS's header and payload, or returns undefined when the token is not a JWT (opaque). */
export function decodeJwt(token: string): DecodedJwt | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const header = decodePart(parts[0]!);
  const payload = header && decodePart(parts[1]!);
  return header && payload ? { header, payload } : undefined;
}

/** The payload of a JWT, or undefined when the token is opaque. */
export function decodeJwtPayload(token: string): Record<string, unknown> | undefined {
  return decodeJwt(token)?.payload;
}
