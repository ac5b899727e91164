/**
 * `kube-canary progressor`: the release controller. Composition root only: parse flags, build
 * the clients, wire leader election -> controller -> reconciler, serve metrics, stop on SIGTERM.
 */
import os from 'node:os';
import type { Command } from 'commander';
import { DEFAULT_TRACK_LABEL } from '../config/contract.js';
import { AVAILABLE_TRAFFIC_PROVIDERS, type AvailableTrafficProviderName, type ClusterDefaults, PROGRESS_DEADLINE_BOUNDS, parseReleaseConfig } from '../config/release-config.js';
import { Kube } from '../kube/client.js';
import { loadCredentials } from '../kube/credentials.js';
import { KubeCustomObjects } from '../kube/custom-objects.js';
import { KubeEventRecorder } from '../kube/events.js';
import { KubeHttp } from '../kube/http.js';
import { InformerObjectCache } from '../kube/object-cache.js';
import { createLogger, endLogger } from '../kube/logger.js';
import { redactUrl } from '../metrics/http-client.js';
import { PrometheusProvider } from '../metrics/prometheus.js';
import { HttpGateRunner } from '../metrics/webhooks.js';
import { Controller } from '../progressor/controller.js';
import { LeaderElector } from '../progressor/leader.js';
import { GateSlots } from '../progressor/gate-runs.js';
import { ProgressorMetrics, serveMetrics } from '../progressor/metrics.js';
import { Reconciler } from '../progressor/reconciler.js';
import { ProviderRegistry } from '../traffic/index.js';
import { optionSource, providerOption, readAnalysisDefault } from './defaults.js';
import { durationOption, envOption, httpUrlOption, intOption, listOption, namespaceOption, seconds, trackLabelOption } from './options.js';

interface ProgressorFlags {
  kubeconfig?: string;
  prometheusUrl: string;
  prometheusTimeout?: number;
  trackLabel: string;
  namespace: string;
  leaseName: string;
  leaseNamespace?: string;
  leaseDuration?: number;
  renewDeadline?: number;
  retryPeriod?: number;
  identity: string;
  metricsAddr: string;
  defaultAnalysis?: string;
  defaultProgressDeadline?: number;
  defaultProvider?: AvailableTrafficProviderName;
  concurrency: number;
  gateConcurrency?: number;
  watchSilence?: number;
  watchNamespaces?: string[];
}


