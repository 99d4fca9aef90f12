import { ApiTokenService } from '../auth/api-tokens';
import type { Config } from '../config/schema';
import type { Clock } from '../lib/clock';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../metrics/registry';
import type { Store } from '../store/types';

/** Everything the HTTP edge and the CLI call. Built once by `buildServices`; the only place that wires modules. */
export interface Services {
  readonly apiTokens: ApiTokenService;
  /** Stops background work (timers, subscriptions) before the store closes. */
  close(): Promise<void>;
}

export interface ServiceDeps {
  readonly config: Config;
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export async function buildServices(deps: ServiceDeps): Promise<Services> {
  const apiTokens = new ApiTokenService(deps.store.apiTokens, deps.clock);
  return {
    apiTokens,
    async close() {
      // Nothing in the background yet.
    },
  };
}
