import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isAppError } from '../../../src/domain/errors';
import type { CertificateRecord, Device, Revocation } from '../../../src/domain/types';
import { parseDn } from '../../../src/concentrator/dn';
import { type FactLookups, gatherFacts, type GatherOptions } from '../../../src/concentrator/gather-facts';
import { normalizeDecisionRequest } from '../../../src/concentrator/normalize';
import { toDecisionResponse } from '../../../src/concentrator/response';
import { decisionResponseSchema } from '../../../src/concentrator/schemas';
import { decide } from '../../../src/policy/decide';
import { describeWith, tool } from '../../helpers/requirements';
import { createTestPki } from '../../helpers/test-pki';

const ISSUER = 'C=DE, O=Stadt Musterstadt, OU=devicegate, CN=devicegate Test Device CA';
const DEVICE = '5b0e7c1a-4f7e-4d5a-9c1e-2f3a4b5c6d7e';
const SHA = 'ab'.repeat(32);
const NOW = Date.UTC(2026, 10, 26, 12);

const record: CertificateRecord = {
  serialHex: '1001',
  deviceId: DEVICE,
  sha256: SHA,
  notBefore: NOW - 1000,
  notAfter: NOW + 86_400_000,
  pem: '',
  issuedAt: NOW - 1000,
  issuedVia: 'enroll',
};
const device = { id: DEVICE, status: 'active', platform: 'linux', owner: 'max', department: 'a' } as Device;

function lookups(patch: Partial<FactLookups> = {}): FactLookups & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    certificateBySha256: async (s) => (calls.push(`sha:${s}`), s === SHA ? record : null),
    certificateBySerial: async (s) => (calls.push(`serial:${s.canonical}`), s.canonical === '1001' ? record : null),
    revocation: async (s) => (calls.push(`rev:${s}`), null as Revocation | null),
    device: async (id) => (calls.push(`dev:${id}`), id === DEVICE ? device : null),
    ...patch,
  };
}
const opts: GatherOptions = { ourIssuers: [parseDn(ISSUER)], needUserDepartments: false, deadlineMs: 500 };
const base = { gateway: { id: 'gw', kind: 'openvpn' }, event: 'connect' } as const;

const badCode = (raw: unknown): string | null => {
  try {
    normalizeDecisionRequest(raw);
    return null;
  } catch (e) {
    return isAppError(e) && e.kind === 'bad_request' ? e.code : 'UNTYPED';
  }
};

describe('normalizeDecisionRequest', () => {
  it('normalises the OpenVPN identifiers into canonical forms', () => {
    const { identity } = normalizeDecisionRequest({
      ...base,
      cert: {
        sha256: SHA.match(/../g)!.join(':').toUpperCase(),
        serial: { dec: '4097', hex: '10:01' },
        issuer_dn: ISSUER,
        subject_dn: `C=DE, O=Stadt Musterstadt, CN=${DEVICE.toUpperCase()}`,
        san: { uri: [`urn:uuid:${DEVICE}`] },
      },
      ids: { username: '  max  ' },
    });
    expect(identity).toMatchObject({ sha256: SHA, serial: { canonical: '1001', der: '1001' }, cn: DEVICE.toUpperCase(), claimedDeviceIds: [DEVICE], username: 'max' });
  });

  it('drops a non-printable EAP identity (strongSwan sends a binary DN as User-Name)', () => {
    expect(normalizeDecisionRequest({ ...base, ids: { eap_identity: '0\u0010\u0006\u0003U' } }).identity.username).toBeNull();
  });

  it('accepts a well-formed request without any identity (the policy denies it, not the parser)', () => {
    expect(normalizeDecisionRequest(base).identity).toMatchObject({ sha256: null, serial: null, issuer: null });
  });

  it.each([
    ['not an object', 'hello', 'DECISION_REQUEST_INVALID'],
    ['null', null, 'DECISION_REQUEST_INVALID'],
    ['missing gateway', { event: 'connect' }, 'DECISION_REQUEST_INVALID'],
    ['an unknown event', { ...base, event: 'maybe' }, 'DECISION_REQUEST_INVALID'],
    ['a numeric fingerprint', { ...base, cert: { sha256: 12 } }, 'DECISION_REQUEST_INVALID'],
    ['an over-long subject', { ...base, cert: { subject_dn: `CN=${'a'.repeat(5000)}` } }, 'DECISION_REQUEST_INVALID'],
    ['a garbage fingerprint', { ...base, cert: { sha256: 'not-a-fingerprint' } }, 'FINGERPRINT_INVALID'],
    ['a SHA-1 fingerprint', { ...base, cert: { sha256: 'a'.repeat(40) } }, 'FINGERPRINT_INVALID'],
    ['a non-numeric decimal serial', { ...base, cert: { serial: { dec: '0x10' } } }, 'SERIAL_INVALID'],
    ['disagreeing serials', { ...base, cert: { serial: { dec: '1', hex: '02' } } }, 'SERIAL_MISMATCH'],
    ['a garbage issuer', { ...base, cert: { issuer_dn: 'garbage' } }, 'DN_INVALID'],
    ['a PEM that is not a certificate', { ...base, cert: { pem: '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----' } }, 'CERT_PEM_INVALID'],
    ['too many client hints', { ...base, client_hints: Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`IV_${i}`, 'x'])) }, 'DECISION_REQUEST_INVALID'],
  ])('rejects %s (bad_request)', (_label, raw, expected) => {
    expect(badCode(raw)).toBe(expected);
  });
});

