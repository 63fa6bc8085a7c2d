/**
 * Redaction of credentials: the client secret and every access token a Client has held, in every form they take on
 * the wire and in text (raw, form-encoded as RFC 6749 and as `URLSearchParams` write it, percent-encoded, JSON-escaped
 * as JavaScript, PHP, Python, Go and .NET write it, every hex escape in any case, inside `Authorization: Basic`). One
 * implementation for the library (errors, events) and the CLI (everything it prints); one pass over a text, whatever
 * the number of values known. The forms are in `redaction/forms.ts`, the search in `redaction/matcher.ts`.
 *
 * The rule for short values: a value of {@link MIN_SUBSTRING_LENGTH} characters or more is replaced wherever it
 * appears, inside any text. A shorter value (a secret such as `items` or `abc123`) is replaced only where a whole
 * value equals it: a whole text, a whole string field, a JSON string value (never an object key) or a form field's
 * value. Replacing a short value inside text would corrupt data (`{"items": …}` would become `{"[redacted]": …}`)
 * and would not hide it anyway, so a short secret is worth a warning at start ({@link shortSecretWarning}).
 */

import { basicCredentials, canonicalForms, upperCaseEscapes, variantsOf } from './redaction/forms.js';
import { Matcher, MIN_SUBSTRING_LENGTH, Ranges, replaceRanges } from './redaction/matcher.js';

export { basicCredentials, formEncode, variantsOf } from './redaction/forms.js';
export { MIN_SUBSTRING_LENGTH } from './redaction/matcher.js';

/** What replaces a redacted value. */
export const REDACTED = '[redacted]';

/** How deep `scrub` follows objects that are not plain data (class instances other than errors). */
const MAX_FOREIGN_DEPTH = 8;

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
 * known (`add`); redaction is idempotent, so scrubbing an object twice is harmless. Redacting a text is one pass over
 * it, whatever the number of values known.
 *
 * @example
 * ```ts
 * const redactor = new Redactor();
 * redactor.add('s3cret-value-long');
 * redactor.redact('echo s3cret-value-long'); // 'echo [redacted]'
 * ```
 */
export class Redactor {
  /** Long forms (hex escapes in upper case), found inside any text. */
  #matcher = new Matcher();
  #byteMatcher: Matcher | undefined;
  /** Short values (and their forms), replaced only as whole values. */
  #short = new Set<string>();
  #shortPattern: RegExp | undefined;
  /** Values kept for the Redactor's life (secrets). */
  readonly #pinned = new Set<string>();
  /** Tokens, oldest first; the oldest are forgotten beyond `maxTokens`. */
  readonly #tokens = new Set<string>();
  readonly #maxTokens: number;
  /** Forgotten tokens whose forms are still indexed (dropped together, by a rebuild, once they are this many). */
  #stale = 0;

  /**
   * `maxTokens`: how many tokens (`addToken`) are remembered; the oldest are forgotten first (a forgotten token's
   * forms leave the index in batches, so up to a quarter more may still be redacted for a while). Default 256.
   */
  constructor(options: { maxTokens?: number } = {}) {
    this.#maxTokens = options.maxTokens ?? 256;
  }

  /** How many forms are known (0: nothing to redact). */
  get size(): number {
    return this.#matcher.size + this.#short.size;
  }

