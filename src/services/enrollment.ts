import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import {
  parseTrustAnchors,
  verifyCertifiedCsr,
  verifyEnrollmentFinish,
  verifyEnrollmentStart,
  type StartRandomness,
  type TpmVerifierPolicy,
} from '../attestation';
import type { Config } from '../config/schema';
import { AppError, badRequest, forbidden, isAppError } from '../domain/errors';
import type { Device } from '../domain/types';
import type { Clock } from '../lib/clock';
import { isUuid } from '../lib/ids';
import {
  finishRequestSchema,
  fromB64,
  renewFinishRequestSchema,
  renewStartRequestSchema,
  startRequestSchema,
  toB64,
  type CertificateResponse,
  type RenewStartResponse,
  type StartResponse,
} from '../enrollment/protocol';
import type { Metrics } from '../metrics/registry';
import { isConflict, isNotFound } from '../store/errors';
import type { Store } from '../store/types';
import type { PkiService } from './pki';
import { hashEnrollmentToken, type AuditRecorder } from './registry';

/** The network peer of a request, for the audit trail. */
export interface Peer {
  readonly ip: string | null;
}

type FailStep = 'token' | 'nonce' | 'attestation' | 'registry' | 'policy' | 'csr' | 'issue';

/** Server-side state between `start` and `finish`, kept single-use in the nonce store. */
interface PendingEnrollment {
  deviceId: string;
  tokenHash: string;
  secret: string;
  nonce: string;
  akPublic: string;
  ekPublicSha256: string;
}

interface PendingRenewal {
  deviceId: string;
  nonce: string;
  akPublic: string;
}

/** Renewal starts per device per minute; a nonce is worthless without the TPM, but nobody needs more. */
const RENEW_STARTS_PER_MINUTE = 10;

/** Builds the verifier policy from configuration (reads the trust-anchor bundles once). */
export function tpmPolicyFromConfig(config: Config): TpmVerifierPolicy {
  const t = config.tpm;
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (cause) {
      throw new AppError('internal', 'TPM_ROOTS_UNREADABLE', `${what} cannot be read: ${file}`, { cause });
    }
  };
  return {
    roots: t.trustedRootsFile ? parseTrustAnchors(read(t.trustedRootsFile, 'tpm.trustedRootsFile')) : [],
    ...(t.trustedIntermediatesFile
      ? { intermediates: parseTrustAnchors(read(t.trustedIntermediatesFile, 'tpm.trustedIntermediatesFile')) }
      : {}),
    allowEkPublicOnly: t.allowEkPublicOnly,
    akAlgorithms: t.akAlgorithms,
    deviceKeyAlgorithms: t.deviceKeyAlgorithms,
    allowSha1: t.allowSha1Signatures,
  };
}

function parse<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  const r = schema.safeParse(body);
  if (!r.success) {
    throw badRequest('INVALID_ENROLLMENT_REQUEST', 'The enrollment request is malformed.', {
      details: { problems: r.error.issues.slice(0, 20).map((i) => `${i.path.join('.') || 'body'}: ${i.message}`) },
    });
  }
  return r.data;
}

/**
 * TPM-attested enrollment and renewal (attestation.md §3.1 B): a registered device proves with its TPM that it is the
 * hardware in the inventory (EK certificate chain + EK hash), that its AK lives in the same TPM (credential
 * activation) and that the device key cannot leave the chip (TPM2_Certify with our nonce). Only then the CA issues.
 * Every step and every failure is audited; every failure is a 4xx with a code and issues nothing.
 */
export class EnrollmentService {
  constructor(
    private readonly deps: {
      readonly store: Store;
      readonly clock: Clock;
      readonly audit: AuditRecorder;
      readonly pki: PkiService;
      readonly metrics: Metrics;
      readonly policy: TpmVerifierPolicy;
      readonly challengeTtlMs: number;
      readonly renewalNonceTtlMs: number;
      readonly renewalEnabled: boolean;
      /** Benchmarks inject pre-agreed secrets and nonces here; production never sets it. */
      readonly randomness?: StartRandomness | undefined;
    },
  ) {}

