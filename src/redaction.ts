/**
 * Redaction of credentials: the client secret and every access token a Client has held, in every form they take on
 * the wire and in text (raw, form-encoded as RFC 6749 and as `URLSearchParams` write it, percent-encoded in upper or
 * lower case, JSON-escaped with or without `\/`, inside `Authorization: Basic`). One implementation for the library
 * (errors, events) and the CLI (everything it prints); one pass over a text, whatever the number of values known.
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

/** How deep `scrub` follows objects that are not plain data (class instances other than errors). */
const MAX_FOREIGN_DEPTH = 8;

/** RFC 6749 Appendix B form-urlencoding, as a client sends `client_secret` and the Basic credentials. */
export function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%20/g, '+');
}

/** The `Authorization: Basic` credentials of a client id and secret, as RFC 6749 §2.3.1 builds them. */
export function basicCredentials(clientId: string, secret: string): string {
  return Buffer.from(`${formEncode(clientId)}:${formEncode(secret)}`).toString('base64');
}

/**
 * The forms a value takes in text: raw; form-encoded as RFC 6749 Appendix B and as `URLSearchParams` writes it (the
 * form the library sends: `~` as `%7E`); percent-encoded (`encodeURIComponent`, `encodeURI`), each also with
 * lower-case hex (`%2b`); and each of those JSON-escaped, with and without `\/` and `\uXXXX` for non-ASCII (PHP's
 * `json_encode` default).
 */
