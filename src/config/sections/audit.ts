import path from 'node:path';
import { z } from 'zod';

/**
 * The pseudonymisation key used when none is configured. It is public (it is in the source), so pseudonyms made with
 * it can be reversed by anyone with a list of user names: acceptable on a developer machine, refused in production
 * (`auditDevDefaults` names it and the loader refuses dev defaults when `env` is production).
 */
export const DEV_AUDIT_PSEUDONYM_KEY = 'devicegate-dev-audit-pseudonym-key--not-for-production';

/** Environment variable read (by the config loader, never by src/audit) for the pseudonymisation key. */
export const AUDIT_PSEUDONYM_KEY_ENV = 'DEVICEGATE_AUDIT_PSEUDONYM_KEY';

const RETENTION_TYPE_RE = /^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*)$/;

/** `audit`: the tamper-evident audit log (src/audit). */
export const auditConfigSchema = z
  .object({
    checkpointEveryEntries: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(1000)
      .describe(
        'Write a signed checkpoint after every entry whose seq is a multiple of this number (position-based, so several gateway instances agree).',
      ),
    checkpointIntervalSeconds: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .default(60)
      .describe(
        'Also write a signed checkpoint when this many seconds passed since the last one and new entries arrived, so truncating the newest entries is detectable within this window.',
      ),
    groupCommitWindowMs: z
      .number()
      .int()
      .min(0)
      .max(50)
      .default(0)
      .describe(
        'Group commit: appends arriving within this many milliseconds of the first pending one are written in one atomic batch. 0 (default) = the next event-loop turn: an idle gateway commits at once, and under load the appends that arrive while a batch is being written form the next batch anyway. A window only adds latency (about 2 ms per idle decision at 2).',
      ),
    groupCommitMaxBatch: z
      .number()
      .int()
      .min(1)
      .max(5000)
      .default(256)
      .describe('Group commit: most entries written in one batch; a full batch is written at once without waiting.'),
    spoolDir: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe(
        'Local directory for the outage spool (fsync-ed append-only file replayed when the store returns) and the latest-checkpoint witness. Must be on local disk and private to one gateway instance. Default `<dataDir>/audit-spool`.',
      ),
    spoolRetrySeconds: z
      .number()
      .min(0.05)
      .max(300)
      .default(1)
      .describe('While spooling, how often to try replaying the spool into the store (doubles up to 30 s while the store stays down).'),
    signingKeyFile: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe(
        'Ed25519 private key (PKCS#8 PEM) that signs checkpoints, retention records and export trailers. Must not be the CA key. Unset: a development key is generated under `<dataDir>/audit-signing-key.pem` (refused in production). Give auditors the public key (`.pub.pem` beside it).',
      ),
    retentionDays: z
      .record(z.string().regex(RETENTION_TYPE_RE, 'an event type such as vpn.decision, or *'), z.number().int().min(1).max(36_500))
      .default({ 'vpn.decision': 90, 'vpn.session_end': 90, 'api_token.use': 90, 'admin.login': 90, 'admin.logout': 90 })
      .describe(
        'Retention per event type in days; `*` is the default for types not listed (unlisted and no `*`: kept for ever). Deletion removes only whole prefixes of the chain, so an entry stays until every older entry may go as well.',
      ),
    defaultRetentionDays: z
      .number()
      .int()
      .min(1)
      .max(36_500)
      .nullable()
      .default(90)
      .describe(
        'Retention in days for event types neither listed in `retentionDays` nor covered by `*`; null keeps them for ever (which also stops all later deletion). Deletion removes whole prefixes of the one chain, so the longest retention of any type sets the horizon for all older entries: keep the types equal (90 days, the common limit for connection data) and archive signed exports of what must be kept longer (BSI OPS.1.1.5 A8).',
      ),
    pseudonymKeyFile: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe(
        `File holding the HMAC-SHA256 key for pseudonymising user names in exports (at least 32 bytes). Alternatively set ${AUDIT_PSEUDONYM_KEY_ENV}. Unset: a public development key (refused in production).`,
      ),
    pseudonymiseExportsByDefault: z
      .boolean()
      .default(false)
      .describe('Pseudonymise user names in auditor exports unless the request asks for clear names.'),
    itAdminMayReadRawLogs: z
      .boolean()
      .default(false)
      .describe('Let the `it-admin` role read and export audit entries (read only). Off by default: only `auditor` may.'),
  })
  .prefault({})
  .describe('Tamper-evident audit log.');

