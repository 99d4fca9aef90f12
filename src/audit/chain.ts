/**
 * The hash chain (pure: no I/O, no clock).
 *
 * An entry's body is the canonical JSON (src/lib/canonical-json) of the event plus its chain position:
 * `{ ...event, seq, prevHash }`, and `hash = SHA-256(body)` in lower-case hex. Because `seq` and `prevHash` are inside
 * the hashed body, every entry commits to its position and to everything before it; the first entry links to
 * `GENESIS_HASH`. A hash chain alone can be recomputed by whoever can write the store, so the signed checkpoints
 * (./signing) are what make rewriting detectable; the chain makes each checkpoint cover all earlier entries.
 */
import { hash as oneShotHash } from 'node:crypto';
import type { AuditEntry } from '../domain/types';
import type { AuditHead } from '../store/types';
import { canonicalJson } from '../lib/canonical-json';
import { type AuditEvent, indexFields } from './events';
import { type AuditPublicKeys, checkpointMessage, retentionMessage } from './signing';

/** `prevHash` of the first entry ever written. */
export const GENESIS_HASH = '0'.repeat(64);

/** Lower-case hex SHA-256 of a body string (UTF-8). */
export function hashBody(body: string): string {
  // One-shot crypto.hash (Node ≥ 20.12) is about twice as fast as createHash for bodies this small.
  return oneShotHash('sha256', body, 'hex');
}

/** The canonical body of an event at a chain position: exactly the bytes that are hashed. */
export function entryBody(seq: number, prevHash: string, event: AuditEvent): string {
  return canonicalJson({ ...event, seq, prevHash });
}

/**
 * Links `event` after `prevHead` (null: the empty log) at `seq`, which must be `prevHead.seq + 1` (1 for the empty
 * log). Returns the stored entry with body, hash and the indexed query fields filled.
 */
export function link(prevHead: AuditHead | null, seq: number, event: AuditEvent): AuditEntry {
  const expected = prevHead ? prevHead.seq + 1 : 1;
  if (seq !== expected) throw new RangeError(`link: seq ${seq} does not follow head ${prevHead?.seq ?? 'empty'}`);
  const prevHash = prevHead ? prevHead.hash : GENESIS_HASH;
  const body = entryBody(seq, prevHash, event);
  return {
    seq,
    eventId: event.eventId,
    time: Date.parse(event.time),
    type: event.type,
    prevHash,
    hash: hashBody(body),
    body,
    ...indexFields(event),
  };
}

/** Stable reasons a verification fails; `brokenSeq` says where. */
export type VerifyCode =
  /** A body does not parse or lacks the chain fields. */
  | 'MALFORMED_ENTRY'
  /** SHA-256(body) differs from the stored/exported hash: a field was altered. */
  | 'HASH_MISMATCH'
  /** A stored column (seq, type, user, …) differs from the hashed body: an indexed field was altered. */
  | 'FIELD_MISMATCH'
  /** seq numbers skip: an entry was deleted. */
  | 'SEQ_GAP'
  /** Two entries appear in swapped order. */
  | 'REORDERED'
  /** A seq repeats or goes backwards: an entry was inserted or duplicated. */
  | 'SEQ_ORDER'
  /** An entry does not link to the hash of the one before: an entry was inserted, replaced or removed. */
  | 'PREV_HASH_MISMATCH'
  /** A checkpoint covers a different (seq, hash) than the entry before it: the chain before it was rewritten. */
  | 'CHECKPOINT_MISMATCH'
  | 'CHECKPOINT_SIGNATURE_INVALID'
  | 'RETENTION_SIGNATURE_INVALID'
  /** Signed by a key the verifier does not trust. */
  | 'UNKNOWN_KEY'
  /** The first entry links to something neither genesis, a signed retention record nor a checkpoint vouches for. */
  | 'UNANCHORED_START'
  /** A trusted anchor (an earlier checkpoint or trailer) names a different hash at its seq. */
  | 'ANCHOR_MISMATCH'
  /** The log ends before an entry a trusted anchor vouches for: the tail was truncated. */
  | 'TRUNCATED'
  /** Export-file level: no trailer (tail cut off), a bad trailer, or lines after it. */
  | 'TRAILER_MISSING'
  | 'TRAILER_MISMATCH'
  | 'TRAILER_SIGNATURE_INVALID'
  | 'EMPTY';

