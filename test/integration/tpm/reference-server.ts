/**
 * A minimal enrollment server for tests: the wire protocol of src/enrollment/protocol.ts implemented with the
 * pure verifiers of src/attestation and a throwaway CA. It is NOT the gateway (the lead's service adds the store,
 * audit and policy); it exists so the agent can be exercised end to end over real HTTP against real verifiers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes, randomUUID, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { AppError, badRequest, forbidden, notFound } from '../../../src/domain/errors';
import { constantTimeEqual } from '../../../src/lib/constant-time';
import { parseTrustAnchors, verifyCertifiedCsr, verifyEnrollmentFinish, verifyEnrollmentStart, type TrustAnchor } from '../../../src/attestation';
import {
  ENROLLMENT_PATHS,
  finishRequestSchema,
  fromB64,
  renewFinishRequestSchema,
  renewStartRequestSchema,
  startRequestSchema,
  toB64,
} from '../../../src/enrollment/protocol';

interface DeviceRecord {
  ekPublicSha256: string;
  tokens: Set<string>;
  status: 'registered' | 'active' | 'suspended';
  akPublic: Buffer | null;
}

export interface ReferenceServer {
  readonly url: string;
  readonly caCertPem: string;
  register(deviceId: string, ekPublicSha256: string, token: string): void;
  setStatus(deviceId: string, status: DeviceRecord['status']): void;
  close(): Promise<void>;
}

const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export async function startReferenceServer(opts: { trustedRootsPem: string; nowMs?: () => number }): Promise<ReferenceServer> {
  const roots: TrustAnchor[] = parseTrustAnchors(opts.trustedRootsPem);
  const now = opts.nowMs ?? Date.now;
  const caKeys = (await webcrypto.subtle.generateKey(ecdsa, false, ['sign', 'verify']));
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=devicegate test device CA',
    notBefore: new Date(now() - 60_000),
    notAfter: new Date(now() + 86_400_000),
    keys: caKeys,
    signingAlgorithm: ecdsa,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true)],
  });
  const devices = new Map<string, DeviceRecord>();
  const enrollments = new Map<string, { deviceId: string; secret: Buffer; nonce: Buffer; akPublic: Buffer; expiresAt: number }>();
  const renewals = new Map<string, { deviceId: string; nonce: Buffer; expiresAt: number }>();
  const policy = { roots, allowEkPublicOnly: false };

  const issue = async (deviceId: string, spki: Buffer) => {
    const publicKey = await webcrypto.subtle.importKey('spki', spki, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']);
    const notAfter = new Date(now() + 3600_000);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomBytes(8).toString('hex'),
      subject: `CN=${deviceId}`,
      issuer: caCert.subject,
      notBefore: new Date(now() - 60_000),
      notAfter,
      publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: ecdsa,
    });
    return { deviceId, certificate: cert.toString('pem') + '\n', chain: caCert.toString('pem') + '\n', notAfter: notAfter.toISOString() };
  };

  const handlers: Record<string, (body: unknown) => Promise<unknown>> = {
    [ENROLLMENT_PATHS.start]: async (body) => {
      const req = parse(startRequestSchema, body);
      const dev = devices.get(req.deviceId);
      if (!dev || dev.status !== 'registered') throw notFound('DEVICE_NOT_FOUND', 'No such device awaiting enrollment');
      if (![...dev.tokens].some((t) => constantTimeEqual(t, req.token))) throw forbidden('TOKEN_INVALID', 'Token not valid for this device');
      const res = verifyEnrollmentStart(
        { ekCertificate: req.ekCertificate ? fromB64(req.ekCertificate) : undefined, ekPublic: req.ekPublic ? fromB64(req.ekPublic) : undefined, akPublic: fromB64(req.akPublic) },
        policy,
        now(),
      );
      if (res.ek.ekPublicSha256 !== dev.ekPublicSha256) throw forbidden('EK_NOT_REGISTERED', 'This TPM is not the one registered for the device');
      dev.tokens.delete(req.token);
      const enrollmentId = randomUUID();
      const expiresAt = now() + 300_000;
      enrollments.set(enrollmentId, { deviceId: req.deviceId, secret: res.challenge.secret, nonce: res.nonce, akPublic: res.ak.parsed.raw, expiresAt });
      return {
        enrollmentId,
        credentialBlob: toB64(res.challenge.credentialBlob),
        encryptedSecret: toB64(res.challenge.encryptedSecret),
        akName: toB64(res.ak.name),
        nonce: toB64(res.nonce),
        expiresAt: new Date(expiresAt).toISOString(),
      };
    },
    [ENROLLMENT_PATHS.finish]: async (body) => {
      const req = parse(finishRequestSchema, body);
      const e = enrollments.get(req.enrollmentId);
      enrollments.delete(req.enrollmentId); // single use, success or not
      if (!e || e.expiresAt < now()) throw forbidden('ENROLLMENT_UNKNOWN', 'Unknown or expired enrollment');
      const r = verifyEnrollmentFinish(
        {
          activatedSecret: fromB64(req.activatedSecret),
          expectedSecret: e.secret,
          csr: req.csr,
          certifyInfo: fromB64(req.certifyInfo),
          certifySignature: fromB64(req.certifySignature),
          keyPublic: fromB64(req.keyPublic),
          akPublic: e.akPublic,
          nonce: e.nonce,
        },
        {},
      );
      const dev = devices.get(e.deviceId)!;
      dev.status = 'active';
      dev.akPublic = e.akPublic;
      return issue(e.deviceId, r.key.keySpki);
    },
    [ENROLLMENT_PATHS.renewStart]: async (body) => {
      const req = parse(renewStartRequestSchema, body);
      const dev = devices.get(req.deviceId);
      if (!dev || dev.status !== 'active' || !dev.akPublic) throw forbidden('DEVICE_NOT_ACTIVE', 'Device cannot renew');
      const renewalId = randomUUID();
      const nonce = randomBytes(32);
      const expiresAt = now() + 300_000;
      renewals.set(renewalId, { deviceId: req.deviceId, nonce, expiresAt });
      return { renewalId, nonce: toB64(nonce), expiresAt: new Date(expiresAt).toISOString() };
    },
    [ENROLLMENT_PATHS.renewFinish]: async (body) => {
      const req = parse(renewFinishRequestSchema, body);
      const r = renewals.get(req.renewalId);
      renewals.delete(req.renewalId);
      if (!r || r.expiresAt < now()) throw forbidden('RENEWAL_UNKNOWN', 'Unknown or expired renewal');
      const dev = devices.get(r.deviceId)!;
      if (dev.status !== 'active' || !dev.akPublic) throw forbidden('DEVICE_NOT_ACTIVE', 'Device cannot renew');
      const v = verifyCertifiedCsr(
        { csr: req.csr, certifyInfo: fromB64(req.certifyInfo), certifySignature: fromB64(req.certifySignature), keyPublic: fromB64(req.keyPublic), akPublic: dev.akPublic, nonce: r.nonce },
        {},
      );
      return issue(r.deviceId, v.key.keySpki);
    },
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, obj: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(obj));
      };
      const h = req.method === 'POST' ? handlers[req.url ?? ''] : undefined;
      if (!h) return send(404, { error: { code: 'NOT_FOUND', message: 'no route' } });
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return send(400, { error: { code: 'INVALID_JSON', message: 'body is not JSON' } });
      }
      h(body).then(
        (out) => send(200, out),
        (e: unknown) =>
          e instanceof AppError
            ? send(e.status, { error: { code: e.code, message: e.message } })
            : send(500, { error: { code: 'INTERNAL', message: 'internal error' } }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    caCertPem: caCert.toString('pem'),
    register: (deviceId, ekPublicSha256, token) => {
      const d = devices.get(deviceId) ?? { ekPublicSha256, tokens: new Set<string>(), status: 'registered' as const, akPublic: null };
      d.tokens.add(token);
      devices.set(deviceId, d);
    },
    setStatus: (deviceId, status) => {
      devices.get(deviceId)!.status = status;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) throw badRequest('VALIDATION_FAILED', 'Request does not match the schema');
  return r.data;
}
