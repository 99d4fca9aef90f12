/**
 * Canonical JSON (RFC 8785 JCS subset): object keys sorted by UTF-16 code units, no whitespace, `undefined`
 * members dropped, numbers in ECMAScript shortest form. Used for hashes that must be reproducible on an
 * auditor's machine, so it rejects values JSON cannot represent instead of silently changing them.
 */
export function canonicalJson(value: unknown): string {
  return serialize(value, 0);
}

function serialize(value: unknown, depth: number): string {
  if (depth > 64) throw new TypeError('canonicalJson: nesting deeper than 64');
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonicalJson: non-finite number');
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => serialize(v === undefined ? null : v, depth + 1)).join(',')}]`;
      if (value instanceof Date) return JSON.stringify(value.toISOString());
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${serialize(obj[k], depth + 1)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonicalJson: cannot encode ${typeof value}`);
  }
}