/** The first break found: where (`brokenSeq`), a stable `code` and a message naming the entry. */
export interface VerifyFailure {
  readonly ok: false;
  /** The first seq found broken (null when no seq applies, e.g. a missing trailer of an empty export). */
  readonly brokenSeq: number | null;
  readonly code: VerifyCode;
  readonly message: string;
  /** Entries accepted before the failure. */
  readonly checked: number;
}

/** How the first verified entry's predecessor is vouched for. */
export type StartAnchor = 'genesis' | 'retention' | 'checkpoint' | 'anchor' | 'predecessor' | 'trailer';

/** Everything checked out; what was covered and how the start is vouched for. */
export interface VerifySuccess {
  readonly ok: true;
  readonly checked: number;
  readonly firstSeq: number | null;
  readonly lastSeq: number | null;
  readonly lastHash: string | null;
  readonly startAnchor: StartAnchor | null;
  readonly checkpoints: number;
  readonly lastCheckpointSeq: number | null;
  /** Entries after the last checkpoint: covered only by the chain until the next checkpoint is written. */
  readonly uncoveredTail: number;
}

/** Outcome of a verification: ok, or the first broken seq and why. */
export type VerifyResult = VerifySuccess | VerifyFailure;

/** A (seq, hash) pair the verifier trusts from elsewhere. */
export interface TrustedPoint {
  readonly seq: number;
  readonly hash: string;
}

/** What the verifier trusts besides genesis: the public keys, start points and anchors. */
export interface ChainVerifierOptions {
  readonly keys: AuditPublicKeys;
  /**
   * Trusted predecessors of the first entry (e.g. the latest retention record, or entry from−1 when verifying a
   * sub-range). Genesis is always trusted for seq 1.
   */
  readonly startPoints?: readonly (TrustedPoint & { readonly kind: StartAnchor })[];
  /**
   * Points known from a trusted source (a previous checkpoint witness or export trailer). An entry at such a seq must
   * have that hash; `finish({ expectTail })` reports TRUNCATED when the log ends before one of them.
   */
  readonly anchors?: readonly TrustedPoint[];
  /**
   * When the entries are not contiguous (a filtered export), only per-entry checks run: hash and signatures, no
   * seq/prevHash linkage and no start anchor.
   */
  readonly unlinked?: boolean;
}

interface ParsedBody {
  seq: number;
  prevHash: string;
  eventId: string;
  time: string;
  type: string;
  actor?: { kind: string; id: string };
  data: Record<string, unknown>;
}

/** The first stored column that differs from what the hashed body says, or null. */
function mismatchedColumn(stored: AuditEntry, b: ParsedBody): string | null {
  if (stored.seq !== b.seq) return 'seq';
  if (stored.prevHash !== b.prevHash) return 'prevHash';
  if (stored.eventId !== b.eventId) return 'eventId';
  if (stored.type !== b.type) return 'type';
  if (stored.time !== Date.parse(b.time)) return 'time';
  const idx = indexFields(b);
  if (stored.deviceId !== idx.deviceId) return 'deviceId';
  if (stored.user !== idx.user) return 'user';
  if (stored.decision !== idx.decision) return 'decision';
  if (stored.reason !== idx.reason) return 'reason';
  if (stored.concentrator !== idx.concentrator) return 'concentrator';
  return null;
}

/**
 * Verifies a chain one entry at a time in constant memory (a one-entry look-behind and one pending gap), so it can
 * check millions of rows streamed from the store or an export file.
 *
 * Checks, in order, per entry:
 *   1. the body parses and carries seq/prevHash/type (MALFORMED_ENTRY);
 *   2. SHA-256(body) = hash (HASH_MISMATCH), skipped for pseudonymised export lines whose content the export
 *      trailer authenticates instead;
 *   3. for store entries, the stored columns equal what the body says (FIELD_MISMATCH);
 *   4. seq = previous seq + 1 (SEQ_GAP / REORDERED / SEQ_ORDER) and prevHash = previous hash (PREV_HASH_MISMATCH);
 *   5. a checkpoint covers exactly (seq − 1, prevHash) and its Ed25519 signature verifies (CHECKPOINT_*);
 *   6. a retention record's signature verifies; it may anchor the first entry.
 * `finish()` then requires an anchored start and checks the trusted anchors for truncation.
 */
