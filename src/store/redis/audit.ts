import type { AuditEntry } from '../../domain/types';
import { decodeCursor, encodeCursor } from '../cursor';
import { ConflictError } from '../errors';
import type { AuditFilter, AuditHead, AuditStore, Page, PageRequest } from '../types';
import { guarded, LuaScript, type RedisClient } from './client';
import { padded, type RedisKeys } from './keys';
import { AUDIT_APPEND } from './scripts';

const appendScript = new LuaScript(AUDIT_APPEND);

/** Index entries fetched per round trip while a query filters client-side. */
const QUERY_CHUNK = 256;

/**
 * The audit log in Redis. Entries live in one hash keyed by seq; every entry is also indexed in time-scored zsets
 * (one for all entries, one per indexed field value) whose members are zero-padded seqs, so a zset walk in score
 * order is the query order (time descending, then seq descending). All keys share the `{audit}` hash tag: the append
 * script is one atomic compare-and-set even with several gateway instances, also on Redis Cluster.
 */
export class RedisAuditStore implements AuditStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  head(): Promise<AuditHead | null> {
    return guarded(async () => parseHead(await this.redis.get(this.keys.auditHead())));
  }

  appendIfHead(expected: AuditHead | null, entries: readonly AuditEntry[]): Promise<void> {
    return guarded(async () => {
      if (entries.length === 0) return;
      const args: (string | number)[] = [
        this.keys.auditIndexPrefix(),
        expected ? `${expected.seq}:${expected.hash}` : '',
        entries.length,
      ];
      for (const e of entries) {
        args.push(
          e.seq,
          e.eventId,
          e.time,
          e.prevHash,
          e.hash,
          JSON.stringify(e),
          e.deviceId ?? '',
          e.user ?? '',
          e.reason ?? '',
          e.concentrator ?? '',
          e.type,
          e.decision ?? '',
        );
      }
      const r = await appendScript.run(
        this.redis,
        [
          this.keys.auditHead(),
          this.keys.auditEntries(),
          this.keys.auditEventIds(),
          this.keys.auditFirst(),
          this.keys.auditTimeIndex(),
        ],
        args,
      );
      if (r === 'CONFLICT') throw new ConflictError('audit head');
      if (r === 'DUP') throw new ConflictError('audit event (duplicate event id)');
    });
  }

  existingEventIds(eventIds: readonly string[]): Promise<Set<string>> {
    return guarded(async () => {
      const found = new Set<string>();
      if (eventIds.length === 0) return found;
      const seqs = await this.redis.hmget(this.keys.auditEventIds(), ...eventIds);
      eventIds.forEach((id, i) => {
        if (seqs[i] !== null) found.add(id);
      });
      return found;
    });
  }

  range(fromSeq: number, toSeq: number, limit: number): Promise<AuditEntry[]> {
    return guarded(async () => {
      const [first, head] = await Promise.all([this.firstSeqRaw(), this.redis.get(this.keys.auditHead())]);
      const last = parseHead(head)?.seq;
      if (first === null || last === undefined) return [];
      const from = Math.max(fromSeq, first);
      const to = Math.min(toSeq, last, from + limit - 1);
      if (to < from) return [];
      const seqs: string[] = [];
      for (let s = from; s <= to; s++) seqs.push(String(s));
      const jsons = await this.redis.hmget(this.keys.auditEntries(), ...seqs);
      return jsons.filter((j): j is string => j !== null).map((j) => JSON.parse(j) as AuditEntry);
    });
  }

  query(filter: AuditFilter, page: PageRequest): Promise<Page<AuditEntry>> {
    return guarded(async () => {
      // Walk the most selective index; the remaining filters are applied to the fetched entries.
      const indexKey = pickIndex(this.keys, filter);
      let max = filter.toTime !== undefined ? `(${filter.toTime}` : '+inf';
      const min = filter.fromTime !== undefined ? String(filter.fromTime) : '-inf';
      let skipAtOrAbove: { time: number; member: string } | null = null;
      if (page.cursor) {
        const [time, seq] = decodeCursor(page.cursor, ['number', 'number']) as [number, number];
        if (filter.toTime === undefined || time < filter.toTime) max = String(time);
        skipAtOrAbove = { time, member: padded(seq) };
      }
      const items: AuditEntry[] = [];
      let offset = 0;
      for (;;) {
        const raw = await this.redis.zrevrangebyscore(indexKey, max, min, 'WITHSCORES', 'LIMIT', offset, QUERY_CHUNK);
        if (raw.length === 0) break;
        const members: string[] = [];
        for (let i = 0; i < raw.length; i += 2) {
          const member = raw[i] as string;
          const score = Number(raw[i + 1]);
          // Within the cursor's millisecond only entries with a smaller seq come after the cursor.
          if (skipAtOrAbove && score === skipAtOrAbove.time && member >= skipAtOrAbove.member) continue;
          members.push(member);
        }
        offset += raw.length / 2;
        if (members.length) {
          const jsons = await this.redis.hmget(this.keys.auditEntries(), ...members.map((m) => String(Number(m))));
          for (const json of jsons) {
            if (!json) continue;
            const e = JSON.parse(json) as AuditEntry;
            if (matches(e, filter)) items.push(e);
            if (items.length > page.limit) break;
          }
        }
        if (items.length > page.limit || raw.length / 2 < QUERY_CHUNK) break;
      }
      const more = items.length > page.limit;
      const kept = items.slice(0, page.limit);
      const last = kept[kept.length - 1];
      return { items: kept, nextCursor: more && last ? encodeCursor([last.time, last.seq]) : null };
    });
  }

  private async firstSeqRaw(): Promise<number | null> {
    const v = await this.redis.get(this.keys.auditFirst());
    return v === null ? null : Number(v);
  }

  firstSeq(): Promise<number | null> {
    return guarded(() => this.firstSeqRaw());
  }

  deletePrefix(beforeSeq: number): Promise<number> {
    return guarded(async () => {
      const first = await this.firstSeqRaw();
      if (first === null || beforeSeq <= first) return 0;
      let deleted = 0;
      for (let from = first; from < beforeSeq; from += 1000) {
        const to = Math.min(beforeSeq - 1, from + 999);
        const batch = await this.range(from, to, 1000);
        const tx = this.redis.multi();
        for (const e of batch) {
          const member = padded(e.seq);
          tx.hdel(this.keys.auditEntries(), String(e.seq));
          tx.hdel(this.keys.auditEventIds(), e.eventId);
          tx.zrem(this.keys.auditTimeIndex(), member);
          for (const [field, value] of indexedValues(e)) tx.zrem(this.keys.auditIndex(field, value), member);
        }
        // The first-seq marker moves with each batch, so a crash mid-way leaves a consistent (shorter) prefix.
        tx.set(this.keys.auditFirst(), String(to + 1));
        await tx.exec();
        deleted += batch.length;
      }
      return deleted;
    });
  }
}

