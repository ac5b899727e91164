/**
 * Progressor-only e2e setup (no Prometheus, no simulator): a namespace with the webhook
 * registered for it, the article's hand-written VirtualService and DestinationRule, and
 * progressor processes scoped to that namespace (--watch-namespaces) with their own Lease and
 * short lease timings, so they neither collide with other test runs on a shared cluster nor
 * take 15 s to fail over.
 *
 * Used by test/e2e/progressor-*.e2e.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubectl, waitForDeploymentReady } from './cluster.js';
import { useScenario } from './scenario.js';
import { startProcess, type HostProcess } from './processes.js';
import { applyObjects, progressorKubeconfig, reviewManifests } from './release.js';
import { buildMutatingWebhookConfiguration, cliCommand, registerWebhook, startWebhook, unregisterWebhook, type RunningWebhook } from './webhook.js';

export const LEASE = { duration: '4s', renewDeadline: '3s', retryPeriod: '500ms', durationMs: 4000 };

/** An analysis without metrics (no Prometheus needed): five 10% steps, one every `intervalS`. */
export function stepsOnlyAnalysis(intervalS = 2): string {
  return JSON.stringify({ interval: `${intervalS}s`, threshold: 2, maxWeight: 50, stepWeight: 10, metrics: [] });
}

/** The canary article's VirtualService and DestinationRule, written by the user (not generated). */
export function articleRouting(ns: string): object[] {
  return [
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'review-virtualservice', namespace: ns },
      spec: { hosts: ['review'], http: [{ route: [{ destination: { host: 'review', subset: 'stable' }, weight: 100 }, { destination: { host: 'review', subset: 'canary' }, weight: 0 }] }] },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'review-destinationrule', namespace: ns },
      spec: { host: 'review', subsets: [{ name: 'stable', labels: { version: 'stable' } }, { name: 'canary', labels: { version: 'canary' } }] },
    },
  ];
}

export interface ProgressorEnv {
  readonly namespace: string;
  readonly kubeconfig: string;
  readonly leaseName: string;
  readonly webhook: RunningWebhook;
  /** Start a progressor replica with identity `id` (and extra flags). */
  start(id: string, extraArgs?: string[]): HostProcess;
  stop(): Promise<void>;
}

export async function startProgressorEnv(namespace: string): Promise<ProgressorEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'kube-canary-progressor-e2e-'));
  const procs: HostProcess[] = [];
  const webhook = await startWebhook();
  const cfgName = `kube-canary-progressor-${namespace}`;
  const cfg = buildMutatingWebhookConfiguration({ name: cfgName, baseUrl: webhook.baseUrl, caPem: webhook.caPem });
  for (const w of cfg.webhooks ?? []) {
    w.namespaceSelector = { ...(w.namespaceSelector ?? {}), matchExpressions: [...(w.namespaceSelector?.matchExpressions ?? []), { key: 'kubernetes.io/metadata.name', operator: 'In', values: [namespace] }] };
  }
  await registerWebhook(cfg);
  const kubeconfig = await progressorKubeconfig(dir);
  const leaseName = `progressor-${namespace}`;
  const { cmd, args } = cliCommand();
  return {
    namespace,
    kubeconfig,
    leaseName,
    webhook,
    start(id: string, extraArgs: string[] = []) {
      const p = startProcess(`progressor-${namespace}-${id}`, cmd, [
        ...args,
        'progressor',
        '--kubeconfig', kubeconfig,
        '--identity', id,
        '--watch-namespaces', namespace,
        '--lease-name', leaseName,
        '--lease-duration', LEASE.duration,
        '--renew-deadline', LEASE.renewDeadline,
        '--retry-period', LEASE.retryPeriod,
        '--metrics-addr', '127.0.0.1:0',
        // No metric checks in these scenarios; an unreachable URL makes any query fail loudly.
        '--prometheus-url', 'http://127.0.0.1:9',
        ...extraArgs,
      ]);
      procs.push(p);
      return p;
    },
    async stop() {
      for (const p of procs) await p.stop().catch(() => undefined);
      await unregisterWebhook(cfgName);
      await webhook.stop();
      await kubectl(['-n', 'kube-canary', 'delete', 'lease', leaseName, '--ignore-not-found'], { allowFailure: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The review Service + Deployment (opted in, steps-only analysis) and the article's routing
 * objects, or none with `userRouting: false` (kube-canary generates them).
 */
export async function deployReview(ns: string, opts: { intervalS?: number; replicas?: number; userRouting?: boolean } = {}): Promise<void> {
  const { service, deployment } = reviewManifests({ namespace: ns, image: 'review:1.7.0', replicas: opts.replicas ?? 2, analysis: stepsOnlyAnalysis(opts.intervalS ?? 2), progressDeadline: '60s' });
  await applyObjects(service, deployment, ...(opts.userRouting === false ? [] : articleRouting(ns)));
}

export async function leaseHolder(ns: string, leaseName: string): Promise<string | undefined> {
  const r = await kubectl(['-n', ns, 'get', 'lease', leaseName, '-o', 'json'], { allowFailure: true });
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as { spec?: { holderIdentity?: string } }).spec?.holderIdentity ?? undefined;
}

/** SIGKILL: no chance to release the lease or finish a write. */
export async function kill9(p: HostProcess): Promise<void> {
  const exited = new Promise<void>((r) => (p.exitCode() !== undefined ? r() : p.child.once('exit', () => r())));
  p.child.kill('SIGKILL');
  await exited;
}

/**
 * Mocha hooks for a progressor scenario in the current `describe`: a fresh namespace, the
 * environment (webhook, routing unless `userRouting: false`; progressor replicas are started by
 * the test with `env.start`) and `review` (2 replicas, steps every `intervalS`) ready; all
 * removed afterwards.
 */
export function useProgressorEnv(prefix: string, o: { intervalS: number; userRouting?: boolean }): { readonly ns: string; readonly env: ProgressorEnv } {
  return useScenario(prefix, async (ns) => {
    const env = await startProgressorEnv(ns);
    await deployReview(ns, { intervalS: o.intervalS, userRouting: o.userRouting });
    await waitForDeploymentReady(ns, 'review', 2);
    return env;
  });
}