  private async fail(step: FailStep, deviceId: string | null, peer: Peer, e: unknown): Promise<never> {
    const code = isAppError(e) ? e.code : 'INTERNAL';
    this.deps.metrics.enrollments.inc({ step, outcome: code });
    await this.deps.audit
      .append({
        type: 'device.enroll.fail',
        data: { deviceId, step, reason: /^[A-Z][A-Z0-9_]{0,63}$/.test(code) ? code : 'INTERNAL', peer: peer.ip ? { ip: peer.ip } : null },
      })
      .catch(() => undefined);
    throw e;
  }

  private async enrollableDevice(deviceId: string): Promise<Device> {
    let device: Device;
    try {
      device = await this.deps.store.devices.get(deviceId);
    } catch (e) {
      if (isNotFound(e)) throw forbidden('DEVICE_NOT_REGISTERED', 'This device is not in the inventory.');
      throw e;
    }
    if (device.status !== 'registered' && device.status !== 'active') {
      throw forbidden('DEVICE_NOT_ENROLLABLE', `A ${device.status} device cannot enroll.`);
    }
    return device;
  }

  /** `POST /v1/enrollment/tpm/start`. */
  async start(body: unknown, peer: Peer): Promise<StartResponse> {
    const req = parse(startRequestSchema, body);
    const now = this.deps.clock.nowMs();
    const tokenHash = hashEnrollmentToken(req.token);
    // 1. The one-time token must exist, be unspent and unexpired, and belong to this device.
    try {
      const token = await this.deps.store.enrollmentTokens.get(tokenHash);
      if (!token) throw forbidden('TOKEN_UNKNOWN', 'The enrollment token is not valid.');
      if (token.deviceId !== req.deviceId) throw forbidden('TOKEN_WRONG_DEVICE', 'The enrollment token belongs to another device.');
      if (token.spentAt !== null) throw forbidden('TOKEN_SPENT', 'The enrollment token was already used.');
      if (token.expiresAt <= now) throw forbidden('TOKEN_EXPIRED', 'The enrollment token has expired; ask IT for a new one.');
    } catch (e) {
      return this.fail('token', isUuid(req.deviceId) ? req.deviceId : null, peer, e);
    }
    let device: Device;
    try {
      device = await this.enrollableDevice(req.deviceId);
    } catch (e) {
      return this.fail('registry', req.deviceId, peer, e);
    }
    // 2. EK chains to a trusted manufacturer (or EK-public-only where allowed); AK is a restricted signing key.
    let started;
    try {
      started = verifyEnrollmentStart(
        {
          ekCertificate: req.ekCertificate ? fromB64(req.ekCertificate) : undefined,
          ekPublic: req.ekPublic ? fromB64(req.ekPublic) : undefined,
          akPublic: fromB64(req.akPublic),
        },
        this.deps.policy,
        now,
        this.deps.randomness,
      );
    } catch (e) {
      return this.fail('attestation', device.id, peer, e);
    }
    // 3. The EK is the one IT registered for this device: a private machine with a genuine TPM stops here.
    try {
      if (!device.tpm) throw forbidden('DEVICE_HAS_NO_EK', 'IT has not registered an endorsement key for this device.');
      if (device.tpm.ekPublicSha256 !== started.ek.ekPublicSha256) {
        throw forbidden('EK_NOT_REGISTERED', "This TPM's endorsement key is not the one registered for the device.");
      }
    } catch (e) {
      return this.fail('registry', device.id, peer, e);
    }
    const enrollmentId = randomBytes(24).toString('base64url');
    const pending: PendingEnrollment = {
      deviceId: device.id,
      tokenHash,
      secret: toB64(started.challenge.secret),
      nonce: toB64(started.nonce),
      akPublic: toB64(started.ak.parsed.raw),
      ekPublicSha256: started.ek.ekPublicSha256,
    };
    const expiresAt = now + this.deps.challengeTtlMs;
    // Independent durable writes go out together so they share one group commit.
    await Promise.all([
      this.deps.store.nonces.put(`enroll:${enrollmentId}`, JSON.stringify(pending), this.deps.challengeTtlMs, now),
      this.deps.audit.append({
        type: 'device.enroll.start',
        data: { deviceId: device.id, peer: peer.ip ? { ip: peer.ip } : null, platform: device.platform },
      }),
    ]);
    this.deps.metrics.enrollments.inc({ step: 'start', outcome: 'ok' });
    return {
      enrollmentId,
      credentialBlob: toB64(started.challenge.credentialBlob),
      encryptedSecret: toB64(started.challenge.encryptedSecret),
      akName: toB64(started.ak.name),
      nonce: toB64(started.nonce),
      expiresAt: new Date(expiresAt).toISOString(),
    };
  }

