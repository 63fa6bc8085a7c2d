import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenLocal, readBody, type RecordedRequest } from './http.js';

/** A real HTTP server on 127.0.0.1 whose answers a test scripts, recording every request. */
export interface ScriptedServer {
  url: string;
  /** `host:port` origin, e.g. `http://127.0.0.1:1234`. */
  origin: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** What a scripted server does with one request (after its body was read). */
export type Script = (req: IncomingMessage, res: ServerResponse, recorded: RecordedRequest) => void | Promise<void>;

/** Starts a {@link ScriptedServer}. */
export async function startScripted(script: Script): Promise<ScriptedServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const at = Date.now();
    void readBody(req).then(async (body) => {
      const recorded: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, at };
      requests.push(recorded);
      try {
        await script(req, res, recorded);
      } catch {
        res.destroy();
      }
    });
  });
  const url = await listenLocal(server);
  return { url, origin: url, requests, close: () => closeServer(server) };
}

/** A JSON answer. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

/** A token endpoint that issues `token-N` opaque tokens (valid b64tokens) for any client. */
export function tokenScript(lifetime = 3600): Script {
  let n = 0;
  return (_req, res) => sendJson(res, 200, { access_token: `tok-${++n}-${'x'.repeat(24)}`, token_type: 'Bearer', expires_in: lifetime });
}
