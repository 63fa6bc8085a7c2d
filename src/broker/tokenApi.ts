/**
 * The broker's token API, for programs that call APIs themselves: `GET /v1/token/<client>` answers
 * `{ access_token, token_type, expires_in }` with `Cache-Control: no-store`. On a Unix socket (mode 0600) the file
 * mode is the access control; on TCP, a caller must send `Authorization: Bearer <key>` with a key from
 * `tokenApi.keyFile` (compared in constant time). A DPoP-bound token is not handed out: it is only usable with the
 * broker's key, through the proxy.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BrokerClient } from './clients.js';
import { describeError, type Log } from './log.js';
import type { BrokerMetrics } from './metrics.js';
import { answer } from './proxy.js';

/** The keys a TCP caller may send, as SHA-256 digests. */
export class ApiKeys {
  #digests: Buffer[] = [];

  /**
   * Replaces the keys with the non-empty lines of `text`, and returns how many there are. A text with no key leaves
   * the keys in force (a file emptied half-way through a rotation locks no caller out): 0 is returned.
   */
  load(text: string): number {
    const digests = text.split(/\r?\n/).map((line) => line.trim()).filter(Boolean).map((key) => createHash('sha256').update(key).digest());
    if (digests.length > 0) this.#digests = digests;
    return digests.length;
  }

  /** Whether `key` is one of the keys: every key is compared, each in constant time. */
  accepts(key: string): boolean {
    const digest = createHash('sha256').update(key).digest();
    let ok = false;
    for (const known of this.#digests) ok = timingSafeEqual(known, digest) || ok;
    return ok;
  }
}

/** What the token API needs. */
export interface TokenApiOptions {
  readonly clients: () => ReadonlyMap<string, BrokerClient>;
  /** The keys TCP callers must send; undefined on the Unix socket. */
  readonly keys: ApiKeys | undefined;
  readonly metrics: BrokerMetrics;
  readonly log: Log;
  readonly now: () => number;
}

const PREFIX = '/v1/token/';

/** The request listener of the token API. */
export function createTokenApiHandler(o: TokenApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void (async () => {
      const target = req.url ?? '';
      if (!target.startsWith(PREFIX)) return answer(res, 404, 'not_found', 'the token API is GET /v1/token/<client>');
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        return answer(res, 405, 'method_not_allowed', 'use GET');
      }
      if (o.keys) {
        const header = req.headers.authorization ?? '';
        const key = /^Bearer\s+(.+)$/i.exec(header)?.[1]?.trim() ?? '';
        if (!o.keys.accepts(key)) {
          res.setHeader('www-authenticate', 'Bearer realm="oauth-broker"');
          return answer(res, 401, 'unauthorized', 'send Authorization: Bearer <a key from tokenApi.keyFile>');
        }
      }
      let name: string;
      try {
        name = decodeURIComponent(target.slice(PREFIX.length).split('?')[0]!);
      } catch {
        return answer(res, 400, 'bad_request', 'the client name is not valid percent-encoding');
      }
      const client = o.clients().get(name);
      if (!client) return answer(res, 404, 'unknown_client', 'no client of that name');
      let token;
      try {
        token = client.access.peek(client.key) ?? (await client.access.token(client.key));
      } catch (error) {
        o.log('error', 'token_unavailable', { client: name, via: 'token_api', error: describeError(error) });
        return answer(res, 503, 'token_unavailable', `no access token for client "${name}"`);
      }
      if (token.tokenType.toLowerCase() === 'dpop') return answer(res, 409, 'dpop_bound', 'this client\'s tokens are DPoP-bound to the broker\'s key: call the API through the broker\'s proxy');
      o.metrics.tokenApiRequest();
      const expiresIn = token.expiry === undefined ? undefined : Math.max(0, Math.floor(token.expiry - o.now() / 1000));
      const body = JSON.stringify({ access_token: token.accessToken, token_type: token.tokenType, ...(expiresIn !== undefined ? { expires_in: expiresIn } : {}) });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', pragma: 'no-cache' });
      res.end(req.method === 'HEAD' ? undefined : body);
    })().catch((error: unknown) => {
      o.log('error', 'token_api_failed', { error: describeError(error) });
      if (!res.headersSent) answer(res, 500, 'internal_error', 'the broker failed');
    });
  };
}
