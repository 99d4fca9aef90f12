import { isUuid, newTimeOrderedId } from '../../../src/lib/ids';

describe('newTimeOrderedId (UUIDv7)', () => {
  const T = Date.UTC(2026, 10, 27, 5, 0, 0, 123);

  it('is an RFC 9562 version 7 UUID carrying the given millisecond', () => {
    const id = newTimeOrderedId(T);
    expect(isUuid(id)).toBe(true);
    expect(id[14]).toBe('7');
    expect('89ab').toContain(id[19]);
    expect(Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(T);
  });

  it('sorts by time across milliseconds and never repeats, also past a refill of its random pool (id collision)', () => {
    const ids = Array.from({ length: 5000 }, (_, i) => newTimeOrderedId(T + Math.floor(i / 10)));
    expect(new Set(ids).size).toBe(ids.length);
    for (let i = 10; i < ids.length; i += 10) expect(ids[i]! > ids[i - 1]!).toBe(true);
    // 74 random bits per id: ids of the same millisecond differ beyond the timestamp.
    expect(new Set(ids.slice(0, 10).map((id) => id.slice(14))).size).toBe(10);
  });
});
