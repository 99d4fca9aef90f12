import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import type { AuditEntry } from '../../../src/domain/types';
import { canonicalJson } from '../../../src/lib/canonical-json';
import { ChainVerifier, GENESIS_HASH, type TrustedPoint, type VerifyResult, entryBody, hashBody, link } from '../../../src/audit/chain';
import { SYSTEM_ACTOR } from '../../../src/audit/events';
import {
  AuditPublicKeys,
  type AuditSigner,
  checkpointMessage,
  createAuditSigner,
  retentionMessage,
  signCheckpoint,
  trailerMessage,
} from '../../../src/audit/signing';
import { T0, buildChain, checkpointEntry, decisionInput, keysOf, newSigner, relinkFrom, toEvent } from './fixtures';

// Parsed bodies are edited freely by the tamper tests.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Body = Record<string, any>;

const signer = newSigner();
const keys = keysOf(signer);

function verify(entries: readonly AuditEntry[], opts: Partial<ConstructorParameters<typeof ChainVerifier>[0]> = {}, finish: Parameters<ChainVerifier['finish']>[0] = {}): VerifyResult {
  const v = new ChainVerifier({ keys, ...opts });
  for (const e of entries) if (!v.pushEntry(e)) break;
  return v.finish(finish);
}

/** Edits the hashed body without recomputing the hash (what a careless attacker does). */
function editBody(e: AuditEntry, edit: (b: Body) => void): AuditEntry {
  const b = JSON.parse(e.body) as Body;
  edit(b);
  return { ...e, body: canonicalJson(b) };
}

/** Edits the body and recomputes this entry's hash (a careful attacker). */
function rewrite(e: AuditEntry, edit: (b: Body) => void): AuditEntry {
  const x = editBody(e, edit);
  return { ...x, hash: hashBody(x.body) };
}

const idx = (entries: AuditEntry[], seq: number): number => entries.findIndex((e) => e.seq === seq);

describe('link', () => {
  it('hashes the canonical body of the entry without its hash and fills the indexed fields', () => {
    const ev = toEvent(decisionInput(3, { deviceId: 'dev-x', user: 'erika@stadt.example' }));
    const e = link(null, 1, ev);
    expect(e.prevHash).toBe(GENESIS_HASH);
    expect(e.body).toBe(entryBody(1, GENESIS_HASH, ev));
    expect(e.body).toBe(canonicalJson({ ...ev, seq: 1, prevHash: GENESIS_HASH }));
    expect(e.hash).toBe(createHash('sha256').update(e.body).digest('hex'));
    expect(JSON.parse(e.body)).not.toHaveProperty('hash');
    expect(e).toMatchObject({ seq: 1, eventId: ev.eventId, type: 'vpn.decision', deviceId: 'dev-x', user: 'erika@stadt.example', decision: 'allow', reason: 'OK', concentrator: 'ovpn-gw-01', time: Date.parse(ev.time) });
    const e2 = link({ seq: 1, hash: e.hash }, 2, toEvent(decisionInput(4)));
    expect(e2.prevHash).toBe(e.hash);
  });

  it('refuses a seq that does not follow the head', () => {
    expect(() => link(null, 2, toEvent(decisionInput(1)))).toThrow(RangeError);
    expect(() => link({ seq: 5, hash: 'a'.repeat(64) }, 7, toEvent(decisionInput(1)))).toThrow(RangeError);
  });
});

