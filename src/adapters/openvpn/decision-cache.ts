import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** One cached decision, keyed by certificate SHA-256. */
export interface CachedDecision {
  readonly decision: 'allow' | 'deny';
  readonly reason_code: string;
  readonly decision_id: string;
  /** Epoch ms after which the entry is ignored. */
  readonly expires_at_ms: number;
}

interface CacheFile {
  readonly version: 1;
  readonly entries: Record<string, CachedDecision>;
}

const MAX_ENTRIES = 20_000;
const MAX_FILE_BYTES = 8 * 1024 * 1024;

function load(file: string): Record<string, CachedDecision> {
  try {
    if (!existsSync(file)) return {};
    const text = readFileSync(file, 'utf8');
    if (text.length > MAX_FILE_BYTES) return {};
    const json = JSON.parse(text) as Partial<CacheFile>;
    if (json?.version !== 1 || typeof json.entries !== 'object' || json.entries === null) return {};
    return json.entries;
  } catch {
    return {};
  }
}

/**
 * Reads the entry for `sha256` from the local decision cache of the OpenVPN hook (used by `--tls-verify`, which
 * blocks the whole OpenVPN process and therefore must not wait for the network).
 *
 * Guarantees: never throws; a missing, corrupt, oversized or foreign-format file, an expired entry, or an entry of
 * the wrong shape is a miss (null), never an allow.
 */
export function readCachedDecision(file: string, sha256: string, nowMs: number): CachedDecision | null {
  const e = load(file)[sha256];
  if (!e || typeof e !== 'object') return null;
  if ((e.decision !== 'allow' && e.decision !== 'deny') || typeof e.expires_at_ms !== 'number' || !(e.expires_at_ms > nowMs)) return null;
  return e;
}

/**
 * Records a decision in the cache (atomic replace via rename; expired entries pruned). Concurrent writers can lose
 * each other's entries (last rename wins), which only costs a cache miss. Never throws.
 */
export function writeCachedDecision(file: string, sha256: string, entry: CachedDecision, nowMs: number): void {
  try {
    const entries = load(file);
    for (const [k, v] of Object.entries(entries)) if (!(v?.expires_at_ms > nowMs)) delete entries[k];
    entries[sha256] = entry;
    const keys = Object.keys(entries);
    if (keys.length > MAX_ENTRIES) {
      keys
        .sort((a, b) => entries[a]!.expires_at_ms - entries[b]!.expires_at_ms)
        .slice(0, keys.length - MAX_ENTRIES)
        .forEach((k) => delete entries[k]);
    }
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
    writeFileSync(tmp, JSON.stringify({ version: 1, entries } satisfies CacheFile), { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    // a cache that cannot be written only means more misses
  }
}