export class ChainVerifier {
  private checked = 0;
  private firstSeq: number | null = null;
  private lastSeq: number | null = null;
  private lastHash: string | null = null;
  private startAnchor: StartAnchor | null = null;
  /** Predecessor of the first entry, waiting for a retention record/checkpoint/trailer to vouch for it. */
  private pendingStart: TrustedPoint | null = null;
  /** One missing seq after `lastSeq`: decided at the next entry (reordered pair) or at finish (gap). */
  private pendingGap: { missing: number; seen: { seq: number; hash: string; prevHash: string } } | null = null;
  private checkpoints = 0;
  private lastCheckpointSeq: number | null = null;
  private failure: VerifyFailure | null = null;
  private readonly anchors: Map<number, string>;

  constructor(private readonly opts: ChainVerifierOptions) {
    this.anchors = new Map((opts.anchors ?? []).map((a) => [a.seq, a.hash]));
  }

  /** The first failure, once one happened (later pushes are ignored). */
  get failed(): VerifyFailure | null {
    return this.failure;
  }

  /** Last accepted (seq, hash), for callers that compare it with a trailer. */
  get tail(): TrustedPoint | null {
    return this.lastSeq === null || this.lastHash === null ? null : { seq: this.lastSeq, hash: this.lastHash };
  }

  /** First accepted seq and its prevHash, for callers that compare it with a trailer. */
  get head(): { seq: number; prevHash: string } | null {
    return this.firstSeq === null || this.firstPrevHash === null ? null : { seq: this.firstSeq, prevHash: this.firstPrevHash };
  }

  private firstPrevHash: string | null = null;

  /** Verifies a stored entry, including its indexed columns. Returns false once the chain is broken. */
  pushEntry(entry: AuditEntry): boolean {
    return this.push(entry.hash, entry.body, entry, false);
  }

  /**
   * Verifies an exported line's entry. With `pseudonymised`, the body was altered on purpose for the export, so the
   * content hash is not checked (the signed export trailer authenticates the line) but linkage and signatures are.
   */
  pushExported(hash: string, body: string, pseudonymised = false): boolean {
    return this.push(hash, body, null, pseudonymised);
  }

  private recorded(): VerifyFailure {
    return this.failure as VerifyFailure;
  }

  private fail(brokenSeq: number | null, code: VerifyCode, message: string): false {
    if (!this.failure) this.failure = { ok: false, brokenSeq, code, message, checked: this.checked };
    return false;
  }

  private push(hash: string, body: string, stored: AuditEntry | null, skipHash: boolean): boolean {
    if (this.failure) return false;
    const expectedSeq = this.lastSeq === null ? null : this.lastSeq + 1;

    // 1. Parse.
    let b: ParsedBody;
    try {
      b = JSON.parse(body) as ParsedBody;
    } catch {
      return this.fail(stored?.seq ?? expectedSeq, 'MALFORMED_ENTRY', 'entry body is not JSON');
    }
    if (
      b === null ||
      typeof b !== 'object' ||
      !Number.isSafeInteger(b.seq) ||
      b.seq < 1 ||
      typeof b.prevHash !== 'string' ||
      typeof b.type !== 'string' ||
      typeof b.eventId !== 'string' ||
      typeof b.time !== 'string' ||
      b.data === null ||
      typeof b.data !== 'object'
    ) {
      return this.fail(stored?.seq ?? expectedSeq, 'MALFORMED_ENTRY', 'entry body lacks seq, prevHash, type, eventId, time or data');
    }

    // 2. Content hash.
    if (!skipHash && hashBody(body) !== hash) {
      return this.fail(stored?.seq ?? b.seq, 'HASH_MISMATCH', `entry ${stored?.seq ?? b.seq}: SHA-256 of the body does not match its hash (content altered)`);
    }

    // 4 before 3: the body's own seq (now authenticated) decides ordering, so a swapped pair of store rows reads as
    // "reordered" rather than as a column mismatch.
    if (!this.opts.unlinked) {
      if (this.pendingGap) {
        const gap = this.pendingGap;
        this.pendingGap = null;
        if (b.seq === gap.missing) {
          return this.fail(gap.missing, 'REORDERED', `entries ${gap.missing} and ${gap.seen.seq} appear in swapped order`);
        }
        return this.fail(gap.missing, 'SEQ_GAP', `entry ${gap.missing} is missing (deleted)`);
      }
      if (this.lastSeq === null) {
        if (!this.acceptStart(b)) return false;
      } else if (b.seq <= this.lastSeq) {
        return this.fail(b.seq, 'SEQ_ORDER', `entry ${b.seq} follows entry ${this.lastSeq}: inserted, duplicated or reordered`);
      } else if (b.seq === this.lastSeq + 2 && b.prevHash !== this.lastHash) {
        // Exactly one missing: hold it for one entry to tell a deleted entry from a swapped pair.
        this.pendingGap = { missing: this.lastSeq + 1, seen: { seq: b.seq, hash, prevHash: b.prevHash } };
        return true;
      } else if (b.seq !== this.lastSeq + 1) {
        return this.fail(this.lastSeq + 1, 'SEQ_GAP', `entries ${this.lastSeq + 1}..${b.seq - 1} are missing (deleted)`);
      } else if (b.prevHash !== this.lastHash) {
        return this.fail(b.seq, 'PREV_HASH_MISMATCH', `entry ${b.seq} does not link to the hash of entry ${this.lastSeq}`);
      }
      const anchored = this.anchors.get(b.seq);
      if (anchored !== undefined && anchored !== hash) {
        return this.fail(b.seq, 'ANCHOR_MISMATCH', `entry ${b.seq} differs from the signed checkpoint known for it`);
      }
    }

    // 3. Stored columns must say what the hashed body says.
    if (stored) {
      const mismatch = mismatchedColumn(stored, b);
      if (mismatch) {
        return this.fail(stored.seq, 'FIELD_MISMATCH', `entry ${stored.seq}: stored column ${mismatch} differs from the hashed body`);
      }
    }

    // 5./6. Signed system entries.
    if (b.type === 'audit.checkpoint' && !this.checkCheckpoint(b)) return false;
    if (b.type === 'audit.retention' && !this.checkRetention(b)) return false;

    this.lastSeq = b.seq;
    this.lastHash = hash;
    this.checked += 1;
    return true;
  }