describeWith([tool('openssl')], 'normalizeDecisionRequest with a forwarded PEM', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dg-norm-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('computes the fingerprint, serial, issuer and SAN device id from the PEM itself', () => {
    const pki = createTestPki(dir);
    const c = pki.issueDevice('pem');
    const { identity } = normalizeDecisionRequest({ ...base, cert: { pem: c.pem } });
    expect(identity.sha256).toBe(c.sha256);
    expect(identity.serial?.der).toBe(c.serialDerHex);
    expect(identity.claimedDeviceIds).toEqual([c.deviceId]);
    expect(identity.notAfterMs).toBe(c.notAfter);
  });

  it('rejects a stated fingerprint that does not match the forwarded PEM (identity substitution)', () => {
    const pki = createTestPki(path.join(dir, 'b'));
    const c = pki.issueDevice('pem2');
    expect(badCode({ ...base, cert: { pem: c.pem, sha256: SHA } })).toBe('CERT_IDENTITY_CONFLICT');
    expect(badCode({ ...base, cert: { pem: c.pem, serial: { hex: '01' } } })).toBe('CERT_IDENTITY_CONFLICT');
  });
});

describe('gatherFacts', () => {
  const gather = (raw: unknown, l = lookups(), o = opts) => {
    const { request, identity } = normalizeDecisionRequest(raw);
    return gatherFacts(identity, request.event, l, o);
  };

  it('finds certificate, revocation and device by fingerprint', async () => {
    const l = lookups();
    const f = await gather({ ...base, cert: { sha256: SHA } }, l);
    expect(f).toMatchObject({ status: 'gathered', certificate: { kind: 'known', deviceId: DEVICE }, device: { kind: 'found', id: DEVICE } });
    expect(l.calls).toEqual([`sha:${SHA}`, 'rev:1001', `dev:${DEVICE}`]);
  });

  it('finds the certificate by issuer + serial (FreeRADIUS) only after matching the issuer', async () => {
    const f = await gather({ ...base, cert: { serial: { hex: '1001' }, issuer_dn: '/C=DE/O=Stadt Musterstadt/OU=devicegate/CN=devicegate Test Device CA' } });
    expect(f).toMatchObject({ certificate: { kind: 'known' } });
  });

  it('never looks up a serial of a foreign issuer (serials are unique per issuer only)', async () => {
    const l = lookups();
    const f = await gather({ ...base, cert: { serial: { hex: '1001' }, issuer_dn: 'C=DE, O=Privat, CN=Home CA' } }, l);
    expect(f).toMatchObject({ certificate: { kind: 'foreign' } });
    expect(l.calls).toEqual([]);
  });

  it('treats a serial without an issuer as no identity', async () => {
    expect(await gather({ ...base, cert: { serial: { hex: '1001' } } })).toMatchObject({ certificate: { kind: 'absent' } });
  });

  it('treats subject, CN or SAN alone as no identity (anyone can write a device id into a certificate)', async () => {
    expect(await gather({ ...base, cert: { cn: DEVICE, san: { uri: [`urn:uuid:${DEVICE}`] } } })).toMatchObject({ certificate: { kind: 'absent' } });
  });

  it('flags a SAN device id that differs from the record (certificate/device swap)', async () => {
    const f = await gather({ ...base, cert: { sha256: SHA, san: { uri: ['urn:uuid:11111111-2222-4333-8444-555555555555'] } } });
    expect(f).toMatchObject({ certificate: { kind: 'mismatch', detail: 'device-id' } });
  });

  it('flags our fingerprint presented with a foreign issuer', async () => {
    expect(await gather({ ...base, cert: { sha256: SHA, issuer_dn: 'CN=Evil CA' } })).toMatchObject({ certificate: { kind: 'mismatch' } });
  });

  it('flags a serial that does not belong to the fingerprint', async () => {
    expect(await gather({ ...base, cert: { sha256: SHA, serial: { dec: '4098' } } })).toMatchObject({ certificate: { kind: 'mismatch', detail: 'serial' } });
  });

  it('reports a foreign issuer for an unknown fingerprint, unknown otherwise', async () => {
    expect(await gather({ ...base, cert: { sha256: 'cd'.repeat(32), issuer_dn: 'CN=Home CA' } })).toMatchObject({ certificate: { kind: 'foreign' } });
    expect(await gather({ ...base, cert: { sha256: 'cd'.repeat(32), issuer_dn: ISSUER } })).toMatchObject({ certificate: { kind: 'unknown' } });
  });

  it('turns a failing lookup into unavailable (→ INTERNAL_ERROR deny), never a rejection', async () => {
    const f = await gather({ ...base, cert: { sha256: SHA } }, lookups({ device: async () => { throw new Error('store down'); } }));
    expect(f.status).toBe('unavailable');
  });

  it('turns a lookup slower than the deadline into unavailable', async () => {
    const slow = lookups({ revocation: () => new Promise((r) => setTimeout(() => r(null), 300)) });
    const f = await gather({ ...base, cert: { sha256: SHA } }, slow, { ...opts, deadlineMs: 20 });
    expect(f).toEqual({ status: 'unavailable', detail: 'deadline' });
  });

  it('looks up departments only for the department rule, and fails closed without a directory', async () => {
    const f = await gather({ ...base, cert: { sha256: SHA }, ids: { username: 'erika' } }, lookups(), { ...opts, needUserDepartments: true });
    expect(f.status).toBe('unavailable');
    const g = await gather({ ...base, cert: { sha256: SHA }, ids: { username: 'erika' } }, lookups({ userDepartments: async () => ['a'] }), { ...opts, needUserDepartments: true });
    expect(g).toMatchObject({ user: { kind: 'known', departments: ['a'] } });
  });
});

