/**
 * Test fixtures for the audit module: keys, realistic events, and a chain builder for the pure tests (entries are
 * built with the production `link`/`signCheckpoint`, exactly as AuditLog builds them).
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { AuditEntry } from '../../../src/domain/types';
import { link } from '../../../src/audit/chain';
import { type AuditEvent, type AuditEventInput, buildAuditEvent, SYSTEM_ACTOR } from '../../../src/audit/events';
import { AuditPublicKeys, type AuditSigner, createAuditSigner, signCheckpoint } from '../../../src/audit/signing';

export const T0 = Date.UTC(2026, 10, 26, 12, 0, 0);

export function newSigner(): AuditSigner {
  const { privateKey } = generateKeyPairSync('ed25519');
  return createAuditSigner(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
}

export function keysOf(...signers: AuditSigner[]): AuditPublicKeys {
  return new AuditPublicKeys(signers.map((s) => s.publicKeyPem));
}

/** A connection decision as the concentrator route would log it. */
export function decisionInput(i: number, overrides: { deviceId?: string; user?: string; timeMs?: number; eventId?: string } = {}): AuditEventInput {
  return {
    type: 'vpn.decision',
    eventId: overrides.eventId,
    timeMs: overrides.timeMs,
    data: {
      requestId: `req-${i}`,
      decisionId: `dec-${i}`,
      event: 'connect',
      decision: i % 7 === 0 ? 'deny' : 'allow',
      reason: i % 7 === 0 ? 'CERT_REVOKED' : 'OK',
      deviceId: overrides.deviceId ?? `dev-${i % 50}`,
      user: overrides.user ?? `user${i % 30}@stadt.example`,
      peer: { ip: `203.0.113.${i % 250}`, port: 40000 + (i % 1000) },
      concentrator: { id: 'ovpn-gw-01', kind: 'openvpn', hook: 'mgmt-connect', version: '2.6.14' },
      cert: { sha256: 'ab'.repeat(32), serialHex: (1000 + i).toString(16), cn: `dev-${i % 50}` },
      ids: { username: overrides.user ?? `user${i % 30}@stadt.example` },
      latencyMs: 3.5,
    },
  };
}

/** An admin action with an actor. */
export function adminInput(i: number, timeMs?: number): AuditEventInput {
  return {
    type: 'device.status_change',
    timeMs,
    actor: { kind: 'user', id: `admin${i % 3}@stadt.example`, roles: ['it-admin'] },
    data: { deviceId: `dev-${i % 50}`, from: 'active', to: 'suspended', reason: 'lost' },
  };
}

export function toEvent(input: AuditEventInput, nowMs = T0): AuditEvent {
  return buildAuditEvent(input, { eventId: () => randomUUID(), nowMs });
}

/**
 * Builds a chain of `n` decision entries with a signed checkpoint after every `every` entries (seq multiple of
 * `every`, as AuditLog places them).
 */
export function buildChain(n: number, signer: AuditSigner, every = 10, startTime = T0): AuditEntry[] {
  const out: AuditEntry[] = [];
  let head: { seq: number; hash: string } | null = null;
  let i = 0;
  while (i < n) {
    const e = link(head, (head?.seq ?? 0) + 1, toEvent(decisionInput(i), startTime + i * 1000));
    out.push(e);
    head = { seq: e.seq, hash: e.hash };
    i += 1;
    if (e.seq % every === 0) {
      const cp = checkpointEntry(head, signer, startTime + i * 1000);
      out.push(cp);
      head = { seq: cp.seq, hash: cp.hash };
    }
  }
  return out;
}

export function checkpointEntry(covered: { seq: number; hash: string }, signer: AuditSigner, atMs = T0): AuditEntry {
  const signedAt = new Date(atMs).toISOString();
  const cp = signCheckpoint(signer, covered.seq, covered.hash, signedAt);
  return link(covered, covered.seq + 1, {
    v: 1,
    eventId: randomUUID(),
    time: signedAt,
    type: 'audit.checkpoint',
    actor: SYSTEM_ACTOR,
    data: { seq: cp.seq, hash: cp.hash, signedAt, keyId: cp.keyId, signature: cp.signature },
  });
}

/** Re-links `entries` from index `from` on (an attacker who can write the store recomputes the chain). */
export function relinkFrom(entries: AuditEntry[], from: number): AuditEntry[] {
  const out = entries.slice(0, from);
  let head = from > 0 ? { seq: (out[from - 1] as AuditEntry).seq, hash: (out[from - 1] as AuditEntry).hash } : null;
  for (const e of entries.slice(from)) {
    const body = JSON.parse(e.body) as AuditEvent & { seq?: number; prevHash?: string };
    delete body.seq;
    delete body.prevHash;
    const re = link(head, (head?.seq ?? 0) + 1, body);
    out.push(re);
    head = { seq: re.seq, hash: re.hash };
  }
  return out;
}