  /** `POST /v1/enrollment/tpm/finish`. */
  async finish(body: unknown, peer: Peer): Promise<CertificateResponse> {
    const req = parse(finishRequestSchema, body);
    const now = this.deps.clock.nowMs();
    // Consumed before anything is verified: a failed finish cannot be retried with the same nonce.
    const raw = await this.deps.store.nonces.consume(`enroll:${req.enrollmentId}`, now);
    if (!raw) {
      return this.fail('nonce', null, peer, forbidden('ENROLLMENT_UNKNOWN', 'Unknown, expired or already used enrollment; start again.'));
    }
    const pending = JSON.parse(raw) as PendingEnrollment;
    let verified;
    try {
      verified = verifyEnrollmentFinish(
        {
          activatedSecret: fromB64(req.activatedSecret),
          expectedSecret: fromB64(pending.secret),
          csr: req.csr,
          certifyInfo: fromB64(req.certifyInfo),
          certifySignature: fromB64(req.certifySignature),
          keyPublic: fromB64(req.keyPublic),
          akPublic: fromB64(pending.akPublic),
          nonce: fromB64(pending.nonce),
        },
        this.deps.policy,
      );
    } catch (e) {
      return this.fail('attestation', pending.deviceId, peer, e);
    }
    // The device may have been suspended or re-keyed in the inventory since `start`.
    let device: Device;
    try {
      device = await this.enrollableDevice(pending.deviceId);
      if (device.tpm?.ekPublicSha256 !== pending.ekPublicSha256) {
        throw forbidden('EK_NOT_REGISTERED', "This TPM's endorsement key is no longer the one registered for the device.");
      }
    } catch (e) {
      return this.fail('registry', pending.deviceId, peer, e);
    }
    // Spend the token: exactly one finish per token wins, also across gateway instances.
    try {
      await this.deps.store.enrollmentTokens.spend(pending.tokenHash, device.id, now);
    } catch (e) {
      const err = isConflict(e) || isNotFound(e) ? forbidden('TOKEN_SPENT', 'The enrollment token was used meanwhile or has expired.', { cause: e }) : e;
      return this.fail('token', device.id, peer, err);
    }
    let issued;
    try {
      issued = await this.deps.pki.issue({ deviceId: device.id, spki: verified.key.keySpki, via: 'enroll' });
    } catch (e) {
      return this.fail('issue', device.id, peer, e);
    }
    await this.deps.store.devices.update(device.id, { status: 'active', statusReason: null, attestationKey: pending.akPublic, updatedAt: now });
    await Promise.all([
      this.deps.audit.append({
        type: 'device.enroll.attest',
        data: { deviceId: device.id, format: 'tpm', ekPublicSha256: pending.ekPublicSha256 },
      }),
      this.deps.audit.append({ type: 'device.enroll.complete', data: { deviceId: device.id, certSerialHex: issued.serialHex } }),
    ]);
    this.deps.metrics.enrollments.inc({ step: 'finish', outcome: 'ok' });
    return {
      deviceId: device.id,
      certificate: issued.pem,
      chain: this.deps.pki.ca.chainPem,
      notAfter: new Date(issued.notAfter).toISOString(),
    };
  }

  private async renewableDevice(deviceId: string): Promise<Device & { attestationKey: string }> {
    if (!this.deps.renewalEnabled) throw forbidden('RENEWAL_DISABLED', 'Renewal is disabled on this gateway; enroll again.');
    let device: Device;
    try {
      device = await this.deps.store.devices.get(deviceId);
    } catch (e) {
      if (isNotFound(e)) throw forbidden('DEVICE_NOT_REGISTERED', 'This device is not in the inventory.');
      throw e;
    }
    if (device.status !== 'active') {
      throw forbidden(`DEVICE_${device.status.toUpperCase()}`, `A ${device.status} device cannot renew its certificate.`);
    }
    if (!device.attestationKey) throw forbidden('DEVICE_NOT_ENROLLED', 'This device has not completed TPM enrollment.');
    return device as Device & { attestationKey: string };
  }

