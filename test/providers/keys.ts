/**
 * Keys and certificates the provider emulations need: an RSA key with a self-signed certificate (Entra ID wants RS256
 * certificate credentials), made once per process with openssl, and EC keys as JWKs with a `kid`.
 */
import { execFileSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let rsa: { key: string; cert: string } | undefined;

/** An RSA 2048 private key (PKCS#8 PEM) and its self-signed certificate (PEM). */
export function rsaCertificate(): { key: string; cert: string } {
  if (rsa) return rsa;
  const dir = mkdtempSync(join(tmpdir(), 'cc-provider-cert-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=emulated-client'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    rsa = { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
    return rsa;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A fresh EC P-256 key pair: the private key as a JWK with `kid` (and `alg`), and the public KeyObject. */
export function ecJwk(kid: string): { privateJwk: Record<string, unknown>; publicKey: KeyObject } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const privateJwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'ES256' };
  return { privateJwk, publicKey: createPublicKey(privateKey) };
}
