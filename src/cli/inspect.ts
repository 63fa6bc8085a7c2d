/**
 * `oauth-client-credentials inspect [TOKEN|-]`: decodes a JWT's header and claims, shows the time claims as local times and
 * relative to now, and says plainly that the signature was not verified. Never prints the token itself.
 */
import { resolve } from 'node:path';
import { decodeJwt } from '../jwt.js';
import type { AccessTokenCheck } from '../auth/accessTokenVerification.js';
import type { Flags } from './args.js';
import { CliError, ExitCode } from './failure.js';
import { MAX_FILE_BYTES, readFlagFile } from './files.js';
import { expiryPhrase, localTime, relative } from './format.js';
import type { Io, Output } from './output.js';
import { escapeControl, safeJson } from './terminal.js';

/** Claims holding unix times. */
const TIME_CLAIMS = ['exp', 'iat', 'nbf', 'auth_time'];

/** Pulls the token out of what was given: a bare token, `Bearer …`, `Authorization: Bearer …`, or the JSON of `token --json` or a token response. */
export function extractToken(input: string): string {
  let text = input.trim();
  if (text.startsWith('{')) {
    try {
      const json = JSON.parse(text) as Record<string, unknown>;
      const token = json['accessToken'] ?? json['access_token'];
      if (typeof token === 'string') text = token;
      else throw new CliError('the JSON given has no accessToken or access_token', 'give the token itself, or the output of `oauth-client-credentials token --json`');
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw new CliError('the input starts with { but is not valid JSON');
    }
  }
  text = text.replace(/^authorization:\s*/i, '').replace(/^bearer\s+/i, '').trim();
  if (text === '') throw new CliError('no token given', 'pass the token as an argument, or - to read it from standard input');
  if (/\s/.test(text)) throw new CliError('the input holds more than one word; give a single token', 'pass the token as an argument, or - to read it from standard input');
  return text;
}

