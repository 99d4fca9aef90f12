import { PLATFORMS } from '../../../src/domain/types';
import { decide } from '../../../src/policy/decide';
import type { CertificateFact, DecisionFacts, DeviceFact } from '../../../src/policy/facts';
import type { DecisionPolicy } from '../../../src/policy/policy';
import { REASON_CODES, type ReasonCode } from '../../../src/policy/reasons';

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
const DAY = 86_400_000;
const DEVICE = '5b0e7c1a-4f7e-4d5a-9c1e-2f3a4b5c6d7e';

const policy: DecisionPolicy = {
  version: 'p-1',
  allowedPlatforms: ['windows', 'linux'],
  usernameRule: 'not_checked',
  maxCertificateAgeSeconds: null,
  ttlSeconds: 3600,
};

const knownCert = (patch: Partial<Extract<CertificateFact, { kind: 'known' }>> = {}): CertificateFact => ({
  kind: 'known',
  serialHex: '1001',
  deviceId: DEVICE,
  notBefore: NOW - DAY,
  notAfter: NOW + 7 * DAY,
  issuedAt: NOW - DAY,
  revocation: null,
  ...patch,
});

const device = (patch: Partial<Extract<DeviceFact, { kind: 'found' }>> = {}): DeviceFact => ({
  kind: 'found',
  id: DEVICE,
  status: 'active',
  platform: 'linux',
  owner: 'max.muster',
  department: 'amt-10',
  ...patch,
});

const facts = (patch: Partial<Extract<DecisionFacts, { status: 'gathered' }>> = {}): DecisionFacts => ({
  status: 'gathered',
  event: 'connect',
  certificate: knownCert(),
  device: device(),
  user: { kind: 'not_looked_up' },
  username: null,
  posture: null,
  ...patch,
});

interface Row {
  readonly name: string;
  readonly code: ReasonCode;
  readonly facts: DecisionFacts;
  readonly policy?: Partial<DecisionPolicy>;
}

const rows: Row[] = [
  { name: 'allows an active device with a valid, unrevoked certificate of ours', code: 'OK', facts: facts() },
  {
    name: 'allows when the username equals the device owner (case-insensitive) under the owner rule',
    code: 'OK',
    facts: facts({ username: 'Max.Muster' }),
    policy: { usernameRule: 'owner' },
  },
  {
    name: 'allows when the user belongs to the device department under the department rule',
    code: 'OK',
    facts: facts({ username: 'erika', user: { kind: 'known', departments: ['amt-20', 'AMT-10'] } }),
    policy: { usernameRule: 'department' },
  },
  { name: 'denies when the request carried no usable identity', code: 'IDENTITY_MISSING', facts: facts({ certificate: { kind: 'absent' }, device: { kind: 'not_looked_up' } }) },
  {
    name: 'denies when the identifiers disagree (SAN device id is not the record device)',
    code: 'IDENTITY_MISMATCH',
    facts: facts({ certificate: { kind: 'mismatch', detail: 'device-id' }, device: { kind: 'not_looked_up' } }),
  },
  { name: 'denies when the certificate comes from another CA (private or foreign)', code: 'CERT_NOT_OURS', facts: facts({ certificate: { kind: 'foreign' }, device: { kind: 'not_looked_up' } }) },
  { name: 'denies when devicegate has no record of the certificate', code: 'CERT_UNKNOWN', facts: facts({ certificate: { kind: 'unknown' }, device: { kind: 'not_looked_up' } }) },
  {
    name: 'denies when the certificate is revoked',
    code: 'CERT_REVOKED',
    facts: facts({ certificate: knownCert({ revocation: { reason: 'keyCompromise', revokedAt: NOW - 1000 } }) }),
  },
  { name: 'denies when the certificate is not yet valid', code: 'CERT_NOT_YET_VALID', facts: facts({ certificate: knownCert({ notBefore: NOW + 1000 }) }) },
  { name: 'denies when the certificate has expired', code: 'CERT_EXPIRED', facts: facts({ certificate: knownCert({ notAfter: NOW - 1 }) }) },
  {
    name: 'denies when the certificate is older than the maximum certificate age',
    code: 'CERT_TOO_OLD',
    facts: facts({ certificate: knownCert({ issuedAt: NOW - 3 * DAY, notBefore: NOW - 3 * DAY }) }),
    policy: { maxCertificateAgeSeconds: 2 * 86_400 },
  },
  { name: 'denies when the certificate device is not registered', code: 'DEVICE_NOT_REGISTERED', facts: facts({ device: { kind: 'missing' } }) },
  { name: 'denies when the device is registered but not enrolled', code: 'DEVICE_NOT_ENROLLED', facts: facts({ device: device({ status: 'registered' }) }) },
  { name: 'denies when the device is suspended', code: 'DEVICE_SUSPENDED', facts: facts({ device: device({ status: 'suspended' }) }) },
  { name: 'denies when the device is revoked', code: 'DEVICE_REVOKED', facts: facts({ device: device({ status: 'revoked' }) }) },
  { name: 'denies when the device is retired', code: 'DEVICE_RETIRED', facts: facts({ device: device({ status: 'retired' }) }) },
  { name: 'denies when the device platform is not allowed', code: 'PLATFORM_NOT_ALLOWED', facts: facts({ device: device({ platform: 'android' }) }) },
  {
    name: 'denies when the username is not the device owner under the owner rule',
    code: 'USER_NOT_ALLOWED',
    facts: facts({ username: 'mallory' }),
    policy: { usernameRule: 'owner' },
  },
  { name: 'denies when the facts could not be gathered (store down, deadline)', code: 'INTERNAL_ERROR', facts: { status: 'unavailable', detail: 'deadline' } },
];

