/**
 * The broker's log: one JSON object per line and per event (`{"time","level","event",…}`). Callers pass only
 * non-secret fields; every string is also scrubbed by the broker's redactor (the secrets read from files, as a second
 * guard; tokens never reach a field: the proxy and the token API pass none).
 */
import type { Redactor } from '../redaction.js';

/** Severity of a log line. */
export type LogLevel = 'info' | 'warn' | 'error';

/** Writes one event. */
export type Log = (level: LogLevel, event: string, fields?: Record<string, unknown>) => void;

/** A message safe to log for any thrown value: its code and message, never its stack. */
export function describeError(error: unknown): { code?: string; message: string } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { ...(typeof code === 'string' ? { code } : {}), message: error.message };
  }
  return { message: String(error) };
}

/** A {@link Log} writing JSON lines to `write`, with times from `now` (ms). */
export function createLog(write: (line: string) => void, now: () => number, redactor: Redactor): Log {
  return (level, event, fields) => {
    const record = { time: new Date(now()).toISOString(), level, event, ...fields };
    write(`${redactor.redact(JSON.stringify(record))}\n`);
  };
}
