/**
 * Failures that come from the runtime rather than the network, and that no retry can fix: a permission the runtime
 * withholds (Deno's `NotCapable`/`PermissionDenied`, Node's permission model `ERR_ACCESS_DENIED`). They become a
 * {@link RuntimeUnsupportedError} whose message names the fix, instead of a `NetworkError` retried four times.
 */
import { RuntimeUnsupportedError } from '../errors.js';

/** The runtime error in `error`'s cause chain that is a withheld permission, if any. */
function permissionError(error: unknown): { runtime: 'Deno' | 'Node.js'; message: string; error: unknown } | undefined {
  let current = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const { name, code, message } = current as { name?: unknown; code?: unknown; message?: unknown };
    const text = typeof message === 'string' ? message : '';
    if (name === 'NotCapable' || name === 'PermissionDenied') return { runtime: 'Deno', message: text, error: current };
    if (code === 'ERR_ACCESS_DENIED') return { runtime: 'Node.js', message: text, error: current };
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * A {@link RuntimeUnsupportedError} for `error` when the runtime withheld a permission (`what` names the operation,
 * e.g. `POST https://auth.example.com/token`), else undefined.
 */
export function runtimeRefusal(error: unknown, what: string): RuntimeUnsupportedError | undefined {
  const denied = permissionError(error);
  if (!denied) return undefined;
  const fix =
    denied.runtime === 'Deno'
      ? 'grant it: undici, under the Client, reads environment variables, so run with --allow-env (or --allow-env=<the names asked for>) as well as --allow-net'
      : 'grant it with the matching --allow-… flag of the permission model (e.g. --allow-fs-read, --allow-addons), or run without --permission';
  return new RuntimeUnsupportedError(`${what} failed: ${denied.runtime} denied a permission the Client needs (${denied.message || 'permission denied'}); ${fix}. Retrying cannot help.`, { cause: denied.error });
}