  /** Adds a value never to be shown (and its encoded forms), for the Redactor's life. Empty values are ignored. */
  add(value: string | undefined): void {
    if (value === undefined || value === '' || this.#pinned.has(value)) return;
    this.#pinned.add(value);
    this.#include(value);
  }

  /**
   * Adds an access token (or another short-lived credential, such as a client assertion). Only the last `maxTokens`
   * are remembered, so a long-running Client does not grow without bound; a token in use is re-added when it is used
   * again.
   */
  addToken(value: string | undefined): void {
    if (value === undefined || value === '' || this.#pinned.has(value)) return;
    if (this.#tokens.has(value)) return;
    this.#tokens.add(value);
    this.#include(value);
    if (this.#tokens.size > this.#maxTokens) {
      const oldest = this.#tokens.values().next().value as string;
      this.#tokens.delete(oldest);
      // Rebuilding costs every remembered value's forms: done once per many forgotten tokens, not once per token.
      if (++this.#stale > Math.max(16, this.#maxTokens >> 2)) this.#rebuild();
    }
  }

  #include(value: string): void {
    for (const form of canonicalForms(value)) {
      if (form.length >= MIN_SUBSTRING_LENGTH) {
        this.#matcher.add(form);
        this.#byteMatcher?.add(utf8AsLatin1(form));
      }
    }
    // A short form is matched literally (as a whole value), so each of its hex spellings is kept.
    for (const form of variantsOf(value)) {
      if (form.length < MIN_SUBSTRING_LENGTH && !this.#short.has(form)) {
        this.#short.add(form);
        this.#shortPattern = undefined;
      }
    }
  }

  #rebuild(): void {
    this.#matcher = new Matcher();
    this.#byteMatcher = undefined;
    this.#short = new Set();
    this.#shortPattern = undefined;
    this.#stale = 0;
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
    let out = this.#replaceLong(text);
    if (this.#short.size > 0) out = this.#redactShort(out);
    return out;
  }

  /**
   * `text` with every long form replaced: found in the text as it is, and (when it has lower-case hex escapes) in the
   * text with its escapes upper-cased, which has the same length, so `%7e`, `%7E` and mixed spellings all match.
   */
  #replaceLong(text: string): string {
    const ranges = new Ranges();
    this.#matcher.find(text, ranges);
    const upper = upperCaseEscapes(text);
    if (upper !== undefined) this.#matcher.find(upper, ranges);
    return replaceRanges(text, ranges, REDACTED);
  }

  /**
   * `bytes` with every long known value (as UTF-8) replaced by {@link REDACTED}, every other byte unchanged: for
   * bodies that are not text (a download written as it came). A short value is replaced only when it is the whole
   * body. Returns `bytes` itself when nothing matched.
   */
  redactBytes(bytes: Uint8Array): Uint8Array {
    if (this.size === 0 || bytes.byteLength === 0) return bytes;
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (this.#short.size > 0 && buffer.byteLength <= 64 && this.#short.has(buffer.toString('utf8'))) return Buffer.from(REDACTED);
    // One byte per code unit: the values are matched as the latin1 spelling of their UTF-8 bytes.
    if (!this.#byteMatcher) {
      this.#byteMatcher = new Matcher();
      for (const form of this.#matcher.values()) this.#byteMatcher.add(utf8AsLatin1(form));
    }
    const text = buffer.toString('latin1');
    const ranges = new Ranges();
    this.#byteMatcher.find(text, ranges);
    const upper = upperCaseEscapes(text);
    if (upper !== undefined) this.#byteMatcher.find(upper, ranges);
    return ranges.size === 0 ? bytes : Buffer.from(replaceRanges(text, ranges, REDACTED), 'latin1');
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
   * chain, an `AggregateError`'s `errors` and nested objects (an `ApiError`'s body, headers and parsed result, at any
   * depth); a plain object's or array's strings (an event payload). Object keys are redacted only for long values.
   * Objects that are neither plain data nor errors are followed only a few levels deep. Other values are returned as
   * they are.
   */
  scrub<T>(value: T): T {
    if (this.size === 0) return value;
    if (typeof value === 'string') return this.redact(value) as T;
    if (!isWalkable(value)) return value;
    // An explicit stack rather than recursion: a hostile body nested thousands deep cannot overflow the call stack.
    const seen = new Set<object>([value]);
    const stack: Array<[object, number]> = [[value, 0]];
    const visit = (child: unknown, depth: number): unknown => {
      if (typeof child === 'string') return this.redact(child);
      if (isWalkable(child) && !seen.has(child) && (depth <= MAX_FOREIGN_DEPTH || isPlainData(child))) {
        seen.add(child);
        stack.push([child, depth]);
      }
      return child;
    };
    while (stack.length > 0) {
      const [current, depth] = stack.pop()!;
      this.#scrubFields(current, depth + 1, visit);
    }
    return value;
  }

  #scrubFields(value: object, depth: number, visit: (child: unknown, depth: number) => unknown): void {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const field: unknown = value[i];
        const scrubbed = visit(field, depth);
        if (scrubbed !== field) value[i] = scrubbed;
      }
      return;
    }
    const record = value as Record<string, unknown>;
    if (value instanceof Error) {
      this.#set(record, 'message', this.redact(value.message));
      if (typeof value.stack === 'string') this.#set(record, 'stack', this.redact(value.stack));
      if ('cause' in value) this.#set(record, 'cause', visit(value.cause, depth));
      if (value instanceof AggregateError && Array.isArray(value.errors)) visit(value.errors, depth);
    }
    const plain = !(value instanceof Error) && !Array.isArray(value) && isPlainData(value);
    for (const name of Object.keys(record)) {
      const field = record[name];
      const scrubbed = visit(field, depth);
      if (scrubbed !== field) this.#set(record, name, scrubbed);
      if (plain) {
        const key = this.#redactKey(name);
        if (key !== name && !(key in record)) {
          this.#set(record, key, record[name]);
          delete record[name];
        }
      }
    }
  }

  /** A key with long values replaced (short values never: a key equal to a short secret is data). */
  #redactKey(key: string): string {
    return key.length < MIN_SUBSTRING_LENGTH ? key : this.#replaceLong(key);
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

/** The latin1 spelling of a text's UTF-8 bytes: one code unit per byte. */
function utf8AsLatin1(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** An object `scrub` walks into: not bytes, a date or a regular expression. */
function isWalkable(value: unknown): value is object {
  if (typeof value !== 'object' || value === null) return false;
  return !(ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date || value instanceof RegExp);
}

/** Plain data (a parsed JSON body, an event payload, an error): followed at any depth. */
function isPlainData(value: object): boolean {
  if (Array.isArray(value) || value instanceof Error) return true;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}