describe('ChainVerifier', () => {
  const chain = buildChain(45, signer, 10);

  it('accepts an untampered chain from genesis and reports its checkpoints', () => {
    const r = verify(chain);
    expect(r).toMatchObject({ ok: true, checked: chain.length, firstSeq: 1, startAnchor: 'genesis', checkpoints: 4 });
    if (!r.ok) throw new Error('unreachable');
    expect(r.lastSeq).toBe(chain[chain.length - 1]?.seq);
    // Checkpoints follow seqs 10, 20, 30, 40 (position-based), so the newest entries are covered only by the chain.
    expect(r.uncoveredTail).toBe((r.lastSeq as number) - (r.lastCheckpointSeq as number));
    expect(r.uncoveredTail).toBeGreaterThan(0);
  });

  it('rejects an altered field (content changed, hash kept)', () => {
    const t = [...chain];
    const i = idx(t, 5);
    t[i] = editBody(t[i] as AuditEntry, (b) => (b.data.user = 'someone-else@stadt.example'));
    expect(verify(t)).toMatchObject({ ok: false, code: 'HASH_MISMATCH', brokenSeq: 5 });
  });

  it('rejects an altered field whose entry hash was recomputed (the next entry no longer links)', () => {
    const t = [...chain];
    const i = idx(t, 5);
    // The careful attacker also updates the indexed column, so only the link to entry 6 betrays the edit.
    t[i] = { ...rewrite(t[i] as AuditEntry, (b) => (b.data.user = 'someone-else@stadt.example')), user: 'someone-else@stadt.example' };
    expect(verify(t)).toMatchObject({ ok: false, code: 'PREV_HASH_MISMATCH', brokenSeq: 6 });
  });

  it('rejects an altered stored column that the hashed body contradicts (indexed user rewritten)', () => {
    const t = [...chain];
    const i = idx(t, 7);
    t[i] = { ...(t[i] as AuditEntry), user: 'innocent@stadt.example' };
    expect(verify(t)).toMatchObject({ ok: false, code: 'FIELD_MISMATCH', brokenSeq: 7 });
    const u = [...chain];
    u[i] = { ...(u[i] as AuditEntry), decision: 'deny' };
    expect(verify(u)).toMatchObject({ ok: false, code: 'FIELD_MISMATCH', brokenSeq: 7 });
  });

  it('rejects a deleted middle entry', () => {
    const t = chain.filter((e) => e.seq !== 23);
    expect(verify(t)).toMatchObject({ ok: false, code: 'SEQ_GAP', brokenSeq: 23 });
  });

  it('rejects a deleted last-but-one entry (gap decided at the end of the stream)', () => {
    const last = chain[chain.length - 1] as AuditEntry;
    const t = chain.filter((e) => e.seq !== last.seq - 1);
    expect(verify(t)).toMatchObject({ ok: false, code: 'SEQ_GAP', brokenSeq: last.seq - 1 });
  });

  it('rejects a deleted middle entry even when the rest is renumbered and re-linked (caught by the next checkpoint)', () => {
    const i = idx(chain, 23);
    const without = [...chain.slice(0, i), ...chain.slice(i + 1)];
    const forged = relinkFrom(without, i);
    const r = verify(forged);
    expect(r).toMatchObject({ ok: false, code: 'CHECKPOINT_MISMATCH' });
    expect((r as { brokenSeq: number }).brokenSeq).toBeGreaterThan(23);
  });

  it('rejects a reordered pair', () => {
    const t = [...chain];
    const i = idx(t, 14);
    [t[i], t[i + 1]] = [t[i + 1] as AuditEntry, t[i] as AuditEntry];
    expect(verify(t)).toMatchObject({ ok: false, code: 'REORDERED', brokenSeq: 14 });
  });

  it('rejects an inserted forged entry', () => {
    const i = idx(chain, 30);
    const prev = chain[i] as AuditEntry;
    const forged = link({ seq: prev.seq, hash: prev.hash }, prev.seq + 1, toEvent(decisionInput(999, { deviceId: 'dev-evil' })));
    const t = [...chain.slice(0, i + 1), forged, ...chain.slice(i + 1)];
    expect(verify(t)).toMatchObject({ ok: false, code: 'SEQ_ORDER', brokenSeq: 31 });
  });

  it('rejects an inserted forged entry with the whole chain after it recomputed (caught by the next checkpoint)', () => {
    const i = idx(chain, 30);
    const prev = chain[i] as AuditEntry;
    const forged = link({ seq: prev.seq, hash: prev.hash }, prev.seq + 1, toEvent(decisionInput(999, { deviceId: 'dev-evil' })));
    const t = relinkFrom([...chain.slice(0, i + 1), forged, ...chain.slice(i + 1)], i + 2);
    const r = verify(t);
    expect(r).toMatchObject({ ok: false, code: 'CHECKPOINT_MISMATCH' });
  });

  it('rejects a forged chain whose checkpoint was edited to cover the forgery (signature no longer verifies)', () => {
    const i = idx(chain, 30);
    const prev = chain[i] as AuditEntry;
    const forged = link({ seq: prev.seq, hash: prev.hash }, prev.seq + 1, toEvent(decisionInput(999)));
    let t = relinkFrom([...chain.slice(0, i + 1), forged, ...chain.slice(i + 1)], i + 2);
    // The attacker points the next checkpoint at the forged predecessor, then re-links again.
    const cpIdx = t.findIndex((e, k) => k > i && e.type === 'audit.checkpoint');
    const before = t[cpIdx - 1] as AuditEntry;
    t[cpIdx] = editBody(t[cpIdx] as AuditEntry, (b) => {
      b.data.seq = before.seq;
      b.data.hash = before.hash;
    });
    t = relinkFrom(t, cpIdx);
    expect(verify(t)).toMatchObject({ ok: false, code: 'CHECKPOINT_SIGNATURE_INVALID', brokenSeq: (t[cpIdx] as AuditEntry).seq });
  });

  it('rejects a replaced checkpoint signature (re-signed with an attacker key under the real key id)', () => {
    const attacker = newSigner();
    const t = [...chain];
    const cpIdx = t.findIndex((e) => e.type === 'audit.checkpoint');
    const cp = t[cpIdx] as AuditEntry;
    t[cpIdx] = rewrite(cp, (b) => {
      b.data.signature = attacker.sign(checkpointMessage({ seq: b.data.seq, hash: b.data.hash, signedAt: b.data.signedAt, keyId: b.data.keyId }));
    });
    const r = verify(relinkFrom(t, cpIdx + 1).map((e, k) => (k === cpIdx ? (t[cpIdx] as AuditEntry) : e)));
    expect(r).toMatchObject({ ok: false, code: 'CHECKPOINT_SIGNATURE_INVALID', brokenSeq: cp.seq });
  });

  it('rejects a replaced checkpoint signature made with an attacker key under its own key id', () => {
    const attacker = newSigner();
    const t = [...chain];
    const cpIdx = t.findIndex((e) => e.type === 'audit.checkpoint');
    const cp = t[cpIdx] as AuditEntry;
    const covered = t[cpIdx - 1] as AuditEntry;
    t[cpIdx] = checkpointEntry({ seq: covered.seq, hash: covered.hash }, attacker);
    const forged = relinkFrom(t, cpIdx + 1);
    expect(verify(forged)).toMatchObject({ ok: false, code: 'UNKNOWN_KEY', brokenSeq: cp.seq });
  });

  it('rejects a checkpoint signature copied from another checkpoint', () => {
    const cps = chain.map((e, k) => [e, k] as const).filter(([e]) => e.type === 'audit.checkpoint');
    const [, k1] = cps[0] as readonly [AuditEntry, number];
    const [second] = cps[1] as readonly [AuditEntry, number];
    const stolen = (JSON.parse(second.body) as { data: { signature: string } }).data.signature;
    const t = [...chain];
    t[k1] = rewrite(t[k1] as AuditEntry, (b) => (b.data.signature = stolen));
    const forged = relinkFrom(t, k1 + 1).map((e, k) => (k === k1 ? (t[k1] as AuditEntry) : e));
    expect(verify(forged)).toMatchObject({ ok: false, code: 'CHECKPOINT_SIGNATURE_INVALID', brokenSeq: (t[k1]).seq });
  });

  it('rejects a truncated tail when a signed checkpoint known from outside vouches for a later entry', () => {
    const cps = chain.filter((e) => e.type === 'audit.checkpoint');
    const lastCp = cps[cps.length - 1] as AuditEntry;
    const witness: TrustedPoint = { seq: lastCp.seq, hash: lastCp.hash };
    // Without the tail, the chain itself is internally consistent...
    const truncated = chain.filter((e) => e.seq < lastCp.seq - 3);
    expect(verify(truncated)).toMatchObject({ ok: true });
    // ...but the anchor proves entries existed beyond its end.
    expect(verify(truncated, { anchors: [witness] }, { expectTailThrough: Number.MAX_SAFE_INTEGER })).toMatchObject({
      ok: false,
      code: 'TRUNCATED',
      brokenSeq: lastCp.seq - 3,
    });
    expect(verify(chain, { anchors: [witness] }, { expectTailThrough: Number.MAX_SAFE_INTEGER })).toMatchObject({ ok: true });
  });

  it('rejects a rewritten entry that a trusted anchor names with another hash', () => {
    const e20 = chain[idx(chain, 20)] as AuditEntry;
    expect(verify(chain, { anchors: [{ seq: 20, hash: 'f'.repeat(64) }] })).toMatchObject({ ok: false, code: 'ANCHOR_MISMATCH', brokenSeq: 20 });
    expect(verify(chain, { anchors: [{ seq: 20, hash: e20.hash }] })).toMatchObject({ ok: true });
  });

  it('rejects a start that nothing vouches for (a prefix deleted outside the retention job)', () => {
    const t = chain.filter((e) => e.seq > 4);
    expect(verify(t)).toMatchObject({ ok: false, code: 'UNANCHORED_START', brokenSeq: 5 });
  });

  it('accepts a start vouched for by a later checkpoint covering exactly its predecessor', () => {
    // Entries 12.. start right after checkpoint 11 (covering 10): begin at the checkpoint itself.
    const cpIdx = chain.findIndex((e) => e.type === 'audit.checkpoint');
    const t = chain.slice(cpIdx);
    expect(verify(t)).toMatchObject({ ok: true, startAnchor: 'checkpoint' });
  });

  it('accepts a start vouched for by a signed retention record later in the chain, and rejects a forged record', () => {
    const last = chain[chain.length - 1] as AuditEntry;
    const cut = chain[idx(chain, 8)] as AuditEntry;
    const claim = {
      deletedThroughSeq: cut.seq,
      deletedThroughHash: cut.hash,
      deletedCount: 8,
      policy: { 'vpn.decision': 90, '*': 365 },
      signedAt: new Date(T0).toISOString(),
      keyId: signer.keyId,
    };
    const record = (s: AuditSigner) =>
      link({ seq: last.seq, hash: last.hash }, last.seq + 1, {
        v: 1,
        eventId: randomUUID(),
        time: claim.signedAt,
        type: 'audit.retention',
        actor: SYSTEM_ACTOR,
        data: { ...claim, signature: s.sign(retentionMessage(claim)) },
      });
    const kept = chain.filter((e) => e.seq > cut.seq);
    expect(verify([...kept, record(signer)])).toMatchObject({ ok: true, startAnchor: 'retention', firstSeq: cut.seq + 1 });
    expect(verify([...kept, record(newSigner())])).toMatchObject({ ok: false, code: 'RETENTION_SIGNATURE_INVALID' });
  });

  it('rejects entry 1 that does not link to genesis', () => {
    const t = [...chain];
    t[0] = rewrite(t[0] as AuditEntry, (b) => (b.prevHash = 'a'.repeat(64)));
    t[0] = { ...(t[0]), prevHash: 'a'.repeat(64) };
    expect(verify(t)).toMatchObject({ ok: false, code: 'PREV_HASH_MISMATCH', brokenSeq: 1 });
  });

  it('rejects a body that is not JSON', () => {
    const t = [...chain];
    t[3] = { ...(t[3] as AuditEntry), body: '{"seq":4,' };
    expect(verify(t)).toMatchObject({ ok: false, code: 'MALFORMED_ENTRY' });
  });
});