describe('decide()', () => {
  it('has a table row for every reason code', () => {
    expect(new Set(rows.map((r) => r.code))).toEqual(new Set(REASON_CODES));
  });

  it.each(rows)('$name', ({ code, facts: f, policy: p }) => {
    const d = decide(f, { ...policy, ...p }, NOW);
    expect(d.reasonCode).toBe(code);
    expect(d.allow).toBe(code === 'OK');
    expect(d.policyVersion).toBe('p-1');
    if (code !== 'OK') expect(d.ttlSeconds).toBe(0);
  });

  it('keeps the device id on device-level denies for the audit', () => {
    expect(decide(facts({ device: device({ status: 'suspended' }) }), policy, NOW).deviceId).toBe(DEVICE);
  });

  it('caps ttl_seconds at the certificate expiry', () => {
    expect(decide(facts({ certificate: knownCert({ notAfter: NOW + 600_000 }) }), policy, NOW).ttlSeconds).toBe(600);
    expect(decide(facts(), policy, NOW).ttlSeconds).toBe(3600);
  });

  it('treats notAfter itself as valid (RFC 5280) and one millisecond later as expired', () => {
    expect(decide(facts({ certificate: knownCert({ notAfter: NOW }) }), policy, NOW).allow).toBe(true);
    expect(decide(facts({ certificate: knownCert({ notAfter: NOW }) }), policy, NOW + 1).reasonCode).toBe('CERT_EXPIRED');
  });

  it('reports a revoked certificate as revoked even when it has also expired', () => {
    const f = facts({ certificate: knownCert({ notAfter: NOW - 1, revocation: { reason: 'superseded', revokedAt: 0 } }) });
    expect(decide(f, policy, NOW).reasonCode).toBe('CERT_REVOKED');
  });

  it('notes posture signals but denies nothing on them (typed slot for the posture issue)', () => {
    const d = decide(facts({ posture: { diskEncrypted: false, edrHealthy: false } }), policy, NOW);
    expect(d.allow).toBe(true);
    expect(d.notes).toContain('posture:observed');
  });

  describe('fails closed', () => {
    it('denies a certificate-only client (no username) under the owner rule (username cannot be faked as missing)', () => {
      expect(decide(facts({ username: null }), { ...policy, usernameRule: 'owner' }, NOW).reasonCode).toBe('USER_NOT_ALLOWED');
    });

    it('denies under the owner rule when the device has no owner', () => {
      expect(decide(facts({ username: 'x', device: device({ owner: null }) }), { ...policy, usernameRule: 'owner' }, NOW).reasonCode).toBe('USER_NOT_ALLOWED');
    });

    it('denies under the department rule when the directory did not know the user', () => {
      expect(decide(facts({ username: 'erika', user: { kind: 'unknown' } }), { ...policy, usernameRule: 'department' }, NOW).reasonCode).toBe('USER_NOT_ALLOWED');
    });

    it('denies when the gatherer skipped the device lookup for a known certificate', () => {
      expect(decide(facts({ device: { kind: 'not_looked_up' } }), policy, NOW).reasonCode).toBe('INTERNAL_ERROR');
    });

    it('denies when the device record is another device than the certificate names (record swap)', () => {
      expect(decide(facts({ device: device({ id: 'other' }) }), policy, NOW).reasonCode).toBe('IDENTITY_MISMATCH');
    });

    const garbage: [string, unknown, unknown, unknown][] = [
      ['facts are null', null, policy, NOW],
      ['facts are a string', 'allow', policy, NOW],
      ['the facts status is unknown', { ...facts(), status: 'maybe' }, policy, NOW],
      ['the certificate variant is unknown', facts({ certificate: { kind: 'trusted' } as unknown as CertificateFact }), policy, NOW],
      ['the device status is unknown', facts({ device: device({ status: 'vip' as never }) }), policy, NOW],
      ['the device variant is unknown', facts({ device: { kind: 'cached' } as unknown as DeviceFact }), policy, NOW],
      ['the certificate times are not numbers', facts({ certificate: knownCert({ notAfter: Number.NaN }) }), policy, NOW],
      ['the certificate lacks a device id', facts({ certificate: knownCert({ deviceId: '' }) }), policy, NOW],
      ['the policy is null', facts(), null, NOW],
      ['the username rule is unknown', facts(), { ...policy, usernameRule: 'everyone' }, NOW],
      ['the allowed platforms are missing', facts(), { ...policy, allowedPlatforms: undefined }, NOW],
      ['the max age is negative', facts(), { ...policy, maxCertificateAgeSeconds: -1 }, NOW],
      ['now is not a number', facts(), policy, Number.NaN],
      ['a getter throws', Object.defineProperty(facts(), 'certificate', { get: () => { throw new Error('boom'); } }), policy, NOW],
    ];
    it.each(garbage)('denies with INTERNAL_ERROR when %s', (_label, f, p, now) => {
      const d = decide(f as DecisionFacts, p as DecisionPolicy, now as number);
      expect(d.allow).toBe(false);
      expect(d.reasonCode).toBe('INTERNAL_ERROR');
    });
  });

  it('never allows unless every check holds (5,000 random fact combinations)', () => {
    // mulberry32: deterministic, so a failure is reproducible.
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return (((t ^ (t >>> 14)) >>> 0) % n);
    };
    const pick = <T,>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
    let allows = 0;
    for (let i = 0; i < 5000; i++) {
      // Good values are listed more often so that allows actually occur and the invariant gets exercised.
      const known = knownCert({
        revocation: rnd(4) === 0 ? { reason: 'unspecified', revokedAt: 0 } : null,
        notBefore: NOW + pick([-1, -1, -1, 1]) * DAY,
        notAfter: NOW + pick([-1, 1, 1, 1]) * DAY,
        issuedAt: NOW - rnd(10) * DAY,
      });
      const cert: CertificateFact = pick<CertificateFact>([
        known,
        known,
        known,
        { kind: 'absent' },
        { kind: 'foreign' },
        { kind: 'unknown' },
        { kind: 'mismatch', detail: 'x' },
      ]);
      const found = device({
        status: pick(['active', 'active', 'active', 'registered', 'suspended', 'revoked', 'retired'] as const),
        platform: pick(['linux', 'windows', ...PLATFORMS] as const),
        id: pick([DEVICE, DEVICE, DEVICE, 'other']),
      });
      const dev: DeviceFact = pick<DeviceFact>([found, found, found, { kind: 'missing' }, { kind: 'not_looked_up' }]);
      const p: DecisionPolicy = { ...policy, usernameRule: pick(['not_checked', 'owner'] as const), maxCertificateAgeSeconds: pick([null, 5 * 86_400]) };
      const f = facts({ certificate: cert, device: dev, username: pick([null, 'max.muster', 'max.muster', 'mallory']) });
      const d = decide(f, p, NOW);
      if (!d.allow) continue;
      allows++;
      expect(cert.kind).toBe('known');
      const k = cert as Extract<CertificateFact, { kind: 'known' }>;
      expect(k.revocation).toBeNull();
      expect(NOW >= k.notBefore && NOW <= k.notAfter).toBe(true);
      expect(dev).toMatchObject({ kind: 'found', status: 'active', id: DEVICE });
      expect(policy.allowedPlatforms).toContain((dev as { platform: string }).platform);
      if (p.usernameRule === 'owner') expect(f.status === 'gathered' && f.username).toBe('max.muster');
      if (p.maxCertificateAgeSeconds !== null) expect(NOW - k.issuedAt).toBeLessThanOrEqual(p.maxCertificateAgeSeconds * 1000);
    }
    // The generator must produce some allows, or the invariant above was never exercised.
    expect(allows).toBeGreaterThan(20);
  });
});
