import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditPublicKeys, ensureDevAuditSigner, loadAuditSigner, publicKeyPathFor, signCheckpoint, checkpointMessage } from '../../../src/audit/signing';

describe('development audit signing key', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dg-audit-key-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is generated once (private key mode 0600, public key beside it) and reloaded afterwards', () => {
    const file = path.join(dir, 'data', 'audit-signing-key.pem');
    const first = ensureDevAuditSigner(file);
    expect(first.created).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(publicKeyPathFor(file)).toBe(path.join(dir, 'data', 'audit-signing-key.pub.pem'));
    expect(readFileSync(publicKeyPathFor(file), 'utf8')).toBe(first.signer.publicKeyPem);
    const second = ensureDevAuditSigner(file);
    expect(second.created).toBe(false);
    expect(second.signer.keyId).toBe(first.signer.keyId);
    // What the first signed, the reloaded public key verifies.
    const cp = signCheckpoint(first.signer, 1, 'a'.repeat(64), '2026-11-26T12:00:00.000Z');
    expect(new AuditPublicKeys([readFileSync(publicKeyPathFor(file))]).check(cp.keyId, checkpointMessage(cp), cp.signature)).toBe('ok');
  });

  it('reports an unreadable key file with a stable code', () => {
    expect(() => loadAuditSigner(path.join(dir, 'missing.pem'))).toThrow(expect.objectContaining({ code: 'AUDIT_KEY_UNREADABLE' }));
  });
});
