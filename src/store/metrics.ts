import type { Histogram } from 'prom-client';
import type { Store } from './types';

type Timer = Histogram<'backend' | 'aggregate' | 'operation' | 'outcome'>;

const AGGREGATES = [
  'devices',
  'enrollmentTokens',
  'certificates',
  'revocations',
  'nonces',
  'audit',
  'apiTokens',
  'rateLimits',
] as const;

/**
 * Decorates a store so that every aggregate operation is timed into `devicegate_store_operation_duration_seconds`
 * (Teleport's Reporter pattern): the back-ends stay free of metrics code, and the decorator works for any of them.
 * Outcome is `ok` or the error's `code` (NOT_FOUND, CONFLICT, STORE_UNAVAILABLE, ...).
 */
export function instrumentStore(store: Store, histogram: Timer): Store {
  const wrapped: Record<string, unknown> = {};
  for (const aggregate of AGGREGATES) {
    const target = store[aggregate] as unknown as Record<string, unknown>;
    const proxy: Record<string, unknown> = {};
    for (const name of methodNames(target)) {
      const fn = target[name] as (...args: unknown[]) => Promise<unknown>;
      proxy[name] = async (...args: unknown[]): Promise<unknown> => {
        const end = histogram.startTimer({ backend: store.backend, aggregate, operation: name });
        try {
          const result = await fn.apply(target, args);
          end({ outcome: 'ok' });
          return result;
        } catch (e) {
          end({ outcome: (e as { code?: string }).code ?? 'error' });
          throw e;
        }
      };
    }
    wrapped[aggregate] = proxy;
  }
  return {
    ...(wrapped as unknown as Pick<Store, (typeof AGGREGATES)[number]>),
    backend: store.backend,
    events: store.events,
    ping: () => store.ping(),
    startupWarnings: () => store.startupWarnings(),
    close: () => store.close(),
  };
}

function methodNames(obj: Record<string, unknown>): string[] {
  const names = new Set<string>();
  for (let p: object | null = obj; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    for (const n of Object.getOwnPropertyNames(p)) {
      if (n !== 'constructor' && typeof (obj)[n] === 'function') names.add(n);
    }
  }
  return [...names];
}
