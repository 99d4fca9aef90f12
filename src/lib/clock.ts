/**
 * Time source. Everything that needs "now" takes a `Clock` (or a `now` parameter) so tests can freeze time and
 * so TTL expiry is testable on every store back-end.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  nowMs(): number;
}

export const systemClock: Clock = { nowMs: () => Date.now() };

/** A clock that only moves when told to; for tests, benchmarks and replaying frozen vectors. */
export class ManualClock implements Clock {
  private current: number;

  constructor(start: number | Date = Date.UTC(2026, 10, 26, 12, 0, 0)) {
    this.current = typeof start === 'number' ? start : start.getTime();
  }

  nowMs(): number {
    return this.current;
  }

  advance(ms: number): void {
    this.current += ms;
  }

  set(at: number | Date): void {
    this.current = typeof at === 'number' ? at : at.getTime();
  }
}

/** UTC ISO 8601 with milliseconds, the one time format of logs, audit entries and API responses. */
export function isoUtc(ms: number): string {
  return new Date(ms).toISOString();
}