describe('normalise → gather → decide under 10,000 mutated requests', () => {
  // One active device (the only one that may ever be allowed) and a suspended one, with OpenVPN-shaped requests.
  const OTHER_SHA = 'cd'.repeat(32);
  const otherRecord: CertificateRecord = { ...record, sha256: OTHER_SHA, serialHex: '1002', deviceId: '11111111-2222-4333-8444-555555555555' };
  const fuzzLookups: FactLookups = {
    certificateBySha256: async (s) => (s === SHA ? record : s === OTHER_SHA ? otherRecord : null),
    certificateBySerial: async (s) => (s.canonical === '1001' ? record : s.canonical === '1002' ? otherRecord : null),
    revocation: async () => null,
    device: async (id) => (id === DEVICE ? device : id === otherRecord.deviceId ? ({ ...device, id, status: 'suspended' }) : null),
  };
  const policy = { version: 'f', allowedPlatforms: ['linux' as const], usernameRule: 'not_checked' as const, maxCertificateAgeSeconds: null, ttlSeconds: 60 };
  const valid = {
    gateway: { id: 'gw', kind: 'openvpn', hook: 'mgmt-connect' },
    event: 'connect',
    cert: { sha256: SHA.match(/../g)!.join(':'), serial: { dec: '4097', hex: '10:01' }, issuer_dn: ISSUER, subject_dn: `CN=${DEVICE}`, cn: DEVICE },
    ids: { username: 'max' },
    client_hints: { IV_PLAT: 'linux', UV: { DEVICE_ID: DEVICE } },
  };

  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
  const junk = (): unknown =>
    [null, 0, -1, 1e308, true, '', ' ', 'null', '{}', [], {}, 'a'.repeat(rnd(3000)), OTHER_SHA, '1002', '4098', 'CN=Evil CA', `urn:uuid:${otherRecord.deviceId}`, '\u0000', '../../etc/passwd'][rnd(19)];
  const mutateString = (s: string): string => {
    switch (rnd(6)) {
      case 0: {
        const i = rnd(s.length || 1);
        return s.slice(0, i) + String.fromCharCode(32 + rnd(95)) + s.slice(i + 1);
      }
      case 1:
        return s.slice(0, rnd(s.length + 1));
      case 2:
        return s.toUpperCase();
      case 3:
        return s + s;
      case 4:
        return s.replace(/:/g, rnd(2) ? '' : '-');
      default:
        return ` ${s} `;
    }
  };
  const paths: string[][] = [
    ['cert', 'sha256'], ['cert', 'serial', 'dec'], ['cert', 'serial', 'hex'], ['cert', 'issuer_dn'], ['cert', 'subject_dn'], ['cert', 'cn'],
    ['cert', 'serial'], ['cert'], ['ids', 'username'], ['event'], ['gateway', 'kind'], ['client_hints', 'UV'], ['cert', 'san'], ['cert', 'pem'],
  ];
  const mutate = (): unknown => {
    const r = JSON.parse(JSON.stringify(valid)) as Record<string, unknown>;
    for (let m = 0, n = 1 + rnd(3); m < n; m++) {
      const p = paths[rnd(paths.length)]!;
      let o = r;
      for (const k of p.slice(0, -1)) {
        if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
        o = o[k] as Record<string, unknown>;
      }
      const last = p[p.length - 1]!;
      const cur = o[last];
      const choice = rnd(4);
      if (choice === 0) delete o[last];
      else if (choice === 1 || typeof cur !== 'string') o[last] = junk();
      else o[last] = mutateString(cur);
    }
    return r;
  };

  it('allows only requests that still name the active device certificate, and never crashes', async () => {
    let allows = 0;
    let badRequests = 0;
    for (let i = 0; i < 10_000; i++) {
      const raw = mutate();
      let normalized;
      try {
        normalized = normalizeDecisionRequest(raw);
      } catch (e) {
        expect(isAppError(e) && e.kind === 'bad_request').toBe(true);
        badRequests++;
        continue;
      }
      const facts = await gatherFacts(normalized.identity, normalized.request.event, fuzzLookups, opts);
      const d = decide(facts, policy, NOW);
      const response = toDecisionResponse(d, `id-${i}`);
      expect(decisionResponseSchema.safeParse(response).success).toBe(true);
      if (response.decision !== 'allow') continue;
      allows++;
      const id = normalized.identity;
      expect(response.device_id).toBe(DEVICE);
      const namesOurCert = id.sha256 === SHA || (id.sha256 === null && id.serial?.canonical === '1001' && id.issuer !== null);
      expect(namesOurCert).toBe(true);
      expect(id.claimedDeviceIds.every((c) => c === DEVICE)).toBe(true);
    }
    // Sanity: the mutations hit all three outcomes.
    expect(allows).toBeGreaterThan(100);
    expect(badRequests).toBeGreaterThan(100);
  });
});
