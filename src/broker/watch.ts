/**
 * Change detection for the files the broker reads (secrets, keys, certificates): their `stat` (following symlinks,
 * as Kubernetes swaps a mounted secret's `..data` link) is polled, and a change of inode, size or modification time
 * is reported once per change. Polling rather than `fs.watch`: it sees symlink swaps and works on every filesystem.
 */
import { stat } from 'node:fs/promises';

/** A file's identity as far as change detection goes. */
function stampOf(s: { ino: number; size: number; mtimeMs: number }): string {
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}

/** Polls files and calls `onChange` with the paths that changed since the last poll. */
export class FileWatcher {
  readonly #stamps = new Map<string, string>();
  readonly #timer: NodeJS.Timeout;
  #polling = false;

  constructor(intervalMs: number, readonly onChange: (paths: string[]) => void) {
    this.#timer = setInterval(() => void this.poll(), intervalMs);
    this.#timer.unref();
  }

  /**
   * Watches exactly `paths` from now on. A path already watched keeps the state it was last reported in, so a change
   * made while the previous one was being handled is still reported at the next poll; a new path's current state is
   * its reference.
   */
  async watch(paths: Iterable<string>): Promise<void> {
    const wanted = new Set(paths);
    for (const path of this.#stamps.keys()) if (!wanted.has(path)) this.#stamps.delete(path);
    for (const path of wanted) if (!this.#stamps.has(path)) this.#stamps.set(path, await stampNow(path));
  }

  /** Checks every file once. */
  async poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const changed: string[] = [];
      for (const [path, before] of this.#stamps) {
        const now = await stampNow(path);
        if (now !== before && this.#stamps.has(path)) {
          this.#stamps.set(path, now);
          changed.push(path);
        }
      }
      if (changed.length) this.onChange(changed);
    } finally {
      this.#polling = false;
    }
  }

  /** Stops polling. */
  close(): void {
    clearInterval(this.#timer);
  }
}

async function stampNow(path: string): Promise<string> {
  try {
    return stampOf(await stat(path));
  } catch (error) {
    return `missing:${(error as NodeJS.ErrnoException).code ?? ''}`;
  }
}