  private acceptStart(b: ParsedBody): boolean {
    this.firstSeq = b.seq;
    this.firstPrevHash = b.prevHash;
    if (b.seq === 1) {
      // Genesis: the first entry ever written links to the all-zero hash.
      if (b.prevHash !== GENESIS_HASH) return this.fail(1, 'PREV_HASH_MISMATCH', 'entry 1 does not link to the genesis hash');
      this.startAnchor = 'genesis';
      return true;
    }
    const sp = (this.opts.startPoints ?? []).find((p) => p.seq === b.seq - 1);
    if (sp) {
      if (sp.hash !== b.prevHash) {
        return this.fail(b.seq, 'PREV_HASH_MISMATCH', `entry ${b.seq} does not link to the trusted hash of entry ${sp.seq} (${sp.kind})`);
      }
      this.startAnchor = sp.kind;
      return true;
    }
    const anchored = this.anchors.get(b.seq - 1);
    if (anchored !== undefined) {
      if (anchored !== b.prevHash) return this.fail(b.seq, 'ANCHOR_MISMATCH', `entry ${b.seq} does not link to the anchored entry ${b.seq - 1}`);
      this.startAnchor = 'anchor';
      return true;
    }
    this.pendingStart = { seq: b.seq - 1, hash: b.prevHash };
    return true;
  }

  private resolveStart(point: TrustedPoint, kind: StartAnchor): void {
    if (this.pendingStart && this.pendingStart.seq === point.seq && this.pendingStart.hash === point.hash) {
      this.pendingStart = null;
      this.startAnchor = kind;
    }
  }

  private checkCheckpoint(b: ParsedBody): boolean {
    const d = b.data as { seq?: unknown; hash?: unknown; signedAt?: unknown; keyId?: unknown; signature?: unknown };
    if (typeof d.seq !== 'number' || typeof d.hash !== 'string' || typeof d.signedAt !== 'string' || typeof d.keyId !== 'string' || typeof d.signature !== 'string') {
      return this.fail(b.seq, 'MALFORMED_ENTRY', `checkpoint ${b.seq} lacks seq, hash, signedAt, keyId or signature`);
    }
    // A checkpoint covers the entry right before it; through prevHash that is every earlier entry.
    if (!this.opts.unlinked && (d.seq !== b.seq - 1 || d.hash !== b.prevHash)) {
      return this.fail(b.seq, 'CHECKPOINT_MISMATCH', `checkpoint ${b.seq} does not cover entry ${b.seq - 1} as linked (chain before it was rewritten)`);
    }
    const check = this.opts.keys.check(d.keyId, checkpointMessage({ seq: d.seq, hash: d.hash, signedAt: d.signedAt, keyId: d.keyId }), d.signature);
    if (check === 'unknown-key') return this.fail(b.seq, 'UNKNOWN_KEY', `checkpoint ${b.seq} is signed by an untrusted key`);
    if (check !== 'ok') return this.fail(b.seq, 'CHECKPOINT_SIGNATURE_INVALID', `checkpoint ${b.seq}: signature does not verify`);
    this.checkpoints += 1;
    this.lastCheckpointSeq = b.seq;
    this.resolveStart({ seq: d.seq, hash: d.hash }, 'checkpoint');
    return true;
  }