function decodeHeaderOnly(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A claim or header value as text, its control characters escaped (a token's claims are the issuer's text). */
function show(value: unknown): string {
  return escapeControl(typeof value === 'string' ? value : safeJson(value));
}

function table(out: Output, entries: [string, string][]): string {
  const width = Math.max(0, ...entries.map(([k]) => k.length));
  return entries.map(([key, value]) => `  ${out.paintOut('cyan', escapeControl(key).padEnd(width))}  ${value}`).join('\n');
}

/** Runs `inspect`. */
export async function inspectCommand(positionals: string[], flags: Flags, io: Io, out: Output, nowMs = Date.now()): Promise<ExitCode> {
  if (positionals.length > 1) throw new CliError('inspect takes one token', 'usage: oauth-client-credentials inspect [TOKEN|-]');
  const arg = positionals[0];
  let input: string;
  if (arg === undefined || arg === '-') {
    if (arg === undefined && io.stdinIsTTY) throw new CliError('no token given', 'usage: oauth-client-credentials inspect TOKEN, or pipe one in: oauth-client-credentials token | oauth-client-credentials inspect -');
    input = await io.readStdin();
  } else {
    input = arg;
  }
  const token = extractToken(input);
  out.redactor.add(token);
  // The signature is never shown either: it is the one part a reader could mistake for the token.
  const signature = token.split('.')[2];
  if (signature) out.redactor.add(signature);

  const parts = token.split('.');
  const decoded = decodeJwt(token);
  const asJson = flags.json === true;
  if (flags.verify && !decoded) {
    requireIssuer(flags, io);
    const detail = 'not a signed JWT (JWS compact serialization), so there is nothing to verify';
    if (asJson) out.result(`${JSON.stringify({ format: parts.length === 5 ? 'jwe' : 'opaque', verified: false, signatureVerified: false, checks: [{ name: 'format', ok: false, detail }] }, null, 2)}\n`);
    else out.result(`${out.paintOut('red', 'verification FAILED: format')}: ${detail}.\n`);
    return ExitCode.Auth;
  }

  if (!decoded) {
    const jweHeader = parts.length === 5 ? decodeHeaderOnly(parts[0]!) : undefined;
    if (jweHeader) {
      if (asJson) out.result(`${safeJson({ format: 'jwe', signatureVerified: false, header: jweHeader }, 2)}\n`);
      else {
        out.result(`${out.paintOut('bold', 'Encrypted JWT (JWE)')}: its claims can only be read with the recipient's private key.\n\n`);
        out.result(`${out.paintOut('bold', 'Header')}\n${table(out, Object.entries(jweHeader).map(([k, v]) => [k, show(v)]))}\n`);
      }
      return ExitCode.Ok;
    }
    if (asJson) out.result(`${safeJson({ format: 'opaque', length: token.length }, 2)}\n`);
    else {
      out.result(
        `This is an opaque token (${token.length} characters), not a JWT: there is nothing in it to decode.\n` +
          'Only the authorization server knows what it stands for; ask it through token introspection (RFC 7662) if it offers that.\n',
      );
    }
    return ExitCode.Ok;
  }

  const verification = flags.verify ? await verifyChecks(token, flags, io, nowMs) : undefined;
  const verified = verification?.every((c) => c.ok);
  const exitCode = verification && !verified ? ExitCode.Auth : ExitCode.Ok;

  const { header, payload } = decoded;
  const exp = typeof payload['exp'] === 'number' ? payload['exp'] : undefined;
  const nbf = typeof payload['nbf'] === 'number' ? payload['nbf'] : undefined;
  const expired = exp !== undefined && exp * 1000 <= nowMs;
  const notYet = nbf !== undefined && nbf * 1000 > nowMs;

  if (asJson) {
    const times: Record<string, { unix: number; local: string; relative: string }> = {};
    for (const name of TIME_CLAIMS) {
      const value = payload[name];
      if (typeof value === 'number') times[name] = { unix: value, local: localTime(value), relative: relative(value, nowMs) };
    }
    const report = {
      format: 'jwt',
      signatureVerified: verification?.find((c) => c.name === 'signature')?.ok ?? false,
      ...(verification ? { verified, checks: verification } : {}),
      header,
      claims: payload,
      times,
      expired,
      ...(exp !== undefined ? { expiresInSeconds: Math.round(exp - nowMs / 1000) } : {}),
    };
    out.result(`${safeJson(report, 2)}\n`);
    return exitCode;
  }

  const kind = escapeControl([header['typ'], header['alg']].filter((v) => typeof v === 'string').join(', '));
  const lines: string[] = [];
  if (verification) {
    const failed = verification.filter((c) => !c.ok);
    lines.push(
      failed.length === 0
        ? `${out.paintOut('bold', `JWT${kind ? ` (${kind})` : ''}`)}: ${out.paintOut('green', 'verified')}: signature and RFC 9068 claims (typ, iss, aud, exp, iat) check out.`
        : `${out.paintOut('bold', `JWT${kind ? ` (${kind})` : ''}`)}: ${out.paintOut('red', `verification FAILED: ${failed.map((c) => c.name).join(', ')}`)}.`,
    );
    lines.push('');
    lines.push(out.paintOut('bold', 'Checks'));
    lines.push(table(out, verification.map((c) => [c.name, `${c.ok ? out.paintOut('green', 'ok') : out.paintOut('red', 'FAILED')}  ${c.detail}`])));
    lines.push('');
  } else {
    lines.push(`${out.paintOut('bold', `JWT${kind ? ` (${kind})` : ''}`)}: ${out.paintOut('yellow', 'signature NOT verified')}; these claims are only decoded, do not trust them.`);
  }
  if (exp === undefined) lines.push('No exp claim: the token does not say when it expires.');
  else lines.push(`${expired ? out.paintOut('red', expiryPhrase(exp, nowMs)) : out.paintOut('green', expiryPhrase(exp, nowMs))} (${localTime(exp)})${notYet ? `, and not valid before ${localTime(nbf!)}` : ''}.`);
  lines.push('');
  lines.push(out.paintOut('bold', 'Header'));
  lines.push(table(out, Object.entries(header).map(([k, v]) => [k, show(v)])));
  lines.push('');
  lines.push(out.paintOut('bold', 'Claims'));
  lines.push(
    table(
      out,
      Object.entries(payload).map(([k, v]) => {
        if (TIME_CLAIMS.includes(k) && typeof v === 'number') {
          const when = k === 'exp' ? expiryPhrase(v, nowMs) : relative(v, nowMs);
          return [k, `${v}  ${localTime(v)}  (${when})`];
        }
        return [k, show(v)];
      }),
    ),
  );
  out.result(`${lines.join('\n')}\n`);
  return exitCode;
}

/** `--verify`: the checks of {@link verifyAccessToken} against `--issuer` (or $CLIENT_CREDENTIALS_ISSUER), over `--ca` when given. */
async function verifyChecks(token: string, flags: Flags, io: Io, nowMs: number): Promise<AccessTokenCheck[]> {
  const issuer = requireIssuer(flags, io);
  const caPath = flags.ca ?? io.env['CLIENT_CREDENTIALS_CA'];
  let ca: string | undefined;
  if (caPath) ca = await readFlagFile(resolve(io.cwd, caPath), 'CA certificate', MAX_FILE_BYTES.pem);
  const seconds = flags.timeout === undefined ? 30 : Number(flags.timeout);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new CliError(`--timeout must be a positive number of seconds, got "${flags.timeout}"`);
  // Loaded here: inspecting without --verify needs no HTTP client (undici), and starts faster without it.
  const [{ verifyAccessToken }, { createDispatcher, createTransport }, { withSystemRoots }] = await Promise.all([
    import('../auth/accessTokenVerification.js'),
    import('../http/transport.js'),
    import('./settings.js'),
  ]);
  const dispatcher = createDispatcher(ca ? { ca: withSystemRoots(ca) } : undefined);
  try {
    return await verifyAccessToken(token, {
      issuer,
      audience: flags.audience,
      transport: createTransport(dispatcher),
      now: nowMs,
      timeout: Math.round(seconds * 1000),
      userAgent: 'oauth-client-credentials-cli',
    });
  } finally {
    await dispatcher.close();
  }
}

/** The issuer `--verify` trusts: `--issuer`, else $CLIENT_CREDENTIALS_ISSUER. */
function requireIssuer(flags: Flags, io: Io): string {
  const issuer = flags.issuer ?? io.env['CLIENT_CREDENTIALS_ISSUER'];
  if (!issuer) throw new CliError('--verify needs the issuer to trust', 'give --issuer URL (or set CLIENT_CREDENTIALS_ISSUER); its metadata gives the keys');
  return issuer;
}
