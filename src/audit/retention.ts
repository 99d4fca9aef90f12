/**
 * Retention: the one defined deletion process of the audit log (BSI OPS.1.1.5.A5 "delete via a defined process";
 * GDPR Art. 5(1)(e) storage limitation).
 *
 * Only whole prefixes of the chain are deleted, by this job, never by an API route. Before deleting, the job
 *   1. scans from the first retained entry and stops at the first entry that must be kept (its type's retention
 *      has not run out), so a prefix is never punched with holes;
 *   2. verifies the chain of that prefix, and refuses to delete when it is broken (deleting would destroy the
 *      evidence of tampering);
 *   3. appends a signed `audit.retention` record "deleted through seq N, hash H" to the chain and waits until it is
 *      in the store (not the spool);
 *   4. deletes seq ≤ N.
 * Entry N+1 links to H, and the signed record vouches for H, so verification from the new first entry succeeds. A
 * crash between 3 and 4 leaves a record and an undeleted prefix, which still verifies; the next run deletes it.
 *
 * Consequence of whole-prefix deletion: an entry lives until every older entry may go as well. Short retention for
 * connection events is only effective when the types written alongside them have no longer retention.
 */
import { AppError } from '../domain/errors';
import type { AuditEntry } from '../domain/types';
import type { AuditStore } from '../store/types';
import type { AppendOptions, AppendReceipt } from './audit-log';
import { ChainVerifier, type StartAnchor, type TrustedPoint } from './chain';
import { type AuditEventInput, SYSTEM_ACTOR } from './events';
import { type AuditPublicKeys, type AuditSigner, retentionMessage } from './signing';
import { retentionStartPoints } from './verify';

const DAY_MS = 86_400_000;

/** Retention days per event type, and for all other types (null: for ever). */
export interface RetentionPolicy {
  readonly days: Readonly<Record<string, number>>;
  readonly defaultDays: number | null;
}

/** Types that describe the chain itself; they never hold deletion back. */
const FOLLOWER_TYPES: ReadonlySet<string> = new Set(['audit.checkpoint', 'audit.retention']);

/** Epoch ms from which an entry may be deleted, or null when it is kept for ever. */
export function deletableFromMs(type: string, timeMs: number, policy: RetentionPolicy): number | null {
  const days = policy.days[type] ?? policy.defaultDays;
  return days === null || days === undefined ? null : timeMs + days * DAY_MS;
}

/** The deletable prefix found by `planRetention`. */
export interface RetentionPlan {
  /** Delete seq ≤ throughSeq (null: nothing to delete). */
  readonly throughSeq: number | null;
  readonly throughHash: string | null;
  readonly count: number;
  /** The first entry that must be kept, which ended the prefix. */
  readonly stoppedAt: { readonly seq: number; readonly type: string; readonly deletableFrom: string | null } | null;
}

/** Inputs of one retention run; `nowMs` is passed in, never read from a clock here. */
export interface RetentionOptions {
  readonly store: AuditStore;
  /** Appends the retention record (an `AuditLog`). */
  readonly log: { append(input: AuditEventInput, options?: AppendOptions): Promise<AppendReceipt> };
  readonly signer: AuditSigner;
  /** Keys for verifying the prefix before it is deleted (normally the signer's public key plus retired keys). */
  readonly keys: AuditPublicKeys;
  readonly policy: RetentionPolicy;
  readonly nowMs: number;
  readonly pageSize?: number;
  /** Most entries deleted per run (bounds the run's duration); default unlimited. */
  readonly maxDelete?: number;
}

/** What one retention run did. */
export interface RetentionResult {
  readonly plan: RetentionPlan;
  /** Rows the store deleted. */
  readonly deleted: number;
  /** Seq of the signed retention record, when one was written. */
  readonly recordSeq: number | null;
}

/**
 * Finds the longest deletable prefix and verifies its chain on the way (one pass). Throws
 * `AUDIT_RETENTION_REFUSED` (internal) with the broken seq when the prefix does not verify.
 */
export async function planRetention(
  store: AuditStore,
  policy: RetentionPolicy,
  nowMs: number,
  keys: AuditPublicKeys,
  options: { pageSize?: number; maxDelete?: number } = {},
): Promise<RetentionPlan> {
  const first = await store.firstSeq();
  const head = await store.head();
  if (first === null || head === null) return { throughSeq: null, throughHash: null, count: 0, stoppedAt: null };
  const startPoints: (TrustedPoint & { kind: StartAnchor })[] =
    first > 1 ? (await retentionStartPoints(store, keys)).map((p) => ({ ...p, kind: 'retention' as const })) : [];
  const verifier = new ChainVerifier({ keys, startPoints });
  const pageSize = options.pageSize ?? 2000;
  const maxDelete = options.maxDelete ?? Number.POSITIVE_INFINITY;
  let last: AuditEntry | null = null;
  let count = 0;
  let stoppedAt: RetentionPlan['stoppedAt'] = null;
  let next = first;
  scan: while (next <= head.seq) {
    const page = await store.range(next, head.seq, pageSize);
    if (page.length === 0) break;
    for (const e of page) {
      if (count >= maxDelete) break scan;
      if (!FOLLOWER_TYPES.has(e.type)) {
        const from = deletableFromMs(e.type, e.time, policy);
        if (from === null || from > nowMs) {
          stoppedAt = { seq: e.seq, type: e.type, deletableFrom: from === null ? null : new Date(from).toISOString() };
          break scan;
        }
      }
      if (!verifier.pushEntry(e)) break scan;
      last = e;
      count += 1;
    }
    next = (page[page.length - 1] as AuditEntry).seq + 1;
  }
  const result = verifier.finish();
  if (!result.ok) {
    throw new AppError('internal', 'AUDIT_RETENTION_REFUSED', 'the audit chain to be deleted does not verify; nothing was deleted', {
      details: { brokenSeq: result.brokenSeq, code: result.code },
    });
  }
  const l = last;
  return { throughSeq: l ? l.seq : null, throughHash: l ? l.hash : null, count, stoppedAt };
}

/**
 * Runs one retention pass: plan (with verification), signed record, delete. Returns what was deleted. Nothing is
 * deleted when the plan is empty, the chain does not verify, or the record could not be written to the store.
 */
export async function runRetention(opts: RetentionOptions): Promise<RetentionResult> {
  const plan = await planRetention(opts.store, opts.policy, opts.nowMs, opts.keys, {
    pageSize: opts.pageSize,
    maxDelete: opts.maxDelete,
  });
  if (plan.throughSeq === null || plan.throughHash === null) return { plan, deleted: 0, recordSeq: null };
  const signedAt = new Date(opts.nowMs).toISOString();
  const policy: Record<string, number | null> = { ...opts.policy.days, '*': opts.policy.defaultDays };
  const claim = {
    deletedThroughSeq: plan.throughSeq,
    deletedThroughHash: plan.throughHash,
    deletedCount: plan.count,
    policy,
    signedAt,
    keyId: opts.signer.keyId,
  };
  const signature = opts.signer.sign(retentionMessage(claim));
  const receipt = await opts.log.append(
    { type: 'audit.retention', actor: SYSTEM_ACTOR, timeMs: opts.nowMs, data: { ...claim, signature } },
    { requireStore: true },
  );
  if (receipt.durable !== 'store') {
    throw new AppError('unavailable', 'AUDIT_STORE_UNAVAILABLE', 'retention record did not reach the store; nothing was deleted');
  }
  const deleted = await opts.store.deletePrefix(plan.throughSeq + 1);
  return { plan, deleted, recordSeq: receipt.seq };
}
