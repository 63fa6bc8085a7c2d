/**
 * Human formatting of times: local date-times with their UTC offset, and "in 4 min" / "3 min ago"; and of URLs, shown
 * without their credentials. Pure: the current time is passed in.
 */

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** A local date-time with its offset, e.g. `2026-11-28 14:05:09 +01:00`. */
export function localTime(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  if (Number.isNaN(d.getTime())) return 'out of range (no date)';
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** A duration in words, rounded down to its largest unit: `4.5 s` (under 10 s), `45 s`, `4 min`, `3 h`, `2 days`. */
export function duration(ms: number): string {
  if (Math.abs(ms) < 10_000) return `${(Math.floor(Math.abs(ms) / 100) / 10).toFixed(1)} s`;
  const s = Math.floor(Math.abs(ms) / 1000);
  if (s < 120) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 120) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h`;
  return `${Math.floor(h / 24)} days`;
}

/** `in 4 min` for a future moment, `3 min ago` for a past one. */
export function relative(unixSeconds: number, nowMs: number): string {
  const delta = unixSeconds * 1000 - nowMs;
  return delta >= 0 ? `in ${duration(delta)}` : `${duration(delta)} ago`;
}

/** What `exp` means now: `expires in 4 min` or `expired 3 min ago`. */
export function expiryPhrase(exp: number, nowMs: number): string {
  const delta = exp * 1000 - nowMs;
  return delta > 0 ? `expires in ${duration(delta)}` : `expired ${duration(delta)} ago`;
}


/** `url` without a `user:password@` part, for display (a text that does not parse loses what precedes its `@`). */
export function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.href;
  } catch {
    return url.replace(/\/\/[^/?#]*@/, '//');
  }
}
