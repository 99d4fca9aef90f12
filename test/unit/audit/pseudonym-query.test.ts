import { randomBytes } from 'node:crypto';
import { createPseudonymiser } from '../../../src/audit/pseudonym';
import { entryToApi, parseAuditEventsQuery, parseAuditExportQuery, parseAuditVerifyQuery } from '../../../src/audit/query';
import { link } from '../../../src/audit/chain';
import { adminInput, decisionInput, toEvent } from './fixtures';
import {
  AUDIT_PSEUDONYM_KEY_ENV,
  DEV_AUDIT_PSEUDONYM_KEY,
  auditConfigSchema,
  auditDevDefaults,
  auditRetentionPolicy,
  resolveAuditPaths,
  resolveAuditPseudonymKey,
} from '../../../src/config/sections/audit';

describe('pseudonymisation', () => {
  const key = randomBytes(32);
  const p = createPseudonymiser(key);

  it('is stable per key and differs between keys', () => {
    expect(p.pseudonym('user', 'erika@stadt.example')).toBe(createPseudonymiser(key).pseudonym('user', 'erika@stadt.example'));
    expect(p.pseudonym('user', 'erika@stadt.example')).not.toBe(createPseudonymiser(randomBytes(32)).pseudonym('user', 'erika@stadt.example'));
    expect(p.pseudonym('user', 'erika@stadt.example')).not.toBe(p.pseudonym('user', 'max@stadt.example'));
    expect(p.pseudonym('user', 'erika@stadt.example')).toMatch(/^ps-[0-9a-f]{32}$/);
  });

  it('replaces every user name in a decision and the acting user, and leaves the original untouched', () => {
    const body = JSON.parse(link(null, 1, toEvent(decisionInput(1, { user: 'erika@stadt.example' }))).body);
    const original = JSON.stringify(body);
    const { value, changed } = p.apply(body);
    expect(changed).toBe(true);
    expect(JSON.stringify(value)).not.toContain('erika@stadt.example');
    expect(value.data.user).toBe(p.pseudonym('user', 'erika@stadt.example'));
    expect(value.data.ids.username).toBe(p.pseudonym('user', 'erika@stadt.example'));
    expect(value.data.peer.ip).toBe('203.0.113.1');
    expect(JSON.stringify(body)).toBe(original);
    const admin = p.apply(JSON.parse(link(null, 1, toEvent(adminInput(1))).body));
    expect(admin.value.actor.id).toBe(p.pseudonym('user', 'admin1@stadt.example'));
  });

  it('optionally replaces IP addresses too', () => {
    const withIps = createPseudonymiser(key, { ips: true });
    const { value } = withIps.apply(JSON.parse(link(null, 1, toEvent(decisionInput(1))).body));
    expect(value.data.peer.ip).toBe(withIps.pseudonym('ip', '203.0.113.1'));
  });

  it('refuses a key shorter than 32 bytes', () => {
    expect(() => createPseudonymiser(Buffer.alloc(16))).toThrow(RangeError);
  });
});

