/**
 * Verification of the audit log: on the server over the store (`verifyRange`, behind `GET /v1/audit/verify`), and
 * offline over an exported NDJSON file with only the public key (`verifyExportFile`, behind
 * `devicegate audit verify FILE --pubkey audit.pub`). Both stream in constant memory.
 */
import { createReadStream, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { badRequest } from '../domain/errors';
import type { AuditStore } from '../store/types';
import { ChainVerifier, type StartAnchor, type TrustedPoint, type VerifyFailure, type VerifyResult } from './chain';
import { EXPORT_HEADER_KEY, type ExportTrailer } from './export';
import { AuditPublicKeys, type SignedCheckpoint, checkpointMessage, retentionMessage, trailerMessage } from './signing';

/** Options of `verifyRange`. */
export interface VerifyRangeOptions {
  readonly keys: AuditPublicKeys;
  /**
   * Signed checkpoints known from outside the store (the instance's witness `AuditLog.latestCheckpoint()`, the
   * trailer of an auditor's earlier export). Each is signature-checked; the store must still hold that exact
   * entry, so deleting or rewriting the newest entries is caught even though the chain inside the store looks fine.
   */
  readonly anchors?: readonly SignedCheckpoint[];
  readonly pageSize?: number;
  readonly onProgress?: (checked: number) => void;
}

/** `verifyRange` result: the verification outcome plus the (clamped) range checked. */
export type RangeVerifyResult = VerifyResult & {
  /** The range actually checked (clamped to the retained log). */
  readonly fromSeq: number | null;
  readonly toSeq: number | null;
};

/**
 * Verifies seq `from`..`to` of the stored chain (defaults: first retained seq..head). The start is anchored by
 * genesis (from = 1), by the newest signed retention record (from = first retained seq), or else by the stored
 * predecessor (`startAnchor: 'predecessor'`: that sub-range is consistent with what precedes it, which a full
 * verification checks). Throws `AUDIT_RANGE_INVALID` (bad_request) for malformed bounds.
 */
export async function verifyRange(
  store: AuditStore,
  from: number | undefined,
  to: number | undefined,
  opts: VerifyRangeOptions,
): Promise<RangeVerifyResult> {
  for (const [name, v] of [
    ['from', from],
    ['to', to],
  ] as const) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) throw badRequest('AUDIT_RANGE_INVALID', `${name} must be a positive integer`);
  }
  if (from !== undefined && to !== undefined && from > to) throw badRequest('AUDIT_RANGE_INVALID', 'from must not exceed to');

  const [first, head] = await Promise.all([store.firstSeq(), store.head()]);
  const anchors: TrustedPoint[] = [];
  for (const a of opts.anchors ?? []) {
    if (opts.keys.check(a.keyId, checkpointMessage(a), a.signature) !== 'ok') {
      return withRange(
        { ok: false, brokenSeq: a.seq, code: 'CHECKPOINT_SIGNATURE_INVALID', message: `the anchor checkpoint for entry ${a.seq} is not validly signed`, checked: 0 },
        null,
        null,
      );
    }
    anchors.push({ seq: a.seq, hash: a.hash });
  }
  const maxAnchor = anchors.reduce((m, a) => Math.max(m, a.seq), 0);

  if (first === null || head === null) {
    if (maxAnchor > 0) {
      return withRange(
        { ok: false, brokenSeq: 1, code: 'TRUNCATED', message: `the log is empty but a signed checkpoint vouches for entry ${maxAnchor}`, checked: 0 },
        null,
        null,
      );
    }
    return withRange(
      { ok: true, checked: 0, firstSeq: null, lastSeq: null, lastHash: null, startAnchor: null, checkpoints: 0, lastCheckpointSeq: null, uncoveredTail: 0 },
      null,
      null,
    );
  }
  const lo = Math.max(from ?? first, first);
  const hi = Math.min(to ?? head.seq, head.seq);
  // An anchor beyond the head: the newest entries are gone.
  const wantTailThrough = to ?? Math.max(head.seq, maxAnchor);

  const startPoints: (TrustedPoint & { kind: StartAnchor })[] = [];
  if (lo > 1) {
    if (lo === first) {
      for (const p of await retentionStartPoints(store, opts.keys)) startPoints.push({ ...p, kind: 'retention' });
    } else {
      const [pred] = await store.range(lo - 1, lo - 1, 1);
      if (pred) startPoints.push({ seq: pred.seq, hash: pred.hash, kind: 'predecessor' });
    }
  }

  const verifier = new ChainVerifier({ keys: opts.keys, startPoints, anchors });
  const pageSize = opts.pageSize ?? 2000;
  let next = lo;
  outer: while (next <= hi) {
    const page = await store.range(next, hi, pageSize);
    if (page.length === 0) break;
    for (const e of page) if (!verifier.pushEntry(e)) break outer;
    next = (page[page.length - 1] as { seq: number }).seq + 1;
    opts.onProgress?.(next - lo);
  }
  if (!verifier.failed && hi >= lo && verifier.tail?.seq !== hi) {
    // The store reports a head it cannot produce: the newest entries were removed behind the head pointer.
    const lastSeen = verifier.tail?.seq ?? lo - 1;
    return withRange(
      { ok: false, brokenSeq: lastSeen + 1, code: 'TRUNCATED', message: `entries ${lastSeen + 1}..${hi} are missing`, checked: verifier.tail ? lastSeen - lo + 1 : 0 },
      lo,
      hi,
    );
  }
  return withRange(verifier.finish({ expectTailThrough: wantTailThrough }), lo, hi);
}

