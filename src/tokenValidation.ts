/**
 * Syntax checks of the token fields that end up in an `Authorization` header, from every source (token endpoint,
 * provider, preset, store, `updateToken`). Pure: no I/O, no error classes; callers turn a problem into their own
 * typed error. A value that fails here is never cached or stored: undici would refuse it as a header, and every call
 * would then fail with a network error for the token's whole lifetime.
 */

/**
 * What an access token may hold: visible ASCII (`%x21-7E`), which an `Authorization` header carries unchanged.
 * Wider than RFC 6750 §2.1's `b64token` on purpose: servers issue tokens outside it (Salesforce's
 * `00D…!AQ4AQ…`, tokens with `%` or `:`), and a client can only send them as they are. What is refused would change
 * the header or cannot be sent: empty, spaces, control characters, non-ASCII.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-5.5
 */
const VISIBLE_ASCII = /^[\x21-\x7E]+$/;

/**
 * RFC 9110 §5.6.2 `token` (the `tchar` set), which an authentication scheme must be: RFC 6749 §A.7's `type-name`
 * (`-`, `.`, digits, letters) is a subset of it.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#appendix-A.7
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-5.6.2
 */
const TOKEN_TYPE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Why an access token is unusable, without quoting it; undefined when it is visible ASCII (`%x21-7E`). */
export function accessTokenProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be a string, got ${value === null ? 'null' : typeof value}`;
  if (value === '') return 'is empty';
  if (!VISIBLE_ASCII.test(value)) return `cannot be sent in an Authorization header (${describeBadCharacter(value, /[\x21-\x7E]/)})`;
  return undefined;
}

/** Why a token type is unusable, without quoting it; undefined when it is a valid RFC 6749 token type. */
export function tokenTypeProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be a string, got ${value === null ? 'null' : typeof value}`;
  if (value === '') return 'is empty';
  if (!TOKEN_TYPE.test(value)) return `is not an RFC 6749 token type (${describeBadCharacter(value, /[!#$%&'*+\-.^_`|~0-9A-Za-z]/)})`;
  return undefined;
}

/**
 * The first unusable field of a token-shaped value: `accessToken` always, `tokenType` when present. Returns the
 * field name and the problem, or undefined when both are usable.
 */
export function tokenFieldsProblem(token: { accessToken?: unknown; tokenType?: unknown }): { field: 'accessToken' | 'tokenType'; problem: string } | undefined {
  const access = accessTokenProblem(token.accessToken);
  if (access) return { field: 'accessToken', problem: access };
  if (token.tokenType !== undefined) {
    const type = tokenTypeProblem(token.tokenType);
    if (type) return { field: 'tokenType', problem: type };
  }
  return undefined;
}

/** Names the first character outside `allowed` by its code point and position, never by the value around it. */
function describeBadCharacter(value: string, allowed: RegExp): string {
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (!allowed.test(ch)) {
      return `character U+${value.codePointAt(i)!.toString(16).toUpperCase().padStart(4, '0')} at position ${i}`;
    }
  }
  return 'malformed';
}