export function variantsOf(value: string): string[] {
  const base = new Set([value, new URLSearchParams([['', value]]).toString().slice(1)]);
  for (const encode of [formEncode, encodeURIComponent, encodeURI]) {
    try {
      base.add(encode(value));
    } catch {
      // lone surrogates cannot be percent-encoded: the other forms are enough
    }
  }
  for (const form of [...base]) if (/%[0-9A-F]{2}/.test(form)) base.add(form.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()));
  const out = new Set(base);
  for (const form of base) {
    const json = JSON.stringify(form).slice(1, -1);
    // eslint-disable-next-line no-control-regex
    const ascii = json.replace(/[^\u0000-\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    for (const escaped of [json, ascii]) {
      out.add(escaped);
      out.add(escaped.replaceAll('/', '\\/'));
    }
  }
  return [...out];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Code units hashed at each sampled position; with {@link STRIDE}, every value of 8 or more covers one sample. */
const WINDOW = 4;
/** Distance between sampled positions: a value at least `STRIDE + WINDOW - 1` long always holds a whole sample. */
const STRIDE = 4;
const FILTER_BITS = 20;
const FILTER_MASK = (1 << FILTER_BITS) - 1;

function windowHash(text: string, at: number): number {
  return (Math.imul((Math.imul((Math.imul(text.charCodeAt(at), 0x01000193) ^ text.charCodeAt(at + 1)) | 0, 0x01000193) ^ text.charCodeAt(at + 2)) | 0, 0x01000193) ^ text.charCodeAt(at + 3)) | 0;
}

/**
 * Finds every occurrence of a set of values (each at least {@link MIN_SUBSTRING_LENGTH} code units long) in one
 * left-to-right pass. Each value is indexed by the hashes of {@link STRIDE} consecutive windows of {@link WINDOW} code
 * units; the text is hashed only at every {@link STRIDE}-th position, so an occurrence always covers a sampled window
 * that is one of its indexed ones. A bit filter answers most samples; the rest are checked against the values that
 * share the hash. The cost is one pass over the text, whatever the number of values.
 */
class Matcher {
  /** By window hash: the values with that window, and where in the value the window starts. */
  readonly #byHash = new Map<number, Array<{ value: string; offset: number }>>();
  readonly #filter = new Uint32Array((1 << FILTER_BITS) / 32);

  constructor(values: Iterable<string>) {
    for (const value of values) this.add(value);
  }

  /**
   * Indexes `value` by {@link STRIDE} consecutive windows. Any such run is enough; the run chosen is the one whose
   * windows the fewest values share (ties go to the tail), so values with a common prefix (JWTs all start with
   * `eyJhbGciOi`) do not pile up behind one hash.
   */
  add(value: string): void {
    let best = 0;
    let bestCost = Infinity;
    for (let start = value.length - WINDOW - STRIDE + 1; start >= 0; start--) {
      let cost = 0;
      for (let k = 0; k < STRIDE; k++) cost = Math.max(cost, this.#byHash.get(windowHash(value, start + k))?.length ?? 0);
      if (cost < bestCost) {
        best = start;
        bestCost = cost;
        if (cost === 0) break;
      }
    }
    for (let offset = best; offset < best + STRIDE; offset++) {
      const h = windowHash(value, offset);
      let list = this.#byHash.get(h);
      if (!list) this.#byHash.set(h, (list = []));
      list.push({ value, offset });
      this.#filter[(h & FILTER_MASK) >>> 5]! |= 1 << (h & 31);
    }
  }

  /** `text` with every occurrence replaced by `mark` (overlapping occurrences merged into one). */
  replace(text: string, mark: string): string {
    const n = text.length;
    if (n < MIN_SUBSTRING_LENGTH || this.#byHash.size === 0) return text;
    const filter = this.#filter;
    let out = '';
    let copied = 0;
    let start = -1;
    let end = -1;
    for (let at = 0; at + WINDOW <= n; at += STRIDE) {
      const h = windowHash(text, at);
      if ((filter[(h & FILTER_MASK) >>> 5]! & (1 << (h & 31))) === 0) continue;
      const list = this.#byHash.get(h);
      if (!list) continue;
      for (const { value, offset } of list) {
        const from = at - offset;
        if (from < 0 || !text.startsWith(value, from)) continue;
        const to = from + value.length;
        if (start >= 0 && from <= end) {
          // Overlapping or adjacent occurrences are covered by one mark, so no tail of either is left.
          if (from < start) start = from;
          if (to > end) end = to;
        } else {
          if (start >= 0) {
            out += text.slice(copied, start) + mark;
            copied = end;
          }
          start = from;
          end = to;
        }
      }
    }
    if (start < 0) return text;
    return `${out}${text.slice(copied, start)}${mark}${text.slice(end)}`;
  }
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
  /** Long forms, replaced inside any text. */
  #long = new Set<string>();
  #matcher: Matcher | undefined;
  #byteMatcher: Matcher | undefined;
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
    return this.#long.size + this.#short.size;
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
      this.#rebuild();
    }
  }

  #include(value: string): void {
    for (const variant of variantsOf(value)) {
      if (variant.length >= MIN_SUBSTRING_LENGTH) {
        if (!this.#long.has(variant)) {
          this.#long.add(variant);
          this.#matcher?.add(variant);
          this.#byteMatcher = undefined;
        }
      } else if (!this.#short.has(variant)) {
        this.#short.add(variant);
        this.#shortPattern = undefined;
      }
    }
  }

  #rebuild(): void {
    this.#long = new Set();
    this.#matcher = undefined;
    this.#byteMatcher = undefined;
    this.#short = new Set();
    this.#shortPattern = undefined;
    for (const value of this.#pinned) this.#include(value);
    for (const value of this.#tokens) this.#include(value);
  }

  #text(): Matcher {
    return (this.#matcher ??= new Matcher(this.#long));
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
    let out = this.#text().replace(text, REDACTED);
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
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (this.#short.size > 0 && buffer.byteLength <= 64 && this.#short.has(buffer.toString('utf8'))) return Buffer.from(REDACTED);
    // One byte per code unit: the values are matched as the latin1 spelling of their UTF-8 bytes.
    this.#byteMatcher ??= new Matcher([...this.#long].map((value) => Buffer.from(value, 'utf8').toString('latin1')));
    const text = buffer.toString('latin1');
    const out = this.#byteMatcher.replace(text, REDACTED);
    return out === text ? bytes : Buffer.from(out, 'latin1');
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
    return key.length < MIN_SUBSTRING_LENGTH ? key : this.#text().replace(key, REDACTED);
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
