/** The webhook's Prometheus metrics, on a registry of its own so several apps can coexist in tests. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface WebhookMetrics {
  registry: Registry;
  admissions: Counter<'decision' | 'operation'>;
  latency: Histogram<'decision'>;
  certExpiry: Gauge;
  connectionErrors: Counter<'kind'>;
}

export function createWebhookMetrics(opts: { processMetrics?: boolean } = {}): WebhookMetrics {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'kube_canary_webhook_' });
  return {
    registry,
    admissions: new Counter({
      name: 'kube_canary_webhook_admissions_total',
      help: 'Admission requests by decision (allowed, patched, denied, invalid: refused as malformed, error: failed in the webhook) and operation.',
      labelNames: ['decision', 'operation'],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'kube_canary_webhook_admission_duration_seconds',
      help: 'Time from receiving an admission request to sending the answer, in seconds.',
      labelNames: ['decision'],
      // Up to the apiserver's longest timeoutSeconds (30 s): a slow answer must land in a bucket of its own.
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    certExpiry: new Gauge({
      name: 'kube_canary_webhook_certificate_expiry_timestamp_seconds',
      help: 'Expiry (notAfter) of the serving certificate in use, as a Unix timestamp.',
      registers: [registry],
    }),
    connectionErrors: new Counter({
      name: 'kube_canary_webhook_connection_errors_total',
      help: 'Connections that failed before a request could be answered, by kind: tls (handshake failed), http (malformed request), timeout (request not received whole in time), disconnect (peer left).',
      labelNames: ['kind'],
      registers: [registry],
    }),
  };
}
