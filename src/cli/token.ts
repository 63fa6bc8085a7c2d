/**
 * `client-credentials token`: prints the access token alone (so `$(client-credentials token)` works), or with
 * `--json` the whole OAuthToken. The token comes from the file cache while it has more than a quarter of its life left.
 */
import type { Flags } from './args.js';
import { ExitCode } from './failure.js';
import type { Output } from './output.js';
import type { Session } from './session.js';

/** Runs `token`. */
export async function tokenCommand(session: Session, flags: Flags, out: Output, signal: AbortSignal): Promise<ExitCode> {
  const token = await session.client.clientCredentialsAuthManager.getToken({ signal });
  out.redactor.add(token.accessToken);
  out.redactor.add(token.refreshToken);
  const text = flags.json === true ? JSON.stringify(token, null, 2) : token.accessToken;
  out.result(`${text}\n`, { raw: true });
  if (out.verbose) {
    const stats = session.client.stats();
    out.debug(`${stats.tokenRequests} token request(s), ${stats.storeHits} from the cache`);
  }
  return ExitCode.Ok;
}