function withRange(r: VerifyResult, fromSeq: number | null, toSeq: number | null): RangeVerifyResult {
  return { ...r, fromSeq, toSeq };
}

/**
 * The (deletedThroughSeq, hash) points of the newest validly signed retention records (newest first). Several, so a
 * retention run that crashed between writing its record and deleting still leaves the older, matching record usable.
 */
export async function retentionStartPoints(store: AuditStore, keys: AuditPublicKeys, limit = 20): Promise<TrustedPoint[]> {
  const page = await store.query({ type: 'audit.retention' }, { limit });
  const out: TrustedPoint[] = [];
  for (const e of page.items) {
    try {
      const d = (JSON.parse(e.body) as { data: Record<string, unknown> }).data as {
        deletedThroughSeq: number;
        deletedThroughHash: string;
        deletedCount: number;
        policy: Record<string, number | null>;
        signedAt: string;
        keyId: string;
        signature: string;
      };
      if (keys.check(d.keyId, retentionMessage(d), d.signature) === 'ok') out.push({ seq: d.deletedThroughSeq, hash: d.deletedThroughHash });
    } catch {
      // A malformed record anchors nothing; the chain verification reports it where it stands.
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------------------------
// Offline verification of an NDJSON export.

/** Progress of an offline verification, reported after every chunk read. */
export interface ExportVerifyProgress {
  readonly bytes: number;
  /** File size when known. */
  readonly totalBytes: number | null;
  readonly entries: number;
}

/** Offline verification result: the chain outcome plus what the trailer said. */
export type ExportVerifyResult = VerifyResult & {
  /** The signed trailer when it verified. */
  readonly trailer: ExportTrailer | null;
  readonly mode: 'range' | 'query' | null;
  /** Lines whose names were pseudonymised (their content is vouched for by the trailer, not by the entry hash). */
  readonly pseudonymisedLines: number;
};

const HASH_LINE = /^\{"hash":"([0-9a-f]{64})","entry":/;
const PSEUDO_LINE = /^\{"hash":"([0-9a-f]{64})","pseudonymised":true,"entry":/;

/**
 * Verifies an exported NDJSON stream with only the public key(s): every entry's hash, the chain (range exports),
 * checkpoint signatures, the trailer's signature, its count, first/last entries and the digest of all lines. A file
 * cut short (no trailer) fails with TRAILER_MISSING. Constant memory: one line at a time.
 */
export async function verifyExportStream(
  source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  keys: AuditPublicKeys,
  opts: { totalBytes?: number | null; onProgress?: (p: ExportVerifyProgress) => void } = {},
): Promise<ExportVerifyResult> {
  const digest = createHash('sha256');
  let mode: 'range' | 'query' | null = null;
  let verifier: ChainVerifier | null = null;
  let entries = 0;
  let pseudonymisedLines = 0;
  let bytes = 0;
  let lineNo = 0;
  let trailerRaw: string | null = null;
  let failure: VerifyFailure | null = null;
  let carry: Buffer = Buffer.alloc(0);

  const failAt = (brokenSeq: number | null, code: VerifyFailure['code'], message: string): void => {
    if (!failure) failure = { ok: false, brokenSeq, code, message, checked: entries };
  };
  const lastSeq = (): number | null => verifier?.tail?.seq ?? null;

  const onLine = (raw: string): void => {
    // A file passed through a CRLF-converting tool still verifies: the digest is over LF-terminated lines.
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    lineNo += 1;
    if (failure) return;
    if (line.length === 0) {
      failAt(lastSeq(), 'MALFORMED_ENTRY', `line ${lineNo} is empty`);
      return;
    }
    if (trailerRaw !== null) {
      failAt(lastSeq(), 'TRAILER_MISMATCH', `line ${lineNo} follows the trailer`);
      return;
    }
    if (lineNo === 1) {
      let header: Record<string, { mode?: unknown; format?: unknown; v?: unknown }>;
      try {
        header = JSON.parse(line) as typeof header;
      } catch {
        header = {};
      }
      const h = header[EXPORT_HEADER_KEY];
      if (!h || h.format !== 'ndjson' || (h.mode !== 'range' && h.mode !== 'query') || h.v !== 1) {
        failAt(null, 'MALFORMED_ENTRY', 'line 1 is not a devicegate NDJSON export header');
        return;
      }
      mode = h.mode;
      verifier = new ChainVerifier({ keys, unlinked: mode === 'query' });
      digest.update(`${line}\n`, 'utf8');
      return;
    }
    if (line.startsWith('{"signature":')) {
      trailerRaw = line;
      return;
    }
    digest.update(`${line}\n`, 'utf8');
    const v = verifier as ChainVerifier;
    let m = HASH_LINE.exec(line);
    let pseudonymised = false;
    if (!m) {
      m = PSEUDO_LINE.exec(line);
      pseudonymised = m !== null;
    }
    if (!m || !line.endsWith('}')) {
      failAt(lastSeq() === null ? null : (lastSeq() as number) + 1, 'MALFORMED_ENTRY', `line ${lineNo} is not an export entry line`);
      return;
    }
    const body = line.slice(m[0].length, -1);
    if (pseudonymised) pseudonymisedLines += 1;
    if (!v.pushExported(m[1] as string, body, pseudonymised)) {
      failure = v.failed;
      return;
    }
    entries += 1;
  };

  for await (const chunk of source) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    bytes += buf.length;
    const data = carry.length ? Buffer.concat([carry, buf]) : buf;
    let start = 0;
    for (;;) {
      const nl = data.indexOf(0x0a, start);
      if (nl < 0) break;
      onLine(data.toString('utf8', start, nl));
      start = nl + 1;
    }
    carry = Buffer.from(data.subarray(start));
    opts.onProgress?.({ bytes, totalBytes: opts.totalBytes ?? null, entries });
  }
  if (carry.length > 0) onLine(carry.toString('utf8'));

  const base = { mode, pseudonymisedLines };
  if (failure) return { ...(failure as VerifyFailure), trailer: null, ...base };
  if (!verifier) {
    return { ok: false, brokenSeq: null, code: 'EMPTY', message: 'the file holds no export', checked: 0, trailer: null, ...base };
  }
  const v = verifier as ChainVerifier;
  if (trailerRaw === null) {
    const ls = lastSeq();
    return {
      ok: false,
      brokenSeq: ls === null ? null : ls + 1,
      code: 'TRAILER_MISSING',
      message: 'the file ends without the signed trailer: it was cut short (truncated tail) or is not a complete export',
      checked: entries,
      trailer: null,
      ...base,
    };
  }

  // The trailer: signature first, then every claim it makes about the lines before it.
  let parsed: { signature?: unknown; trailer?: ExportTrailer };
  try {
    parsed = JSON.parse(trailerRaw) as typeof parsed;
  } catch {
    parsed = {};
  }
  const t = parsed.trailer;
  if (!t || typeof t !== 'object' || typeof parsed.signature !== 'string' || typeof t.keyId !== 'string') {
    return { ok: false, brokenSeq: null, code: 'TRAILER_MISMATCH', message: 'the trailer line is malformed', checked: entries, trailer: null, ...base };
  }
  const sig = keys.check(t.keyId, trailerMessage(t as unknown as Record<string, unknown>), parsed.signature);
  if (sig !== 'ok') {
    return {
      ok: false,
      brokenSeq: null,
      code: sig === 'unknown-key' ? 'UNKNOWN_KEY' : 'TRAILER_SIGNATURE_INVALID',
      message: sig === 'unknown-key' ? 'the trailer is signed by an untrusted key' : 'the trailer signature does not verify',
      checked: entries,
      trailer: null,
      ...base,
    };
  }
  const tail = v.tail;
  const headOf = v.head;
  const mismatch =
    t.format !== 'ndjson' || t.mode !== mode
      ? 'format or mode'
      : t.count !== entries
        ? `entry count (trailer ${t.count}, file ${entries})`
        : t.linesSha256 !== digest.digest('hex')
          ? 'digest of the lines (lines added, removed or edited)'
          : mode === 'range' && (t.lastSeq !== (tail?.seq ?? null) || t.lastHash !== (tail?.hash ?? null))
            ? 'last entry'
            : mode === 'range' && (t.firstSeq !== (headOf?.seq ?? null) || t.firstPrevHash !== (headOf?.prevHash ?? null))
              ? 'first entry'
              : null;
  if (mismatch) {
    const ls = lastSeq();
    return {
      ok: false,
      brokenSeq: typeof t.lastSeq === 'number' && (ls === null || t.lastSeq > ls) ? (ls ?? 0) + 1 : null,
      code: 'TRAILER_MISMATCH',
      message: `the signed trailer disagrees with the file: ${mismatch}`,
      checked: entries,
      trailer: null,
      ...base,
    };
  }
  const result = v.finish(
    mode === 'range' && t.firstSeq !== null && t.firstPrevHash !== null
      ? { trailerStart: { seq: t.firstSeq - 1, hash: t.firstPrevHash } }
      : {},
  );
  return { ...result, trailer: result.ok ? t : null, ...base };
}

/**
 * Verifies an NDJSON export file with only the audit public key(s) (PEM text). `onProgress` is called after every
 * chunk read (feed it to `createProgressBar`). Throws `AUDIT_PUBKEY_INVALID` for an unusable key.
 */
export async function verifyExportFile(
  path: string,
  publicKeyPem: string | readonly string[],
  onProgress?: (p: ExportVerifyProgress) => void,
): Promise<ExportVerifyResult> {
  const keys = new AuditPublicKeys(typeof publicKeyPem === 'string' ? [publicKeyPem] : publicKeyPem);
  const totalBytes = statSync(path).size;
  return verifyExportStream(createReadStream(path, { highWaterMark: 1 << 20 }), keys, { totalBytes, onProgress });
}

/** Minimal writable TTY surface the progress bar needs (process.stderr fits). */
export interface ProgressStream {
  readonly isTTY?: boolean | undefined;
  readonly columns?: number | undefined;
  write(s: string): unknown;
}

/**
 * A one-line progress bar for `verifyExportFile` on a TTY (`\r` redraws, at most ~10 times per second); prints
 * nothing when the stream is not a TTY, so piped output stays clean. Call `done()` to end the line.
 */
export function createProgressBar(
  stream: ProgressStream,
  nowMs: () => number = Date.now,
): { update(p: ExportVerifyProgress): void; done(): void } {
  const started = nowMs();
  let lastDraw = 0;
  let drawn = false;
  const draw = (p: ExportVerifyProgress): void => {
    const elapsed = Math.max(1, nowMs() - started) / 1000;
    const rate = p.entries / elapsed;
    const cols = Math.max(40, Math.min(stream.columns ?? 80, 120));
    const frac = p.totalBytes ? Math.min(1, p.bytes / p.totalBytes) : null;
    const eta = frac && frac > 0 ? Math.round((elapsed / frac) * (1 - frac)) : null;
    const info = ` ${frac === null ? '' : `${(frac * 100).toFixed(1)}% `}${formatCount(p.entries)} entries ${formatCount(rate)}/s${eta === null ? '' : ` ETA ${eta}s`}`;
    const width = Math.max(10, cols - info.length - 3);
    const filled = frac === null ? 0 : Math.round(width * frac);
    stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]${info}`);
    drawn = true;
  };
  return {
    update(p) {
      if (!stream.isTTY) return;
      const now = nowMs();
      const complete = p.totalBytes !== null && p.bytes >= p.totalBytes;
      if (!complete && now - lastDraw < 100) return;
      lastDraw = now;
      draw(p);
    },
    done() {
      if (stream.isTTY && drawn) stream.write('\n');
    },
  };
}

function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}
