/**
 * Apache 2.4 with Debian's mod_oauth2 (libapache2-mod-oauth2, on liboauth2) as a resource server that shares no code
 * with us: the configuration in test/fixtures/mod_oauth2/httpd.conf, run in the foreground from a temporary folder.
 * `/bearer/things` accepts Bearer JWTs, `/dpop/things` DPoP-bound JWTs with a proof; both check the token's signature
 * against the issuer's public JWKs given at start. It verifies a proof's `typ`, signature, `htm`, `htu`, `iat` and
 * `jti` and the token's `cnf.jkt`; it cannot verify EdDSA proofs and does not check `ath` or nonces.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, nativeSkipReason, probe, startNative } from './nativeServer.js';

export const APACHE_BINARY = '/usr/sbin/apache2';
const MODULE = '/usr/lib/apache2/modules/mod_oauth2.so';

/** Why the mod_oauth2 tests are skipped here, or undefined when it is installed (throws in CI when it is not). */
export function modOauth2Skip(): string | undefined {
  return nativeSkipReason('Apache mod_oauth2', [APACHE_BINARY, MODULE], 'apache2-bin libapache2-mod-oauth2');
}

/** A running Apache with mod_oauth2. */
export interface ModOauth2Handle {
  /** `http://127.0.0.1:PORT` */
  url: string;
  startupMs: number;
  /** Apache's error log (mod_oauth2 says there why it refused a token). */
  errorLog(): string;
  close(): Promise<void>;
}

/** Options: the public JWKs that sign the access tokens (each must have a `kid`). */
export interface ModOauth2Options {
  keys: Record<string, unknown>[];
  /** Seconds of clock slack for the proof's `iat`; default 60 (the machine is busy). */
  iatSlack?: number;
}

/** Starts Apache with mod_oauth2 on a free port. */
export async function startModOauth2(options: ModOauth2Options): Promise<ModOauth2Handle> {
  const template = readFileSync(join(FIXTURES, 'mod_oauth2', 'httpd.conf'), 'utf8');
  const slack = options.iatSlack ?? 60;
  // One OAuth2TokenVerify line per key, tried in order; the key's JSON is one quoted Apache argument.
  const verify = (extra: string): string =>
    options.keys.map((key) => `  OAuth2TokenVerify jwk "${JSON.stringify(key).replaceAll('"', '\\"')}" verify.iat.slack_before=${slack}&verify.iat.slack_after=${slack}${extra}`).join('\n');
  let dir = '';
  const proc = await startNative({
    name: 'apache-mod-oauth2',
    prepare: (folder, port) => {
      dir = folder;
      // Apache started as root serves as an unprivileged user, who must be able to read the folder.
      chmodSync(folder, 0o755);
      mkdirSync(join(folder, 'www', 'bearer'), { recursive: true });
      mkdirSync(join(folder, 'www', 'dpop'), { recursive: true });
      writeFileSync(join(folder, 'www', 'index.html'), 'ok\n');
      writeFileSync(join(folder, 'www', 'bearer', 'things'), '{"ok":true}\n');
      writeFileSync(join(folder, 'www', 'dpop', 'things'), '{"ok":true}\n');
      const user = userInfo().uid === 0 ? 'User nobody\nGroup nogroup' : '';
      const config = template
        .replaceAll('@DIR@', folder)
        .replaceAll('@PORT@', String(port))
        .replace('@USER@', user)
        .replace('@VERIFY_BEARER@', verify(''))
        .replace('@VERIFY_DPOP@', verify(`&type=dpop&dpop.iat.slack.before=${slack}&dpop.iat.slack.after=${slack}`));
      writeFileSync(join(folder, 'httpd.conf'), config);
      return { command: APACHE_BINARY, args: ['-f', join(folder, 'httpd.conf'), '-DFOREGROUND'] };
    },
    ready: async (port) => (await probe(`http://127.0.0.1:${port}/index.html`)) === 200,
  });
  const errorLog = (): string => {
    try {
      return readFileSync(join(dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  return { url: `http://127.0.0.1:${proc.port}`, startupMs: proc.startupMs, errorLog, close: () => proc.stop() };
}
