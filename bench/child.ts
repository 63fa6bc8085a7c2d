/** A forked child process spoken to over IPC with `{ id, … }` requests and `{ id, result | error }` replies. */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** One child process of the benchmark (a server or a client worker). */
export class Child {
  readonly #process: ChildProcess;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  #nextId = 1;
  /** The first message the child sends (`{ ready: true, … }`). */
  readonly ready: Promise<Record<string, unknown>>;

  constructor(script: string, args: string[] = [], execArgv: string[] = [], env: Record<string, string> = {}) {
    const path = fileURLToPath(new URL(script, import.meta.url));
    this.#process = fork(path, args, { execArgv, env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    live.add(this.#process);
    this.ready = new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`${script} exited with ${code} before it was ready`));
      this.#process.once('exit', onExit);
      this.#process.once('message', (message: Record<string, unknown>) => {
        this.#process.off('exit', onExit);
        resolve(message);
      });
    });
    this.#process.on('message', (message: { id?: number; result?: unknown; error?: string }) => {
      if (message.id === undefined) return;
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      if (message.error !== undefined) pending.reject(new Error(`${script}: ${message.error}`));
      else pending.resolve(message.result !== undefined ? message.result : message);
    });
    this.#process.once('exit', (code, signal) => {
      live.delete(this.#process);
      for (const pending of this.#pending.values()) pending.reject(new Error(`${script} exited (${code ?? signal}) during a request`));
      this.#pending.clear();
    });
  }

  /** The child's process id. */
  get pid(): number | undefined {
    return this.#process.pid;
  }

  /** Sends a request and resolves to the child's reply. */
  call<T = unknown>(message: Record<string, unknown>): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.#process.send({ ...message, id });
    });
  }

  /** Ends the child (disconnect, then SIGKILL if it lingers) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.#process;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (child.connected) child.disconnect();
    const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
    await exited;
    clearTimeout(timer);
  }
}