export function registerProgressor(program: Command): void {
  const cmd = program
    .command('progressor')
    .description('Run the release controller: clone captured releases into <name>-canary, shift traffic step by step behind metric and webhook gates, promote or roll back. Leader-elected; serves /metrics and /healthz.');
  envOption(cmd, '--kubeconfig <file>', 'kubeconfig to use (default: in-cluster config when in a pod, else $KUBECONFIG or ~/.kube/config)', 'KUBE_CANARY_KUBECONFIG', String);
  envOption(cmd, '--prometheus-url <url>', 'Prometheus base URL for metric checks', 'KUBE_CANARY_PROMETHEUS_URL', httpUrlOption('--prometheus-url', 'http://prometheus.istio-system:9090'), 'http://127.0.0.1:9090');
  envOption(cmd, '--prometheus-timeout <duration>', 'timeout of one Prometheus query; a timed-out check fails (default: 5s)', 'KUBE_CANARY_PROMETHEUS_TIMEOUT', durationOption('--prometheus-timeout', seconds(0.1, 300, '5s')));
  envOption(cmd, '--track-label <key>', 'pod label key that tells stable from canary pods (same as the webhook\'s)', 'KUBE_CANARY_TRACK_LABEL', trackLabelOption('--track-label'), DEFAULT_TRACK_LABEL);
  envOption(cmd, '--namespace <ns>', "kube-canary's own namespace, never managed (env POD_NAMESPACE also works)", 'KUBE_CANARY_NAMESPACE', namespaceOption('--namespace'), process.env.POD_NAMESPACE ?? 'kube-canary');
  envOption(cmd, '--lease-name <name>', 'coordination.k8s.io Lease used for leader election', 'KUBE_CANARY_LEASE_NAME', String, 'kube-canary-progressor');
  envOption(cmd, '--lease-namespace <ns>', 'namespace of the Lease (default: --namespace)', 'KUBE_CANARY_LEASE_NAMESPACE', namespaceOption('--lease-namespace'));
  envOption(cmd, '--lease-duration <duration>', 'how long a lease is valid without renewal (default: 15s)', 'KUBE_CANARY_LEASE_DURATION', durationOption('--lease-duration', seconds(1, 600, '15s')));
  envOption(cmd, '--renew-deadline <duration>', 'the leader stops acting if it could not renew for this long; shorter than the lease duration (default: 10s)', 'KUBE_CANARY_RENEW_DEADLINE', durationOption('--renew-deadline', seconds(0.5, 600, '10s')));
  envOption(cmd, '--retry-period <duration>', 'interval between lease renewals and acquisition attempts (default: 2s)', 'KUBE_CANARY_RETRY_PERIOD', durationOption('--retry-period', seconds(0.1, 60, '2s')));
  envOption(cmd, '--identity <id>', 'this replica\'s identity in the Lease', 'KUBE_CANARY_IDENTITY', String, `${os.hostname()}_${process.pid}`);
  envOption(cmd, '--metrics-addr <host:port>', 'where to serve /metrics and /healthz', 'KUBE_CANARY_METRICS_ADDR', String, '127.0.0.1:8081');
  envOption(cmd, '--default-analysis <yaml|@file>', 'cluster default analysis (same YAML as the kube-canary.io/analysis annotation); @path reads a file', 'KUBE_CANARY_DEFAULT_ANALYSIS', String);
  envOption(cmd, '--default-progress-deadline <duration>', 'cluster default for kube-canary.io/progress-deadline', 'KUBE_CANARY_DEFAULT_PROGRESS_DEADLINE', durationOption('--default-progress-deadline', PROGRESS_DEADLINE_BOUNDS));
  envOption(cmd, '--default-provider <name>', `cluster default traffic provider (${AVAILABLE_TRAFFIC_PROVIDERS.join(', ')})`, 'KUBE_CANARY_DEFAULT_PROVIDER', providerOption('--default-provider'));
  envOption(cmd, '--concurrency <n>', 'releases reconciled in parallel (gates still running after 1s go on outside these slots, bounded by --gate-concurrency)', 'KUBE_CANARY_CONCURRENCY', intOption('--concurrency', 1, 1000), 32);
  envOption(cmd, '--gate-concurrency <n>', 'gate sets (Prometheus queries, webhook calls) in flight at once across releases; the rest wait in order (default: --concurrency, i.e. no more than when gates ran inside the reconcile slots)', 'KUBE_CANARY_GATE_CONCURRENCY', intOption('--gate-concurrency', 1, 1000));
  envOption(cmd, '--watch-namespaces <list>', 'act only in these comma-separated namespaces (default: every namespace; opt-in labels still apply)', 'KUBE_CANARY_WATCH_NAMESPACES', listOption);
  envOption(cmd, '--watch-silence <duration>', 'restart a watch that delivered nothing, not even a bookmark, for this long (default: 150s)', 'KUBE_CANARY_WATCH_SILENCE', durationOption('--watch-silence', seconds(10, 3600, '150s')));
  cmd.action(async (f: ProgressorFlags) => run(f, optionSource(cmd, 'defaultAnalysis', '--default-analysis', 'KUBE_CANARY_DEFAULT_ANALYSIS')));
}

