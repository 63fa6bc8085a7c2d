/**
 * A small strict parser of the Prometheus text exposition format 0.0.4, for tests: every line is a `# HELP`, a
 * `# TYPE` or a sample of the family typed last; names, labels, escapes and values must be well formed, a family is
 * typed once and before its samples, and a histogram's buckets are cumulative and end with `le="+Inf"` equal to
 * `_count`. Throws on the first violation, naming the line.
 *
 * @see https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
 */

/** One sample line. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One metric family. */
export interface Family {
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string | undefined;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseLabels(text: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`${where}: label without "="`);
    const name = text.slice(i, eq);
    if (!LABEL.test(name)) throw new Error(`${where}: bad label name "${name}"`);
    if (name in labels) throw new Error(`${where}: label ${name} repeated`);
    if (text[eq + 1] !== '"') throw new Error(`${where}: label value not quoted`);
    let value = '';
    let j = eq + 2;
    for (;;) {
      if (j >= text.length) throw new Error(`${where}: unterminated label value`);
      const c = text[j]!;
      if (c === '\\') {
        const next = text[j + 1];
        if (next === 'n') value += '\n';
        else if (next === '\\' || next === '"') value += next;
        else throw new Error(`${where}: bad escape \\${next}`);
        j += 2;
      } else if (c === '"') break;
      else if (c === '\n') throw new Error(`${where}: newline in label value`);
      else {
        value += c;
        j++;
      }
    }
    labels[name] = value;
    i = j + 1;
    if (i < text.length) {
      if (text[i] !== ',') throw new Error(`${where}: expected "," between labels`);
      i++;
    }
  }
  return labels;
}

function parseValue(text: string, where: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: bad value "${text}"`);
  return Number(text);
}

/** Parses and checks an exposition; returns the families by name. */
export function parsePrometheus(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const families = new Map<string, Family>();
  const lines = text.slice(0, -1).split('\n');
  let current: string | undefined;
  lines.forEach((line, index) => {
    const where = `line ${index + 1} (${line})`;
    if (line === '') throw new Error(`${where}: empty line`);
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) throw new Error(`${where}: a comment other than HELP or TYPE`);
      const [, kind, name, rest] = m;
      if (!NAME.test(name!)) throw new Error(`${where}: bad metric name`);
      const family = families.get(name!) ?? { type: 'untyped' as const, help: undefined, samples: [] };
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest!)) throw new Error(`${where}: bad type`);
        if (families.has(name!) && (families.get(name!)!.samples.length > 0 || families.get(name!)!.type !== 'untyped')) throw new Error(`${where}: TYPE after samples or twice`);
        family.type = rest as Family['type'];
      } else {
        if (family.help !== undefined) throw new Error(`${where}: HELP twice`);
        family.help = rest;
      }
      families.set(name!, family);
      current = name;
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
    if (!m) throw new Error(`${where}: not a sample`);
    const [, name, , labelText, valueText] = m;
    const family = current === undefined ? undefined : families.get(current);
    const base = family?.type === 'histogram' ? name!.replace(/_(bucket|sum|count)$/, '') : family?.type === 'summary' ? name!.replace(/_(sum|count)$/, '') : name!;
    if (base !== current || family === undefined) throw new Error(`${where}: sample outside its family (${current ?? 'none'})`);
    const labels = labelText ? parseLabels(labelText, where) : {};
    const value = parseValue(valueText!, where);
    if (family.type === 'counter' && !(value >= 0)) throw new Error(`${where}: a counter below 0`);
    if (family.type === 'histogram' && name!.endsWith('_bucket') && labels['le'] === undefined) throw new Error(`${where}: bucket without le`);
    family.samples.push({ name: name!, labels, value });
  });
  for (const [name, family] of families) {
    if (family.type !== 'histogram') continue;
    const series = new Map<string, Sample[]>();
    for (const s of family.samples) {
      const { le: _le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      if (!series.has(key)) series.set(key, []);
      series.get(key)!.push(s);
    }
    for (const [key, samples] of series) {
      const buckets = samples.filter((s) => s.name === `${name}_bucket`);
      const count = samples.find((s) => s.name === `${name}_count`);
      if (!count || !samples.some((s) => s.name === `${name}_sum`)) throw new Error(`${name}${key}: histogram without _sum or _count`);
      const last = buckets[buckets.length - 1];
      if (!last || last.labels['le'] !== '+Inf' || last.value !== count.value) throw new Error(`${name}${key}: last bucket must be le="+Inf" and equal _count`);
      for (let i = 1; i < buckets.length; i++) {
        if (buckets[i]!.value < buckets[i - 1]!.value) throw new Error(`${name}${key}: buckets not cumulative`);
        if (parseValue(buckets[i]!.labels['le']!, name) <= parseValue(buckets[i - 1]!.labels['le']!, name)) throw new Error(`${name}${key}: le not increasing`);
      }
    }
  }
  return families;
}
