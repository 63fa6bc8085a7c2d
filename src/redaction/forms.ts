/**
 * The forms a secret or a token takes on the wire and in text, and the one normalisation of a text that lets a single
 * spelling of each form stand for every hex case (`%2b`, `%2B`, `\u00e9`, `\u00E9`, mixed in one value).
 */

/** RFC 6749 Appendix B form-urlencoding, as a client sends `client_secret` and the Basic credentials. */
export function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%20/g, '+');
}

/** The `Authorization: Basic` credentials of a client id and secret, as RFC 6749 §2.3.1 builds them. */
export function basicCredentials(clientId: string, secret: string): string {
  return Buffer.from(`${formEncode(clientId)}:${formEncode(secret)}`).toString('base64');
}

const HTML_ESCAPES: readonly Readonly<Record<string, string>>[] = [
  { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;' }, // Python html.escape, Django
  { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#039;' }, // PHP htmlspecialchars
  { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' }, // Go html/template, Werkzeug
];

/** `value` HTML-escaped in the three spellings servers' error pages use. */
function htmlForms(value: string): string[] {
  return HTML_ESCAPES.map((map) => value.replace(/[&<>"']/g, (c) => map[c]!));
}

const hex4 = (c: string): string => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;

/**
 * The forms of `value` with every hex escape in upper case: raw; form-encoded as RFC 6749 Appendix B and as
 * `URLSearchParams` writes it (`~` as `%7E`); percent-encoded (`encodeURIComponent`, `encodeURI`); and each of those
 * JSON-escaped: as `JSON.stringify` writes it, with non-ASCII as `\uXXXX` (PHP, Python), with `<`, `>`, `&` as
 * `\u003C`… (Go), with those, `'`, `+`, `` ` `` and non-ASCII escaped (.NET `System.Text.Json`), each with and without
 * `\/` (PHP); and, for a value with `&<>"'`, HTML-escaped as error pages write it (`&quot;`, `&#x27;`, `&#039;`, `&#34;`). Matched against a text whose escapes were upper-cased by {@link upperCaseEscapes}.
 */
export function canonicalForms(value: string): string[] {
  const base = new Set([value, new URLSearchParams([['', value]]).toString().slice(1)]);
  for (const encode of [formEncode, encodeURIComponent, encodeURI]) {
    try {
      base.add(encode(value));
    } catch {
      // lone surrogates cannot be percent-encoded: the other forms are enough
    }
  }
  const out = new Set(base);
  for (const form of base) {
    const json = JSON.stringify(form).slice(1, -1);
    // eslint-disable-next-line no-control-regex
    const ascii = json.replace(/[^\u0000-\u007f]/g, hex4);
    const go = json.replace(/[<>&\u2028\u2029]/g, hex4);
    // eslint-disable-next-line no-control-regex
    const dotnet = json.replace(/[<>&'+`]|[^\u0000-\u007f]/g, hex4);
    for (const escaped of [json, ascii, go, dotnet]) {
      out.add(escaped);
      out.add(escaped.replaceAll('/', '\\/'));
    }
  }
  // HTML-escaped, as an error page quoting the request writes it (Django's debug page, PHP, Go and Werkzeug templates).
  if (/[&<>"']/.test(value)) for (const form of htmlForms(value)) out.add(form);
  // A value with a literal `%aa` or `\u00e9` of its own: also as it reads once a text's escapes are upper-cased.
  for (const form of [...out]) {
    const upper = upperCaseEscapes(form);
    if (upper !== undefined) out.add(upper);
  }
  return [...out];
}

/**
 * Every form of {@link canonicalForms}, and each of them again with lower-case hex escapes (`%7e`, `\u00e9`): the
 * literal spellings, for callers that search for each form as it is.
 */
export function variantsOf(value: string): string[] {
  const out = new Set(canonicalForms(value));
  for (const form of [...out]) out.add(lowerCaseEscapes(form));
  return [...out];
}

function lowerCaseEscapes(text: string): string {
  return text.replace(/%[0-9A-F]{2}|\\u[0-9A-F]{4}/g, (m) => m.toLowerCase());
}

const isHex = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
const isLowerHex = (c: number): boolean => c >= 97 && c <= 102;

/** Whether `text` has a `%XX` or `\uXXXX` escape with a lower-case hex digit (native searches for `%` and `\u`). */
function hasLowerCaseEscape(text: string): boolean {
  for (let at = text.indexOf('%'); at >= 0; at = text.indexOf('%', at + 1)) {
    const a = text.charCodeAt(at + 1);
    const b = text.charCodeAt(at + 2);
    if (isHex(a) && isHex(b) && (isLowerHex(a) || isLowerHex(b))) return true;
  }
  for (let at = text.indexOf('\\u'); at >= 0; at = text.indexOf('\\u', at + 1)) {
    let lower = false;
    let k = 2;
    for (; k < 6; k++) {
      const c = text.charCodeAt(at + k);
      if (!isHex(c)) break;
      if (isLowerHex(c)) lower = true;
    }
    if (k === 6 && lower) return true;
  }
  return false;
}

/**
 * `text` with the hex digits of every `%XX` and `\uXXXX` escape in upper case, or `undefined` when it has none in
 * lower case. The length and every other code unit are unchanged, so a match at a position is a match in `text`.
 */
export function upperCaseEscapes(text: string): string | undefined {
  if (!hasLowerCaseEscape(text)) return undefined;
  return text.replace(/%[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}/g, (m) => (m[0] === '%' ? m.toUpperCase() : `\\u${m.slice(2).toUpperCase()}`));
}
