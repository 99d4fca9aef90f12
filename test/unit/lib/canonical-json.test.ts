import { canonicalJson } from '../../../src/lib/canonical-json';

describe('canonicalJson', () => {
  it('sorts keys at every level, drops undefined members, has no whitespace (known answer)', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, undefined, 'x'], c: null, e: undefined }, 'ä': true })).toBe(
      '{"a":{"c":null,"d":[3,null,"x"]},"b":1,"ä":true}',
    );
  });

  it('orders keys by UTF-16 code units, not locale', () => {
    expect(canonicalJson({ Z: 1, a: 2, _: 3 })).toBe('{"Z":1,"_":3,"a":2}');
  });

  it('gives the same text for objects built in different key orders', () => {
    expect(canonicalJson({ x: 1, y: { p: 2, q: 3 } })).toBe(canonicalJson({ y: { q: 3, p: 2 }, x: 1 }));
  });

  it('escapes strings as JSON does and writes dates as ISO strings', () => {
    expect(canonicalJson({ s: 'quote " and \\n' })).toBe('{"s":"quote \\" and \\\\n"}');
    expect(canonicalJson({ t: new Date(Date.UTC(2026, 10, 26)) })).toBe('{"t":"2026-11-26T00:00:00.000Z"}');
  });

  it('refuses values JSON cannot represent instead of changing them', () => {
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/non-finite/);
    expect(() => canonicalJson({ n: Infinity })).toThrow(/non-finite/);
    expect(() => canonicalJson({ f: () => 1 })).toThrow(/cannot encode/);
    expect(() => canonicalJson({ b: 1n })).toThrow(/cannot encode/);
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i < 70; i++) deep = (deep.x = {});
    expect(() => canonicalJson(root)).toThrow(/deeper than 64/);
  });
});
