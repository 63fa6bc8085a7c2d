/**
 * Terminal-safe text: escapes the control characters a server or a token could use to drive a terminal (clear the
 * screen, set the title, move the cursor, forge CLI lines). Everything the CLI prints that did not come from the
 * tool itself passes through here.
 */

/**
 * C0 controls except tab and newline, DEL, C1 controls (U+0080–U+009F, which some terminals read as
 * ESC-sequences: U+009B is CSI), and the Unicode bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E,
 * U+2066–U+2069), with which a server could reorder what the user reads. ESC (U+001B) is C0.
 */
const CONTROL_MULTILINE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** The same, plus newline: for one-line messages, where a newline could forge a line of the CLI's own. */
const CONTROL_ONE_LINE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Any control character that has no place in a token. */
const ANY_CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** Bidirectional controls, escaped in JSON output too. */
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function hex(ch: string): string {
  const code = ch.charCodeAt(0);
  if (ch === '\n') return '\\n';
  if (ch === '\r') return '\\r';
  return code > 0xff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\x${code.toString(16).padStart(2, '0')}`;
}

/**
 * `text` with C0 (except tab, and newline when `multiline`), DEL and C1 control characters shown as `\xHH` (`\n`,
 * `\r`), and bidirectional controls as `\uHHHH`. Printable text, including non-ASCII letters, is kept.
 *
 * @example
 * ```ts
 * escapeControl('\u001b]0;pwned\u0007ok'); // '\\x1b]0;pwned\\x07ok'
 * ```
 */
export function escapeControl(text: string, options: { multiline?: boolean } = {}): string {
  return text.replace(options.multiline ? CONTROL_MULTILINE : CONTROL_ONE_LINE, hex);
}

/** Whether `text` holds any C0, DEL, C1 or bidirectional control character (tab and newline included). */
export function hasControl(text: string): boolean {
  return ANY_CONTROL.test(text);
}

/**
 * `JSON.stringify` whose output is terminal-safe: JSON already escapes C0; this also escapes DEL, C1 and the
 * bidirectional controls as `\uXXXX`, so the text stays valid JSON with the same meaning.
 */
export function safeJson(value: unknown, indent?: number): string {
  return (JSON.stringify(value, null, indent) ?? '').replace(/[\u007f-\u009f]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).replace(BIDI, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
