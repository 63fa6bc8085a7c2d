/**
 * Redaction of credentials: the client secret and every access token a Client has held, in every form they take on
 * the wire and in text (raw, form-encoded, percent-encoded, JSON-escaped, inside `Authorization: Basic`). One
 * implementation for the library (errors, events) and the CLI (everything it prints).
 *
 * The rule for short values: a value of {@link MIN_SUBSTRING_LENGTH} characters or more is replaced wherever it
 * appears, inside any text. A shorter value (a secret such as `items` or `abc123`) is replaced only where a whole
 * value equals it: a whole text, a whole string field, a JSON string value (never an object key) or a form field's
 * value. Replacing a short value inside text would corrupt data (`{"items": …}` would become `{"[redacted]": …}`)
 * and would not hide it anyway, so a short secret is worth a warning at start ({@link shortSecretWarning}).
 */

/** What replaces a redacted value. */
export const REDACTED = '[redacted]';

/** Values at least this long are redacted wherever they appear; shorter ones only where a whole value equals them. */
export const MIN_SUBSTRING_LENGTH = 8;

/** How deep `scrub` follows `cause` chains and nested objects. */
const MAX_DEPTH = 8;

/** RFC 6749 Appendix B form-urlencoding, as a client sends `client_secret` and the Basic credentials. */
export function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%20/g, '+');
}

/** The `Authorization: Basic` credentials of a client id and secret, as RFC 6749 §2.3.1 builds them. */
export function basicCredentials(clientId: string, secret: string): string {
  return Buffer.from(`${formEncode(clientId)}:${formEncode(secret)}`).toString('base64');
}

