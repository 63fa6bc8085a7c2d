/**
 * S7-hang and S8-hang (issue 18): the outage scenarios S7 and S8, with a token endpoint that accepts requests and never
 * answers during the window (a black-holed route, a load balancer that accepts and stalls) instead of answering 503.
 * The most common real outage, and the one a client that waits for each token request to time out does not survive.
 *
 * The runs themselves are bench/run.ts's `outageRun` (the same token server, worker, callers and counts), with the
 * token server's `outage.hang` set; this module holds the shapes, the targets and the report section.
 */
import type { ContenderName } from './impls.js';
import type { BenchResults, TargetResult } from './report.js';

type OutageScenario = NonNullable<BenchResults['s7']>;
type OutageRow = OutageScenario['results'][number];

/** The hang windows, in ms after the first token (4 s tokens, as S7 and S8). */
export const HANG_SHAPES = {
  S7H: { fromMs: 2_500, toMs: 4_500, durationMs: 8_000, hang: true },
  S8H: { fromMs: 2_500, toMs: 7_000, durationMs: 14_000, hang: true },
} as const;

/** The shape of one hang run, as `outageRun` takes it. */
export type HangShape = (typeof HANG_SHAPES)[keyof typeof HANG_SHAPES];

/** Runs S7H or S8H: `runs` rounds of every contender through `runOne` (bench/run.ts's `outageRun`). */
export async function hangScenario(
  id: 'S7H' | 'S8H',
  runs: number,
  contenders: readonly ContenderName[],
  meta: { ttl: number; tokenLatencyMs: number; concurrency: number; pauseMs: number },
  runOne: (name: ContenderName, shape: HangShape, run: number) => Promise<OutageRow>,
  log: (line: string) => void,
): Promise<OutageScenario> {
  const shape = HANG_SHAPES[id];
  log(`${id} ${id === 'S7H' ? 'brief' : 'long'} hang: ${meta.ttl} s tokens, token endpoint accepting and never answering ${shape.fromMs / 1000}–${shape.toMs / 1000} s after the first token, ` +
    `${meta.concurrency} callers for ${shape.durationMs / 1000} s; ${contenders.length} contenders × ${runs} runs`);
  const rows: OutageRow[] = [];
  for (let run = 1; run <= runs; run++) {
    for (const name of contenders) {
      const row = await runOne(name, shape, run);
      rows.push(row);
      const lag = row.firstSuccessAfterEndMs === undefined || row.firstSuccessAfterEndMs === null ? 'never' : `${row.firstSuccessAfterEndMs} ms`;
      log(`  run ${run} ${name}: ${row.failed}/${row.calls} failed; first success ${lag} after the endpoint was back; ${row.tokenRequests} token requests${row.stuck ? `; ${row.stuck} calls stuck` : ''}`);
    }
  }
  return { ...meta, outageFromMs: shape.fromMs, outageToMs: shape.toMs, durationMs: shape.durationMs, runs, results: rows };
}

/** Issue 18's targets for the hang variants, our Client's rows only. */
export function hangTargets(r: BenchResults): TargetResult[] {
  const out: TargetResult[] = [];
  if (r.s7h) {
    const ours = r.s7h.results.filter((x) => x.name === 'ours');
    const failed = ours.map((x) => x.failed);
    out.push({ id: 'S7H', target: 'brief hang: 0 failed requests in every one of 5 runs', value: ours.length === 0 ? 'not measured' : `${failed.join(', ')} failed (${ours.length} run${ours.length === 1 ? '' : 's'})`, met: ours.length >= 5 && failed.every((n) => n === 0) });
  }
  if (r.s8h) {
    const ours = r.s8h.results.filter((x) => x.name === 'ours');
    const lags = ours.map((x) => x.firstSuccessAfterEndMs ?? Number.POSITIVE_INFINITY);
    out.push({ id: 'S8H', target: 'long hang: first success ≤ 1 s after the endpoint is back', value: ours.length === 0 ? 'not measured' : lags.map((l) => (Number.isFinite(l) ? `${l} ms` : 'never')).join(', '), met: ours.length > 0 && Math.max(...lags) <= 1_000 });
    out.push({ id: 'S8H', target: 'long hang: no caller stuck until the end of the run', value: ours.length === 0 ? 'not measured' : ours.map((x) => x.stuck ?? 0).join(', '), met: ours.length > 0 && ours.every((x) => (x.stuck ?? 0) === 0) });
    out.push({ id: 'S8H', target: 'long hang: ≤ 20 token requests', value: ours.length === 0 ? 'not measured' : ours.map((x) => x.tokenRequests).join(', '), met: ours.length > 0 && Math.max(...ours.map((x) => x.tokenRequests)) <= 20 });
  }
  return out;
}

const seconds = (ms: number) => (ms / 1000).toFixed(2);

/** The S7H or S8H section of docs/bench.md: one row per contender, its runs side by side. */
export function renderHang(id: 'S7H' | 'S8H', s: OutageScenario): string[] {
  const out: string[] = [];
  out.push(`## ${id}, ${id === 'S7H' ? 'brief' : 'long'} hang (S${id[1]} with a token endpoint that never answers)`);
  out.push('');
  out.push(`As S${id[1]}, but from ${seconds(s.outageFromMs)} s to ${seconds(s.outageToMs)} s after the first token the token endpoint accepts every token ` +
    'request and never answers it (not even after the window: a black-holed request stays black-holed). ' +
    '"First success after the end": the first successful call at or after the window\'s end, minus the end. "Stuck": calls still unsettled 5 s after the run.');
  out.push('');
  const names = [...new Set(s.results.map((x) => x.name))];
  const list = (values: (string | number)[]) => values.join(' / ');
  out.push('| Contender | Calls (per run) | Failed (per run) | First success after the end (ms, per run) | Stuck (per run) | Token requests (unanswered), per run |');
  out.push('|---|---|---|---|---|---|');
  for (const name of names) {
    const rows = s.results.filter((x) => x.name === name);
    out.push(`| ${name} | ${list(rows.map((x) => x.calls))} | ${list(rows.map((x) => x.failed))} | ${list(rows.map((x) => (x.firstSuccessAfterEndMs === undefined || x.firstSuccessAfterEndMs === null ? 'never' : x.firstSuccessAfterEndMs)))} | ` +
      `${list(rows.map((x) => x.stuck ?? 0))} | ${list(rows.map((x) => `${x.tokenRequests} (${x.tokenRequestsRefused})`))} |`);
  }
  out.push('');
  return out;
}
