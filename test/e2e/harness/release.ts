/**
 * Everything a release scenario needs on the local control plane: the traffic simulator (a
 * faithful simulator of the Istio data plane) scraped by a real Prometheus, the kube-canary
 * webhook registered for one namespace, and the progressor running as its own ServiceAccount
 * (system:serviceaccount:kube-canary:kube-canary-progressor, the webhook's default progressor
 * identity) with a token from the TokenRequest API.
 *
 * Used by test/e2e/release-*.e2e.ts, hack/demo.ts and bench/progressor.bench.ts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CustomObjectsApi, RbacAuthorizationV1Api, type V1Deployment, type CoreV1Event } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { clients, clusterEnv, kubeConfig, kubectl, repoRoot, waitFor, waitForDeploymentReady } from './cluster.js';
import { useScenario } from './scenario.js';
import { freePort, startProcess, type HostProcess } from './processes.js';
import { startPrometheus, type PrometheusHandle } from './prometheus.js';
import { buildMutatingWebhookConfiguration, cliCommand, registerWebhook, startWebhook, unregisterWebhook, type RunningWebhook } from './webhook.js';

export const PROGRESSOR_NAMESPACE = 'kube-canary';
export const PROGRESSOR_SA = 'kube-canary-progressor';
export const ANN_STATUS = 'kube-canary.io/status';
export const ANN_REVISION = 'kube-canary.io/revision';
export const ANN_FAILED_REVISION = 'kube-canary.io/failed-revision';
export const ANN_ANALYSIS = 'kube-canary.io/analysis';
export const SIM_ERROR_RATE = 'simulator.kube-canary.io/error-rate';
export const SIM_LATENCY_MS = 'simulator.kube-canary.io/latency-ms';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------ progressor identity

/**
 * A kubeconfig for the progressor's ServiceAccount (cluster-admin in this test cluster; the Helm
 * chart carries the real RBAC). Returns the file path; the token lasts `hours`.
 */
export async function progressorKubeconfig(dir: string, hours = 3): Promise<string> {
  const { core } = clients();
  const rbac = kubeConfig().makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespace({ body: { metadata: { name: PROGRESSOR_NAMESPACE } } }).catch(ignoreConflict);
  await waitFor(`ServiceAccount ${PROGRESSOR_NAMESPACE}/default`, async () => {
    await core.readNamespacedServiceAccount({ name: 'default', namespace: PROGRESSOR_NAMESPACE });
    return true;
  });
  await core.createNamespacedServiceAccount({ namespace: PROGRESSOR_NAMESPACE, body: { metadata: { name: PROGRESSOR_SA } } }).catch(ignoreConflict);
  await rbac
    .createClusterRoleBinding({
      body: {
        metadata: { name: 'kube-canary-progressor-e2e' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'ServiceAccount', name: PROGRESSOR_SA, namespace: PROGRESSOR_NAMESPACE }],
      },
    })
    .catch(ignoreConflict);
  const tr = await core.createNamespacedServiceAccountToken({
    name: PROGRESSOR_SA,
    namespace: PROGRESSOR_NAMESPACE,
    body: { spec: { audiences: [], expirationSeconds: hours * 3600 } },
  });
  const token = tr.status?.token;
  if (!token) throw new Error('TokenRequest returned no token');
  const admin = parseYaml(readFileSync(clusterEnv().kubeconfig, 'utf8')) as { clusters: Array<{ cluster: Record<string, string> }> };
  const cluster = admin.clusters[0]!.cluster;
  const file = join(dir, 'progressor.kubeconfig');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'local', cluster: { server: cluster['server'], 'certificate-authority-data': cluster['certificate-authority-data'] } }],
      users: [{ name: PROGRESSOR_SA, user: { token } }],
      contexts: [{ name: 'local', context: { cluster: 'local', user: PROGRESSOR_SA } }],
      'current-context': 'local',
    }),
    { mode: 0o600 },
  );
  return file;
}

