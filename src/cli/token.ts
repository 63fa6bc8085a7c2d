/**
 * `oauth-client-credentials token`: prints the access token alone (so `$(oauth-client-credentials token)` works), or with
 * `--json` the whole OAuthToken. The token comes from the file cache while it has more than a quarter of its life left.
 */
import type { OAuthToken } from '../index.js';
import type { Flags } from './args.js';
import { CliError, ExitCode } from './failure.js';
import type { Output } from './output.js';
import type { Session } from './session.js';
import { hasControl, safeJson } from './terminal.js';

/**
 * The token with every member but the access and refresh tokens redacted (on a copy): what else the server put in
 * its answer (`scope`, extra members) is its text, and may echo the request, client secret included (a debug endpoint).
 */
function redactedAnswer(token: OAuthToken, out: Output): OAuthToken {
  return Object.fromEntries(Object.entries(token).map(([name, value]) => [name, name === 'accessToken' || name === 'refreshToken' ? value : out.redactor.scrub(structuredClone(value))])) as unknown as OAuthToken;
}

/** Runs `token`. */
export async function tokenCommand(session: Session, flags: Flags, out: Output, signal: AbortSignal): Promise<ExitCode> {
  const token = await session.client.clientCredentialsAuthManager.getToken({ signal });
  out.redactor.add(token.accessToken);
  out.redactor.add(token.refreshToken);
  // A token is printed raw, on purpose: one holding control characters could drive the terminal, so it is refused.
  if (hasControl(token.accessToken) || hasControl(token.tokenType)) {
    throw new CliError('the token holds control characters and is not printed', 'the authorization server issued a malformed token; check --token-url', ExitCode.Auth);
  }
  const text = flags.json === true ? safeJson(redactedAnswer(token, out), 2) : token.accessToken;
  out.result(`${text}\n`, { raw: true });
  if (out.verbose) {
    const stats = session.client.stats();
    out.debug(`${stats.tokenRequests} token request(s), ${stats.storeHits} from the cache`);
  }
  return ExitCode.Ok;
}
