/**
 * The forms a secret or a token takes on the wire and in text, written out independently of src/redaction.ts so the
 * tests do not take the code under test as their oracle: raw, as `URLSearchParams` and RFC 6749 Appendix B write it,
 * percent-encoded, each also with lower-case hex, and each of those JSON-escaped with and without `\/` and with
 * non-ASCII as `\uXXXX` (PHP's `json_encode` default).
 */
export function wireForms(value: string): string[] {
  const rfc6749 = encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%20/g, '+');
  const base = [value, new URLSearchParams({ v: value }).toString().slice(2), rfc6749, encodeURIComponent(value)];
  const withLower = [...base, ...base.map((form) => form.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()))];
  const json = withLower.map((form) => JSON.stringify(form).slice(1, -1));
  const ascii = json.map((form) => form.replace(/[^\u0000-\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
  return [...new Set([...withLower, ...json, ...ascii, ...[...json, ...ascii].map((form) => form.replaceAll('/', '\\/'))])];
}

/** The `Authorization: Basic` credentials as RFC 6749 §2.3.1 builds them (form-encoded parts), and unencoded. */
export function basicForms(clientId: string, secret: string): string[] {
  const encode = (v: string) => encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%20/g, '+');
  return [Buffer.from(`${encode(clientId)}:${encode(secret)}`).toString('base64'), Buffer.from(`${clientId}:${secret}`).toString('base64')];
}
