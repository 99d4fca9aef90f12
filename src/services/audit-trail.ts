import path from 'node:path';
import { AuditLog } from '../audit/audit-log';
import { ensureDevAuditSigner, loadAuditSigner, type AuditSigner } from '../audit/signing';
import { resolveAuditPaths } from '../config/sections/audit';
import type { Config } from '../config/schema';
import type { Clock } from '../lib/clock';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../metrics/registry';
import type { Store } from '../store/types';

export interface AuditTrail {
  readonly log: AuditLog;
  /** What services append through: the log itself, or for the CLI a wrapper that never spools. */
  readonly recorder: Pick<AuditLog, 'append'>;
  readonly signer: AuditSigner;
  /** True when the signing key is the generated development key. */
  readonly devKey: boolean;
}

/**
 * Opens the audit log with its signing key: the configured key in production, a generated development key under the
 * data directory otherwise (production start-up refuses that case before we get here). Metrics and logs are fed
 * from the log's hooks so src/audit stays free of prom-client and pino.
 */
export async function openAuditTrail(deps: {
  config: Config;
  store: Store;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /**
   * `cli`: a short-lived admin command. It must not share the server's spool (one writer per spool file), and an
   * admin action whose audit record cannot reach the store fails instead of being spooled by a process about to exit.
   */
  role?: 'server' | 'cli';
}): Promise<AuditTrail> {
  const { config, logger, metrics } = deps;
  const paths = resolveAuditPaths(config.audit, config.dataDir);
  let signer: AuditSigner;
  if (paths.signingKeyIsDev) {
    const dev = ensureDevAuditSigner(paths.signingKeyFile);
    signer = dev.signer;
    if (dev.created) logger.warn({ file: paths.signingKeyFile }, 'generated a development audit signing key');
  } else {
    signer = loadAuditSigner(paths.signingKeyFile);
  }
  const log = await AuditLog.open({
    store: deps.store.audit,
    signer,
    clock: deps.clock,
    spoolDir: deps.role === 'cli' ? path.join(paths.spoolDir, `cli-${process.pid}`) : paths.spoolDir,
    checkpointEveryEntries: config.audit.checkpointEveryEntries,
    checkpointIntervalMs: config.audit.checkpointIntervalSeconds * 1000,
    groupCommitWindowMs: config.audit.groupCommitWindowMs,
    groupCommitMaxBatch: config.audit.groupCommitMaxBatch,
    spoolRetryMs: config.audit.spoolRetrySeconds * 1000,
    hooks: {
      onCommit: (i) => {
        metrics.auditAppends.inc({ outcome: 'stored' }, i.events);
        metrics.auditBatchSize.observe(i.entries);
      },
      onSpool: (i) => {
        metrics.auditAppends.inc({ outcome: 'spooled' }, i.events);
        logger.warn({ events: i.events }, 'audit store unavailable: entries spooled locally');
      },
      onReplay: (i) => {
        metrics.auditAppends.inc({ outcome: 'replayed' }, i.events);
        logger.info(i, 'audit spool replayed into the store');
      },
      onModeChange: (mode) => logger.warn({ mode }, 'audit log mode changed'),
      onError: (err, context) => logger.error({ err, context }, 'audit background failure'),
    },
  });
  metrics.auditSpooled.set(0);
  const recorder: Pick<AuditLog, 'append'> =
    deps.role === 'cli' ? { append: (input) => log.append(input, { requireStore: true }) } : log;
  return { log, recorder, signer, devKey: paths.signingKeyIsDev };
}