function ignoreConflict(e: unknown): void {
  const code = (e as { code?: number }).code;
  if (code !== 409) throw e;
}

// ------------------------------------------------------------------------------- processes

export interface SimulatorProcess {
  readonly address: string;
  readonly process: HostProcess;
  stop(): Promise<void>;
}

/** The traffic simulator as a separate process, reading the API as the admin. */
export async function startSimulator(opts: { namespaces: string[]; rps?: number; pollMs?: number; name?: string }): Promise<SimulatorProcess> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const args = ['--import', 'tsx', join(repoRoot, 'test/e2e/simulator/main.ts'), '--kubeconfig', clusterEnv().kubeconfig, '--listen', address, '--rps', String(opts.rps ?? 50), '--poll-ms', String(opts.pollMs ?? 500)];
  for (const ns of opts.namespaces) args.push('--namespace', ns);
  const proc = startProcess(opts.name ?? `simulator-${port}`, process.execPath, args);
  await waitFor(
    `simulator ${address}/healthz`,
    async () => {
      if (proc.exitCode() !== undefined) throw new Error(`simulator exited (${proc.exitCode()}):\n${proc.output()}`);
      return (await fetch(`http://${address}/healthz`, { signal: AbortSignal.timeout(1000) })).ok;
    },
    { timeoutMs: 30_000 },
  );
  return { address, process: proc, stop: () => proc.stop() };
}

export interface ProgressorProcess {
  readonly process: HostProcess;
  /** http://127.0.0.1:PORT/metrics of this progressor */
  readonly metricsUrl: string;
  stop(): Promise<void>;
}

/**
 * `kube-canary progressor --kubeconfig K --prometheus-url U --metrics-addr 127.0.0.1:<free>`
 * (extra flags from E2E_PROGRESSOR_ARGS). A free metrics port, so parallel suites never collide
 * on the default 8081.
 */