describe('auditor query parameters', () => {
  const bad = (fn: () => unknown, code = 'AUDIT_QUERY_INVALID') => expect(fn).toThrow(expect.objectContaining({ kind: 'bad_request', code }));

  it('parses filters, limit and cursor', () => {
    const q = parseAuditEventsQuery({ from: '2026-11-26T00:00:00Z', to: '2026-11-27', device: 'dev-1', decision: 'deny', reason: 'CERT_REVOKED', type: 'vpn.decision', limit: '50', cursor: 'WzEyXQ' });
    expect(q.filter).toMatchObject({ fromTime: Date.UTC(2026, 10, 26), toTime: Date.UTC(2026, 10, 27), deviceId: 'dev-1', decision: 'deny', reason: 'CERT_REVOKED', type: 'vpn.decision' });
    expect(q.page).toEqual({ cursor: 'WzEyXQ', limit: 50 });
    expect(parseAuditEventsQuery({}).page).toEqual({ cursor: null, limit: 100 });
  });

  it('rejects a huge limit, a zero limit and a non-numeric limit', () => {
    bad(() => parseAuditEventsQuery({ limit: '1000000' }));
    bad(() => parseAuditEventsQuery({ limit: '0' }));
    bad(() => parseAuditEventsQuery({ limit: '10abc' }));
  });

  it('rejects invalid filters: unknown type, bad time, from after to, unknown parameter, repeated parameter', () => {
    bad(() => parseAuditEventsQuery({ type: 'vpn.nope' }));
    bad(() => parseAuditEventsQuery({ from: 'yesterday' }));
    bad(() => parseAuditEventsQuery({ from: '2026-11-27', to: '2026-11-26' }));
    bad(() => parseAuditEventsQuery({ devcie: 'dev-1' }));
    bad(() => parseAuditEventsQuery({ device: ['a', 'b'] }));
    bad(() => parseAuditEventsQuery({ decision: 'maybe' }));
  });

  it('makes an unfiltered export a range export and a filtered one a query export', () => {
    expect(parseAuditExportQuery({ format: 'csv', fromSeq: '5' })).toEqual({ format: 'csv', source: { mode: 'range', fromSeq: 5, toSeq: undefined }, pseudonymise: undefined });
    expect(parseAuditExportQuery({ device: 'dev-1', pseudonymise: 'true' })).toMatchObject({ format: 'ndjson', source: { mode: 'query', filter: { deviceId: 'dev-1' } }, pseudonymise: true });
    bad(() => parseAuditExportQuery({ device: 'dev-1', fromSeq: '3' }));
    bad(() => parseAuditExportQuery({ format: 'xml' }));
    bad(() => parseAuditExportQuery({ fromSeq: '9', toSeq: '3' }));
  });

  it('parses verify bounds and rejects malformed ones', () => {
    expect(parseAuditVerifyQuery({ from: '1', to: '10' })).toEqual({ from: 1, to: 10 });
    bad(() => parseAuditVerifyQuery({ from: '-1' }));
    bad(() => parseAuditVerifyQuery({ from: '10', to: '1' }));
    bad(() => parseAuditVerifyQuery({ from: '1e3' }));
  });

  it('renders an entry with its chain fields, pseudonymised on request', () => {
    const e = link(null, 1, toEvent(decisionInput(1, { user: 'erika@stadt.example' })));
    expect(entryToApi(e)).toMatchObject({ seq: 1, hash: e.hash, type: 'vpn.decision', data: { user: 'erika@stadt.example' } });
    const p = createPseudonymiser(randomBytes(32));
    const r = entryToApi(e, p);
    expect(r).toMatchObject({ seq: 1, pseudonymised: true, data: { user: p.pseudonym('user', 'erika@stadt.example') } });
  });
});

describe('audit config section', () => {
  it('defaults: checkpoints, group commit, 90-day connection retention, no raw logs for it-admin', () => {
    const c = auditConfigSchema.parse(undefined);
    expect(c).toMatchObject({ checkpointEveryEntries: 1000, checkpointIntervalSeconds: 60, groupCommitWindowMs: 0, groupCommitMaxBatch: 256, itAdminMayReadRawLogs: false });
    expect(c.retentionDays['vpn.decision']).toBe(90);
    expect(auditRetentionPolicy(auditConfigSchema.parse({ retentionDays: { 'vpn.decision': 30, '*': 400 } }))).toEqual({ days: { 'vpn.decision': 30 }, defaultDays: 400 });
    expect(resolveAuditPaths(c, '/var/lib/devicegate')).toEqual({
      spoolDir: '/var/lib/devicegate/audit-spool',
      signingKeyFile: '/var/lib/devicegate/audit-signing-key.pem',
      signingKeyIsDev: true,
    });
  });

  it('names the development defaults that production must refuse', () => {
    const c = auditConfigSchema.parse({});
    expect(auditDevDefaults(c, {})).toEqual(['audit.signingKeyFile', 'audit.pseudonymKeyFile']);
    expect(auditDevDefaults(c, { [AUDIT_PSEUDONYM_KEY_ENV]: DEV_AUDIT_PSEUDONYM_KEY })).toContain('audit.pseudonymKeyFile');
    const prod = auditConfigSchema.parse({ signingKeyFile: '/etc/devicegate/audit.pem' });
    expect(auditDevDefaults(prod, { [AUDIT_PSEUDONYM_KEY_ENV]: 'x'.repeat(40) })).toEqual([]);
  });

  it('rejects a too-short pseudonymisation key and invalid settings', () => {
    const c = auditConfigSchema.parse({});
    expect(() => resolveAuditPseudonymKey(c, { [AUDIT_PSEUDONYM_KEY_ENV]: 'short' }, () => Buffer.alloc(0))).toThrow(/at least 32 bytes/);
    expect(resolveAuditPseudonymKey(c, {}, () => Buffer.alloc(0))).toMatchObject({ isDev: true });
    const fileCfg = auditConfigSchema.parse({ pseudonymKeyFile: '/k' });
    expect(resolveAuditPseudonymKey(fileCfg, {}, () => Buffer.from(`${'k'.repeat(40)}\n`)).key.toString()).toBe('k'.repeat(40));
    expect(auditConfigSchema.safeParse({ groupCommitMaxBatch: 0 }).success).toBe(false);
    expect(auditConfigSchema.safeParse({ retentionDays: { 'Not A Type': 3 } }).success).toBe(false);
  });
});


