/**
 * The real devicegate for the concentrator end-to-end tests: the full app (real config, SQLite store, dev CA, audit
 * log, decision service) listening on 127.0.0.1, a real `concentrator` API token for the adapters, an `it-admin`
 * token for IT's actions over HTTP, and device credentials issued by the app's own CA.
 *
 * `enrollDevice` is the one place that turns "a device IT registered" into "a device with a certificate": today it
 * registers the device over the API, marks it enrolled and has the CA issue a certificate for a CSR made from an
 * openssl key (the TPM enrollment route is being finished elsewhere); switching the tests to the real agent
 * (`devicegate-agent enroll` against swtpm) is a change of this function only.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import request from 'supertest';
import type { DeviceStatus, Platform } from '../../../src/domain/types';
import { ManualClock } from '../../../src/lib/clock';
import { buildTestApp, type TestApp } from '../../helpers/build-app';
import type { TestCert } from '../../helpers/test-pki';
import { bearer } from '../../helpers/tokens';

/** Wall-clock time for a gateway that concentrators, OCSP clients and certificates all see as "now". */
class WallClock extends ManualClock {
  override nowMs(): number {
    return Date.now();
  }
}

/** One `vpn.decision` entry of the audit log. */
export interface AuditedDecision {
  readonly seq: number;
  readonly decisionId: string;
  readonly decision: string;
  readonly reason: string;
  readonly deviceId: string | null;
  readonly event: string;
  readonly concentrator: { id: string; kind: string; hook?: string };
  readonly cert?: { sha256?: string; serialHex?: string; cn?: string };
  readonly session?: Record<string, unknown>;
}

/** A running devicegate. */
export interface LiveGateway {
  readonly app: TestApp;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** The plain concentrator API token (`dg_…`), for adapter configs. */
  readonly concentratorToken: string;
  /** `Bearer …` of an it-admin token. */
  readonly adminAuth: string;
  /** Issuing CA + root of devicegate's device CA (PEM file), what concentrators trust for client certificates. */
  readonly chainPath: string;
  readonly chainPem: string;
  /** Subject of the issuing CA (node:crypto form). */
  readonly issuingSubject: string;
  /** A registered, enrolled (active) device with a certificate from devicegate's CA. */
  enrollDevice(name: string, opts?: { platform?: Platform }): Promise<TestCert>;
  /** A certificate from devicegate's CA for a device id that is not in the inventory. */
  issueForUnknownDevice(name: string): Promise<TestCert>;
  /** IT changes a device's status through `POST /v1/devices/{id}/status`. */
  setStatus(deviceId: string, status: DeviceStatus, reason?: string): Promise<void>;
  /** IT revokes one certificate through `POST /v1/certificates/{serial}/revoke`. */
  revokeCertificate(cert: TestCert): Promise<void>;
  /** `vpn.decision` entries, newest first. */
  decisions(filter?: { deviceId?: string; reason?: string }): Promise<AuditedDecision[]>;
  /** `vpn.session_end` entries of a device, newest first. */
  sessionEnds(deviceId: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

/** Starts devicegate on 127.0.0.1 with a fresh data directory and dev CA. `env` adds config (e.g. policy). */
export async function startLiveGateway(workDir: string, options: { env?: Record<string, string> } = {}): Promise<LiveGateway> {
  mkdirSync(workDir, { recursive: true });
  const app = await buildTestApp({ clock: new WallClock(), env: options.env ?? {} });
  const server = http.createServer(app.app);
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const concentratorToken = (await bearer(app.services, 'concentrator', 'concentrator-e2e')).replace(/^Bearer /, '');
  const adminAuth = await bearer(app.services, 'it-admin', 'it-e2e');
  const chainPem = app.services.pki.ca.chainPem;
  const chainPath = path.join(workDir, 'devicegate-device-ca-chain.pem');
  writeFileSync(chainPath, chainPem);
  const certDir = path.join(workDir, 'device-certs');
  mkdirSync(certDir, { recursive: true });

  const credential = async (name: string, deviceId: string): Promise<TestCert> => {
    const keyPath = path.join(certDir, `${name}.key`);
    const csrPath = path.join(certDir, `${name}.csr`);
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyPath], { stdio: 'pipe' });
    execFileSync('openssl', ['req', '-new', '-key', keyPath, '-subj', `/CN=${name}`, '-out', csrPath], { stdio: 'pipe' });
    const issued = await app.services.pki.issue({ deviceId, csr: readFileSync(csrPath, 'utf8'), via: 'manual' });
    const certPath = path.join(certDir, `${name}.crt`);
    writeFileSync(certPath, issued.pem);
    const x = new X509Certificate(issued.pem);
    return {
      name,
      certPath,
      keyPath,
      pem: issued.pem,
      sha256: createHash('sha256').update(x.raw).digest('hex'),
      serialDerHex: issued.serialHex,
      notBefore: issued.notBefore,
      notAfter: issued.notAfter,
      subject: x.subject,
      issuer: x.issuer,
      deviceId,
    };
  };

  const gw: LiveGateway = {
    app,
    url,
    port,
    concentratorToken,
    adminAuth,
    chainPath,
    chainPem,
    issuingSubject: new X509Certificate(app.services.pki.ca.issuingCertPem).subject,
    async enrollDevice(name, opts = {}) {
      const reg = await request(app.app)
        .post('/v1/devices')
        .set('Authorization', adminAuth)
        .send({ serial_number: `E2E-${name}-${Math.random().toString(36).slice(2, 8)}`, platform: opts.platform ?? 'linux', owner: 'erika.muster' });
      if (reg.status !== 201) throw new Error(`register ${name}: ${reg.status} ${JSON.stringify(reg.body)}`);
      const id = reg.body.id as string;
      // Enrollment marks the device active and records its attestation key (see the file comment).
      await app.store.devices.update(id, { status: 'active', attestationKey: 'e2e-enrollment', updatedAt: Date.now() });
      return credential(name, id);
    },
    async issueForUnknownDevice(name) {
      return credential(name, randomUUID());
    },
    async setStatus(deviceId, status, reason) {
      const res = await request(app.app).post(`/v1/devices/${deviceId}/status`).set('Authorization', adminAuth).send({ status, ...(reason ? { reason } : {}) });
      if (res.status !== 200) throw new Error(`status ${status}: ${res.status} ${JSON.stringify(res.body)}`);
    },
    async revokeCertificate(cert) {
      const res = await request(app.app).post(`/v1/certificates/${cert.serialDerHex}/revoke`).set('Authorization', adminAuth).send({ reason: 'keyCompromise' });
      if (res.status !== 200) throw new Error(`revoke: ${res.status} ${JSON.stringify(res.body)}`);
    },
    async decisions(filter = {}) {
      const page = await app.store.audit.query({ type: 'vpn.decision', ...filter }, { limit: 1000 });
      return page.items.map((e) => {
        const data = (JSON.parse(e.body) as { data: Omit<AuditedDecision, 'seq'> }).data;
        return { seq: e.seq, ...data };
      });
    },
    async sessionEnds(deviceId) {
      const page = await app.store.audit.query({ type: 'vpn.session_end', deviceId }, { limit: 100 });
      return page.items.map((e) => (JSON.parse(e.body) as { data: Record<string, unknown> }).data);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await app.cleanup();
    },
  };
  return gw;
}

/** Polls `check` every 25 ms until it holds or `timeoutMs` passes; returns the last result. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return check();
}
