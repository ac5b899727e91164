/**
 * E2E harness: the local control plane started by `make cluster-up` (hack/cluster/up.sh).
 *
 * Reads `<repo>/.cluster/env` (ports, paths) and `<repo>/.cluster/kubeconfig`, runs the cached
 * kubectl against it, and gives typed @kubernetes/client-node clients. Everything talks to the
 * real kube-apiserver on 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const clusterDir = process.env['KUBE_CANARY_STATE_DIR'] ?? join(repoRoot, '.cluster');

export interface ClusterEnv {
  readonly dir: string;
  readonly kubeconfig: string;
  readonly apiserverUrl: string;
  readonly kubectl: string;
  readonly helm: string;
  readonly kubeVersion: string;
  readonly raw: Readonly<Record<string, string>>;
}

let cachedEnv: ClusterEnv | undefined;

/** The cluster recorded by hack/cluster/up.sh; throws a clear error when there is none. */
export function clusterEnv(): ClusterEnv {
  if (cachedEnv) return cachedEnv;
  const file = join(clusterDir, 'env');
  if (!existsSync(file)) {
    throw new Error(`no local cluster: ${file} does not exist (run \`make cluster-up\` first, or \`make e2e\`)`);
  }
  const raw: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) raw[m[1]] = m[2];
  }
  const need = (k: string): string => {
    const v = raw[k];
    if (!v) throw new Error(`${file} has no ${k}; re-run \`make cluster-down cluster-up\``);
    return v;
  };
  cachedEnv = {
    dir: clusterDir,
    kubeconfig: need('KUBECONFIG'),
    apiserverUrl: need('APISERVER_URL'),
    kubectl: need('KUBECTL'),
    helm: need('HELM'),
    kubeVersion: need('KUBE_VERSION'),
    raw,
  };
  return cachedEnv;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface KubectlOptions {
  /** written to kubectl's stdin */
  input?: string;
  /** resolve with the result instead of throwing on a non-zero exit */
  allowFailure?: boolean;
  timeoutMs?: number;
}

