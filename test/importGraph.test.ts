/**
 * The house has no circles: no module of src/ reaches itself through its imports (type-only imports count), and the
 * ground floor (src/types/) imports nothing of ours but other ground-floor rooms. The walker is tested on a small
 * tree of its own first, so that a walker that sees no imports cannot pass the real check.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importCycles, importGraph } from './helpers/importGraph.js';

const SRC = join(import.meta.dirname, '..', '..', 'src');

describe('the import graph of src/', () => {
  test('the walker finds type imports, re-exports and dynamic imports, and a cycle through them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'graph-'));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'a.ts'), "import type { B } from './sub/b.js';\n/** import { X } from './c.js'; */\nexport const a = 1;\n");
    writeFileSync(join(dir, 'sub', 'b.ts'), "export { c } from '../c.js';\nexport type B = 1;\n");
    writeFileSync(join(dir, 'c.ts'), "export const c = () => import('./a.js');\n");
    writeFileSync(join(dir, 'd.ts'), "import {\n  a,\n} from './a.js';\n");
    const graph = importGraph(dir);
    assert.deepEqual(graph.get('a.ts'), ['sub/b.ts'], 'a comment is not an import');
    assert.deepEqual(graph.get('d.ts'), ['a.ts'], 'a multi-line import');
    assert.deepEqual(importCycles(graph), [['a.ts', 'sub/b.ts', 'c.ts', 'a.ts']]);
  });

  test('no module of src/ imports itself through others', () => {
    const graph = importGraph(SRC);
    assert.ok(graph.size > 50 && graph.get('client.ts')!.includes('configuration.ts'), 'the walker reads src/');
    const cycles = importCycles(graph);
    assert.deepEqual(
      cycles.map((c) => c.join(' → ')),
      [],
      'import cycles in src/ (type-only imports count). Move the shared type to a ground-floor room in src/types/ ' +
        '(which imports nothing of ours), or import it from there instead of from the module above.',
    );
  });

  test('the ground floor (src/types/) imports only other ground-floor rooms', () => {
    const graph = importGraph(SRC);
    const rooms = [...graph.keys()].filter((f) => f.startsWith('types/'));
    assert.ok(rooms.length >= 5);
    for (const room of rooms) {
      const upward = graph.get(room)!.filter((dep) => !dep.startsWith('types/'));
      assert.deepEqual(upward, [], `src/${room} imports ${upward.join(', ')}: a room of src/types/ imports only src/types/`);
    }
  });
});
