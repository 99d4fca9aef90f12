/**
 * A throwaway PKI made with the real openssl CLI, for concentrator tests (OpenVPN, FreeRADIUS, strongSwan):
 * devicegate's device CA (an `openssl ca` database, so an OCSP responder can serve it), a server certificate, device
 * certificates (CN = device id, SAN URI `urn:uuid:<id>`), "another CA" that a concentrator may also trust, and
 * self-signed "private laptop" certificates. P-256 throughout.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** One certificate with its key and the identifiers a concentrator reports. */
export interface TestCert {
  readonly name: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly pem: string;
  /** 64 lower-case hex. */
  readonly sha256: string;
  /** DER content octets of the serial, lower-case hex (the `CertificateRecord.serialHex` form). */
  readonly serialDerHex: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** As node:crypto prints it (`C=DE\nO=…\nCN=…`). */
  readonly subject: string;
  readonly issuer: string;
  readonly deviceId: string | null;
}

/** A generated PKI in `dir`. */
export interface TestPki {
  readonly dir: string;
  /** devicegate's device CA. */
  readonly caCertPath: string;
  readonly caSubject: string;
  /** Another organisation's CA (e.g. the city's user CA) that a concentrator might also trust. */
  readonly otherCaCertPath: string;
  readonly otherCaSubject: string;
  /** Our CA + the other CA in one file (a concentrator trust bundle). */
  readonly trustBundlePath: string;
  /** TLS server certificate for the concentrators (CN devicegate-test-server, SAN localhost/127.0.0.1). */
  readonly server: TestCert;
  /** Issues a device certificate from our CA. */
  issueDevice(name: string, opts?: { deviceId?: string; days?: number; extraSan?: readonly string[] }): TestCert;
  /** Issues a certificate from the other CA (CN/SAN shaped like a device certificate). */
  issueFromOtherCa(name: string, opts?: { deviceId?: string; extraSan?: readonly string[] }): TestCert;
  /** A self-signed certificate, as a private laptop would bring. */
  selfSigned(name: string, opts?: { deviceId?: string; extraSan?: readonly string[] }): TestCert;
  /** Marks a certificate of our CA revoked in the CA database (for an `openssl ocsp` responder). */
  revokeInDatabase(cert: TestCert): void;
  /** Directory with index.txt for `openssl ocsp -index`. */
  readonly caDatabaseDir: string;
  readonly caKeyPath: string;
}

const CA_CNF = `[ ca ]
default_ca = CA_default
[ CA_default ]
dir = .
database = index.txt
new_certs_dir = issued
serial = serial
default_md = sha256
default_days = 30
policy = pol_any
copy_extensions = copy
unique_subject = no
preserve = yes
[ pol_any ]
countryName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
[ v3_ca ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ v3_server ]
basicConstraints = CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
[ v3_client ]
basicConstraints = CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
`;

function run(cwd: string, args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function describeCert(name: string, certPath: string, keyPath: string, deviceId: string | null): TestCert {
  const pem = readFileSync(certPath, 'utf8');
  const x = new X509Certificate(pem);
  let hex = x.serialNumber.toLowerCase();
  if (hex.length % 2) hex = `0${hex}`;
  while (hex.length > 2 && hex.startsWith('00') && parseInt(hex.slice(2, 4), 16) < 0x80) hex = hex.slice(2);
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = `00${hex}`;
  return {
    name,
    certPath,
    keyPath,
    pem,
    sha256: createHash('sha256').update(x.raw).digest('hex'),
    serialDerHex: hex,
    notBefore: Date.parse(x.validFrom),
    notAfter: Date.parse(x.validTo),
    subject: x.subject,
    issuer: x.issuer,
    deviceId,
  };
}

function makeCa(dir: string, subject: string): void {
  mkdirSync(path.join(dir, 'issued'), { recursive: true });
  writeFileSync(path.join(dir, 'ca.cnf'), CA_CNF);
  writeFileSync(path.join(dir, 'index.txt'), '');
  writeFileSync(path.join(dir, 'index.txt.attr'), 'unique_subject = no\n');
  run(dir, ['rand', '-hex', '-out', 'serial', '16']);
  run(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt',
    '-days', '365', '-subj', subject, '-config', 'ca.cnf', '-extensions', 'v3_ca']);
}

