import { Router } from 'express';
import type { Metrics } from '../../metrics/registry';
import type { Store } from '../../store/types';
import type { RouteTable } from '../route-table';

export interface OperatorRouteDeps {
  readonly store: Store;
  readonly metrics: Metrics;
  readonly metricsEnabled: boolean;
  readonly openApi: Record<string, unknown>;
  /** Readiness checks besides the store (e.g. the audit log is not spooling forever). */
  readonly extraReadiness?: () => Promise<{ ok: boolean; detail?: string }>;
}

/**
 * Operator routes: `/healthz` (process up, no dependencies), `/readyz` (the store answers: load balancers take the
 * instance out while it does not), `/metrics`, and the OpenAPI document.
 */
export function operatorRoutes(table: RouteTable, deps: OperatorRouteDeps): Router {
  const router = Router();
  table.add(router, '', { method: 'get', path: '/healthz', access: 'public' }, (_req, res) => {
    res.json({ status: 'ok' });
  });
  table.add(router, '', { method: 'get', path: '/readyz', access: 'public' }, async (_req, res) => {
    const store = await deps.store.ping();
    const extra = deps.extraReadiness ? await deps.extraReadiness() : { ok: true };
    const ok = store.ok && extra.ok;
    res.status(ok ? 200 : 503).json({
      status: ok ? 'ready' : 'not_ready',
      store: { backend: store.backend, ok: store.ok, ...(store.ok ? {} : { detail: store.detail }) },
      ...(extra.ok ? {} : { detail: extra.detail }),
    });
  });
  if (deps.metricsEnabled) {
    table.add(router, '', { method: 'get', path: '/metrics', access: 'public' }, async (_req, res) => {
      res.setHeader('Content-Type', deps.metrics.registry.contentType);
      res.send(await deps.metrics.registry.metrics());
    });
  }
  table.add(router, '', { method: 'get', path: '/v1/openapi.json', access: 'public' }, (_req, res) => {
    res.json(deps.openApi);
  });
  return router;
}
