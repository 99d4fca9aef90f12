import type { Principal } from '../auth/permissions';
import type { BuiltCrl, CertificateAuthority, CrlEntry } from '../ca';
import { decodeOcspGetPath, OCSP_MALFORMED_REQUEST, type OcspResponder, type OcspResult } from '../ca/ocsp';
import type { CaConfig } from '../config/sections/ca';
import { badRequest, conflict, notFound } from '../domain/errors';
import { REVOCATION_REASONS, type CertificateRecord, type RevocationReason } from '../domain/types';
import type { Clock } from '../lib/clock';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../metrics/registry';
import { isAlreadyExists } from '../store/errors';
import type { Store } from '../store/types';
import { auditActor } from './actors';
import type { AuditRecorder, DeviceCertificateRevoker } from './registry';

/** Topic announcing revoked certificates (`{cert_sha256, serial_hex, device_id}`), for caches and live sessions. */
export const CERT_REVOKED_TOPIC = 'cert-revoked';

const SERIAL_RE = /^[0-9a-f]{2,64}$/;

/** Accepts decimal-free serial spellings IT pastes: hex with or without colons, any case. */
export function normaliseSerialHex(input: string): string {
  const hex = input.trim().toLowerCase().replace(/[:\s]/g, '').replace(/^0x/, '');
  if (!SERIAL_RE.test(hex) || hex.length % 2 !== 0) throw badRequest('INVALID_SERIAL', 'A serial is an even number of hex digits.');
  return hex;
}

export function parseRevocationReason(input: unknown): RevocationReason {
  const r = input ?? 'unspecified';
  if (typeof r !== 'string' || !(REVOCATION_REASONS as readonly string[]).includes(r) || r === 'removeFromCRL') {
    throw badRequest('INVALID_REASON', `reason must be one of ${REVOCATION_REASONS.filter((x) => x !== 'removeFromCRL').join(', ')}.`);
  }
  return r as RevocationReason;
}

/**
 * The CA as a service: issues and records device certificates, revokes them (state in the store, events to every
 * instance, audit), and serves the CRL and OCSP answers built from the store's revocation state.
 */
export class PkiService implements DeviceCertificateRevoker {
  private crlCache: { crl: BuiltCrl; generation: number } | null = null;
  private crlBuilding: Promise<BuiltCrl> | null = null;
  private readonly ocsp: OcspResponder;

  constructor(
    readonly ca: CertificateAuthority,
    private readonly deps: {
      readonly store: Store;
      readonly clock: Clock;
      readonly audit: AuditRecorder;
      readonly metrics: Metrics;
      readonly logger: Logger;
      readonly config: CaConfig;
    },
  ) {
    this.ocsp = ca.createOcspResponder({
      lookup: async (serialHex) => {
        const [cert, revocation] = await Promise.all([
          deps.store.certificates.getBySerial(serialHex),
          deps.store.revocations.get(serialHex),
        ]);
        if (revocation) return { status: 'revoked', revokedAtMs: revocation.revokedAt, reason: revocation.reason };
        // Only serials we issued are "good"; anything else is "unknown" (RFC 6960 §2.2), never good by default.
        return cert ? { status: 'good' } : { status: 'unknown' };
      },
      onError: (err) => deps.logger.error({ err }, 'OCSP responder failure'),
    });
  }

  /** Issues a certificate for a device, stores its record and audits it. The caller has authorised the device. */
  async issue(input: {
    deviceId: string;
    csr?: Buffer | string | undefined;
    spki?: Buffer | undefined;
    via: 'enroll' | 'renew' | 'manual';
    actor?: Principal | undefined;
    validitySeconds?: number | undefined;
  }): Promise<CertificateRecord & { der: Buffer }> {
    const issued = await this.ca.issue({
      ...(input.csr !== undefined ? { csr: input.csr } : {}),
      ...(input.spki !== undefined ? { spki: input.spki } : {}),
      deviceId: input.deviceId,
      nowMs: this.deps.clock.nowMs(),
      ...(input.validitySeconds !== undefined ? { validitySeconds: input.validitySeconds } : {}),
      issuedVia: input.via,
    });
    const { der, keyKind: _keyKind, ...record } = issued;
    // The record and its audit entry are independent writes; together they share one group commit. The audit
    // entry is true even if storing the record failed: the CA has signed the certificate either way.
    await Promise.all([
      this.deps.store.certificates.put(record),
      this.deps.audit.append({
      type: 'cert.issue',
      ...(input.actor ? { actor: auditActor(input.actor) } : {}),
      data: {
        deviceId: record.deviceId,
        serialHex: record.serialHex,
        sha256: record.sha256,
        notBefore: new Date(record.notBefore).toISOString(),
        notAfter: new Date(record.notAfter).toISOString(),
          via: input.via,
        },
      }),
    ]);
    this.deps.metrics.certificatesIssued.inc({ via: input.via });
    return { ...record, der };
  }

