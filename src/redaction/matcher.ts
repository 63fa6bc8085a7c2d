/**
 * Finding every occurrence of many values in a text: one left-to-right pass whose cost does not grow with the number
 * of values, kept in a few typed arrays (20 bytes per indexed window, 80 per value, besides the value itself).
 */

/** Values at least this long are found anywhere in a text; shorter ones only where a whole value equals them. */
export const MIN_SUBSTRING_LENGTH = 8;

/** Code units hashed at each sampled position; with {@link STRIDE}, every value of 8 or more covers one sample. */
const WINDOW = 4;
/** Distance between sampled positions: a value at least `STRIDE + WINDOW - 1` long always holds a whole sample. */
const STRIDE = 4;
/**
 * Up to this many values are searched for one by one with the engine's native string search (a few hundred µs per
 * value on 8 MB, faster than one hashed pass); beyond it, one hashed pass for all.
 */
const FEW = 16;

function windowHash(text: string, at: number): number {
  return (Math.imul((Math.imul((Math.imul(text.charCodeAt(at), 0x01000193) ^ text.charCodeAt(at + 1)) | 0, 0x01000193) ^ text.charCodeAt(at + 2)) | 0, 0x01000193) ^ text.charCodeAt(at + 3)) | 0;
}

/** Occurrences found in a text, as `[from, to)` code-unit ranges, in any order; see {@link replaceRanges}. */
export class Ranges {
  readonly from: number[] = [];
  readonly to: number[] = [];
  /** Adds `[from, to)`, merged into the last range when the two overlap or touch (a pathological text stays small). */
  add(from: number, to: number): void {
    const last = this.from.length - 1;
    if (last >= 0) {
      const lastFrom = this.from[last]!;
      const lastTo = this.to[last]!;
      if (from <= lastTo && to >= lastFrom) {
        if (from < lastFrom) this.from[last] = from;
        if (to > lastTo) this.to[last] = to;
        return;
      }
    }
    this.from.push(from);
    this.to.push(to);
  }

  get size(): number {
    return this.from.length;
  }

  /** The ranges in order, overlapping and touching ones merged. */
  merged(): Array<[number, number]> {
    const pairs = this.from.map((from, i): [number, number] => [from, this.to[i]!]);
    pairs.sort((a, b) => a[0] - b[0]);
    const out: Array<[number, number]> = [];
    for (const [from, to] of pairs) {
      const last = out.at(-1);
      if (last && from <= last[1]) last[1] = Math.max(last[1], to);
      else out.push([from, to]);
    }
    return out;
  }
}

/** `text` with every range of `ranges` (overlapping ones merged first) replaced by `mark`. */
export function replaceRanges(text: string, ranges: Ranges, mark: string): string {
  if (ranges.size === 0) return text;
  let out = '';
  let copied = 0;
  for (const [from, to] of ranges.merged()) {
    out += text.slice(copied, from) + mark;
    copied = to;
  }
  return out + text.slice(copied);
}

/**
 * A set of values, each at least {@link MIN_SUBSTRING_LENGTH} code units long, and the search for them. Each value is
 * indexed by the hashes of {@link STRIDE} consecutive windows of {@link WINDOW} code units; a text is hashed only at
 * every {@link STRIDE}-th position, so an occurrence always covers a sampled window that is one of its indexed ones.
 * The index is a chained hash table in typed arrays (per value, four entries of a hash, a reference, a link, a
 * bucket and 32 bits of a filter that answers most samples). With {@link FEW} values or fewer, each is looked for with the native `indexOf` instead.
 */
export class Matcher {
  readonly #values: string[] = [];
  /** Per value: where its first indexed window starts. */
  readonly #base: number[] = [];
  #hash: Int32Array = new Int32Array(4 * STRIDE);
  /** `value index * STRIDE + k`: the value and which of its windows (`#base + k`). */
  #ref: Int32Array = new Int32Array(4 * STRIDE);
  #next: Int32Array = new Int32Array(4 * STRIDE);
  #entries = 0;
  #heads: Int32Array = new Int32Array(4 * STRIDE).fill(-1);
  /** One bit per hash, 32 bits per entry: a sampled window of a text is almost always answered here. */
  #filter: Int32Array = new Int32Array(4 * STRIDE);

