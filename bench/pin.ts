/**
 * CPU pinning for S1 (Linux `taskset`): the load-generating client on one CPU, the API server on another, so that the
 * client under test never waits for the server's turn on its core and the scheduler cannot move either mid-slice.
 * What S1 measures is the client's own cost; pinning removes most of the noise two processes sharing two cores add.
 * Without `taskset` or with one CPU, nothing is pinned (the results say so). `BENCH_PIN=0` turns it off.
 */
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';

/** The CPUs S1 pins to: the client's and the server's, or undefined when pinning is off or impossible. */
export function pinPlan(): { client: number; server: number } | undefined {
  if (process.env.BENCH_PIN === '0' || process.platform !== 'linux') return undefined;
  const count = cpus().length;
  if (count < 2) return undefined;
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  return { client: 0, server: count - 1 };
}

/** Pins `pid` to `cpu`, or to every CPU again when `cpu` is undefined. Best effort: false when taskset refused. */
export function pin(pid: number | undefined, cpu: number | undefined): boolean {
  if (pid === undefined) return false;
  const list = cpu === undefined ? `0-${cpus().length - 1}` : String(cpu);
  try {
    execFileSync('taskset', ['-a', '-p', '-c', list, String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
