/**
 * A small import-graph walker over the TypeScript sources (no dependency): every relative `import`, `import type`,
 * `export … from` and dynamic `import('…')` of each file, and the import cycles among them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** Module path (relative to the root, with `/`) → the modules it imports (same form). */
export type ImportGraph = Map<string, string[]>;

const IMPORT = /(?:^|[\n;])\s*(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** Strips comments, so that an `import` in a TSDoc example is not read as one. */
function withoutComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

/** The relative imports of every `.ts` file under `root`, keyed by path relative to `root`. */
export function importGraph(root: string): ImportGraph {
  const graph: ImportGraph = new Map();
  const files = (readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
  for (const file of files) {
    const key = file.split('\\').join('/');
    const source = withoutComments(readFileSync(join(root, file), 'utf8'));
    const deps = new Set<string>();
    for (const match of source.matchAll(IMPORT)) {
      const spec = (match[1] ?? match[2])!;
      deps.add(relative(root, resolve(root, dirname(file), spec.replace(/\.js$/, '.ts'))).split('\\').join('/'));
    }
    graph.set(key, [...deps].sort());
  }
  return graph;
}

/**
 * The import cycles of `graph`: for each strongly connected component of more than one module (or a module that
 * imports itself), one cycle through it, as a list of modules that starts and ends with the same one.
 */
export function importCycles(graph: ImportGraph): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(component);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return components.map((component) => shortestCycle(graph, new Set(component), [...component].sort()[0]!));
}

/** The shortest cycle from `start` back to itself inside `members` (breadth first). */
function shortestCycle(graph: ImportGraph, members: Set<string>, start: string): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let at: string | undefined = v; at !== undefined && at !== start; at = previous.get(at)) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}
