import { AUDIT_EVENT_TYPES, type AuditEventInput, ACTOR_REQUIRED_TYPES, buildAuditEvent, indexFields, parseAuditEvent } from '../../../src/audit/events';
import { T0, adminInput, decisionInput } from './fixtures';

const actor = { kind: 'user', id: 'admin@stadt.example', roles: ['it-admin'] } as const;
const hex = 'ab'.repeat(32);
const iso = new Date(T0).toISOString();

/** One valid example per event type: the schema must cover every type the gateway writes. */
const EXAMPLES: AuditEventInput[] = [
  decisionInput(1),
  {
    type: 'vpn.session_end',
    data: { deviceId: 'dev-1', user: 'u@stadt.example', peer: { ip: '2001:db8::1' }, concentrator: { id: 'radius-1', kind: 'freeradius' }, durationSeconds: 3600.5, bytesSent: 10, bytesReceived: 20 },
  },
  { type: 'device.enroll.start', data: { deviceId: 'dev-1', peer: { ip: '198.51.100.4' }, platform: 'windows' } },
  { type: 'device.enroll.attest', data: { deviceId: 'dev-1', format: 'tpm', ekPublicSha256: hex } },
  { type: 'device.enroll.complete', data: { deviceId: 'dev-1', certSerialHex: '0a1b' } },
  { type: 'device.enroll.fail', data: { deviceId: null, step: 'attestation', reason: 'AK_NOT_BOUND', peer: null } },
  { type: 'cert.issue', data: { deviceId: 'dev-1', serialHex: '0a1b', sha256: hex, notBefore: iso, notAfter: iso, via: 'enroll' } },
  { type: 'cert.renew', data: { deviceId: 'dev-1', serialHex: '0a1c', previousSerialHex: '0a1b', sha256: hex, notAfter: iso } },
  { type: 'cert.revoke', actor, data: { deviceId: 'dev-1', serialHex: '0a1b', reason: 'keyCompromise' } },
  { type: 'device.register', actor, data: { deviceId: 'dev-1', serialNumber: 'SN-1', platform: 'linux', owner: 'Amt 10' } },
  { type: 'device.import', actor, data: { rows: 10, created: 8, updated: 1, rejected: 1, fileSha256: hex } },
  adminInput(1),
  { type: 'enroll_token.create', actor, data: { deviceId: 'dev-1', expiresAt: iso } },
  { type: 'api_token.create', actor, data: { tokenId: 't1', name: 'ovpn-gw-01', role: 'concentrator', expiresAt: null } },
  { type: 'api_token.use', actor: { kind: 'token', id: 't1', role: 'concentrator' }, data: { tokenId: 't1', route: 'POST /v1/decisions' } },
  { type: 'api_token.revoke', actor, data: { tokenId: 't1' } },
  { type: 'admin.login', data: { user: 'x@stadt.example', method: 'saml', outcome: 'failure', roles: [], reason: 'SIGNATURE_INVALID' } },
  { type: 'admin.logout', actor: { kind: 'user', id: 'x@stadt.example', roles: ['auditor'] }, data: { user: 'x@stadt.example', method: 'saml', sessionSeconds: 1800, peer: { ip: '192.0.2.9' } } },
  { type: 'config.load', actor: { kind: 'system', id: 'system' }, data: { configSha256: hex, environment: 'production', files: ['/etc/devicegate/config.yaml'], devDefaults: [] } },
  { type: 'audit.export', actor, data: { format: 'ndjson', mode: 'query', filter: { deviceId: 'dev-1' }, rows: 3, pseudonymised: true } },
  { type: 'audit.verify', actor, data: { fromSeq: 1, toSeq: 100, ok: false, checked: 41, brokenSeq: 42, code: 'HASH_MISMATCH' } },
  { type: 'audit.checkpoint', actor: { kind: 'system', id: 'system' }, data: { seq: 9, hash: hex, signedAt: iso, keyId: hex, signature: 'A'.repeat(86) + '==' } },
  {
    type: 'audit.retention',
    actor: { kind: 'system', id: 'system' },
    data: { deletedThroughSeq: 9, deletedThroughHash: hex, deletedCount: 9, policy: { 'vpn.decision': 90, '*': null }, signedAt: iso, keyId: hex, signature: 'A'.repeat(86) + '==' },
  },
];

