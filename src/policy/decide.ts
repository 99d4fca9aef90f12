import { PLATFORMS } from '../domain/types';
import type { CertificateFact, DecisionFacts, DeviceFact, UserFact } from './facts';
import type { DecisionPolicy } from './policy';
import type { ReasonCode } from './reasons';

/** The outcome of `decide()`. */
export interface PolicyDecision {
  readonly allow: boolean;
  /** `OK` exactly when `allow` is true. */
  readonly reasonCode: ReasonCode;
  /** The device the certificate belongs to, when known (also on denies such as DEVICE_SUSPENDED, for the audit). */
  readonly deviceId: string | null;
  /** 0 on deny; on allow min(policy ttl, seconds until the certificate expires). */
  readonly ttlSeconds: number;
  readonly policyVersion: string;
  /** Non-enforcing notes for the audit (e.g. posture signals seen). Never personal data. */
  readonly notes: readonly string[];
}

type Verdict = { readonly ok: true } | { readonly ok: false; readonly code: ReasonCode };
const PASS: Verdict = { ok: true };
const fail = (code: ReasonCode): Verdict => ({ ok: false, code });

function assertNever(_x: never): Verdict {
  // Reached only when facts carry a variant this version does not know (a newer gatherer, a corrupted value):
  // fail closed.
  return fail('INTERNAL_ERROR');
}

const isFiniteMs = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n);

/**
 * Decides whether a connection may proceed. Pure: same facts, policy and `nowMs` give the same decision.
 *
 * Order of checks (the first failure is the reason): gathered facts → certificate identity → certificate
 * revocation → certificate validity window → certificate age → device registration and status → platform →
 * username rule. Posture signals are noted, never enforced (later issue).
 *
 * Guarantees (fail closed): `allow` is true only when every check passed on facts of a known variant; missing,
 * malformed or unknown facts or policy values yield a deny (INTERNAL_ERROR when nothing more specific applies);
 * it never throws, whatever it is given.
 */
export function decide(facts: DecisionFacts, policy: DecisionPolicy, nowMs: number): PolicyDecision {
  const version = typeof policy?.version === 'string' ? policy.version : 'unknown';
  const deny = (code: ReasonCode, deviceId: string | null = null): PolicyDecision => ({
    allow: false,
    reasonCode: code,
    deviceId,
    ttlSeconds: 0,
    policyVersion: version,
    notes: [],
  });
  try {
    if (!facts || typeof facts !== 'object' || !policy || typeof policy !== 'object' || !isFiniteMs(nowMs)) {
      return deny('INTERNAL_ERROR');
    }
    switch (facts.status) {
      case 'unavailable':
        return deny('INTERNAL_ERROR');
      case 'gathered':
        break;
      default:
        return deny(assertNeverCode(facts));
    }

    const cert = facts.certificate;
    const certVerdict = checkCertificate(cert, policy, nowMs);
    if (!certVerdict.ok) return deny(certVerdict.code, cert?.kind === 'known' ? cert.deviceId : null);
    // checkCertificate passes only for a known certificate.
    const known = cert as Extract<CertificateFact, { kind: 'known' }>;

    const device = facts.device;
    const deviceVerdict = checkDevice(device, known.deviceId, policy);
    if (!deviceVerdict.ok) return deny(deviceVerdict.code, known.deviceId);
    const found = device as Extract<DeviceFact, { kind: 'found' }>;

    const userVerdict = checkUser(policy, facts.username, found, facts.user);
    if (!userVerdict.ok) return deny(userVerdict.code, known.deviceId);

    const notes: string[] = [];
    if (facts.posture) notes.push('posture:observed');

    const ttlPolicy = Number.isInteger(policy.ttlSeconds) && policy.ttlSeconds >= 0 ? policy.ttlSeconds : 0;
    const untilExpiry = Math.max(0, Math.floor((known.notAfter - nowMs) / 1000));
    return {
      allow: true,
      reasonCode: 'OK',
      deviceId: known.deviceId,
      ttlSeconds: Math.min(ttlPolicy, untilExpiry),
      policyVersion: version,
      notes,
    };
  } catch {
    return deny('INTERNAL_ERROR');
  }
}

function assertNeverCode(x: never): ReasonCode {
  const v = assertNever(x);
  return v.ok ? 'INTERNAL_ERROR' : v.code;
}

