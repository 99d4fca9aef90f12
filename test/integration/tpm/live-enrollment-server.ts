/**
 * The real devicegate (app, SQLite store, dev CA, audit log) listening on 127.0.0.1 for agent tests: the agent
 * enrolls against exactly what production runs. Registration and status changes go through the real inventory API.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import type { DeviceStatus } from '../../../src/domain/types';
import { buildTestApp, type TestApp } from '../../helpers/build-app';
import { bearer } from '../../helpers/tokens';

export interface LiveEnrollmentServer {
  readonly url: string;
  readonly app: TestApp;
  /** The device CA chain (issuing CA + root) the certificates chain to. */
  readonly chainPem: string;
  readonly issuingCaPem: string;
  /** Registers a device with this EK hash and returns its id and a fresh one-time enrollment token. */
  register(ekPublicSha256: string): Promise<{ deviceId: string; token: string }>;
  /** A fresh one-time enrollment token for a registered device. */
  token(deviceId: string): Promise<string>;
  setStatus(deviceId: string, status: DeviceStatus): Promise<void>;
  close(): Promise<void>;
}

export async function startLiveEnrollmentServer(opts: { trustedRootsPem: string; env?: Record<string, string> }): Promise<LiveEnrollmentServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-live-enroll-'));
  const rootsFile = path.join(dir, 'tpm-roots.pem');
  writeFileSync(rootsFile, opts.trustedRootsPem);
  const app = await buildTestApp({ env: { DEVICEGATE_TPM__TRUSTED_ROOTS_FILE: rootsFile, ...(opts.env ?? {}) } });
  // The EK certificates were issued moments ago: keep the gateway clock a little ahead of their notBefore.
  app.clock.set(Date.now() + 2000);
  const admin = await bearer(app.services, 'it-admin');
  const server = http.createServer(app.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let n = 0;
  const token = async (deviceId: string): Promise<string> => {
    const tok = await request(app.app).post(`/v1/devices/${deviceId}/enrollment-tokens`).set('Authorization', admin).send({});
    if (tok.status !== 201) throw new Error(`token: ${tok.status} ${JSON.stringify(tok.body)}`);
    return tok.body.token as string;
  };
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    app,
    chainPem: app.services.pki.ca.chainPem,
    issuingCaPem: app.services.pki.ca.issuingCertPem,
    async register(ekPublicSha256) {
      const reg = await request(app.app)
        .post('/v1/devices')
        .set('Authorization', admin)
        .send({ serial_number: `AGENT-${++n}-${Date.now()}`, platform: 'linux', ek_public_sha256: ekPublicSha256 });
      if (reg.status !== 201) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.body)}`);
      return { deviceId: reg.body.id as string, token: await token(reg.body.id as string) };
    },
    token,
    async setStatus(deviceId, status) {
      const r = await request(app.app).post(`/v1/devices/${deviceId}/status`).set('Authorization', admin).send({ status });
      if (r.status !== 200) throw new Error(`status: ${r.status} ${JSON.stringify(r.body)}`);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await app.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
