/**
 * Read access to the audit log for auditors, shared by the auditor API (`/v1/audit/*`) and the console: search,
 * streamed export with a signed trailer, chain verification, the latest checkpoint, and a device's latest connection
 * decisions. Every export and verification is itself audited. Nothing here modifies or deletes an entry: no
 * route of devicegate can (only the retention job deletes whole prefixes, see src/audit/retention.ts).
 */
import { readFileSync } from 'node:fs';
import {
  AuditPublicKeys,
  entryToApi,
  checkpointMessage,
  createPseudonymiser,
  EXPORT_CONTENT_TYPES,
  exportAudit,
  parseAuditEventsQuery,
  parseAuditExportQuery,
  verifyRange,
  type ExportFormat,
  type ExportTrailer,
  type Pseudonymiser,
  type RangeVerifyResult,
  type SignedCheckpoint,
} from '../audit';
import type { Principal } from '../auth/permissions';
import type { Config } from '../config/schema';
import { resolveAuditPseudonymKey } from '../config/sections/audit';
import type { AuditEntry } from '../domain/types';
import type { Clock } from '../lib/clock';
import type { Page, Store } from '../store/types';
import { auditActor } from './actors';
import type { AuditTrail } from './audit-trail';

/** The filter fields of the auditor search form, named as the audit API names its query parameters. */
export const AUDIT_FILTER_PARAMS = ['from', 'to', 'type', 'device', 'user', 'decision', 'reason', 'concentrator'] as const;
export type AuditFilterParams = Partial<Record<(typeof AUDIT_FILTER_PARAMS)[number], string>>;

/** One connection decision as the device page shows it (no user names or addresses: IT needs the outcome only). */
export interface DecisionSummary {
  readonly time: number;
  readonly event: string;
  readonly decision: string;
  readonly reason: string;
  readonly concentrator: string;
}

/** The newest `audit.checkpoint` in the store, with the outcome of checking its signature. */
export interface CheckpointStatus {
  readonly checkpoint: SignedCheckpoint;
  /** Seq of the checkpoint entry itself. */
  readonly entrySeq: number;
  readonly signatureValid: boolean;
}

/** The newest `audit.verify` record. */
export interface LastVerification {
  readonly time: number;
  readonly actor: string;
  readonly ok: boolean;
  readonly brokenSeq: number | null;
  readonly code: string | null;
}

/** A streaming export: iterate `chunks` into the response; the last chunk is the signed trailer. */
export interface ExportStream {
  readonly format: ExportFormat;
  readonly contentType: string;
  readonly filename: string;
  /** Chunks of the file, header first. The trailer is yielded only after the export was audited. */
  readonly chunks: AsyncIterable<string>;
}

const bodyOf = (e: AuditEntry): Record<string, unknown> => JSON.parse(e.body) as Record<string, unknown>;

export interface AuditAccessDeps {
  readonly config: Config;
  readonly store: Store;
  readonly clock: Clock;
  readonly trail: AuditTrail;
  /** For `DEVICEGATE_AUDIT_PSEUDONYM_KEY`. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** Auditors' read access to the audit log (see the module comment). */
export class AuditAccessService {
  private readonly keys: AuditPublicKeys;
  private readonly pseudonymKey: Buffer;

  constructor(private readonly deps: AuditAccessDeps) {
    this.keys = new AuditPublicKeys([deps.trail.signer.publicKeyPem]);
    // Read once at start-up: a missing or short key file is a start-up error, not a failed export later.
    this.pseudonymKey = resolveAuditPseudonymKey(deps.config.audit, deps.env, (f) => readFileSync(f)).key;
  }

  /** The signer's public key (PEM) auditors use for offline verification. */
  get publicKeyPem(): string {
    return this.deps.trail.signer.publicKeyPem;
  }

  /**
   * Whether user names in search results and exports are replaced by keyed pseudonyms. With
   * `audit.pseudonymiseExportsByDefault` it is always on (auditors without the need to know never see clear names);
   * otherwise a caller may ask for it.
   */
  pseudonymiserFor(requested: boolean | undefined): Pseudonymiser | null {
    return this.deps.config.audit.pseudonymiseExportsByDefault || requested === true ? createPseudonymiser(this.pseudonymKey) : null;
  }

  /** A page of entries, newest first. Bad parameters: `AUDIT_QUERY_INVALID` (bad_request) with issues. */
  async search(params: AuditFilterParams & { cursor?: string; limit?: string }): Promise<Page<AuditEntry>> {
    const { filter, page } = parseAuditEventsQuery(params);
    return this.deps.store.audit.query(filter, page);
  }

  /** Like `search`, for the JSON API: entries in their API form, pseudonymised as configured. */
  async searchApi(params: unknown): Promise<{ items: Record<string, unknown>[]; next_cursor: string | null }> {
    const { filter, page } = parseAuditEventsQuery(params);
    const result = await this.deps.store.audit.query(filter, page);
    const p = this.pseudonymiserFor(undefined);
    return { items: result.items.map((e) => entryToApi(e, p)), next_cursor: result.nextCursor };
  }