  /** Revokes one certificate; AlreadyExists-style repeats are answered with 409 CERT_ALREADY_REVOKED. */
  async revokeSerial(serialInput: string, reason: RevocationReason, actor: Principal): Promise<CertificateRecord> {
    const serialHex = normaliseSerialHex(serialInput);
    const cert = await this.deps.store.certificates.getBySerial(serialHex);
    if (!cert) throw notFound('CERT_NOT_FOUND', 'No certificate with this serial was issued by this CA.');
    try {
      await this.revokeRecord(cert, reason, actor);
    } catch (e) {
      if (isAlreadyExists(e)) throw conflict('CERT_ALREADY_REVOKED', 'This certificate is already revoked.', { cause: e });
      throw e;
    }
    return cert;
  }

  /** Revokes every not-yet-revoked certificate of a device; returns how many were revoked now. */
  async revokeDevice(deviceId: string, reason: RevocationReason, actor: Principal): Promise<number> {
    let n = 0;
    for (const cert of await this.deps.store.certificates.listByDevice(deviceId)) {
      if (cert.notAfter <= this.deps.clock.nowMs()) continue; // expired: nothing left to revoke
      try {
        await this.revokeRecord(cert, reason, actor);
        n++;
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
      }
    }
    return n;
  }

  private async revokeRecord(cert: CertificateRecord, reason: RevocationReason, actor: Principal): Promise<void> {
    await this.deps.store.revocations.revoke({
      serialHex: cert.serialHex,
      deviceId: cert.deviceId,
      reason,
      revokedAt: this.deps.clock.nowMs(),
      revokedBy: auditActor(actor).id,
    });
    await this.deps.audit.append({
      type: 'cert.revoke',
      actor: auditActor(actor),
      data: { deviceId: cert.deviceId, serialHex: cert.serialHex, reason },
    });
    await this.deps.store.events
      .publish(CERT_REVOKED_TOPIC, JSON.stringify({ cert_sha256: cert.sha256, serial_hex: cert.serialHex, device_id: cert.deviceId }))
      .catch(() => undefined);
  }

  /**
   * The current CRL: rebuilt when the store's revocation generation changed (any instance revoked something) or
   * when it is older than `crl.refreshSeconds`; one build at a time. The CRL number is the build time in ms, which
   * only grows, so instances need no shared counter.
   */
  async crl(): Promise<BuiltCrl> {
    const generation = await this.deps.store.revocations.generation();
    const now = this.deps.clock.nowMs();
    const cached = this.crlCache;
    if (cached && cached.generation === generation && now - cached.crl.thisUpdateMs < this.deps.config.crl.refreshSeconds * 1000) {
      return cached.crl;
    }
    if (this.crlBuilding) return this.crlBuilding;
    this.crlBuilding = (async () => {
      const entries: CrlEntry[] = [];
      let cursor: string | null = null;
      do {
        const page = await this.deps.store.revocations.list({ cursor, limit: 1000 });
        for (const r of page.items) entries.push({ serialHex: r.serialHex, revokedAtMs: r.revokedAt, reason: r.reason });
        cursor = page.nextCursor;
      } while (cursor);
      const builtAt = this.deps.clock.nowMs();
      const previous = cached?.crl.crlNumber ?? 0n;
      const crlNumber = BigInt(builtAt) > previous ? BigInt(builtAt) : previous + 1n;
      const crl = await this.ca.buildCrl({ entries, crlNumber, nowMs: builtAt });
      this.crlCache = { crl, generation };
      return crl;
    })().finally(() => {
      this.crlBuilding = null;
    });
    return this.crlBuilding;
  }

  /** Answers one OCSP request (DER); never throws, garbage gets `malformedRequest`. */
  async ocspRespond(requestDer: Buffer): Promise<OcspResult> {
    let generation: number;
    try {
      generation = await this.deps.store.revocations.generation();
    } catch {
      // Without the generation a cached "good" could be stale: make every answer fresh (the lookup will fail
      // closed with tryLater if the store is really down).
      generation = -this.deps.clock.nowMs();
    }
    return this.ocsp.respond(requestDer, { nowMs: this.deps.clock.nowMs(), generation });
  }

  /**
   * Answers the RFC 6960 A.1 GET form: `raw` is everything after `/v1/ocsp/` (URL-encoded base64, may contain '/').
   * Undecodable input gets the `malformedRequest` response, never an exception.
   */
  async ocspRespondGet(raw: string, maxRequestBytes: number): Promise<Buffer> {
    const der = decodeOcspGetPath(raw, maxRequestBytes);
    if (!der) return OCSP_MALFORMED_REQUEST;
    return (await this.ocspRespond(der)).der;
  }

  async close(): Promise<void> {
    await this.ca.close();
  }
}
