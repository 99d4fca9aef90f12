import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * One registry per app instance (not prom-client's global default), so tests that build several apps in one process
 * do not collide and every metric is declared here, in one place.
 */
export interface Metrics {
  readonly registry: Registry;
  readonly httpRequestDuration: Histogram<'method' | 'route' | 'status'>;
  readonly storeOperationDuration: Histogram<'backend' | 'aggregate' | 'operation' | 'outcome'>;
  readonly decisions: Counter<'decision' | 'reason'>;
  readonly auditAppends: Counter<'outcome'>;
  readonly auditBatchSize: Histogram<never>;
  readonly auditSpooled: Gauge<never>;
  readonly certificatesIssued: Counter<'via'>;
  readonly enrollments: Counter<'step' | 'outcome'>;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'devicegate_' });
  return {
    registry,
    httpRequestDuration: new Histogram({
      name: 'devicegate_http_request_duration_seconds',
      help: 'HTTP request duration by route template and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    storeOperationDuration: new Histogram({
      name: 'devicegate_store_operation_duration_seconds',
      help: 'Store operation duration by back-end, aggregate, operation and outcome',
      labelNames: ['backend', 'aggregate', 'operation', 'outcome'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    decisions: new Counter({
      name: 'devicegate_decisions_total',
      help: 'Connection decisions by result and reason code',
      labelNames: ['decision', 'reason'],
      registers: [registry],
    }),
    auditAppends: new Counter({
      name: 'devicegate_audit_appends_total',
      help: 'Audit entries appended, by outcome (stored, spooled, replayed)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    auditBatchSize: new Histogram({
      name: 'devicegate_audit_batch_size',
      help: 'Entries per audit group commit',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers: [registry],
    }),
    auditSpooled: new Gauge({
      name: 'devicegate_audit_spooled_entries',
      help: 'Audit entries waiting in the local spool for the store to return',
      registers: [registry],
    }),
    certificatesIssued: new Counter({
      name: 'devicegate_certificates_issued_total',
      help: 'Device certificates issued, by path (enroll, renew, manual)',
      labelNames: ['via'],
      registers: [registry],
    }),
    enrollments: new Counter({
      name: 'devicegate_enrollment_steps_total',
      help: 'Enrollment protocol steps by step and outcome (ok or an error code)',
      labelNames: ['step', 'outcome'],
      registers: [registry],
    }),
  };
}
