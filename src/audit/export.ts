/**
 * Streaming export of the audit log as NDJSON or CSV, in constant memory (one store page at a time), ending with a
 * signed trailer.
 *
 * NDJSON file layout (what `verifyExportFile` checks):
 *   line 1      `{"export":{"format":"ndjson","mode":"range"|"query","v":1}}`  (unsigned; the trailer repeats it)
 *   entry lines `{"hash":"<64 hex>","entry":<body exactly as hashed>}`
 *               or, when pseudonymisation changed the entry, `{"hash":"<64 hex>","pseudonymised":true,"entry":{…}}`
 *   last line   `{"signature":"<base64>","trailer":{…}}`
 * The entry body is copied byte for byte, so SHA-256 of the text after `"entry":` (without the closing brace) is the
 * entry hash: an auditor can check each line with nothing but `sha256sum`. The trailer signs the number of entries,
 * the first and last (seq, hash), and SHA-256 over every byte before it, so a file cut short (a truncated tail) or
 * edited after export fails verification even where the chain alone could not tell (after the last checkpoint,
 * in pseudonymised lines, or in a filtered export that is not a contiguous chain).
 *
 * Modes: `range` exports consecutive seqs oldest first (a verifiable chain); `query` exports a filtered selection
 * newest first (each entry verifiable on its own, the selection authenticated by the trailer).
 */
import { createHash } from 'node:crypto';
import { badRequest } from '../domain/errors';
import type { AuditEntry } from '../domain/types';
import { canonicalJson } from '../lib/canonical-json';
import type { AuditFilter, AuditStore } from '../store/types';
import type { Pseudonymiser } from './pseudonym';
import { type AuditSigner, trailerMessage } from './signing';

/** Export file formats; only NDJSON has an offline verifier (CSV is for spreadsheets, its trailer row is signed too). */
export type ExportFormat = 'ndjson' | 'csv';

/** What to export: a contiguous seq range (verifiable chain) or a filtered query (newest first). */
export type ExportSource =
  | { readonly mode: 'range'; readonly fromSeq?: number | undefined; readonly toSeq?: number | undefined }
  | { readonly mode: 'query'; readonly filter: AuditFilter };

/** Content types for the HTTP response. */
export const EXPORT_CONTENT_TYPES: Readonly<Record<ExportFormat, string>> = {
  ndjson: 'application/x-ndjson',
  csv: 'text/csv; charset=utf-8',
};

/** The signed part of the trailer. */
export interface ExportTrailer {
  readonly v: 1;
  readonly format: ExportFormat;
  readonly mode: 'range' | 'query';
  /** Range mode: the range asked for after clamping to what exists (null when the log is empty). */
  readonly fromSeq: number | null;
  readonly toSeq: number | null;
  /** Query mode: the filter (user values pseudonymised when the export is). */
  readonly filter: Readonly<Record<string, string | number>> | null;
  readonly count: number;
  readonly firstSeq: number | null;
  readonly firstPrevHash: string | null;
  readonly lastSeq: number | null;
  readonly lastHash: string | null;
  /** Hex SHA-256 over every byte of the file before the trailer line. */
  readonly linesSha256: string;
  readonly pseudonymised: boolean;
  readonly exportedAt: string;
  readonly keyId: string;
}

/** Options of `exportAudit`. */
export interface ExportOptions {
  readonly store: AuditStore;
  readonly signer: AuditSigner;
  readonly format: ExportFormat;
  readonly source: ExportSource;
  /** Replace names (and optionally IPs) with keyed pseudonyms. */
  readonly pseudonymiser?: Pseudonymiser | null | undefined;
  /** Epoch ms written as `exportedAt`. */
  readonly nowMs: number;
  /** Rows read from the store per page (default 1000); memory use is proportional to it. */
  readonly pageSize?: number;
  /** Called after every page with the rows written so far. */
  readonly onRows?: (rows: number) => void;
  /** Called once at the end with the signed trailer (e.g. to write an `audit.export` event). */
  readonly onTrailer?: (trailer: ExportTrailer) => void;
}