/** Run a command to completion and collect its output. */
export function run(cmd: string, args: readonly string[], opts: KubectlOptions & { env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out after ${timeoutMs} ms: ${cmd} ${args.join(' ')}\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const result = { code: code ?? -1, stdout, stderr };
      if (result.code !== 0 && !opts.allowFailure) {
        reject(new Error(`exit ${result.code}: ${cmd} ${args.join(' ')}\nstdout: ${stdout}\nstderr: ${stderr}`));
      } else {
        resolvePromise(result);
      }
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** The cached kubectl (1.35) against the local cluster. Throws on a non-zero exit unless allowFailure. */
export function kubectl(args: readonly string[], opts: KubectlOptions = {}): Promise<RunResult> {
  const env = clusterEnv();
  return run(env.kubectl, args, { ...opts, env: { ...process.env, KUBECONFIG: env.kubeconfig } });
}

let cachedKc: KubeConfig | undefined;
export function kubeConfig(): KubeConfig {
  if (!cachedKc) {
    const kc = new KubeConfig();
    kc.loadFromFile(clusterEnv().kubeconfig);
    cachedKc = kc;
  }
  return cachedKc;
}

export interface Clients {
  core: CoreV1Api;
  apps: AppsV1Api;
  admission: AdmissionregistrationV1Api;
}
let cachedClients: Clients | undefined;
export function clients(): Clients {
  if (!cachedClients) {
    const kc = kubeConfig();
    cachedClients = {
      core: kc.makeApiClient(CoreV1Api),
      apps: kc.makeApiClient(AppsV1Api),
      admission: kc.makeApiClient(AdmissionregistrationV1Api),
    };
  }
  return cachedClients;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Poll `probe` until it returns something other than undefined/false. On timeout the error
 * names what was awaited and the last value or error the probe saw.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 60_000, intervalMs = 250, describe }: { timeoutMs?: number; intervalMs?: number; describe?: () => Promise<string> | string } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = undefined;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      let state = '';
      if (describe) {
        try {
          state = `\ncurrent state:\n${await describe()}`;
        } catch (err) {
          state = `\n(could not describe state: ${String(err)})`;
        }
      }
      const lastText = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last probe: ${lastText})${state}`);
    }
    await sleep(intervalMs);
  }
}

/** A fresh namespace `<prefix>-<random>`; deleted by the returned cleanup (without waiting). */
export async function createNamespace(prefix: string, labels: Record<string, string> = {}): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await clients().core.createNamespace({ body: { metadata: { name, labels: { 'e2e.kube-canary.io/test': 'true', ...labels } } } });
  await waitFor(`ServiceAccount ${name}/default`, async () => {
    await clients().core.readNamespacedServiceAccount({ name: 'default', namespace: name });
    return true;
  });
  return name;
}

export async function deleteNamespace(name: string): Promise<void> {
  if (process.env['KEEP_NAMESPACES'] === '1') return;
  await clients().core.deleteNamespace({ name }).catch(() => undefined);
}

/** A minimal Deployment of one container; pods run on the kwok nodes. */
export function deploymentManifest(opts: {
  name: string;
  namespace: string;
  image: string;
  replicas?: number;
  labels?: Record<string, string>;
  container?: string;
}): V1Deployment {
  const container = opts.container ?? opts.name;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: opts.name, namespace: opts.namespace, labels: { app: opts.name, ...(opts.labels ?? {}) } },
    spec: {
      replicas: opts.replicas ?? 3,
      selector: { matchLabels: { app: opts.name } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels: { app: opts.name } },
        spec: { containers: [{ name: container, image: opts.image }] },
      },
    },
  };
}

/** Apply a Deployment with kubectl (client-side apply, so later `apply` diffs work). */
export async function applyDeployment(d: V1Deployment): Promise<RunResult> {
  return kubectl(['apply', '-f', '-'], { input: JSON.stringify(d) });
}

export async function getDeployment(namespace: string, name: string): Promise<V1Deployment> {
  return clients().apps.readNamespacedDeployment({ name, namespace });
}

/** Pods selected by `app=<name>` that are not being deleted. */
export async function podsOf(namespace: string, app: string): Promise<V1Pod[]> {
  const list = await clients().core.listNamespacedPod({ namespace, labelSelector: `app=${app}` });
  return list.items.filter((p) => !p.metadata?.deletionTimestamp);
}

export const podImages = (pods: V1Pod[]): string[] => pods.map((p) => p.spec?.containers[0]?.image ?? '?').sort();
const podReady = (p: V1Pod): boolean => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

async function describeDeployment(namespace: string, name: string): Promise<string> {
  const d = await getDeployment(namespace, name);
  const pods = await podsOf(namespace, name);
  return [
    `deployment ${namespace}/${name}: generation=${d.metadata?.generation} observed=${d.status?.observedGeneration}` +
      ` paused=${d.spec?.paused ?? false} replicas=${d.status?.replicas} ready=${d.status?.readyReplicas}` +
      ` updated=${d.status?.updatedReplicas} available=${d.status?.availableReplicas}`,
    `conditions: ${JSON.stringify(d.status?.conditions ?? [])}`,
    ...pods.map((p) => `pod ${p.metadata?.name}: node=${p.spec?.nodeName ?? '-'} phase=${p.status?.phase} ready=${podReady(p)} image=${p.spec?.containers[0]?.image}`),
  ].join('\n');
}

/** Wait until the Deployment is Available with `replicas` ready pods, all on the current template. */
export async function waitForDeploymentReady(namespace: string, name: string, replicas: number, timeoutMs = 90_000): Promise<V1Deployment> {
  return waitFor(
    `deployment ${namespace}/${name} to have ${replicas} ready, updated, available replicas`,
    async () => {
      const d = await getDeployment(namespace, name);
      const s = d.status;
      const available = s?.conditions?.some((c) => c.type === 'Available' && c.status === 'True') ?? false;
      const ok =
        (s?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1) &&
        available &&
        s?.readyReplicas === replicas &&
        s?.updatedReplicas === replicas &&
        s?.availableReplicas === replicas &&
        (s?.replicas ?? 0) === replicas;
      return ok ? d : undefined;
    },
    { timeoutMs, describe: () => describeDeployment(namespace, name) },
  );
}

export { describeDeployment };