const build = (input: AuditEventInput) => buildAuditEvent(input, { eventId: () => 'e1', nowMs: T0 });
const rejects = (input: unknown) => expect(() => build(input as AuditEventInput)).toThrow(expect.objectContaining({ kind: 'bad_request', code: 'AUDIT_EVENT_INVALID' }));

describe('audit event schema', () => {
  it('has a valid example for every event type', () => {
    expect(new Set(EXAMPLES.map((e) => e.type))).toEqual(new Set(AUDIT_EVENT_TYPES));
    for (const ex of EXAMPLES) expect(build(ex)).toMatchObject({ v: 1, type: ex.type, eventId: 'e1' });
  });

  it('writes times as UTC ISO 8601 with milliseconds', () => {
    const e = build({ ...decisionInput(1), timeMs: Date.UTC(2026, 0, 2, 3, 4, 5, 6) });
    expect(e.time).toBe('2026-01-02T03:04:05.006Z');
    expect(build(decisionInput(1)).time).toBe('2026-11-26T12:00:00.000Z');
  });

  it('rejects data with an unplanned key (nothing unreviewed lands in an unalterable log)', () => {
    rejects({ ...decisionInput(1), data: { ...(decisionInput(1).data as object), password: 'hunter2' } });
  });

  it('rejects an admin event without an actor', () => {
    expect(ACTOR_REQUIRED_TYPES.has('cert.revoke')).toBe(true);
    rejects({ type: 'cert.revoke', data: { deviceId: 'dev-1', serialHex: '0a', reason: 'keyCompromise' } });
  });

  it('rejects an actor on a device-caused event and an unknown actor kind', () => {
    rejects({ ...decisionInput(1), actor });
    rejects({ ...adminInput(1), actor: { kind: 'root', id: 'x' } });
  });

  it('rejects an unknown event type, a non-ISO stored time and a non-finite time', () => {
    rejects({ type: 'vpn.hack', data: {} });
    expect(() => parseAuditEvent({ ...build(decisionInput(1)), time: '2026-11-26T12:00:00Z' })).toThrow(expect.objectContaining({ code: 'AUDIT_EVENT_INVALID' }));
    expect(() => parseAuditEvent({ ...build(decisionInput(1)), time: '2026-11-26T13:00:00.000+01:00' })).toThrow(expect.objectContaining({ code: 'AUDIT_EVENT_INVALID' }));
    rejects({ ...decisionInput(1), timeMs: Number.NaN });
  });

  it('rejects a malformed peer IP and a lower-case reason code', () => {
    const d = decisionInput(1).data as Record<string, unknown>;
    rejects({ type: 'vpn.decision', data: { ...d, peer: { ip: '999.1.1.1' } } });
    rejects({ type: 'vpn.decision', data: { ...d, reason: 'ok' } });
  });

  it('lists failing paths but never the offending values in the error', () => {
    try {
      build({ ...decisionInput(1), data: { ...(decisionInput(1).data as object), user: 12345678 } } as unknown as AuditEventInput);
      throw new Error('expected a throw');
    } catch (e) {
      const s = JSON.stringify((e as { details: unknown }).details);
      expect(s).toContain('data.user');
      expect(s).not.toContain('12345678');
    }
  });

  it('derives the indexed fields from the event', () => {
    expect(indexFields(build(decisionInput(7, { deviceId: 'd', user: 'u' })))).toEqual({ deviceId: 'd', user: 'u', decision: 'deny', reason: 'CERT_REVOKED', concentrator: 'ovpn-gw-01' });
    expect(indexFields(build(adminInput(1)))).toEqual({ deviceId: 'dev-1', user: 'admin1@stadt.example', decision: null, reason: null, concentrator: null });
  });
});
