/**
 * The TypeScript blocks of the Markdown docs, with their markers. A block is compiled as a whole module unless the
 * HTML comments just above its fence say otherwise:
 *
 * - `<!-- doc-test: fragment -->`: a piece of a larger program; not compiled.
 * - `<!-- doc-test: given … -->`: compiled (and run) with this code in front, e.g.
 *   `<!-- doc-test: given import { Client } from 'oauth-client-credentials'; declare const client: Client; -->`.
 * - `<!-- doc-test: runnable -->`: also run against the embedded servers (test/docs.test.ts).
 */
import { readFileSync } from 'node:fs';

/** One fenced TypeScript block. */
export interface DocBlock {
  /** The Markdown file, relative to the repository root. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The code between the fences. */
  code: string;
  fragment: boolean;
  runnable: boolean;
  /** Code compiled in front of the block (the `given` markers, joined). */
  given: string;
}

/** How to mark a block, for failure messages. */
export const MARKER_HELP =
  'Mark the block on the line before its fence: `<!-- doc-test: fragment -->` for a piece of a larger program (not compiled), ' +
  'or `<!-- doc-test: given import { Client } from \'oauth-client-credentials\'; declare const client: Client; -->` to compile it with ' +
  'those declarations in front; `<!-- doc-test: runnable -->` also runs it against the embedded servers.';

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/;
const TS_LANGUAGES = new Set(['ts', 'typescript', 'mts', 'tsx']);
const MARKER = /<!--\s*doc-test:\s*([\s\S]*?)\s*-->/g;

/** The TypeScript blocks of `text` (the Markdown of `file`). */
export function docBlocks(file: string, text: string): DocBlock[] {
  const lines = text.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, language] = open;
    let end = i + 1;
    while (end < lines.length && !(lines[end]!.trimStart().startsWith(fence!) && lines[end]!.trim().replace(/[`~]/g, '') === '')) end++;
    if (TS_LANGUAGES.has(language!.toLowerCase())) {
      const code = lines.slice(i + 1, end).map((l) => (l.startsWith(indent!) ? l.slice(indent!.length) : l)).join('\n');
      blocks.push({ file, line: i + 1, code, ...markersBefore(lines, i) });
    }
    i = end;
  }
  return blocks;
}

/** The markers in the HTML comments that end on the lines just above line index `fence` (blank lines between allowed). */
function markersBefore(lines: readonly string[], fence: number): Pick<DocBlock, 'fragment' | 'runnable' | 'given'> {
  let start = fence;
  for (let j = fence - 1; j >= 0; j--) {
    const trimmed = lines[j]!.trim();
    if (trimmed === '') continue;
    if (!trimmed.endsWith('-->')) break;
    let k = j;
    while (k >= 0 && !lines[k]!.includes('<!--')) k--;
    if (k < 0) break;
    start = k;
    j = k;
  }
  const comments = lines.slice(start, fence).join('\n');
  const result = { fragment: false, runnable: false, given: [] as string[] };
  for (const [, body] of comments.matchAll(MARKER)) {
    const [word, ...rest] = body!.split(/\s+/);
    if (word === 'fragment') result.fragment = true;
    else if (word === 'runnable') result.runnable = true;
    else if (word === 'given') result.given.push(body!.slice('given'.length).trim());
    else throw new Error(`unknown doc-test marker \`${word}\` before line ${fence + 1}. ${MARKER_HELP}`);
    if (word !== 'given' && rest.length > 0) throw new Error(`doc-test marker \`${body}\` before line ${fence + 1} takes no arguments`);
  }
  return { fragment: result.fragment, runnable: result.runnable, given: result.given.join(' ').replace(/\n/g, ' ') };
}

/** The TypeScript blocks of each Markdown file in `files` (paths relative to `root`). */
export function docBlocksOf(root: string, files: readonly string[]): DocBlock[] {
  return files.flatMap((file) => docBlocks(file, readFileSync(`${root}${file}`, 'utf8')));
}
