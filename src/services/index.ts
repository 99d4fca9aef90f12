import path from 'node:path';
import { ApiTokenService } from '../auth/api-tokens';
import { loadCa } from '../ca';
import type { Config } from '../config/schema';
import type { Clock } from '../lib/clock';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../metrics/registry';
import type { Store } from '../store/types';
import { auditActor } from './actors';
import { AuditAccessService } from './audit-access';
import { AuditRetention } from './audit-retention';
import { openAuditTrail, type AuditTrail } from './audit-trail';
import { createDecisionService, type DecisionService } from './decisions';
import { EnrollmentService, tpmPolicyFromConfig } from './enrollment';
import { PkiService } from './pki';
import { DeviceRegistry } from './registry';
import { createSso, type Sso } from './sso';

/** Everything the HTTP edge and the CLI call. Built once by `buildServices`; the only place that wires modules. */
export interface Services {
  readonly apiTokens: ApiTokenService;
  readonly audit: AuditTrail;
  /** Auditors' read access (search, export, verify); shared by the API and the console. */
  readonly auditAccess: AuditAccessService;
  /** The only deletion path of the audit log (retention of whole prefixes). */
  readonly auditRetention: AuditRetention;
  readonly decisions: DecisionService;
  readonly enrollment: EnrollmentService;
  readonly pki: PkiService;
  readonly registry: DeviceRegistry;
  /** SAML single sign-on and browser sessions; null when `saml.enabled` is false. */
  readonly sso: Sso | null;
  /** Stops background work (timers, subscriptions) and flushes the audit log before the store closes. */
  close(): Promise<void>;
}

export interface ServiceDeps {
  readonly config: Config;
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Environment for settings that name an environment variable (secrets); never read elsewhere. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** `cli` for admin commands (see openAuditTrail). */
  readonly role?: 'server' | 'cli';
  /** Human-readable notices for the operator's terminal (e.g. "generated a dev CA under …"). */
  readonly notice?: (message: string) => void;
}

export async function buildServices(deps: ServiceDeps): Promise<Services> {
  const { config, store, clock, logger } = deps;
  const audit = await openAuditTrail(deps);
  const ca = await loadCa(
    // The dev CA lives beside the installation (certs-dev/), not wherever the process was started.
    { ...config.ca, devDir: path.resolve(config.rootDir, config.ca.devDir) },
    {
      publicUrl: config.publicUrl,
      nowMs: clock.nowMs(),
      env: deps.env ?? {},
      production: config.mode === 'production',
      baseDir: process.cwd(),
      log: {
        info: (obj, msg) => {
          logger.info(obj, msg);
          if (/generated a dev CA/.test(msg)) deps.notice?.(`Generated a development CA (DEV ONLY) under ${(obj as { dir?: string }).dir ?? config.ca.devDir}`);
        },
        warn: (obj, msg) => logger.warn(obj, msg),
      },
    },
  );
  if (ca.isDev) deps.notice?.(`Development CA: ${path.resolve(config.rootDir, config.ca.devDir)} (chain at ${config.publicUrl}/v1/ca/chain)`);
  const pki = new PkiService(ca, { store, clock, audit: audit.recorder, metrics: deps.metrics, logger, config: config.ca });
  const apiTokens = new ApiTokenService(store.apiTokens, clock, {
    async created(record, actor) {
      await audit.recorder.append({
        type: 'api_token.create',
        actor: auditActor(actor),
        data: {
          tokenId: record.id,
          name: record.name,
          role: record.role,
          expiresAt: record.expiresAt === null ? null : new Date(record.expiresAt).toISOString(),
        },
      });
    },
    async revoked(id, actor) {
      await audit.recorder.append({ type: 'api_token.revoke', actor: auditActor(actor), data: { tokenId: id } });
    },
  });
  const registry = new DeviceRegistry({
    store,
    audit: audit.recorder,
    clock,
    enrollmentTokenTtlSeconds: config.enrollment.tokenTtlSeconds,
    revoker: pki,
  });
  const enrollment = new EnrollmentService({
    store,
    clock,
    audit: audit.recorder,
    pki,
    metrics: deps.metrics,
    policy: tpmPolicyFromConfig(config),
    challengeTtlMs: config.enrollment.challengeTtlSeconds * 1000,
    renewalNonceTtlMs: config.tpm.nonceTtlSeconds * 1000,
    renewalEnabled: config.enrollment.renewalEnabled,
  });
  const auditAccess = new AuditAccessService({ config, store, clock, trail: audit, env: deps.env ?? {} });
  const auditRetention = new AuditRetention({ config, store, clock, trail: audit, logger });
  const sso = await createSso({ ...deps, audit: audit.recorder });
  const decisions = createDecisionService({ config, store, clock, logger, metrics: deps.metrics, audit: audit.recorder, pki });
  return {
    apiTokens,
    audit,
    auditAccess,
    auditRetention,
    decisions,
    enrollment,
    pki,
    registry,
    sso,
    async close() {
      auditRetention.stop();
      await sso?.close();
      // Decisions first (stops feeds and subscriptions), then the audit log drains, then the CA closes HSM sessions.
      await decisions.close();
      await audit.log.close();
      await pki.close();
    },
  };
}
