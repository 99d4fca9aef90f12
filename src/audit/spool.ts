/**
 * The outage spool: a local append-only file of events that could not reach the store, fsync-ed before the append
 * that produced them resolves, and replayed in order when the store returns (Vault's rule: no audit, no answer; the
 * spool keeps a store outage from becoming a VPN outage without breaking that rule).
 *
 * Format: one line per event, `<16 hex of SHA-256(json)> <canonical event JSON>\n`. The checksum catches a torn or
 * bit-rotted line. A crash can leave only the *last* line torn, and that line's append never resolved (fsync had not
 * returned), so `open` cuts it off; any other bad line is moved to `spool.quarantine` and reported, never dropped.
 *
 * Events are spooled, not linked entries: their seq and prevHash depend on the head at replay time.
 */
import { createHash } from 'node:crypto';
import { promises as fsp, mkdirSync } from 'node:fs';
import path from 'node:path';
import { canonicalJson } from '../lib/canonical-json';
import type { AuditEvent } from './events';

const FILE = 'spool.ndjson';
const QUARANTINE = 'spool.quarantine';

function checksum(json: string): string {
  return createHash('sha256').update(json, 'utf8').digest('hex').slice(0, 16);
}

/** One batch read back from the spool. */
export interface SpoolChunk {
  readonly events: AuditEvent[];
  /** Offset just after the last line read; pass it to the next `read`. */
  readonly nextOffset: number;
  /** Lines that failed their checksum or did not parse (moved to the quarantine file). */
  readonly quarantined: number;
}

/** The append-only, fsync-ed outage spool of one AuditLog (one writer per directory). */
export class Spool {
  private constructor(
    private readonly fh: fsp.FileHandle,
    private readonly dir: string,
    private bytes: number,
  ) {}

  /** Opens (creating) `<dir>/spool.ndjson`, cutting off a torn last line left by a crash. */
  static async open(dir: string): Promise<Spool> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, FILE);
    const fh = await fsp.open(file, 'a+', 0o600);
    let size = (await fh.stat()).size;
    if (size > 0) {
      // Find the last newline; everything after it is a torn append that never resolved.
      const tailLen = Math.min(size, 1 << 16);
      let cut = -1;
      for (let end = size; end > 0 && cut < 0; ) {
        const start = Math.max(0, end - tailLen);
        const buf = Buffer.alloc(end - start);
        await fh.read(buf, 0, buf.length, start);
        const i = buf.lastIndexOf(0x0a);
        if (i >= 0) cut = start + i + 1;
        else if (start === 0) cut = 0;
        end = start;
      }
      if (cut !== size) {
        await fh.truncate(cut);
        await fh.datasync();
        size = cut;
      }
    }
    return new Spool(fh, dir, size);
  }

  /** Bytes in the spool (0 when drained). */
  get size(): number {
    return this.bytes;
  }

  /** Appends the events in order and fsyncs; resolves only when they are on disk. */
  async append(events: readonly AuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    let text = '';
    for (const e of events) {
      const json = canonicalJson(e);
      text += `${checksum(json)} ${json}\n`;
    }
    const buf = Buffer.from(text, 'utf8');
    // 'a+' makes every write land at the end regardless of position, so the file is append-only.
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, off, buf.length - off);
      off += bytesWritten;
    }
    await this.fh.datasync();
    this.bytes += buf.length;
  }

  /** Reads up to `maxEvents` whole lines from `offset`. */
  async read(offset: number, maxEvents: number): Promise<SpoolChunk> {
    const events: AuditEvent[] = [];
    let quarantined = 0;
    let pos = offset;
    let carry = Buffer.alloc(0);
    const chunk = Buffer.alloc(1 << 20);
    while (events.length < maxEvents && pos < this.bytes) {
      const want = Math.min(chunk.length, this.bytes - pos - carry.length);
      if (want <= 0) break;
      const { bytesRead } = await this.fh.read(chunk, 0, want, pos + carry.length);
      if (bytesRead === 0) break;
      let buf = carry.length ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
      let start = 0;
      for (;;) {
        if (events.length >= maxEvents) break;
        const nl = buf.indexOf(0x0a, start);
        if (nl < 0) break;
        const line = buf.toString('utf8', start, nl);
        const parsed = parseLine(line);
        if (parsed) events.push(parsed);
        else {
          quarantined += 1;
          await fsp.appendFile(path.join(this.dir, QUARANTINE), `${line}\n`, { mode: 0o600 });
        }
        start = nl + 1;
      }
      pos += start;
      buf = buf.subarray(start);
      carry = Buffer.from(buf);
      if (events.length >= maxEvents) break;
    }
    return { events, nextOffset: pos, quarantined };
  }

  /** Empties the spool after everything in it reached the store. */
  async reset(): Promise<void> {
    await this.fh.truncate(0);
    await this.fh.datasync();
    this.bytes = 0;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

function parseLine(line: string): AuditEvent | null {
  const sp = line.indexOf(' ');
  if (sp !== 16) return null;
  const json = line.slice(17);
  if (checksum(json) !== line.slice(0, 16)) return null;
  try {
    return JSON.parse(json) as AuditEvent;
  } catch {
    return null;
  }
}
