/**
 * Authlib 1.2 (Python; Debian's python3-authlib + python3-flask) for the interop suite: the Flask app in
 * test/fixtures/authlib/server.py, over HTTPS with a certificate from the test CA (Authlib refuses plain http), its
 * AuthorizationServer with the client credentials grant, client_secret_basic/post, client_secret_jwt and
 * private_key_jwt (JWTBearerClientAssertion), RFC 8414 metadata at the root issuer. Opaque tokens.
 *
 * Quirks it keeps: Basic credentials are compared raw (not form-decoded); a bad assertion is `400 invalid_client`;
 * no DPoP, no RFC 8707.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from 'undici';
import { testCertificates } from './certs.js';
import { DEBIAN_PYTHON, FIXTURES, nativeSkipReason, probe, startNative } from './nativeServer.js';

const APP = join(FIXTURES, 'authlib', 'server.py');
const MODULES = ['/usr/lib/python3/dist-packages/authlib', '/usr/lib/python3/dist-packages/flask'];

/** Why the Authlib tests are skipped here, or undefined when it is installed (throws in CI when it is not). */
export function authlibSkip(): string | undefined {
  return nativeSkipReason('Authlib', [DEBIAN_PYTHON, ...MODULES], 'python3-authlib python3-flask');
}

/** A client to register. */
export interface AuthlibClient {
  clientId: string;
  /** The secret for Basic, post and the HMAC key of client_secret_jwt. */
  clientSecret?: string;
  /** The public JWK for private_key_jwt. */
  jwk?: Record<string, unknown>;
  methods: ('client_secret_basic' | 'client_secret_post' | 'client_secret_jwt' | 'private_key_jwt')[];
}

/** A running Authlib server. */
export interface AuthlibHandle {
  /** `https://127.0.0.1:PORT`, also the issuer. */
  url: string;
  tokenUrl: string;
  /** The CA that issued its certificate (pass as `tls.ca`). */
  ca: string;
  startupMs: number;
  /** What the server's lookup says a token stands for, or null when it does not know it. */
  introspect(token: string): Promise<{ client_id: string | null; scope: string | null } | null>;
  output(): string;
  close(): Promise<void>;
}

/** Starts the Authlib app with these clients (they are read once, at start). */
export async function startAuthlib(clients: AuthlibClient[]): Promise<AuthlibHandle> {
  const certs = testCertificates();
  const proc = await startNative({
    name: 'authlib',
    prepare: (dir, port) => {
      writeFileSync(join(dir, 'server.pem'), certs.serverCert);
      writeFileSync(join(dir, 'server.key'), certs.serverKey, { mode: 0o600 });
      const specs = clients.map((c) => ({ client_id: c.clientId, client_secret: c.clientSecret ?? null, jwk: c.jwk ?? null, methods: c.methods }));
      writeFileSync(join(dir, 'clients.json'), JSON.stringify(specs));
      return { command: DEBIAN_PYTHON, args: [APP, String(port), join(dir, 'server.pem'), join(dir, 'server.key'), join(dir, 'clients.json')], env: { PYTHONDONTWRITEBYTECODE: '1' } };
    },
    ready: async (port) => (await probe(`https://127.0.0.1:${port}/.well-known/oauth-authorization-server`, certs.ca)) === 200,
  });
  const url = `https://127.0.0.1:${proc.port}`;
  const agent = new Agent({ connect: { ca: certs.ca } });
  return {
    url,
    tokenUrl: `${url}/token`,
    ca: certs.ca,
    startupMs: proc.startupMs,
    introspect: async (token) => {
      const res = await fetch(`${url}/introspect?token=${encodeURIComponent(token)}`, { dispatcher: agent } as unknown as RequestInit);
      const body = (await res.json()) as { active: boolean; client_id?: string; scope?: string | null };
      return res.status === 200 && body.active ? { client_id: body.client_id ?? null, scope: body.scope ?? null } : null;
    },
    output: () => proc.output(),
    close: async () => {
      await agent.close();
      await proc.stop();
    },
  };
}