/** The resolved `audit` section. */
export type AuditConfig = z.infer<typeof auditConfigSchema>;

/**
 * The audit settings that are development defaults (key paths under `audit.`). The config loader refuses to start
 * in production while this list is non-empty. `env` is passed in so this stays pure.
 */
export function auditDevDefaults(cfg: AuditConfig, env: Readonly<Record<string, string | undefined>>): string[] {
  const out: string[] = [];
  if (cfg.signingKeyFile === null) out.push('audit.signingKeyFile');
  const envKey = env[AUDIT_PSEUDONYM_KEY_ENV];
  if (cfg.pseudonymKeyFile === null && (envKey === undefined || envKey === '' || envKey === DEV_AUDIT_PSEUDONYM_KEY)) {
    out.push('audit.pseudonymKeyFile');
  }
  return out;
}

/** Paths the audit module needs, resolved against the data directory. */
export interface ResolvedAuditPaths {
  readonly spoolDir: string;
  /** The configured key, or the dev key path under the data dir (created on first start outside production). */
  readonly signingKeyFile: string;
  /** True when `signingKeyFile` is the generated development key. */
  readonly signingKeyIsDev: boolean;
}

/** Resolves the defaulted paths of the audit section against `dataDir`. */
export function resolveAuditPaths(cfg: AuditConfig, dataDir: string): ResolvedAuditPaths {
  return {
    spoolDir: cfg.spoolDir ?? path.join(dataDir, 'audit-spool'),
    signingKeyFile: cfg.signingKeyFile ?? path.join(dataDir, 'audit-signing-key.pem'),
    signingKeyIsDev: cfg.signingKeyFile === null,
  };
}

/**
 * The pseudonymisation key bytes: from `pseudonymKeyFile` (trimmed), else from the environment variable, else the
 * public development key. Throws a plain Error naming the setting when the configured key is shorter than 32 bytes;
 * the loader turns it into its configuration error. `readFile` is injected so this stays testable.
 */
export function resolveAuditPseudonymKey(
  cfg: AuditConfig,
  env: Readonly<Record<string, string | undefined>>,
  readFile: (file: string) => Buffer,
): { readonly key: Buffer; readonly isDev: boolean } {
  let key: Buffer;
  let isDev = false;
  if (cfg.pseudonymKeyFile !== null) {
    key = Buffer.from(readFile(cfg.pseudonymKeyFile).toString('utf8').trim(), 'utf8');
  } else if (env[AUDIT_PSEUDONYM_KEY_ENV]) {
    key = Buffer.from(env[AUDIT_PSEUDONYM_KEY_ENV], 'utf8');
    isDev = env[AUDIT_PSEUDONYM_KEY_ENV] === DEV_AUDIT_PSEUDONYM_KEY;
  } else {
    key = Buffer.from(DEV_AUDIT_PSEUDONYM_KEY, 'utf8');
    isDev = true;
  }
  if (key.length < 32) throw new Error('audit.pseudonymKeyFile: the pseudonymisation key must be at least 32 bytes');
  return { key, isDev };
}

/** The retention policy in the shape `src/audit/retention.ts` takes. */
export function auditRetentionPolicy(cfg: AuditConfig): { days: Record<string, number>; defaultDays: number | null } {
  const days = { ...cfg.retentionDays };
  const star = days['*'];
  delete days['*'];
  return { days, defaultDays: star ?? cfg.defaultRetentionDays };
}