  /** The newest `limit` `vpn.decision` entries of a device. */
  async deviceDecisions(deviceId: string, limit: number): Promise<DecisionSummary[]> {
    const page = await this.deps.store.audit.query({ deviceId, type: 'vpn.decision' }, { limit });
    return page.items.map((e) => {
      const d = (bodyOf(e).data ?? {}) as { event?: string; decision?: string; reason?: string; concentrator?: { id?: string } };
      return {
        time: e.time,
        event: String(d.event ?? ''),
        decision: String(d.decision ?? ''),
        reason: String(d.reason ?? ''),
        concentrator: String(d.concentrator?.id ?? ''),
      };
    });
  }

  /**
   * Starts an export of the entries matching `params` (no filter: the whole retained chain). The `audit.export`
   * event is appended before the signed trailer is sent, so an export whose audit record failed never ends with a
   * valid trailer (it fails verification as truncated).
   */
  export(params: AuditFilterParams & { format?: string }, principal: Principal): ExportStream {
    const parsed = parseAuditExportQuery(params);
    const pseudonymiser = this.pseudonymiserFor(parsed.pseudonymise);
    let trailer: ExportTrailer | null = null;
    const inner = exportAudit({
      store: this.deps.store.audit,
      signer: this.deps.trail.signer,
      format: parsed.format,
      source: parsed.source,
      pseudonymiser,
      nowMs: this.deps.clock.nowMs(),
      onTrailer: (t) => (trailer = t),
    });
    const recorder = this.deps.trail.recorder;
    async function* chunks(): AsyncGenerator<string, void, undefined> {
      let held: string | null = null;
      for await (const chunk of inner) {
        if (held !== null) yield held;
        held = chunk;
      }
      const t = trailer;
      if (t === null || held === null) throw new Error('export ended without a trailer');
      await recorder.append({
        type: 'audit.export',
        actor: auditActor(principal),
        data: {
          format: t.format,
          mode: t.mode,
          ...(t.filter ? { filter: t.filter } : {}),
          ...(t.fromSeq !== null ? { fromSeq: t.fromSeq } : {}),
          ...(t.toSeq !== null ? { toSeq: t.toSeq } : {}),
          rows: t.count,
          pseudonymised: t.pseudonymised,
        },
      });
      yield held;
    }
    const stamp = new Date(this.deps.clock.nowMs()).toISOString().replace(/[:.]/g, '-');
    return {
      format: parsed.format,
      contentType: EXPORT_CONTENT_TYPES[parsed.format],
      filename: `devicegate-audit-${stamp}.${parsed.format}`,
      chunks: chunks(),
    };
  }

  /**
   * Verifies the retained chain (or seq `from`..`to`) against the signing key and this instance's checkpoint witness;
   * audits the run.
   */
  async verify(principal: Principal, range: { from?: number | undefined; to?: number | undefined } = {}): Promise<RangeVerifyResult> {
    const witness = this.deps.trail.log.latestCheckpoint();
    const result = await verifyRange(this.deps.store.audit, range.from, range.to, { keys: this.keys, anchors: witness ? [witness] : [] });
    await this.deps.trail.recorder.append({
      type: 'audit.verify',
      actor: auditActor(principal),
      data: {
        fromSeq: result.fromSeq ?? 0,
        toSeq: result.toSeq ?? 0,
        ok: result.ok,
        checked: result.checked,
        ...(result.ok ? {} : { brokenSeq: result.brokenSeq, code: result.code }),
      },
    });
    return result;
  }

  /** The newest checkpoint in the store and whether its signature verifies with the signing key; null before the first. */
  async latestCheckpoint(): Promise<CheckpointStatus | null> {
    const page = await this.deps.store.audit.query({ type: 'audit.checkpoint' }, { limit: 1 });
    const entry = page.items[0];
    if (!entry) return null;
    const d = bodyOf(entry).data as SignedCheckpoint;
    const signatureValid = this.keys.check(d.keyId, checkpointMessage(d), d.signature) === 'ok';
    return { checkpoint: { seq: d.seq, hash: d.hash, signedAt: d.signedAt, keyId: d.keyId, signature: d.signature }, entrySeq: entry.seq, signatureValid };
  }

  /** The newest recorded verification run, or null. */
  async lastVerification(): Promise<LastVerification | null> {
    const page = await this.deps.store.audit.query({ type: 'audit.verify' }, { limit: 1 });
    const entry = page.items[0];
    if (!entry) return null;
    const body = bodyOf(entry) as { actor?: { kind: string; id: string }; data: { ok: boolean; brokenSeq?: number | null; code?: string } };
    return {
      time: entry.time,
      actor: body.actor ? `${body.actor.kind}:${body.actor.id}` : '—',
      ok: body.data.ok,
      brokenSeq: body.data.brokenSeq ?? null,
      code: body.data.code ?? null,
    };
  }
}