function parseHead(raw: string | null): AuditHead | null {
  if (!raw) return null;
  const sep = raw.indexOf(':');
  return { seq: Number(raw.slice(0, sep)), hash: raw.slice(sep + 1) };
}

function indexedValues(e: AuditEntry): [string, string][] {
  const out: [string, string][] = [['type', e.type]];
  if (e.deviceId) out.push(['device', e.deviceId]);
  if (e.user) out.push(['user', e.user]);
  if (e.reason) out.push(['reason', e.reason]);
  if (e.concentrator) out.push(['concentrator', e.concentrator]);
  if (e.decision) out.push(['decision', e.decision]);
  return out;
}

function pickIndex(keys: RedisKeys, f: AuditFilter): string {
  if (f.deviceId !== undefined) return keys.auditIndex('device', f.deviceId);
  if (f.user !== undefined) return keys.auditIndex('user', f.user);
  if (f.concentrator !== undefined) return keys.auditIndex('concentrator', f.concentrator);
  if (f.reason !== undefined) return keys.auditIndex('reason', f.reason);
  if (f.type !== undefined) return keys.auditIndex('type', f.type);
  if (f.decision !== undefined) return keys.auditIndex('decision', f.decision);
  return keys.auditTimeIndex();
}

function matches(e: AuditEntry, f: AuditFilter): boolean {
  return (
    (f.type === undefined || e.type === f.type) &&
    (f.deviceId === undefined || e.deviceId === f.deviceId) &&
    (f.user === undefined || e.user === f.user) &&
    (f.decision === undefined || e.decision === f.decision) &&
    (f.reason === undefined || e.reason === f.reason) &&
    (f.concentrator === undefined || e.concentrator === f.concentrator) &&
    (f.fromTime === undefined || e.time >= f.fromTime) &&
    (f.toTime === undefined || e.time < f.toTime)
  );
}
