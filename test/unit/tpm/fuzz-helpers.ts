/** Deterministic mutation fuzzing: a seeded PRNG and byte-level mutators that target TPM/DER/CBOR length fields. */
import { AppError } from '../../../src/domain/errors';

/** mulberry32: small, fast, seeded; every failure is reproducible from the seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function mutate(seed: Buffer, rnd: () => number): Buffer {
  const int = (n: number) => Math.floor(rnd() * n);
  const b = Buffer.from(seed);
  switch (int(9)) {
    case 0: {
      // flip 1..4 bits
      for (let i = 0, n = 1 + int(4); i < n && b.length; i++) {
        const p = int(b.length);
        b[p] = b[p]! ^ (1 << int(8));
      }
      return b;
    }
    case 1:
      return b.subarray(0, int(b.length + 1)); // truncate
    case 2: {
      if (b.length) b[int(b.length)] = int(256); // overwrite a byte
      return b;
    }
    case 3: {
      const p = int(b.length + 1); // insert bytes
      const ins = Buffer.from(Array.from({ length: 1 + int(8) }, () => int(256)));
      return Buffer.concat([b.subarray(0, p), ins, b.subarray(p)]);
    }
    case 4: {
      const p = int(b.length + 1); // delete a range
      return Buffer.concat([b.subarray(0, p), b.subarray(Math.min(b.length, p + 1 + int(8)))]);
    }
    case 5: {
      if (b.length >= 2) b.writeUInt16BE([0xffff, 0x8000, 0x0000, 0x0001, int(0x10000)][int(5)]!, int(b.length - 1)); // size fields
      return b;
    }
    case 6:
      return Buffer.concat([b, Buffer.from(Array.from({ length: 1 + int(16) }, () => int(256)))]); // trailing bytes
    case 7: {
      if (b.length) b[int(b.length)] = [0x80, 0x81, 0x82, 0x84, 0xff, 0x00][int(6)]!; // DER/CBOR length bytes
      return b;
    }
    default:
      return Buffer.from(Array.from({ length: int(300) }, () => int(256))); // noise
  }
}

/**
 * Runs `fn` on `count` mutations of the seeds; every outcome must be a return or an AppError whose kind is in
 * `kinds`. Returns counters so a test can also assert the fuzzer reached both outcomes.
 */
export function fuzz(
  seeds: readonly Buffer[],
  count: number,
  fn: (input: Buffer) => unknown,
  kinds: readonly string[] = ['bad_request'],
  seed = 0xdecaf,
): { ok: number; rejected: number; byCode: Map<string, number> } {
  const rnd = prng(seed);
  let ok = 0;
  let rejected = 0;
  const byCode = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    let input = seeds[i % seeds.length]!;
    for (let m = 0, n = 1 + Math.floor(rnd() * 3); m < n; m++) input = mutate(input, rnd);
    try {
      fn(input);
      ok++;
    } catch (e) {
      if (!(e instanceof AppError) || !kinds.includes(e.kind)) {
        throw new Error(`input #${i} (${input.toString('hex').slice(0, 200)}) gave ${e instanceof AppError ? `${e.kind} ${e.code}` : String(e)}`);
      }
      rejected++;
      byCode.set(e.code, (byCode.get(e.code) ?? 0) + 1);
    }
  }
  return { ok, rejected, byCode };
}