export async function startProgressor(opts: { kubeconfig: string; prometheusUrl: string; name?: string; extraArgs?: string[] }): Promise<ProgressorProcess> {
  const { cmd, args } = cliCommand();
  const extra = (process.env['E2E_PROGRESSOR_ARGS'] ?? '').split(/\s+/).filter(Boolean);
  // Node flags for the progressor alone (e.g. --max-old-space-size=192), as a deployment would set them.
  const nodeOptions = process.env['E2E_PROGRESSOR_NODE_OPTIONS'];
  const metricsPort = await freePort();
  const proc = startProcess(opts.name ?? `progressor-${metricsPort}`, cmd, [
    ...args,
    'progressor',
    '--kubeconfig',
    opts.kubeconfig,
    '--prometheus-url',
    opts.prometheusUrl,
    '--metrics-addr',
    `127.0.0.1:${metricsPort}`,
    ...extra,
    ...(opts.extraArgs ?? []),
  ], nodeOptions ? { env: { NODE_OPTIONS: nodeOptions } } : {});
  return { process: proc, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`, stop: () => proc.stop(10_000) };
}

/**
 * Mocha hooks for a release scenario in the current `describe`: a fresh namespace, the release
 * environment (simulator, Prometheus, webhook, progressor) and the article's `review` (2 replicas)
 * ready on `image`; all removed afterwards. Read `ns` and `env` inside the tests.
 */
export function useReviewRelease(prefix: string, o: { image?: string; analysis?: string; behaviour?: Behaviour; optIn?: 'deployment' | 'namespace' } = {}): { readonly ns: string; readonly env: ReleaseEnv } {
  const byNamespace = o.optIn === 'namespace';
  // A Namespace opt-in comes before the Deployment exists, so its pods carry the stable track label.
  return useScenario(
    prefix,
    async (ns) => {
      const env = await startReleaseEnv(ns);
      const { service, deployment } = reviewManifests({ namespace: ns, image: o.image ?? 'review:1.7.0', ...(o.analysis ? { analysis: o.analysis } : {}), behaviour: o.behaviour ?? { errorRate: 0, latencyMs: 30 } });
      if (byNamespace) delete deployment.metadata!.labels!['kube-canary.io/enabled'];
      await applyObjects(service, deployment);
      await waitForDeploymentReady(ns, 'review', 2);
      return env;
    },
    byNamespace ? { 'kube-canary.io/enabled': 'true' } : {},
  );
}

export interface ReleaseEnv {
  readonly namespace: string;
  readonly simulator: SimulatorProcess;
  prometheus: PrometheusHandle;
  readonly webhook: RunningWebhook;
  progressor: ProgressorProcess;
  readonly progressorKubeconfig: string;
  readonly webhookConfigName: string;
  /** Stop Prometheus (keeping its data) / start it again on the same port. */
  stopPrometheus(): Promise<void>;
  restartPrometheus(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts simulator, Prometheus, webhook (registered for `namespace` only) and progressor.
 * `namespace` must exist. Stops whatever it started if a later step fails.
 */
export async function startReleaseEnv(namespace: string, opts: { rps?: number; pollMs?: number; progressorArgs?: string[]; log?: (m: string) => void } = {}): Promise<ReleaseEnv> {
  const log = opts.log ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), 'kube-canary-release-'));
  const started: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const stop of started.reverse()) await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    log('simulator');
    const simulator = await startSimulator({ namespaces: [namespace], ...(opts.rps !== undefined ? { rps: opts.rps } : {}), ...(opts.pollMs !== undefined ? { pollMs: opts.pollMs } : {}) });
    started.push(() => simulator.stop());
    log('prometheus');
    let prometheus = await startPrometheus({ targets: [simulator.address] });
    const promPort = prometheus.port;
    const promData = prometheus.dataDir;
    started.push(() => prometheus.stop({ removeData: true }));
    log('webhook');
    const webhook = await startWebhook();
    started.push(() => webhook.stop());
    const webhookConfigName = `kube-canary-release-${namespace}`;
    const cfg = buildMutatingWebhookConfiguration({ name: webhookConfigName, baseUrl: webhook.baseUrl, caPem: webhook.caPem });
    for (const w of cfg.webhooks ?? []) {
      w.namespaceSelector = { ...(w.namespaceSelector ?? {}), matchExpressions: [...(w.namespaceSelector?.matchExpressions ?? []), { key: 'kubernetes.io/metadata.name', operator: 'In', values: [namespace] }] };
    }
    await registerWebhook(cfg);
    started.push(() => unregisterWebhook(webhookConfigName));
    log('progressor');
    const kc = await progressorKubeconfig(dir);
    // Its own Lease and namespace, so environments running side by side on one control plane
    // (parallel suites, the bench, the demo) never wait on each other's leader election.
    const leaseName = `kube-canary-progressor-${namespace}`;
    const scope = ['--watch-namespaces', namespace, '--lease-name', leaseName];
    // Removed once the progressor has stopped (the stops run in reverse): nothing of the environment is left.
    started.push(async () => void (await kubectl(['-n', PROGRESSOR_NAMESPACE, 'delete', 'lease', leaseName, '--ignore-not-found'], { allowFailure: true })));
    const progressor = await startProgressor({ kubeconfig: kc, prometheusUrl: prometheus.url, extraArgs: [...scope, ...(opts.progressorArgs ?? [])] });
    started.push(() => env.progressor.stop());
    const env: ReleaseEnv = {
      namespace,
      simulator,
      prometheus,
      webhook,
      progressor,
      progressorKubeconfig: kc,
      webhookConfigName,
      async stopPrometheus() {
        await env.prometheus.stop();
      },
      async restartPrometheus() {
        prometheus = await startPrometheus({ targets: [simulator.address], port: promPort, dataDir: promData });
        env.prometheus = prometheus;
      },
      stop: cleanup,
    };
    return env;
  } catch (e) {
    await cleanup();
    throw e;
  }
}

// ----------------------------------------------------------------------------- the workload

export interface Behaviour {
  errorRate?: number;
  latencyMs?: number;
}

/** The article's analysis, scaled to seconds. */
export function articleAnalysis(intervalS = 5, threshold = 5): string {
  return JSON.stringify({
    interval: `${intervalS}s`,
    threshold,
    maxWeight: 50,
    stepWeight: 25,
    metrics: [
      { name: 'request-success-rate', thresholdRange: { min: 99 }, interval: `${intervalS}s` },
      { name: 'request-duration', thresholdRange: { max: 500 }, interval: `${intervalS}s` },
    ],
  });
}

/** The article's `review` Deployment (opted in) and its Service. */
export function reviewManifests(o: { namespace: string; name?: string; image: string; replicas?: number; analysis?: string; behaviour?: Behaviour; progressDeadline?: string }): { service: object; deployment: V1Deployment } {
  const name = o.name ?? 'review';
  return {
    service: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: o.namespace, labels: { app: name } },
      spec: { selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    },
    deployment: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name,
        namespace: o.namespace,
        labels: { app: name, 'kube-canary.io/enabled': 'true' },
        annotations: { [ANN_ANALYSIS]: o.analysis ?? articleAnalysis(), ...(o.progressDeadline ? { 'kube-canary.io/progress-deadline': o.progressDeadline } : {}) },
      },
      spec: {
        replicas: o.replicas ?? 2,
        selector: { matchLabels: { app: name } },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        template: {
          metadata: { labels: { app: name }, annotations: behaviourAnnotations(o.behaviour ?? {}) },
          spec: { containers: [{ name, image: o.image, ports: [{ containerPort: 8080 }] }] },
        },
      },
    },
  };
}

export function behaviourAnnotations(b: Behaviour): Record<string, string> {
  return { [SIM_ERROR_RATE]: String(b.errorRate ?? 0), [SIM_LATENCY_MS]: String(b.latencyMs ?? 20) };
}

export async function applyObjects(...objs: object[]): Promise<void> {
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objs }) });
}

/**
 * Ships a release the way a user does: `kubectl set image`, or, when the behaviour changes too,
 * one `kubectl patch` of image + pod annotations (a single template update). Returns kubectl's
 * result (stderr has the webhook's warning or denial).
 */
export async function ship(ns: string, name: string, image: string, behaviour?: Behaviour, allowFailure = false) {
  if (!behaviour) return kubectl(['-n', ns, 'set', 'image', `deployment/${name}`, `${name}=${image}`], { allowFailure });
  const patch = { spec: { template: { metadata: { annotations: behaviourAnnotations(behaviour) }, spec: { containers: [{ name, image }] } } } };
  return kubectl(['-n', ns, 'patch', 'deployment', name, '--type', 'strategic', '-p', JSON.stringify(patch)], { allowFailure });
}

// ------------------------------------------------------------------------------ observations

export interface Status {
  phase: string;
  weight: number;
  failedChecks: number;
  revision: string;
  message: string;
  [k: string]: unknown;
}

export function statusOf(d: V1Deployment): Status | undefined {
  const raw = d.metadata?.annotations?.[ANN_STATUS];
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as Status;
  } catch {
    return undefined;
  }
}

export interface Weights {
  stable: number;
  canary: number;
  vs: string;
}

/** Route weights of the VirtualService that routes `host` (by subset name), or undefined if none. */
export async function routeWeights(ns: string, host: string): Promise<Weights | undefined> {
  const custom = kubeConfig().makeApiClient(CustomObjectsApi);
  const list = (await custom.listNamespacedCustomObject({ group: 'networking.istio.io', version: 'v1', namespace: ns, plural: 'virtualservices' })) as {
    items: Array<{ metadata: { name: string }; spec?: { hosts?: string[]; http?: Array<{ match?: unknown[]; route?: Array<{ destination?: { host?: string; subset?: string }; weight?: number }> }> } }>;
  };
  const vs = list.items.find((v) => (v.spec?.hosts ?? []).some((h) => h === host || h.startsWith(`${host}.`)));
  if (!vs) return undefined;
  const rule = (vs.spec?.http ?? []).find((r) => !r.match || r.match.length === 0) ?? vs.spec?.http?.[0];
  const w = { stable: 0, canary: 0, vs: vs.metadata.name };
  for (const r of rule?.route ?? []) {
    const weight = r.weight ?? ((rule?.route?.length ?? 0) === 1 ? 100 : 0);
    if (r.destination?.subset === 'canary') w.canary += weight;
    else w.stable += weight;
  }
  return w;
}

/** Events on the Deployment, oldest first (creation order). */
export async function deploymentEvents(ns: string, name: string): Promise<CoreV1Event[]> {
  const list = await clients().core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.kind=Deployment,involvedObject.name=${name}` });
  const t = (e: CoreV1Event): number => {
    const x = e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp;
    return x ? new Date(x as unknown as string).getTime() : 0;
  };
  return list.items.sort((a, b) => t(a) - t(b) || Number(BigInt(a.metadata?.resourceVersion ?? '0') - BigInt(b.metadata?.resourceVersion ?? '0')));
}

