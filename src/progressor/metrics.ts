/**
 * The progressor's own Prometheus metrics and the small HTTP server that serves them with
 * /healthz. Bound to 127.0.0.1 by default: metrics name every release in the cluster.
 */
import http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PHASES, type Phase } from '../config/status.js';
import type { Logger } from '../kube/logger.js';

export class ProgressorMetrics {
  readonly registry = new Registry();
  readonly phase = new Gauge({ name: 'kube_canary_release_phase', help: 'Current phase of each release (1 for the current phase, 0 otherwise)', labelNames: ['namespace', 'name', 'phase'], registers: [this.registry] });
  readonly weight = new Gauge({ name: 'kube_canary_release_canary_weight', help: 'Canary traffic weight in percent', labelNames: ['namespace', 'name'], registers: [this.registry] });
  readonly failedChecks = new Gauge({ name: 'kube_canary_release_failed_checks', help: 'Failed checks of the current release', labelNames: ['namespace', 'name'], registers: [this.registry] });
  readonly checks = new Counter({ name: 'kube_canary_analysis_checks_total', help: 'Gate check results', labelNames: ['namespace', 'name', 'gate', 'check', 'result'], registers: [this.registry] });
  readonly gateRuns = new Gauge({ name: 'kube_canary_gate_runs', help: 'Gate sets in flight (running) or waiting for one of the --gate-concurrency slots (waiting)', labelNames: ['state'], registers: [this.registry] });
  readonly gateDuration = new Histogram({ name: 'kube_canary_gate_duration_seconds', help: 'Time to run one gate set', labelNames: ['gate'], buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30], registers: [this.registry] });
  readonly releaseDuration = new Histogram({ name: 'kube_canary_release_duration_seconds', help: 'Release duration from new revision to its end', labelNames: ['outcome'], buckets: [10, 30, 60, 120, 300, 600, 1200, 3600], registers: [this.registry] });
  readonly promotions = new Counter({ name: 'kube_canary_promotions_total', help: 'Releases promoted', labelNames: ['namespace', 'name'], registers: [this.registry] });
  readonly rollbacks = new Counter({ name: 'kube_canary_rollbacks_total', help: 'Releases rolled back', labelNames: ['namespace', 'name'], registers: [this.registry] });
  readonly reconcileDuration = new Histogram({ name: 'kube_canary_reconcile_duration_seconds', help: 'Time for one reconcile', buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5], registers: [this.registry] });
  readonly reconcileErrors = new Counter({ name: 'kube_canary_reconcile_errors_total', help: 'Reconciles that failed and were retried', registers: [this.registry] });
  readonly stepLag = new Histogram({ name: 'kube_canary_step_lag_seconds', help: 'Delay between a step falling due and its reconcile starting', buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5], registers: [this.registry] });
  readonly weightLag = new Histogram({ name: 'kube_canary_weight_change_lag_seconds', help: 'Delay between a step falling due and its new traffic weight being accepted by the API (gates and the route write included)', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10], registers: [this.registry] });
  readonly leader = new Gauge({ name: 'kube_canary_leader', help: '1 while this replica holds the lease', registers: [this.registry] });
  readonly apiRequests = new Gauge({ name: 'kube_canary_api_requests', help: 'Kubernetes API requests made by this process', registers: [this.registry] });
  readonly apiSlotWait = new Histogram({ name: 'kube_canary_api_request_slot_wait_seconds', help: 'Time an API request waited for one of the client\'s in-flight slots, by priority', labelNames: ['priority'], buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5], registers: [this.registry] });
  readonly apiRoundTrip = new Histogram({ name: 'kube_canary_api_request_duration_seconds', help: 'API request round trip once it had a slot, by verb and resource', labelNames: ['verb', 'resource'], buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5], registers: [this.registry] });
  readonly apiRequestsBy = new Gauge({ name: 'kube_canary_api_requests_by_resource', help: 'Kubernetes API requests made by this process, by verb (WATCH for watches) and resource', labelNames: ['verb', 'resource'], registers: [this.registry] });

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry });
  }

  setPhase(namespace: string, name: string, phase: Phase | undefined): void {
    for (const p of PHASES) this.phase.set({ namespace, name, phase: p }, p === phase ? 1 : 0);
  }

  /** The Deployment is gone: its series go too (a cluster's Deployments come and go; series would pile up). */
  async forget(namespace: string, name: string): Promise<void> {
    for (const p of PHASES) this.phase.remove({ namespace, name, phase: p });
    this.weight.remove({ namespace, name });
    this.failedChecks.remove({ namespace, name });
    // Counters with more labels than the release's: each series of it, as the registry has them.
    for (const c of [this.checks, this.promotions, this.rollbacks] as Array<Counter<string>>) {
      for (const v of (await c.get()).values) if (v.labels.namespace === namespace && v.labels.name === name) c.remove(v.labels);
    }
  }
}

export function parseAddr(addr: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(addr);
  if (!m) throw new Error(`--metrics-addr ${JSON.stringify(addr)} is not HOST:PORT (e.g. 127.0.0.1:8081)`);
  return { host: m[1]!.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(m[2]) };
}

export function serveMetrics(metrics: ProgressorMetrics, addr: string, healthy: () => { ok: boolean; detail: string }, log: Logger): Promise<http.Server> {
  const { host, port } = parseAddr(addr);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
      return;
    }
    if (path === '/healthz' || path === '/readyz') {
      const h = healthy();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'text/plain' }).end(`${h.detail}\n`);
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      // As the webhook's server: errors after the start are logged, not left to `reject` (see there).
      server.off('error', reject);
      server.on('error', (err) => log.error({ err: err.message }, 'metrics server error'));
      resolve(server);
    });
  });
}
