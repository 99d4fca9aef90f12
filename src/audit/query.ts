/**
 * Parsing of the auditor API's query parameters and rendering of entries, so the HTTP routes stay thin
 * (`GET /v1/audit/events`, the exports and `GET /v1/audit/verify`). Bad input is an `AppError` bad_request with a
 * stable code, never a crash.
 */
import { z } from 'zod';
import { badRequest } from '../domain/errors';
import type { AuditEntry } from '../domain/types';
import type { AuditFilter, PageRequest } from '../store/types';
import { AUDIT_EVENT_TYPES } from './events';
import type { Pseudonymiser } from './pseudonym';

/** Most entries per page of `GET /v1/audit/events`. */
export const MAX_AUDIT_PAGE = 1000;

const time = z
  .string()
  .max(40)
  .refine((s) => /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(s) && !Number.isNaN(Date.parse(s)), {
    message: 'an ISO 8601 date or date-time with zone, e.g. 2026-11-26T00:00:00.000Z',
  })
  .transform((s) => Date.parse(s));
const text = z.string().min(1).max(200);

const filterShape = {
  from: time.optional(),
  to: time.optional(),
  type: z.enum(AUDIT_EVENT_TYPES as [string, ...string[]]).optional(),
  device: text.optional(),
  user: text.optional(),
  decision: z.enum(['allow', 'deny', 'pending']).optional(),
  reason: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/).optional(),
  concentrator: text.optional(),
};

const eventsQuery = z.strictObject({
  ...filterShape,
  // Its content is checked by the store (INVALID_CURSOR), which alone knows the format.
  cursor: z.string().min(1).max(512).optional(),
  limit: z
    .string()
    .regex(/^\d{1,7}$/)
    .transform(Number)
    .pipe(z.number().int().min(1).max(MAX_AUDIT_PAGE))
    .optional(),
});

const exportQuery = z.strictObject({
  ...filterShape,
  format: z.enum(['ndjson', 'csv']).optional(),
  fromSeq: z.string().regex(/^\d{1,15}$/).transform(Number).pipe(z.number().int().min(1)).optional(),
  toSeq: z.string().regex(/^\d{1,15}$/).transform(Number).pipe(z.number().int().min(1)).optional(),
  pseudonymise: z.enum(['true', 'false']).transform((s) => s === 'true').optional(),
});

const verifyQuery = z.strictObject({
  from: z.string().regex(/^\d{1,15}$/).transform(Number).pipe(z.number().int().min(1)).optional(),
  to: z.string().regex(/^\d{1,15}$/).transform(Number).pipe(z.number().int().min(1)).optional(),
});

function parse<T>(schema: z.ZodType<T>, params: unknown, code: string): T {
  // Repeated parameters (?type=a&type=b) arrive as arrays; refuse them instead of picking one.
  const r = schema.safeParse(params ?? {});
  if (!r.success) {
    throw badRequest(code, 'invalid query parameters', {
      details: { issues: r.error.issues.slice(0, 20).map((i) => ({ param: i.path.join('.'), problem: i.message })) },
    });
  }
  return r.data;
}

type FilterParams = { from?: number; to?: number; type?: string; device?: string; user?: string; decision?: string; reason?: string; concentrator?: string };

function toFilter(q: FilterParams): AuditFilter {
  if (q.from !== undefined && q.to !== undefined && q.from > q.to) {
    throw badRequest('AUDIT_QUERY_INVALID', 'invalid query parameters', {
      details: { issues: [{ param: 'from', problem: 'from must not be after to' }] },
    });
  }
  return {
    fromTime: q.from,
    toTime: q.to,
    type: q.type,
    deviceId: q.device,
    user: q.user,
    decision: q.decision,
    reason: q.reason,
    concentrator: q.concentrator,
  };
}

/** `GET /v1/audit/events?from&to&type&device&user&decision&reason&concentrator&cursor&limit` (limit default 100). */
export function parseAuditEventsQuery(params: unknown): { filter: AuditFilter; page: PageRequest } {
  const q = parse(eventsQuery, params, 'AUDIT_QUERY_INVALID');
  return { filter: toFilter(q), page: { cursor: q.cursor ?? null, limit: q.limit ?? 100 } };
}

/**
 * Export parameters: the same filters, `format` (default ndjson), `fromSeq`/`toSeq`, `pseudonymise`. With no
 * filter the export is a contiguous, chain-verifiable `range`; with any filter it is a `query` export.
 */
export function parseAuditExportQuery(params: unknown): {
  format: 'ndjson' | 'csv';
  source: { mode: 'range'; fromSeq?: number; toSeq?: number } | { mode: 'query'; filter: AuditFilter };
  pseudonymise: boolean | undefined;
} {
  const q = parse(exportQuery, params, 'AUDIT_QUERY_INVALID');
  const filter = toFilter(q);
  const filtered = Object.values(filter).some((v) => v !== undefined);
  if (filtered && (q.fromSeq !== undefined || q.toSeq !== undefined)) {
    throw badRequest('AUDIT_QUERY_INVALID', 'invalid query parameters', {
      details: { issues: [{ param: 'fromSeq', problem: 'seq ranges cannot be combined with filters' }] },
    });
  }
  if (q.fromSeq !== undefined && q.toSeq !== undefined && q.fromSeq > q.toSeq) {
    throw badRequest('AUDIT_QUERY_INVALID', 'invalid query parameters', {
      details: { issues: [{ param: 'fromSeq', problem: 'fromSeq must not exceed toSeq' }] },
    });
  }
  return {
    format: q.format ?? 'ndjson',
    source: filtered ? { mode: 'query', filter } : { mode: 'range', fromSeq: q.fromSeq, toSeq: q.toSeq },
    pseudonymise: q.pseudonymise,
  };
}

/** `GET /v1/audit/verify?from&to` (seq numbers). */
export function parseAuditVerifyQuery(params: unknown): { from: number | undefined; to: number | undefined } {
  const q = parse(verifyQuery, params, 'AUDIT_QUERY_INVALID');
  if (q.from !== undefined && q.to !== undefined && q.from > q.to) {
    throw badRequest('AUDIT_QUERY_INVALID', 'invalid query parameters', {
      details: { issues: [{ param: 'from', problem: 'from must not exceed to' }] },
    });
  }
  return { from: q.from, to: q.to };
}

/** One entry as the JSON API returns it: the chain fields beside the (optionally pseudonymised) event. */
export function entryToApi(entry: AuditEntry, pseudonymiser?: Pseudonymiser | null): Record<string, unknown> {
  let body = JSON.parse(entry.body) as Record<string, unknown>;
  let pseudonymised = false;
  if (pseudonymiser) {
    const p = pseudonymiser.apply(body);
    body = p.value;
    pseudonymised = p.changed;
  }
  const { seq, prevHash, ...event } = body;
  return { seq, hash: entry.hash, prevHash, ...event, ...(pseudonymised ? { pseudonymised: true } : {}) };
}


