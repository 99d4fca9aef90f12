/**
 * What the decision service must look up for one request, and a reference composition of those lookups into
 * `DecisionFacts`. The lookups themselves (store reads, a directory query) are injected: this module never
 * touches a store.
 */
import type { CertificateRecord, DeviceSummary, Revocation } from '../domain/types';
import type { CertificateFact, DecisionFacts, DeviceFact, PostureSignals, UserFact } from '../policy/facts';
import type { DecisionEvent } from './schemas';
import { type Dn, dnEquals } from './dn';
import type { NormalizedIdentity } from './normalize';
import { serialFromHex, type SerialForms } from './serial';

/**
 * The reads a decision needs. Each resolves to null for "not there"; a rejection means "could not tell" and turns
 * the whole decision into INTERNAL_ERROR (deny), never into an allow.
 */
export interface FactLookups {
  /** Certificate devicegate issued, by SHA-256 of its DER (64 lower-case hex). */
  certificateBySha256(sha256: string): Promise<CertificateRecord | null>;
  /**
   * Certificate devicegate issued, by serial. Called only after the issuer DN was matched against devicegate's own
   * device CA(s), because serials are unique per issuer only. `serial.der` is the `CertificateRecord.serialHex` form.
   */
  certificateBySerial(serial: SerialForms): Promise<CertificateRecord | null>;
  /** Revocation of a certificate by its `CertificateRecord.serialHex`. */
  revocation(serialHex: string): Promise<Revocation | null>;
  device(id: string): Promise<DeviceSummary | null>;
  /** Departments of a user (directory lookup); only called for the `department` username rule. */
  userDepartments?(username: string): Promise<readonly string[] | null>;
}

/** Settings of one gathering. */
export interface GatherOptions {
  /** Subject DNs of devicegate's device CA(s): a certificate whose issuer is none of these is not ours. */
  readonly ourIssuers: readonly Dn[];
  /** Look up the user's departments (the `department` username rule is active). */
  readonly needUserDepartments: boolean;
  /** Gathering that takes longer than this is abandoned: the facts become `unavailable` (deny). */
  readonly deadlineMs: number;
  readonly posture?: PostureSignals | null;
}

const isOurs = (issuer: Dn, ours: readonly Dn[]): boolean => ours.some((o) => dnEquals(o, issuer));

function canonicalOfRecord(record: CertificateRecord): string | null {
  try {
    return serialFromHex(record.serialHex).canonical;
  } catch {
    return null;
  }
}

async function findCertificate(
  id: NormalizedIdentity,
  lookups: FactLookups,
  options: GatherOptions,
): Promise<{ fact: CertificateFact; record: CertificateRecord | null }> {
  const issuerForeign = id.issuer !== null && !isOurs(id.issuer, options.ourIssuers);
  let record: CertificateRecord | null = null;
  if (id.sha256) {
    record = await lookups.certificateBySha256(id.sha256);
    if (!record) return { fact: { kind: issuerForeign ? 'foreign' : 'unknown' }, record: null };
    if (issuerForeign) return { fact: { kind: 'mismatch', detail: 'issuer' }, record };
    if (id.serial && canonicalOfRecord(record) !== id.serial.canonical) return { fact: { kind: 'mismatch', detail: 'serial' }, record };
  } else if (id.serial) {
    // Serials are unique per issuer only: without an issuer that is ours, a serial names nothing.
    if (id.issuer === null) return { fact: { kind: 'absent' }, record: null };
    if (issuerForeign) return { fact: { kind: 'foreign' }, record: null };
    record = await lookups.certificateBySerial(id.serial);
    if (!record) return { fact: { kind: 'unknown' }, record: null };
  } else {
    // Subject, CN or SAN alone are claims anyone can put in a certificate: not an identity.
    return { fact: { kind: issuerForeign ? 'foreign' : 'absent' }, record: null };
  }
  if (id.claimedDeviceIds.some((claim) => claim !== record.deviceId)) {
    return { fact: { kind: 'mismatch', detail: 'device-id' }, record };
  }
  if (record.sha256 && id.sha256 && record.sha256.toLowerCase() !== id.sha256) {
    return { fact: { kind: 'mismatch', detail: 'sha256' }, record };
  }
  const revocation = await lookups.revocation(record.serialHex);
  return {
    fact: {
      kind: 'known',
      serialHex: record.serialHex,
      deviceId: record.deviceId,
      notBefore: record.notBefore,
      notAfter: record.notAfter,
      issuedAt: record.issuedAt,
      revocation: revocation ? { reason: revocation.reason, revokedAt: revocation.revokedAt } : null,
    },
    record,
  };
}

async function gather(
  id: NormalizedIdentity,
  event: DecisionEvent,
  lookups: FactLookups,
  options: GatherOptions,
): Promise<DecisionFacts> {
  const { fact: certificate } = await findCertificate(id, lookups, options);
  let device: DeviceFact = { kind: 'not_looked_up' };
  let user: UserFact = { kind: 'not_looked_up' };
  if (certificate.kind === 'known') {
    const d = await lookups.device(certificate.deviceId);
    device = d
      ? { kind: 'found', id: d.id, status: d.status, platform: d.platform, owner: d.owner, department: d.department }
      : { kind: 'missing' };
    if (options.needUserDepartments && id.username && d) {
      if (!lookups.userDepartments) throw new Error('department rule active but no directory lookup configured');
      const deps = await lookups.userDepartments(id.username);
      user = deps ? { kind: 'known', departments: [...deps] } : { kind: 'unknown' };
    }
  }
  return { status: 'gathered', event, certificate, device, user, username: id.username, posture: options.posture ?? null };
}

/**
 * Gathers the facts for one normalised request: certificate (by SHA-256, else by issuer + serial, with the issuer
 * checked against devicegate's CA first), its revocation, its device, and (for the department rule) the user's
 * departments.
 *
 * Guarantees: never rejects. A failing lookup or a passed deadline yields `{ status: 'unavailable' }` (which
 * `decide()` turns into INTERNAL_ERROR); identifiers that disagree (SAN device id vs record, serial vs fingerprint,
 * foreign issuer on one of our fingerprints) yield `mismatch`; a serial without an issuer, or only a subject/CN/SAN,
 * yields `absent`.
 */
export async function gatherFacts(
  identity: NormalizedIdentity,
  event: DecisionEvent,
  lookups: FactLookups,
  options: GatherOptions,
): Promise<DecisionFacts> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<DecisionFacts>((resolve) => {
    timer = setTimeout(() => resolve({ status: 'unavailable', detail: 'deadline' }), Math.max(0, options.deadlineMs));
  });
  try {
    return await Promise.race([
      gather(identity, event, lookups, options).catch(
        (e: unknown): DecisionFacts => ({ status: 'unavailable', detail: e instanceof Error ? e.name : 'error' }),
      ),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