/** The forms a value takes in text: raw, form-encoded, percent-encoded and JSON-escaped. */
function variantsOf(value: string): string[] {
  const out = new Set([value, formEncode(value), encodeURIComponent(value), JSON.stringify(value).slice(1, -1)]);
  try {
    out.add(encodeURI(value));
  } catch {
    // lone surrogates cannot be percent-encoded: the other forms are enough
  }
  return [...out];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

let warnedShortSecret = false;

/**
 * Emits a process warning (once per process, code `OAUTH_CC_SHORT_SECRET`) when a client secret is shorter than
 * {@link MIN_SUBSTRING_LENGTH}: such a secret is redacted only where a whole value equals it.
 */
export function warnIfShortSecret(secret: string | undefined): void {
  if (secret === undefined || secret === '' || secret.length >= MIN_SUBSTRING_LENGTH || warnedShortSecret) return;
  warnedShortSecret = true;
  process.emitWarning(shortSecretWarning(secret.length), { code: 'OAUTH_CC_SHORT_SECRET' });
}

/** The message of a process warning about a short client secret (the value itself is never in it). */
export function shortSecretWarning(length: number): string {
  return `The client secret is ${length} characters long: secrets shorter than ${MIN_SUBSTRING_LENGTH} characters are redacted only where a whole value equals them, not inside other text. Use a longer secret.`;
}

/**
 * Replaces known secrets and tokens in text and in the errors and events that carry them. Add values as they become
 * known (`add`); redaction is idempotent, so scrubbing an object twice is harmless.
 *
 * @example
 * ```ts
 * const redactor = new Redactor();
 * redactor.add('s3cret-value-long');
 * redactor.redact('echo s3cret-value-long'); // 'echo [redacted]'
 * ```
 */
export class Redactor {
  /** Long forms, replaced inside any text; kept sorted longest first. */
  #long: string[] = [];
  /** Short values (and their forms), replaced only as whole values. */
  #short = new Set<string>();
  #shortPattern: RegExp | undefined;
  /** Values kept for the Redactor's life (secrets). */
  readonly #pinned = new Set<string>();
  /** Tokens, oldest first; the oldest are forgotten beyond `maxTokens`. */
  readonly #tokens = new Set<string>();
  readonly #maxTokens: number;

  /** `maxTokens`: how many tokens (`addToken`) are remembered; the oldest are forgotten first. Default 256. */
  constructor(options: { maxTokens?: number } = {}) {
    this.#maxTokens = options.maxTokens ?? 256;
  }

  /** Whether anything is known yet. */
  get size(): number {
    return this.#long.length + this.#short.size;
  }

  /** Adds a value never to be shown (and its encoded forms), for the Redactor's life. Empty values are ignored. */
  add(value: string | undefined): void {
    if (value === undefined || value === '' || this.#pinned.has(value)) return;
    this.#pinned.add(value);
    this.#include(value);
  }

  /**
   * Adds an access token (or another short-lived credential). Only the last `maxTokens` are remembered, so a
   * long-running Client does not grow without bound; a token in use is re-added when it is used again.
   */
  addToken(value: string | undefined): void {
    if (value === undefined || value === '' || this.#pinned.has(value)) return;
    if (this.#tokens.has(value)) return;
    this.#tokens.add(value);
    this.#include(value);
    if (this.#tokens.size > this.#maxTokens) {
      const oldest = this.#tokens.values().next().value as string;
      this.#tokens.delete(oldest);
      this.#rebuild();
    }
  }

  #include(value: string): void {
    let longChanged = false;
    for (const variant of variantsOf(value)) {
      if (variant.length >= MIN_SUBSTRING_LENGTH) {
        if (!this.#long.includes(variant)) {
          this.#long.push(variant);
          longChanged = true;
        }
      } else if (!this.#short.has(variant)) {
        this.#short.add(variant);
        this.#shortPattern = undefined;
      }
    }
    if (longChanged) this.#long.sort((a, b) => b.length - a.length);
  }

  #rebuild(): void {
    this.#long = [];
    this.#short = new Set();
    this.#shortPattern = undefined;
    for (const value of this.#pinned) this.#include(value);
    for (const value of this.#tokens) this.#include(value);
  }

  /** Adds the `Authorization: Basic` credentials of an id and secret: as the library sends them, and unencoded. */
  addBasic(clientId: string, secret: string | undefined): void {
    if (secret === undefined || secret === '') return;
    this.add(basicCredentials(clientId, secret));
    this.add(Buffer.from(`${clientId}:${secret}`).toString('base64'));
  }

  /** Whether `text` contains (or, for a short value, is) a known value. */
  leaks(text: string): boolean {
    return this.redact(text) !== text;
  }

  /** `text` with every known value replaced by {@link REDACTED}. */
  redact(text: string): string {
    if (text === '' || this.size === 0) return text;
    if (this.#short.has(text)) return REDACTED;
    let out = text;
    for (const value of this.#long) {
      if (out.includes(value)) out = out.split(value).join(REDACTED);
    }
    if (this.#short.size > 0) out = this.#redactShort(out);
    return out;
  }

  /**
   * `bytes` with every long known value (as UTF-8) replaced by {@link REDACTED}, every other byte unchanged: for
   * bodies that are not text (a download written as it came). A short value is replaced only when it is the whole
   * body. Returns `bytes` itself when nothing matched.
   */
  redactBytes(bytes: Uint8Array): Uint8Array {
    if (this.size === 0 || bytes.byteLength === 0) return bytes;
    let out = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (this.#short.size > 0 && out.byteLength <= 64 && this.#short.has(out.toString('utf8'))) return Buffer.from(REDACTED);
    let changed = false;
    const mark = Buffer.from(REDACTED);
    for (const value of this.#long) {
      const needle = Buffer.from(value);
      let at = out.indexOf(needle);
      if (at < 0) continue;
      const parts: Buffer[] = [];
      let from = 0;
      while (at >= 0) {
        parts.push(out.subarray(from, at), mark);
        from = at + needle.length;
        at = out.indexOf(needle, from);
      }
      parts.push(out.subarray(from));
      out = Buffer.concat(parts);
      changed = true;
    }
    return changed ? out : bytes;
  }

  /**
   * Short values where they stand alone in structured text: a JSON string value (`"v"` not followed by `:`), a form
   * field or query value (`=v` up to `&`), an `Authorization` credential (`Bearer v`, `Basic v`).
   */
  #redactShort(text: string): string {
    if (!this.#shortPattern) {
      const alternatives = [...this.#short].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|');
      this.#shortPattern = new RegExp(`("(?:${alternatives})"(?!\\s*:))|(=)(?:${alternatives})(?=&|$|\\s)|(\\b(?:Bearer|Basic|DPoP) )(?:${alternatives})(?=$|[\\s",])`, 'g');
    }
    return text.replace(this.#shortPattern, (_match: string, quoted: string | undefined, eq: string | undefined, scheme: string | undefined) => {
      if (quoted !== undefined) return `"${REDACTED}"`;
      return `${eq ?? scheme ?? ''}${REDACTED}`;
    });
  }

  /**
   * Removes known values from `value` in place and returns it: an Error's message, stack, string fields, `cause`
   * chain and nested objects (an `ApiError`'s body, headers and parsed result); a plain object's or array's strings
   * (an event payload). Object keys are redacted only for long values. Other values are returned as they are.
   */
  scrub<T>(value: T): T {
    if (this.size === 0) return value;
    return this.#scrub(value, 0, new Set()) as T;
  }

  #scrub(value: unknown, depth: number, seen: Set<object>): unknown {
    if (typeof value === 'string') return this.redact(value);
    if (typeof value !== 'object' || value === null || depth > MAX_DEPTH || seen.has(value)) return value;
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date || value instanceof RegExp) return value;
    seen.add(value);
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) value[i] = this.#scrub(value[i], depth + 1, seen);
      return value;
    }
    const record = value as Record<string, unknown>;
    if (value instanceof Error) {
      this.#set(record, 'message', this.redact(value.message));
      if (typeof value.stack === 'string') this.#set(record, 'stack', this.redact(value.stack));
      if ('cause' in value) this.#set(record, 'cause', this.#scrub(value.cause, depth + 1, seen));
    }
    for (const name of Object.keys(record)) {
      const field = record[name];
      const scrubbed = this.#scrub(field, depth + 1, seen);
      if (scrubbed !== field) this.#set(record, name, scrubbed);
      if (!(value instanceof Error) && Object.getPrototypeOf(value) === Object.prototype) {
        const key = this.#redactKey(name);
        if (key !== name && !(key in record)) {
          this.#set(record, key, record[name]);
          delete record[name];
        }
      }
    }
    return value;
  }

  /** A key with long values replaced (short values never: a key equal to a short secret is data). */
  #redactKey(key: string): string {
    let out = key;
    for (const value of this.#long) if (out.includes(value)) out = out.split(value).join(REDACTED);
    return out;
  }

  #set(record: Record<string, unknown>, name: string, value: unknown): void {
    if (record[name] === value) return;
    try {
      record[name] = value;
    } catch {
      try {
        Object.defineProperty(record, name, { value, writable: true, configurable: true });
      } catch {
        // a frozen foreign object: left as it is
      }
    }
  }
}
