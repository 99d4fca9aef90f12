/**
 * Tiny benchmark helpers: run a body for a fixed number of operations after a warm-up, report operations per second,
 * and print results beside the baseline measured in the same run with their ratio. Medians of several rounds damp
 * the noise of a shared 2-core machine.
 */
import { performance } from 'node:perf_hooks';

export interface Figure {
  readonly name: string;
  readonly opsPerSec: number;
  /** Name of the baseline this figure is compared with, if any. */
  readonly baseline?: string;
}

export async function opsPerSecond(ops: number, body: (i: number) => unknown, rounds = 3): Promise<number> {
  const results: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < ops; i++) await body(r * ops + i);
    results.push(ops / ((performance.now() - t0) / 1000));
  }
  return median(results);
}

/** Like `opsPerSecond` but keeps `concurrency` operations in flight (for network back-ends). */
export async function opsPerSecondConcurrent(
  ops: number,
  concurrency: number,
  body: (i: number) => Promise<unknown>,
  rounds = 3,
): Promise<number> {
  const results: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < ops) {
          const i = next++;
          await body(r * ops + i);
        }
      }),
    );
    results.push(ops / ((performance.now() - t0) / 1000));
  }
  return median(results);
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

const fmt = (n: number): string => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2));

/** Prints a table: figure, ops/s, baseline, ratio. */
export function printFigures(title: string, figures: readonly Figure[]): void {
  const byName = new Map(figures.map((f) => [f.name, f]));
  const lines = [``, `## ${title}`, '', '| measurement | ops/s | baseline (same run) | ratio |', '|---|---:|---|---:|'];
  for (const f of figures) {
    const base = f.baseline ? byName.get(f.baseline) : undefined;
    lines.push(
      `| ${f.name} | ${fmt(f.opsPerSec)} | ${base ? `${base.name}: ${fmt(base.opsPerSec)}` : '(baseline)'} | ${base ? (f.opsPerSec / base.opsPerSec).toFixed(2) + '×' : ''} |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
