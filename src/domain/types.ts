/**
 * Shared domain types. No behaviour lives here; every layer may import this file.
 */

export const PLATFORMS = ['windows', 'linux', 'macos', 'ios', 'android'] as const;
export type Platform = (typeof PLATFORMS)[number];

/**
 * Device life cycle: `registered` (in inventory, no certificate yet) → `active` (attested, certificate issued) →
 * `suspended` (temporarily denied, may return to active) | `revoked` (permanently denied) | `retired` (removed from
 * service; the record stays for the audit trail).
 */
export const DEVICE_STATUSES = ['registered', 'active', 'suspended', 'revoked', 'retired'] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

/** Hardware identity the device must prove at enrollment. */
export interface TpmIdentity {
  /** Lower-case hex SHA-256 of the EK public key in SubjectPublicKeyInfo (DER) form. */
  readonly ekPublicSha256: string;
  /** The EK certificate (PEM) when known. */
  readonly ekCertificatePem?: string | undefined;
}

export interface Device {
  readonly id: string;
  readonly serialNumber: string;
  readonly assetTag: string | null;
  readonly model: string | null;
  readonly platform: Platform;
  readonly owner: string | null;
  readonly department: string | null;
  readonly status: DeviceStatus;
  /** Why the status last changed (e.g. "lost", "stolen"); free text set by IT. */
  readonly statusReason: string | null;
  readonly tpm: TpmIdentity | null;
  /**
   * The attestation key recorded at enrollment (TPMT_PUBLIC, base64), so renewals can demand a fresh Certify by the
   * same TPM.
   */
  readonly attestationKey: string | null;
  /** Epoch ms. */
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Optimistic-concurrency counter; every update increments it. */
  readonly version: number;
}

/** The fields of a device that a connection decision reads. */
export type DeviceSummary = Pick<Device, 'id' | 'status' | 'platform' | 'owner' | 'department'>;

export interface EnrollmentToken {
  /** Lower-case hex SHA-256 of the token; the token itself is never stored. */
  readonly tokenHash: string;
  readonly deviceId: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly createdBy: string;
  /** Epoch ms when spent, or null while unused. */
  readonly spentAt: number | null;
}

export interface CertificateRecord {
  /** Lower-case hex, no leading zeros stripped beyond DER's own encoding (e.g. `0a1b...`). */
  readonly serialHex: string;
  readonly deviceId: string;
  /** Lower-case hex SHA-256 of the certificate DER. */
  readonly sha256: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly pem: string;
  readonly issuedAt: number;
  /** `enroll`, `renew` or `manual` (CLI issuance by IT). */
  readonly issuedVia: string;
}

/** RFC 5280 CRLReason names. */
export const REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'removeFromCRL',
  'privilegeWithdrawn',
  'aACompromise',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

export interface Revocation {
  readonly serialHex: string;
  readonly deviceId: string | null;
  readonly reason: RevocationReason;
  readonly revokedAt: number;
  readonly revokedBy: string;
}

export const ROLES = ['it-admin', 'auditor', 'concentrator', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export interface ApiToken {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  /** Lower-case hex SHA-256 of the secret part. */
  readonly secretHash: string;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
}

/**
 * One stored audit entry. The chain fields (`seq`, `prevHash`, `hash`) and the canonical `body` are produced by
 * `src/audit`; the store only keeps them and indexes the query fields.
 */
export interface AuditEntry {
  readonly seq: number;
  /** Unique event id (UUID); appends are idempotent on it. */
  readonly eventId: string;
  /** Epoch ms of the event. */
  readonly time: number;
  readonly type: string;
  readonly prevHash: string;
  readonly hash: string;
  /** The canonical JSON of the entry without `hash`, exactly as hashed. */
  readonly body: string;
  /** Indexed query fields (null when the event has none). */
  readonly deviceId: string | null;
  readonly user: string | null;
  readonly decision: string | null;
  readonly reason: string | null;
  readonly concentrator: string | null;
}