function sanLine(deviceId: string | null, extra: readonly string[] = []): string {
  const sans = [...(deviceId ? [`URI:urn:uuid:${deviceId}`] : []), ...extra];
  return sans.length ? `subjectAltName = ${sans.join(',')}\n` : '';
}

function issue(caDir: string, outDir: string, name: string, subject: string, ext: string, extraExt: string, days: number): { cert: string; key: string } {
  const key = path.join(outDir, `${name}.key`);
  const csr = path.join(outDir, `${name}.csr`);
  const cert = path.join(outDir, `${name}.crt`);
  const extFile = path.join(outDir, `${name}.ext`);
  writeFileSync(extFile, `${CA_CNF}\n[ this_cert ]\n${CA_CNF.split(`[ ${ext} ]\n`)[1]!.split('\n[')[0]}\n${extraExt}`);
  run(outDir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', subject]);
  run(caDir, ['ca', '-batch', '-config', extFile, '-cert', 'ca.crt', '-keyfile', 'ca.key', '-extensions', 'this_cert', '-days', String(days),
    '-in', csr, '-out', cert, '-notext']);
  return { cert, key };
}

/**
 * Creates the PKI under `dir` (which must exist and be private to the test). Synchronous; ~0.2 s.
 */
export function createTestPki(dir: string): TestPki {
  const caDir = path.join(dir, 'device-ca');
  const otherDir = path.join(dir, 'other-ca');
  const certs = path.join(dir, 'certs');
  mkdirSync(caDir, { recursive: true });
  mkdirSync(otherDir, { recursive: true });
  mkdirSync(certs, { recursive: true });
  const caSubject = '/C=DE/O=Stadt Musterstadt/OU=devicegate/CN=devicegate Test Device CA';
  const otherSubject = '/C=DE/O=Stadt Musterstadt/CN=Benutzer-CA (other CA)';
  makeCa(caDir, caSubject);
  makeCa(otherDir, otherSubject);
  const caCertPath = path.join(caDir, 'ca.crt');
  const otherCaCertPath = path.join(otherDir, 'ca.crt');
  const trustBundlePath = path.join(dir, 'trust-bundle.pem');
  writeFileSync(trustBundlePath, readFileSync(caCertPath, 'utf8') + readFileSync(otherCaCertPath, 'utf8'));

  const s = issue(caDir, certs, 'server', '/CN=devicegate-test-server', 'v3_server', '', 30);
  const server = describeCert('server', s.cert, s.key, null);

  const pki: TestPki = {
    dir,
    caCertPath,
    caSubject: new X509Certificate(readFileSync(caCertPath)).subject,
    otherCaCertPath,
    otherCaSubject: new X509Certificate(readFileSync(otherCaCertPath)).subject,
    trustBundlePath,
    server,
    caDatabaseDir: caDir,
    caKeyPath: path.join(caDir, 'ca.key'),
    issueDevice(name, opts = {}) {
      const id = opts.deviceId ?? randomUUID();
      const r = issue(caDir, certs, name, `/C=DE/O=Stadt Musterstadt/CN=${id}`, 'v3_client', sanLine(id, opts.extraSan), opts.days ?? 7);
      return describeCert(name, r.cert, r.key, id);
    },
    issueFromOtherCa(name, opts = {}) {
      const id = opts.deviceId ?? randomUUID();
      const r = issue(otherDir, certs, name, `/C=DE/O=Stadt Musterstadt/CN=${id}`, 'v3_client', sanLine(id, opts.extraSan), 7);
      return describeCert(name, r.cert, r.key, id);
    },
    selfSigned(name, opts = {}) {
      const id = opts.deviceId ?? randomUUID();
      const key = path.join(certs, `${name}.key`);
      const cert = path.join(certs, `${name}.crt`);
      const sans = [`URI:urn:uuid:${id}`, ...(opts.extraSan ?? [])].join(',');
      run(certs, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '7',
        '-subj', `/C=DE/O=Privat/CN=${id}`, '-addext', 'basicConstraints=CA:false', '-addext', 'extendedKeyUsage=clientAuth',
        '-addext', `subjectAltName=${sans}`]);
      return describeCert(name, cert, key, id);
    },
    revokeInDatabase(cert) {
      run(caDir, ['ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.crt', '-keyfile', 'ca.key', '-revoke', cert.certPath]);
    },
  };
  return pki;
}
