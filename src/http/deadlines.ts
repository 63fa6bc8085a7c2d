/**
 * The deadlines of the response bodies being read, on one timer: a request adds its deadline when the headers
 * arrive and deletes it once the body is read; the timer is armed for the earliest deadline only. A timer per request
 * (an allocation and a timer-list insert, then a removal) showed in the hot path's CPU profile; with every request
 * on the same `timeout`, later deadlines never re-arm the timer, so the steady state costs a Set add and delete.
 */

/** One registered deadline. */
export interface Deadline {
  /** Epoch ms at which `expire` runs. */
  readonly at: number;
  readonly expire: () => void;
}

/** A set of deadlines sharing one (unref'd) timer. */
export class Deadlines {
  readonly #entries = new Set<Deadline>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The deadline the timer is armed for; Infinity when it is not armed. */
  #armedAt = Number.POSITIVE_INFINITY;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Runs `expire` at `at` (epoch ms) unless the deadline is deleted first. */
  add(at: number, expire: () => void): Deadline {
    const entry: Deadline = { at, expire };
    this.#entries.add(entry);
    if (at < this.#armedAt) this.#arm(at);
    return entry;
  }

  /** Forgets `entry` (its body was read). The timer stays armed: when it fires with nothing due, it re-arms or stops. */
  delete(entry: Deadline): void {
    this.#entries.delete(entry);
  }

  /** Deadlines registered and not yet due or deleted. */
  get size(): number {
    return this.#entries.size;
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#armedAt = at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(at - this.#now(), 1));
    // The sockets being read keep the process alive; this timer must not.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
    const now = this.#now();
    let next = Number.POSITIVE_INFINITY;
    for (const entry of this.#entries) {
      if (entry.at <= now) {
        this.#entries.delete(entry);
        entry.expire();
      } else if (entry.at < next) {
        next = entry.at;
      }
    }
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
  }
}