/** Top-level key of the NDJSON header line. */
export const EXPORT_HEADER_KEY = 'export';
/** CSV columns, in order; `body` is the hashed entry body verbatim. */
export const CSV_COLUMNS = [
  'seq',
  'time',
  'type',
  'event_id',
  'actor',
  'device_id',
  'user',
  'decision',
  'reason',
  'concentrator',
  'peer_ip',
  'prev_hash',
  'hash',
  'body',
] as const;

/** The NDJSON header line (without newline). */
export function ndjsonHeader(mode: 'range' | 'query'): string {
  return canonicalJson({ [EXPORT_HEADER_KEY]: { format: 'ndjson', mode, v: 1 } });
}

/** One NDJSON entry line (without newline); the body is copied verbatim unless pseudonymisation changes it. */
export function ndjsonLine(entry: AuditEntry, pseudonymiser?: Pseudonymiser | null): string {
  if (pseudonymiser) {
    const p = pseudonymiser.apply(JSON.parse(entry.body) as Record<string, unknown>);
    if (p.changed) return `{"hash":"${entry.hash}","pseudonymised":true,"entry":${canonicalJson(p.value)}}`;
  }
  return `{"hash":"${entry.hash}","entry":${entry.body}}`;
}

const NEEDS_QUOTES = /[",\r\n]/;
const QUOTE = /"/g;

/** RFC 4180 quoting. */
function csvField(v: string): string {
  return NEEDS_QUOTES.test(v) ? `"${v.replace(QUOTE, '""')}"` : v;
}

/**
 * Display columns that a spreadsheet might evaluate as a formula (`=`, `+`, `-`, `@`, tab, CR at the start) get a
 * leading apostrophe (OWASP CSV injection). The `body` column stays verbatim so its hash still checks.
 */
function csvDisplay(v: string | null | undefined): string {
  if (v === null || v === undefined || v === '') return '';
  const c = v.charCodeAt(0);
  // = + - @ TAB CR
  const formula = c === 0x3d || c === 0x2b || c === 0x2d || c === 0x40 || c === 0x09 || c === 0x0d;
  return csvField(formula ? `'${v}` : v);
}

// Canonical JSON sorts keys and escapes quotes inside strings, so these key sequences can only be structure: the
// CSV display columns are read from the body without a full JSON.parse (the body column itself stays verbatim).
// `actor` sorts first among the top-level keys, so when present it opens the body.
const ACTOR_RE = /^\{"actor":\{"id":("(?:[^"\\]|\\.)*"),"kind":"([a-z]+)"/;
const PEER_IP_RE = /"peer":\{"ip":"([0-9A-Fa-f.:]+)"/;

/** One CSV row (without newline). */
export function csvRow(entry: AuditEntry, pseudonymiser?: Pseudonymiser | null): string {
  let body = entry.body;
  let user = entry.user;
  if (pseudonymiser) {
    const p = pseudonymiser.apply(JSON.parse(entry.body) as Record<string, unknown>);
    if (p.changed) {
      body = canonicalJson(p.value);
      if (user !== null) user = pseudonymiser.pseudonym('user', user);
    }
  }
  const a = body.startsWith('{"actor":') ? ACTOR_RE.exec(body) : null;
  const actor = a ? `${a[2]}:${JSON.parse(a[1] as string) as string}` : '';
  const ip = PEER_IP_RE.exec(body);
  return [
    String(entry.seq),
    new Date(entry.time).toISOString(),
    csvDisplay(entry.type),
    csvDisplay(entry.eventId),
    csvDisplay(actor),
    csvDisplay(entry.deviceId),
    csvDisplay(user),
    csvDisplay(entry.decision),
    csvDisplay(entry.reason),
    csvDisplay(entry.concentrator),
    csvDisplay(ip ? (ip[1]) : null),
    entry.prevHash,
    entry.hash,
    csvField(body),
  ].join(',');
}

function checkSeq(name: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) {
    throw badRequest('AUDIT_RANGE_INVALID', `${name} must be a positive integer`);
  }
}

/**
 * Yields the export as text chunks (one per store page), header first and the signed trailer last. Pipe it into an
 * HTTP response with `Readable.from(exportAudit(...))` (chunked, no Content-Length). Range bounds are clamped to
 * the retained log and snapshotted at the start, so an export is finite while appends continue.
 * Throws `AUDIT_RANGE_INVALID` (bad_request) for a malformed range.
 */
export async function* exportAudit(opts: ExportOptions): AsyncGenerator<string, void, undefined> {
  const pageSize = opts.pageSize ?? 1000;
  const digest = createHash('sha256');
  const pseud = opts.pseudonymiser ?? null;
  const line = opts.format === 'ndjson' ? (e: AuditEntry) => ndjsonLine(e, pseud) : (e: AuditEntry) => csvRow(e, pseud);
  let count = 0;
  let first: AuditEntry | null = null;
  let last: AuditEntry | null = null;
  const emit = (entries: AuditEntry[]): string => {
    let text = '';
    for (const e of entries) {
      if (!first) first = e;
      last = e;
      text += `${line(e)}\n`;
    }
    count += entries.length;
    digest.update(text, 'utf8');
    return text;
  };

  const header = opts.format === 'ndjson' ? `${ndjsonHeader(opts.source.mode)}\n` : `${CSV_COLUMNS.join(',')}\n`;
  digest.update(header, 'utf8');
  yield header;

  let fromSeq: number | null = null;
  let toSeq: number | null = null;
  let filter: Record<string, string | number> | null = null;
  if (opts.source.mode === 'range') {
    checkSeq('fromSeq', opts.source.fromSeq);
    checkSeq('toSeq', opts.source.toSeq);
    const [firstRetained, head] = await Promise.all([opts.store.firstSeq(), opts.store.head()]);
    if (firstRetained !== null && head !== null) {
      fromSeq = Math.max(opts.source.fromSeq ?? firstRetained, firstRetained);
      toSeq = Math.min(opts.source.toSeq ?? head.seq, head.seq);
      let next = fromSeq;
      while (next <= toSeq) {
        const page = await opts.store.range(next, toSeq, pageSize);
        if (page.length === 0) break;
        yield emit(page);
        opts.onRows?.(count);
        next = (page[page.length - 1] as AuditEntry).seq + 1;
      }
    }
  } else {
    filter = {};
    for (const [k, v] of Object.entries(opts.source.filter) as [string, string | number | undefined][]) {
      if (v === undefined) continue;
      filter[k] = k === 'user' && pseud && typeof v === 'string' ? pseud.pseudonym('user', v) : v;
    }
    let cursor: string | null = null;
    do {
      const page = await opts.store.query(opts.source.filter, { cursor, limit: pageSize });
      if (page.items.length > 0) {
        yield emit(page.items);
        opts.onRows?.(count);
      }
      cursor = page.nextCursor;
    } while (cursor);
  }

  const f = first as AuditEntry | null;
  const l = last as AuditEntry | null;
  const trailer: ExportTrailer = {
    v: 1,
    format: opts.format,
    mode: opts.source.mode,
    fromSeq,
    toSeq,
    filter,
    count,
    firstSeq: f ? f.seq : null,
    firstPrevHash: f ? f.prevHash : null,
    lastSeq: l ? l.seq : null,
    lastHash: l ? l.hash : null,
    linesSha256: digest.digest('hex'),
    pseudonymised: pseud !== null,
    exportedAt: new Date(opts.nowMs).toISOString(),
    keyId: opts.signer.keyId,
  };
  const signed = trailerLine(trailer, opts.signer);
  opts.onTrailer?.(trailer);
  if (opts.format === 'ndjson') {
    yield `${signed}\n`;
  } else {
    const cells: string[] = CSV_COLUMNS.map(() => '');
    cells[2] = 'audit.export.trailer';
    cells[cells.length - 1] = csvField(signed);
    yield `${cells.join(',')}\n`;
  }
}

/** The signed trailer line (without newline). */
export function trailerLine(trailer: ExportTrailer, signer: AuditSigner): string {
  const signature = signer.sign(trailerMessage(trailer as unknown as Record<string, unknown>));
  return canonicalJson({ signature, trailer });
}