  private checkRetention(b: ParsedBody): boolean {
    const d = b.data;
    if (
      typeof d.deletedThroughSeq !== 'number' ||
      typeof d.deletedThroughHash !== 'string' ||
      typeof d.deletedCount !== 'number' ||
      typeof d.policy !== 'object' ||
      d.policy === null ||
      typeof d.signedAt !== 'string' ||
      typeof d.keyId !== 'string' ||
      typeof d.signature !== 'string'
    ) {
      return this.fail(b.seq, 'MALFORMED_ENTRY', `retention record ${b.seq} lacks its signed fields`);
    }
    const check = this.opts.keys.check(
      d.keyId,
      retentionMessage({
        deletedThroughSeq: d.deletedThroughSeq,
        deletedThroughHash: d.deletedThroughHash,
        deletedCount: d.deletedCount,
        policy: d.policy as Record<string, number | null>,
        signedAt: d.signedAt,
        keyId: d.keyId,
      }),
      d.signature,
    );
    if (check === 'unknown-key') return this.fail(b.seq, 'UNKNOWN_KEY', `retention record ${b.seq} is signed by an untrusted key`);
    if (check !== 'ok') return this.fail(b.seq, 'RETENTION_SIGNATURE_INVALID', `retention record ${b.seq}: signature does not verify`);
    this.resolveStart({ seq: d.deletedThroughSeq, hash: d.deletedThroughHash }, 'retention');
    return true;
  }

  /**
   * Ends verification. `trailerStart` lets an export trailer vouch for the first entry's predecessor (weaker: it is
   * the exporting server's word). With `expectTailThrough`, a trusted anchor at or below that seq but beyond the
   * last entry means the tail was truncated.
   */
  finish(opts: { trailerStart?: TrustedPoint; expectTailThrough?: number } = {}): VerifyResult {
    if (this.failure) return this.failure;
    if (this.pendingGap) {
      const gap = this.pendingGap;
      this.pendingGap = null;
      // The entry after the gap was never followed by the missing one: a deletion, not a swap.
      this.fail(gap.missing, 'SEQ_GAP', `entry ${gap.missing} is missing (deleted)`);
      return this.recorded();
    }
    if (!this.opts.unlinked && this.pendingStart) {
      if (opts.trailerStart) this.resolveStart(opts.trailerStart, 'trailer');
      if (this.pendingStart) {
        const first = this.firstSeq;
        this.fail(
          first,
          'UNANCHORED_START',
          `entry ${first} links to entry ${this.pendingStart.seq}, which no genesis, signed retention record or checkpoint vouches for (prefix deleted outside retention?)`,
        );
        return this.recorded();
      }
    }
    if (!this.opts.unlinked && opts.expectTailThrough !== undefined) {
      for (const [seq] of this.anchors) {
        if (seq <= opts.expectTailThrough && (this.lastSeq === null || seq > this.lastSeq)) {
          this.fail(
            this.lastSeq === null ? seq : this.lastSeq + 1,
            'TRUNCATED',
            `the log ends at ${this.lastSeq ?? 'nothing'} but a signed checkpoint vouches for entry ${seq}: the tail was truncated`,
          );
          return this.recorded();
        }
      }
    }
    return {
      ok: true,
      checked: this.checked,
      firstSeq: this.firstSeq,
      lastSeq: this.lastSeq,
      lastHash: this.lastHash,
      startAnchor: this.startAnchor,
      checkpoints: this.checkpoints,
      lastCheckpointSeq: this.lastCheckpointSeq,
      uncoveredTail: this.lastSeq === null ? 0 : this.lastSeq - (this.lastCheckpointSeq ?? (this.firstSeq ?? 1) - 1),
    };
  }
}
