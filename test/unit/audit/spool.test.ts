import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Spool } from '../../../src/audit/spool';
import { decisionInput, toEvent } from './fixtures';

describe('audit spool file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dg-spool-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('returns appended events in order across batches and read sizes', async () => {
    const spool = await Spool.open(dir);
    const events = Array.from({ length: 25 }, (_, i) => toEvent(decisionInput(i)));
    await spool.append(events.slice(0, 10));
    await spool.append(events.slice(10));
    const ids: string[] = [];
    let off = 0;
    for (;;) {
      const c = await spool.read(off, 7);
      if (c.events.length === 0) break;
      ids.push(...c.events.map((e) => e.eventId));
      off = c.nextOffset;
    }
    expect(ids).toEqual(events.map((e) => e.eventId));
    expect(off).toBe(spool.size);
    await spool.reset();
    expect(spool.size).toBe(0);
    expect((await spool.read(0, 10)).events).toHaveLength(0);
    await spool.close();
  });

  it('cuts off a torn last line left by a crash mid-append, keeping every complete line', async () => {
    let spool = await Spool.open(dir);
    const events = [toEvent(decisionInput(1)), toEvent(decisionInput(2))];
    await spool.append(events);
    await spool.close();
    appendFileSync(path.join(dir, 'spool.ndjson'), '0123456789abcdef {"v":1,"eventId":"half-writ');
    spool = await Spool.open(dir);
    const c = await spool.read(0, 10);
    expect(c.events.map((e) => e.eventId)).toEqual(events.map((e) => e.eventId));
    expect(c.quarantined).toBe(0);
    expect(readFileSync(path.join(dir, 'spool.ndjson'), 'utf8').endsWith('\n')).toBe(true);
    // New appends continue after the repaired tail.
    const third = toEvent(decisionInput(3));
    await spool.append([third]);
    expect((await spool.read(0, 10)).events.map((e) => e.eventId)).toEqual([...events, third].map((e) => e.eventId));
    await spool.close();
  });

  it('quarantines a corrupted line (checksum mismatch) instead of replaying or dropping it', async () => {
    let spool = await Spool.open(dir);
    const events = [toEvent(decisionInput(1)), toEvent(decisionInput(2)), toEvent(decisionInput(3))];
    await spool.append(events);
    await spool.close();
    const file = path.join(dir, 'spool.ndjson');
    const lines = readFileSync(file, 'utf8').split('\n');
    lines[1] = (lines[1] as string).replace('"allow"', '"deny!"');
    writeFileSync(file, lines.join('\n'));
    spool = await Spool.open(dir);
    const c = await spool.read(0, 10);
    expect(c.events.map((e) => e.eventId)).toEqual([events[0]?.eventId, events[2]?.eventId]);
    expect(c.quarantined).toBe(1);
    expect(readFileSync(path.join(dir, 'spool.quarantine'), 'utf8')).toContain('deny!');
    await spool.close();
  });
});
