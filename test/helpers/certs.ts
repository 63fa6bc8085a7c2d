/**
 * Test certificates made on the fly with openssl (node:crypto cannot issue X.509 certificates): a CA, a server
 * certificate for 127.0.0.1 and localhost, a client certificate it signed (`CN=<name>`), and a self-signed client
 * certificate. EC P-256 keys, so the whole set takes a few tens of milliseconds. Generated once per process.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate, createHash } from 'node:crypto';

/** PEM strings of one test PKI. */
export interface TestCertificates {
  ca: string;
  serverKey: string;
  serverCert: string;
  /** Issued by `ca`, subject `CN=client-a`. */
  clientKey: string;
  clientCert: string;
  /** Self-signed, subject `CN=self-signed-client`. */
  selfSignedKey: string;
  selfSignedCert: string;
}

/** The RFC 8705 §3.1 `x5t#S256` of a PEM certificate: base64url SHA-256 of its DER. */
export function certificateThumbprint(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url');
}

let cached: TestCertificates | undefined;

/** Creates (once) and returns the test certificates. */
export function testCertificates(): TestCertificates {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'cc-certs-'));
  const run = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const key = (name: string): void => run('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
  try {
    key('ca');
    run('req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=Test CA', '-days', '2', '-out', 'ca.pem', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
    const issue = (name: string, subject: string, ext: string): void => {
      key(name);
      run('req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`);
      writeFileSync(join(dir, `${name}.ext`), ext);
      run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
    };
    issue('server', '/CN=localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
    issue('client', '/CN=client-a', 'extendedKeyUsage=clientAuth\n');
    key('self');
    run('req', '-x509', '-new', '-key', 'self.key', '-subj', '/CN=self-signed-client', '-days', '2', '-out', 'self.pem');
    const read = (file: string): string => readFileSync(join(dir, file), 'utf8');
    cached = {
      ca: read('ca.pem'),
      serverKey: read('server.key'),
      serverCert: read('server.pem'),
      clientKey: read('client.key'),
      clientCert: read('client.pem'),
      selfSignedKey: read('self.key'),
      selfSignedCert: read('self.pem'),
    };
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