function checkCertificate(cert: CertificateFact, policy: DecisionPolicy, nowMs: number): Verdict {
  if (!cert || typeof cert !== 'object') return fail('INTERNAL_ERROR');
  switch (cert.kind) {
    case 'absent':
      return fail('IDENTITY_MISSING');
    case 'foreign':
      return fail('CERT_NOT_OURS');
    case 'unknown':
      return fail('CERT_UNKNOWN');
    case 'mismatch':
      return fail('IDENTITY_MISMATCH');
    case 'known':
      break;
    default:
      return assertNever(cert);
  }
  if (typeof cert.deviceId !== 'string' || cert.deviceId === '') return fail('INTERNAL_ERROR');
  if (!isFiniteMs(cert.notBefore) || !isFiniteMs(cert.notAfter) || !isFiniteMs(cert.issuedAt)) return fail('INTERNAL_ERROR');
  // Revocation first: a revoked certificate is reported as revoked even when it has also expired.
  if (cert.revocation !== null) return fail('CERT_REVOKED');
  if (nowMs < cert.notBefore) return fail('CERT_NOT_YET_VALID');
  // RFC 5280 §4.1.2.5: the validity period includes notAfter itself.
  if (nowMs > cert.notAfter) return fail('CERT_EXPIRED');
  const maxAge = policy.maxCertificateAgeSeconds;
  if (maxAge !== null) {
    if (typeof maxAge !== 'number' || !Number.isFinite(maxAge) || maxAge < 0) return fail('INTERNAL_ERROR');
    if (nowMs - cert.issuedAt > maxAge * 1000) return fail('CERT_TOO_OLD');
  }
  return PASS;
}

function checkDevice(device: DeviceFact, recordDeviceId: string, policy: DecisionPolicy): Verdict {
  if (!device || typeof device !== 'object') return fail('INTERNAL_ERROR');
  switch (device.kind) {
    case 'not_looked_up':
      // A known certificate must come with a device lookup; skipping it is a gatherer bug.
      return fail('INTERNAL_ERROR');
    case 'missing':
      return fail('DEVICE_NOT_REGISTERED');
    case 'found':
      break;
    default:
      return assertNever(device);
  }
  if (device.id !== recordDeviceId) return fail('IDENTITY_MISMATCH');
  switch (device.status) {
    case 'active':
      break;
    case 'registered':
      return fail('DEVICE_NOT_ENROLLED');
    case 'suspended':
      return fail('DEVICE_SUSPENDED');
    case 'revoked':
      return fail('DEVICE_REVOKED');
    case 'retired':
      return fail('DEVICE_RETIRED');
    default:
      return assertNever(device.status);
  }
  if (!Array.isArray(policy.allowedPlatforms)) return fail('INTERNAL_ERROR');
  if (!(PLATFORMS as readonly string[]).includes(device.platform) || !policy.allowedPlatforms.includes(device.platform)) {
    return fail('PLATFORM_NOT_ALLOWED');
  }
  return PASS;
}

/** Case- and Unicode-normalised comparison of directory names (`Max.Muster` = `max.muster`). */
const sameName = (a: string, b: string): boolean =>
  a.normalize('NFKC').trim().toLowerCase() === b.normalize('NFKC').trim().toLowerCase();

function checkUser(
  policy: DecisionPolicy,
  username: string | null,
  device: Extract<DeviceFact, { kind: 'found' }>,
  user: UserFact,
): Verdict {
  switch (policy.usernameRule) {
    case 'not_checked':
      return PASS;
    case 'owner':
      // Fail closed: a certificate-only client (no username) or a device without an owner cannot satisfy the rule.
      if (typeof username !== 'string' || username.trim() === '' || typeof device.owner !== 'string') return fail('USER_NOT_ALLOWED');
      return sameName(username, device.owner) ? PASS : fail('USER_NOT_ALLOWED');
    case 'department': {
      if (typeof username !== 'string' || username.trim() === '' || typeof device.department !== 'string') return fail('USER_NOT_ALLOWED');
      if (!user || typeof user !== 'object') return fail('INTERNAL_ERROR');
      switch (user.kind) {
        case 'not_looked_up':
        case 'unknown':
          return fail('USER_NOT_ALLOWED');
        case 'known':
          return Array.isArray(user.departments) && user.departments.some((d) => typeof d === 'string' && sameName(d, device.department!))
            ? PASS
            : fail('USER_NOT_ALLOWED');
        default:
          return assertNever(user);
      }
    }
    default:
      return assertNever(policy.usernameRule);
  }
}