  /** `POST /v1/enrollment/tpm/renew/start`: a fresh nonce for an active device (no token: the TPM is the credential). */
  async renewStart(body: unknown, peer: Peer): Promise<RenewStartResponse> {
    const req = parse(renewStartRequestSchema, body);
    const now = this.deps.clock.nowMs();
    let device;
    try {
      device = await this.renewableDevice(req.deviceId);
      const hits = await this.deps.store.rateLimits.hit(`renew:${device.id}`, 60_000, now);
      if (hits > RENEW_STARTS_PER_MINUTE) throw new AppError('rate_limited', 'RATE_LIMITED', 'Too many renewal attempts; wait a minute.');
    } catch (e) {
      return this.fail('policy', req.deviceId, peer, e);
    }
    const renewalId = randomBytes(24).toString('base64url');
    const nonce = randomBytes(32);
    const pending: PendingRenewal = { deviceId: device.id, nonce: toB64(nonce), akPublic: device.attestationKey };
    await this.deps.store.nonces.put(`renew:${renewalId}`, JSON.stringify(pending), this.deps.renewalNonceTtlMs, now);
    // Only the newest renewal of a device counts: older nonces are dead even before they expire.
    await this.deps.store.nonces.put(`renew-latest:${device.id}`, renewalId, this.deps.renewalNonceTtlMs, now, { overwrite: true });
    return { renewalId, nonce: toB64(nonce), expiresAt: new Date(now + this.deps.renewalNonceTtlMs).toISOString() };
  }

  /** `POST /v1/enrollment/tpm/renew/finish`: a new certificate after a Certify by the AK recorded at enrollment. */
  async renewFinish(body: unknown, peer: Peer): Promise<CertificateResponse> {
    const req = parse(renewFinishRequestSchema, body);
    const now = this.deps.clock.nowMs();
    const raw = await this.deps.store.nonces.consume(`renew:${req.renewalId}`, now);
    if (!raw) return this.fail('nonce', null, peer, forbidden('RENEWAL_UNKNOWN', 'Unknown, expired or already used renewal; start again.'));
    const pending = JSON.parse(raw) as PendingRenewal;
    let device;
    try {
      device = await this.renewableDevice(pending.deviceId);
      if ((await this.deps.store.nonces.get(`renew-latest:${device.id}`, now)) !== req.renewalId) {
        throw forbidden('RENEWAL_SUPERSEDED', 'A newer renewal was started for this device; use that one.');
      }
      // A device re-enrolled (new AK) since this renewal started must prove with the new AK.
      if (device.attestationKey !== pending.akPublic) throw forbidden('AK_CHANGED', 'The device was re-enrolled; start the renewal again.');
    } catch (e) {
      return this.fail('policy', pending.deviceId, peer, e);
    }
    let verified;
    try {
      verified = verifyCertifiedCsr(
        {
          csr: req.csr,
          certifyInfo: fromB64(req.certifyInfo),
          certifySignature: fromB64(req.certifySignature),
          keyPublic: fromB64(req.keyPublic),
          akPublic: fromB64(device.attestationKey),
          nonce: fromB64(pending.nonce),
        },
        this.deps.policy,
      );
    } catch (e) {
      return this.fail('attestation', device.id, peer, e);
    }
    const previous = (await this.deps.store.certificates.listByDevice(device.id))[0];
    let issued;
    try {
      issued = await this.deps.pki.issue({ deviceId: device.id, spki: verified.key.keySpki, via: 'renew' });
    } catch (e) {
      return this.fail('issue', device.id, peer, e);
    }
    if (previous) {
      await this.deps.audit.append({
        type: 'cert.renew',
        data: {
          deviceId: device.id,
          serialHex: issued.serialHex,
          previousSerialHex: previous.serialHex,
          sha256: issued.sha256,
          notAfter: new Date(issued.notAfter).toISOString(),
        },
      });
    }
    this.deps.metrics.enrollments.inc({ step: 'renew', outcome: 'ok' });
    return { deviceId: device.id, certificate: issued.pem, chain: this.deps.pki.ca.chainPem, notAfter: new Date(issued.notAfter).toISOString() };
  }
}