/** `analysisFlag`: how --default-analysis was given (the flag or its environment variable), for messages. */
async function run(f: ProgressorFlags, analysisFlag: string): Promise<void> {
  const log = createLogger('progressor');
  const defaults: ClusterDefaults = {
    ...(f.defaultAnalysis ? { analysis: readAnalysisDefault(f.defaultAnalysis, analysisFlag) } : {}),
    ...(f.defaultProgressDeadline ? { progressDeadlineMs: f.defaultProgressDeadline } : {}),
    ...(f.defaultProvider ? { provider: f.defaultProvider } : {}),
  };
  const check = parseReleaseConfig('default', {}, defaults);
  if (!check.ok) throw new Error(`${analysisFlag} is invalid: ${check.errors.join('; ')}`);

  const lease = { leaseDurationMs: f.leaseDuration ?? 15_000, renewDeadlineMs: f.renewDeadline ?? 10_000, retryPeriodMs: f.retryPeriod ?? 2_000 };
  if (lease.renewDeadlineMs >= lease.leaseDurationMs) throw new Error(`--renew-deadline (${lease.renewDeadlineMs} ms) must be shorter than --lease-duration (${lease.leaseDurationMs} ms), or a replica could act after another took the lease over`);
  if (lease.retryPeriodMs >= lease.renewDeadlineMs) throw new Error(`--retry-period (${lease.retryPeriodMs} ms) must be shorter than --renew-deadline (${lease.renewDeadlineMs} ms), or the leader gives up before its first retry`);

  const credentials = await loadCredentials(f.kubeconfig);
  const kube = new Kube(new KubeHttp(credentials));
  const metrics = new ProgressorMetrics();
  kube.http.onTiming = (t) => {
    metrics.apiSlotWait.observe({ priority: t.priority }, t.waitedMs / 1000);
    metrics.apiRoundTrip.observe({ verb: t.verb, resource: t.resource }, t.roundTripMs / 1000);
  };
  const providers = new ProviderRegistry({ customObjects: new KubeCustomObjects(kube.http), cache: new InformerObjectCache(kube.http, log, { silenceMs: f.watchSilence ?? 150_000 }) });
  const gates = { metrics: new PrometheusProvider({ url: f.prometheusUrl, timeoutMs: f.prometheusTimeout ?? 5_000 }), webhooks: new HttpGateRunner() };
  const events = new KubeEventRecorder(kube.http, f.identity, log);
  // One for the process: runs of a lost leadership term still hold theirs until their abort ends them.
  const countGateRuns = ({ waiting, running }: { waiting: number; running: number }) => {
    metrics.gateRuns.set({ state: 'waiting' }, waiting);
    metrics.gateRuns.set({ state: 'running' }, running);
  };
  countGateRuns({ waiting: 0, running: 0 });
  const gateConcurrency = f.gateConcurrency ?? f.concurrency;
  const gateSlots = new GateSlots(gateConcurrency, countGateRuns);

  let controller: Controller | undefined;
  let elector: LeaderElector | undefined;
  const startController = () => {
    const c = new Controller({
      kube,
      log,
      metrics,
      ownNamespace: f.namespace,
      concurrency: f.concurrency,
      silenceMs: f.watchSilence ?? 150_000,
      ...(f.watchNamespaces?.length ? { watchNamespaces: f.watchNamespaces } : {}),
      reconciler: (ctl) =>
        new Reconciler({
          kube,
          providers,
          gates,
          events,
          metrics,
          log,
          trackLabel: f.trackLabel,
          defaults,
          canaryOf: (ns, name) => ctl.canaryOf(ns, name),
          mayAct: () => !ctl.isStopped && (elector?.isLeader() ?? false),
          now: () => Date.now(),
          wake: (key) => ctl.enqueue(key),
          routeHolder: (d) => ctl.routeHolder(d),
          gateSlots,
        }),
    });
    controller = c;
    metrics.leader.set(1);
    c.start().catch((err: Error) => log.error({ err: err.message }, 'controller failed to start'));
  };
  const stopController = () => {
    metrics.leader.set(0);
    const c = controller;
    controller = undefined;
    if (c) void c.stop();
  };

  elector = new LeaderElector(
    kube.http,
    {
      namespace: f.leaseNamespace ?? f.namespace,
      name: f.leaseName,
      identity: f.identity,
      ...lease,
      onStartedLeading: startController,
      onStoppedLeading: stopController,
    },
    log,
  );

  const server = await serveMetrics(metrics, f.metricsAddr, () => controller?.healthy() ?? { ok: true, detail: 'standby: not the leader' }, log);
  const addr = server.address();
  // Before the start-up line: once it is out (pino writes it on another thread), a signal must stop us gracefully.
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: releasing the lease');
    const c = controller;
    controller = undefined;
    void (async () => {
      // Stop writing first, then hand the lease over, so the successor never overlaps with us.
      if (c) await c.stop();
      // Events of transitions already committed still describe them: send what is queued.
      await events.flush();
      await elector!.release();
      server.close();
      log.info('stopped');
      await endLogger(log); // every line out, in order, before the exit
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  log.info(
    { identity: f.identity, server: kube.http.serverUrl, credentials: credentials.source, ...(credentials.proxy ? { proxy: credentials.proxy } : {}), lease: `${f.leaseNamespace ?? f.namespace}/${f.leaseName}`, concurrency: f.concurrency, gateConcurrency, metrics: typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : f.metricsAddr, trackLabel: f.trackLabel, prometheus: redactUrl(f.prometheusUrl) },
    'progressor starting',
  );
  elector.start();
  // Not fatal (Prometheus may come up after us), but a wrong URL would otherwise show only as
  // failed checks, release after release.
  void gates.metrics.query('vector(1)').then((r) => {
    const value = 'body' in r ? (r.body as { data?: { result?: Array<{ value?: unknown[] }> } }).data?.result?.[0]?.value?.[1] : undefined;
    const err = 'error' in r ? r.error : value !== '1' ? `${redactUrl(f.prometheusUrl)} answered vector(1) with ${JSON.stringify(r.body).slice(0, 200)}, not as Prometheus does` : undefined;
    if (err) log.warn({ err }, 'Prometheus does not answer: every metric check fails (and counts toward a rollback) until it does, which matters only to releases with metric checks; check --prometheus-url');
    else log.info({ prometheus: redactUrl(f.prometheusUrl) }, 'Prometheus answers');
  });
}
