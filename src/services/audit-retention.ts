import { AuditPublicKeys } from '../audit/signing';
import { planRetention, runRetention, type RetentionPlan, type RetentionResult } from '../audit/retention';
import { auditRetentionPolicy } from '../config/sections/audit';
import type { Config } from '../config/schema';
import type { Clock } from '../lib/clock';
import type { Logger } from '../lib/logger';
import { isAlreadyExists } from '../store/errors';
import type { Store } from '../store/types';
import type { AuditTrail } from './audit-trail';

/** One retention run at a time across all gateway instances (a store-backed lease). */
const LEASE_KEY = 'audit-retention-lease';
const LEASE_MS = 30 * 60_000;
/** How often a running gateway applies retention. */
const INTERVAL_MS = 24 * 3600_000;

/**
 * The defined deletion process of BSI OPS.1.1.5: deletion happens only here, only of whole prefixes of the chain
 * whose every entry is past its type's retention period, and only after a signed "deleted up to seq N, hash H"
 * record is durably in the store, so verification of what remains still succeeds. No API route reaches it.
 */
export class AuditRetention {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly deps: { config: Config; store: Store; clock: Clock; trail: AuditTrail; logger: Logger },
  ) {}

  private get policy() {
    return auditRetentionPolicy(this.deps.config.audit);
  }

  /** What a run would delete now, without deleting. */
  async plan(): Promise<RetentionPlan> {
    const keys = new AuditPublicKeys([this.deps.trail.signer.publicKeyPem]);
    return planRetention(this.deps.store.audit, this.policy, this.deps.clock.nowMs(), keys);
  }

  /** One run; returns null when another instance holds the lease. */
  async runOnce(): Promise<RetentionResult | null> {
    const now = this.deps.clock.nowMs();
    try {
      await this.deps.store.nonces.put(LEASE_KEY, String(process.pid), LEASE_MS, now);
    } catch (e) {
      if (isAlreadyExists(e)) return null;
      throw e;
    }
    try {
      return await runRetention({
        store: this.deps.store.audit,
        log: this.deps.trail.log,
        signer: this.deps.trail.signer,
        keys: new AuditPublicKeys([this.deps.trail.signer.publicKeyPem]),
        policy: this.policy,
        nowMs: now,
      });
    } finally {
      await this.deps.store.nonces.delete(LEASE_KEY).catch(() => undefined);
    }
  }

  /** Runs now and then daily (server processes only); failures are logged and retried on the next tick. */
  start(): void {
    const tick = (): void => {
      this.runOnce()
        .then((r) => {
          if (r && r.deleted > 0) this.deps.logger.info({ deleted: r.deleted, recordSeq: r.recordSeq }, 'audit retention deleted a prefix');
        })
        .catch((err: unknown) => this.deps.logger.error({ err }, 'audit retention run failed'));
    };
    tick();
    this.timer = setInterval(tick, INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