describe('audit signing key', () => {
  it('refuses a P-256 key (the CA key type) as audit key', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => createAuditSigner(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())).toThrow(
      expect.objectContaining({ code: 'AUDIT_KEY_INVALID', kind: 'bad_request' }),
    );
  });

  it('refuses an RSA key and garbage', () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(() => createAuditSigner(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())).toThrow(expect.objectContaining({ code: 'AUDIT_KEY_INVALID' }));
    expect(() => createAuditSigner('not a key')).toThrow(expect.objectContaining({ code: 'AUDIT_KEY_INVALID' }));
    expect(() => new AuditPublicKeys(['-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'])).toThrow(expect.objectContaining({ code: 'AUDIT_PUBKEY_INVALID' }));
  });

  it('rejects a checkpoint signature presented as an export-trailer or retention signature (purpose separation)', () => {
    const cp = signCheckpoint(signer, 10, 'a'.repeat(64), new Date(T0).toISOString());
    expect(keys.check(signer.keyId, checkpointMessage(cp), cp.signature)).toBe('ok');
    const asTrailer = { seq: 10, hash: 'a'.repeat(64), signedAt: cp.signedAt, keyId: signer.keyId };
    expect(keys.check(signer.keyId, trailerMessage(asTrailer), cp.signature)).toBe('bad-signature');
    expect(
      keys.check(
        signer.keyId,
        retentionMessage({ deletedThroughSeq: 10, deletedThroughHash: 'a'.repeat(64), deletedCount: 0, policy: {}, signedAt: cp.signedAt, keyId: signer.keyId }),
        cp.signature,
      ),
    ).toBe('bad-signature');
  });

  it('rejects a malformed signature without throwing', () => {
    expect(keys.check(signer.keyId, Buffer.from('x'), 'not base64!')).toBe('bad-signature');
    expect(keys.check('0'.repeat(64), Buffer.from('x'), 'A'.repeat(86) + '==')).toBe('unknown-key');
  });
});