  /** How many values. */
  get size(): number {
    return this.#values.length;
  }

  /** The values, in the order added. */
  values(): readonly string[] {
    return this.#values;
  }

  /**
   * Adds `value` (at least {@link MIN_SUBSTRING_LENGTH} long), indexed by the run of {@link STRIDE} windows that the
   * fewest values share (searching from the tail), so values with a common prefix (JWTs all start with `eyJhbGciOi`)
   * do not pile up behind one hash.
   */
  add(value: string): void {
    const index = this.#values.length;
    let best = 0;
    let bestCost = Infinity;
    for (let start = value.length - WINDOW - STRIDE + 1; start >= 0; start--) {
      let cost = 0;
      for (let k = 0; k < STRIDE; k++) cost = Math.max(cost, this.#sharing(windowHash(value, start + k)));
      if (cost < bestCost) {
        best = start;
        bestCost = cost;
        if (cost === 0) break;
      }
    }
    this.#values.push(value);
    this.#base.push(best);
    if (this.#entries + STRIDE > this.#hash.length) this.#grow();
    for (let k = 0; k < STRIDE; k++) this.#link(this.#entries++, windowHash(value, best + k), index * STRIDE + k);
  }

  /** How many entries have hash `h`. */
  #sharing(h: number): number {
    let count = 0;
    for (let e = this.#heads[h & (this.#heads.length - 1)]!; e >= 0; e = this.#next[e]!) if (this.#hash[e] === h) count++;
    return count;
  }

  #link(entry: number, h: number, ref: number): void {
    const bucket = h & (this.#heads.length - 1);
    this.#hash[entry] = h;
    this.#ref[entry] = ref;
    this.#next[entry] = this.#heads[bucket]!;
    this.#heads[bucket] = entry;
    this.#filter[(h >>> 5) & (this.#filter.length - 1)]! |= 1 << (h & 31);
  }

  #grow(): void {
    const capacity = this.#hash.length * 2;
    const resize = (from: Int32Array): Int32Array => {
      const to = new Int32Array(capacity);
      to.set(from);
      return to;
    };
    this.#hash = resize(this.#hash);
    this.#ref = resize(this.#ref);
    this.#next = resize(this.#next);
    this.#heads = new Int32Array(capacity).fill(-1);
    this.#filter = new Int32Array(capacity);
    for (let entry = 0; entry < this.#entries; entry++) this.#link(entry, this.#hash[entry]!, this.#ref[entry]!);
  }

  /** Adds to `ranges` every occurrence of every value in `text`, overlapping ones included. */
  find(text: string, ranges: Ranges): void {
    const n = text.length;
    if (n < MIN_SUBSTRING_LENGTH || this.#values.length === 0) return;
    if (this.#values.length <= FEW) {
      for (const value of this.#values) {
        for (let at = text.indexOf(value); at >= 0; at = text.indexOf(value, at + 1)) ranges.add(at, at + value.length);
      }
      return;
    }
    this.#scan(text, ranges);
  }

  /** The hashed pass: every {@link STRIDE}-th window of `text` looked up in the filter, then in the index. */
  #scan(text: string, ranges: Ranges): void {
    const n = text.length;
    const heads = this.#heads;
    const mask = heads.length - 1;
    const filter = this.#filter;
    const filterMask = filter.length - 1;
    const hashes = this.#hash;
    const refs = this.#ref;
    const next = this.#next;
    const values = this.#values;
    const base = this.#base;
    for (let at = 0; at + WINDOW <= n; at += STRIDE) {
      const h = windowHash(text, at);
      if ((filter[(h >>> 5) & filterMask]! & (1 << (h & 31))) === 0) continue;
      for (let e = heads[h & mask]!; e >= 0; e = next[e]!) {
        if (hashes[e] !== h) continue;
        const ref = refs[e]!;
        const index = (ref / STRIDE) | 0;
        const value = values[index]!;
        const from = at - base[index]! - (ref % STRIDE);
        if (from >= 0 && text.startsWith(value, from)) ranges.add(from, from + value.length);
      }
    }
  }
}
