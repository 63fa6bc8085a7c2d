/**
 * `oauth-client-credentials token`: prints the access token alone (so `$(oauth-client-credentials token)` works), or with
 * `--json` the whole OAuthToken. The token comes from the file cache while it has more than a quarter of its life left.
 */
import type { Flags } from './args.js';
import { CliError, ExitCode } from './failure.js';
import type { Output } from './output.js';
import type { Session } from './session.js';
import { hasControl, safeJson } from './terminal.js';

/** Runs `token`. */
export async function tokenCommand(session: Session, flags: Flags, out: Output, signal: AbortSignal): Promise<ExitCode> {
  const token = await session.client.clientCredentialsAuthManager.getToken({ signal });
  out.redactor.add(token.accessToken);
  out.redactor.add(token.refreshToken);
  // A token is printed raw, on purpose: one holding control characters could drive the terminal, so it is refused.
  if (hasControl(token.accessToken) || hasControl(token.tokenType)) {
    throw new CliError('the token holds control characters and is not printed', 'the authorization server issued a malformed token; check --token-url', ExitCode.Auth);
  }
  const text = flags.json === true ? safeJson(token, 2) : token.accessToken;
  out.result(`${text}\n`, { raw: true });
  if (out.verbose) {
    const stats = session.client.stats();
    out.debug(`${stats.tokenRequests} token request(s), ${stats.storeHits} from the cache`);
  }
  return ExitCode.Ok;
}
