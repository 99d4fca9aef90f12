/**
 * xorshift32 in [0, 1): reproducible from a printed seed (fuzz tests) and comparable across runs (benchmarks). Not
 * for anything secret.
 */
export function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}