/** Asserts `patterns` appear in this order among `messages` (other messages may be between). */
export function inOrder(messages: string[], patterns: RegExp[]): { ok: true } | { ok: false; missing: RegExp; after: number } {
  let i = 0;
  for (const p of patterns) {
    const j = messages.findIndex((m, k) => k >= i && p.test(m));
    if (j === -1) return { ok: false, missing: p, after: i };
    i = j + 1;
  }
  return { ok: true };
}

/** Polls the stable Deployment's status annotation and the route weights, recording each change. */
export class ReleaseRecorder {
  readonly timeline: Array<{ t: number; phase?: string; weight?: number; failedChecks?: number; routes?: string; message?: string }> = [];
  private stopped = false;
  private loop: Promise<void> | undefined;
  constructor(private readonly ns: string, private readonly name: string, private readonly host = name) {}

  start(intervalMs = 200): this {
    let last = '';
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          const d = await clients().apps.readNamespacedDeployment({ name: this.name, namespace: this.ns });
          const s = statusOf(d);
          const w = await routeWeights(this.ns, this.host);
          const entry = { phase: s?.phase, weight: s?.weight, failedChecks: s?.failedChecks, routes: w ? `${w.stable}/${w.canary}` : undefined, message: s?.message };
          const key = JSON.stringify(entry);
          if (key !== last) this.timeline.push({ t: Date.now(), ...entry });
          last = key;
        } catch {
          // transient API errors: keep polling
        }
        await sleep(intervalMs);
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** First time the routes matched `pred`, at or after `since`. */
  firstRoutes(pred: (stable: number, canary: number) => boolean, since = 0): number | undefined {
    return this.timeline.find((e) => e.t >= since && e.routes && pred(...(e.routes.split('/').map(Number) as [number, number])))?.t;
  }

  phases(): string[] {
    return this.timeline.map((e) => e.phase ?? '-').filter((p, i, a) => i === 0 || a[i - 1] !== p);
  }

  describe(): string {
    const t0 = this.timeline[0]?.t ?? 0;
    return this.timeline.map((e) => `+${((e.t - t0) / 1000).toFixed(1)}s ${e.phase} w=${e.weight} fc=${e.failedChecks} routes=${e.routes} ${e.message ?? ''}`).join('\n');
  }
}

/** Waits for the release to reach a terminal phase for `revision` (or any, when undefined). */
export async function waitForPhase(ns: string, name: string, phases: string[], timeoutMs: number, describe?: () => string): Promise<Status> {
  return waitFor(
    `${ns}/${name} to reach phase ${phases.join(' or ')}`,
    async () => {
      const s = statusOf(await clients().apps.readNamespacedDeployment({ name, namespace: ns }));
      return s && phases.includes(s.phase) ? s : undefined;
    },
    { timeoutMs, intervalMs: 250, ...(describe ? { describe } : {}) },
  );
}

export { clients, kubectl, waitFor };
