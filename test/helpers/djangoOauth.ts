/**
 * django-oauth-toolkit 1.7 (Python; Debian's python3-django-oauth-toolkit, oauthlib 3.2) for the interop suite: the
 * one-file Django project in test/fixtures/django_oauth/server.py, on plain http with OAUTHLIB_INSECURE_TRANSPORT=1,
 * a fresh SQLite database in a temporary folder (tables made from the models), confidential client-credentials Applications, OIDC discovery on.
 *
 * Quirks it keeps: Basic credentials are form-decoded (RFC 6749 §2.3.1); only client_secret_basic and
 * client_secret_post; the token URL is `/o/token/` (without the slash: 301); OIDC metadata only at
 * `/o/.well-known/openid-configuration/` (the spec's URL, without the slash, answers 301).
 */
import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEBIAN_PYTHON, FIXTURES, nativeSkipReason, probe, startNative } from './nativeServer.js';

const APP = join(FIXTURES, 'django_oauth', 'server.py');
const MODULES = ['/usr/lib/python3/dist-packages/oauth2_provider', '/usr/lib/python3/dist-packages/django'];

/** Why the django-oauth-toolkit tests are skipped here, or undefined when it is installed (throws in CI when it is not). */
export function djangoOauthSkip(): string | undefined {
  return nativeSkipReason('django-oauth-toolkit', [DEBIAN_PYTHON, ...MODULES], 'python3-django-oauth-toolkit');
}

/** A running django-oauth-toolkit. */
export interface DjangoOauthHandle {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `…/o`: the issuer its OIDC metadata names. */
  issuer: string;
  /** `…/o/token/` (with the slash it needs). */
  tokenUrl: string;
  startupMs: number;
  introspect(token: string): Promise<{ client_id: string | null; scope: string | null } | null>;
  output(): string;
  close(): Promise<void>;
}

/** Starts the Django project with these confidential clients (id and secret). */
export async function startDjangoOauth(clients: { clientId: string; clientSecret: string }[]): Promise<DjangoOauthHandle> {
  // Its OIDC signing key; made off the main thread, so the other servers keep starting meanwhile.
  const { privateKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 });
  const rsa = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  const proc = await startNative({
    name: 'django-oauth-toolkit',
    prepare: (dir, port) => {
      writeFileSync(join(dir, 'clients.json'), JSON.stringify(clients.map((c) => ({ client_id: c.clientId, client_secret: c.clientSecret }))));
      writeFileSync(join(dir, 'oidc.key'), rsa, { mode: 0o600 });
      return {
        command: DEBIAN_PYTHON,
        args: [APP, String(port), join(dir, 'db.sqlite3'), join(dir, 'clients.json'), join(dir, 'oidc.key')],
        env: { OAUTHLIB_INSECURE_TRANSPORT: '1', PYTHONDONTWRITEBYTECODE: '1' },
      };
    },
    ready: async (port) => (await probe(`http://127.0.0.1:${port}/o/.well-known/openid-configuration/`)) === 200,
  });
  const url = `http://127.0.0.1:${proc.port}`;
  return {
    url,
    issuer: `${url}/o`,
    tokenUrl: `${url}/o/token/`,
    startupMs: proc.startupMs,
    introspect: async (token) => {
      const res = await fetch(`${url}/introspect?token=${encodeURIComponent(token)}`);
      const body = (await res.json()) as { active: boolean; client_id?: string; scope?: string | null };
      return res.status === 200 && body.active ? { client_id: body.client_id ?? null, scope: body.scope ?? null } : null;
    },
    output: () => proc.output(),
    close: () => proc.stop(),
  };
}
