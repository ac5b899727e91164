/**
 * The kube-canary admission webhook as the e2e tests run it: `kube-canary certs` for a serving
 * certificate, `kube-canary webhook` on 127.0.0.1:<free port>, and a
 * MutatingWebhookConfiguration pointing at it through `clientConfig.url`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1LabelSelectorRequirement, V1MutatingWebhook, V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import { DEFAULT_PROGRESSOR_USER } from '../../../src/config/contract.js';
import { clients, clusterEnv, repoRoot, run, waitFor } from './cluster.js';
import { freePort, startProcess, type HostProcess } from './processes.js';

export const ENABLED_LABEL = 'kube-canary.io/enabled';
export const ROLE_LABEL = 'kube-canary.io/role';
export const SYSTEM_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'] as const;

export interface WebhookConfigurationOptions {
  name: string;
  /** e.g. https://127.0.0.1:8443 (the paths /mutate and /mutate/namespace are appended) */
  baseUrl: string;
  /** PEM of the CA that signed the webhook's serving certificate */
  caPem: string;
  failurePolicy?: 'Fail' | 'Ignore';
  timeoutSeconds?: number;
  /**
   * Users whose writes the apiserver does not send to the webhook at all (matchConditions): the
   * progressor's own status and template writes, which the webhook would let through untouched
   * anyway (it still checks the identity itself). Default: the progressor's service account.
   */
  skipUsers?: string[];
}

/**
 * The MutatingWebhookConfiguration for kube-canary (the Helm chart mirrors this):
 *  - `label.deployments.kube-canary.io`: Deployments labelled kube-canary.io/enabled with any
 *    value but "false" (the webhook acts on "true" and refuses a typo), in any namespace but the
 *    system ones and those opted in as a whole;
 *  - `namespace.deployments.kube-canary.io`: Deployments in Namespaces labelled
 *    kube-canary.io/enabled=true, unless the Deployment says kube-canary.io/enabled=false or
 *    carries kube-canary.io/role (the progressor's own canary Deployments).
 * The two never both match a Deployment: the second call would see the first one's patch (the
 * release annotations as if written by hand), and the label entry, which cannot see the
 * Namespace's label, would refuse taking a Deployment's own label off as an opt-out.
 */
export function buildMutatingWebhookConfiguration(o: WebhookConfigurationOptions): V1MutatingWebhookConfiguration {
  const notSystem: V1LabelSelectorRequirement = {
    key: 'kubernetes.io/metadata.name',
    operator: 'NotIn',
    values: [...SYSTEM_NAMESPACES],
  };
  const skip = o.skipUsers ?? [DEFAULT_PROGRESSOR_USER];
  const common = (path: string): Omit<V1MutatingWebhook, 'name'> => ({
    clientConfig: { url: `${o.baseUrl}${path}`, caBundle: Buffer.from(o.caPem).toString('base64') },
    rules: [{ apiGroups: ['apps'], apiVersions: ['v1'], resources: ['deployments'], operations: ['CREATE', 'UPDATE'], scope: 'Namespaced' }],
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    failurePolicy: o.failurePolicy ?? 'Fail',
    timeoutSeconds: o.timeoutSeconds ?? 5,
    matchPolicy: 'Equivalent',
    reinvocationPolicy: 'Never',
    ...(skip.length ? { matchConditions: [{ name: 'not-the-progressor', expression: `!(request.userInfo.username in ${JSON.stringify(skip)})` }] } : {}),
  });
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: o.name, labels: { 'app.kubernetes.io/name': 'kube-canary' } },
    webhooks: [
      {
        name: 'label.deployments.kube-canary.io',
        ...common('/mutate'),
        // Any value but "false", not just "true": a typo ("True") reaches the webhook, which refuses
        // it, instead of opting the Deployment out (or never in) without a word.
        objectSelector: {
          matchExpressions: [
            { key: ENABLED_LABEL, operator: 'Exists' },
            { key: ENABLED_LABEL, operator: 'NotIn', values: ['false'] },
          ],
        },
        namespaceSelector: { matchExpressions: [notSystem, { key: ENABLED_LABEL, operator: 'NotIn', values: ['true'] }] },
      },
      {
        name: 'namespace.deployments.kube-canary.io',
        ...common('/mutate/namespace'),
        namespaceSelector: { matchLabels: { [ENABLED_LABEL]: 'true' }, matchExpressions: [notSystem] },
        objectSelector: {
          matchExpressions: [
            { key: ENABLED_LABEL, operator: 'NotIn', values: ['false'] },
            { key: ROLE_LABEL, operator: 'DoesNotExist' },
          ],
        },
      },
    ],
  };
}

/** Arguments that run the kube-canary CLI: the built one if `KUBE_CANARY_CLI=dist`, else the TypeScript source via tsx. */
export function cliCommand(): { cmd: string; args: string[] } {
  if (process.env['KUBE_CANARY_CLI'] === 'dist') {
    return { cmd: process.execPath, args: [join(repoRoot, 'dist/src/cli/main.js')] };
  }
  return { cmd: process.execPath, args: ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts')] };
}

function httpsGet(url: string, ca: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const req = request(url, { ca, method: 'GET', timeout: 2000, agent: false }, (res) => {
      res.resume();
      resolvePromise(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

export interface RunningWebhook {
  readonly port: number;
  readonly baseUrl: string;
  readonly caPem: string;
  readonly process: HostProcess;
  /** stop the webhook process (the configuration stays registered) */
  stop(): Promise<void>;
}

/** `kube-canary certs` + `kube-canary webhook` on 127.0.0.1; resolves once /readyz answers 200. */
export async function startWebhook(opts: { extraArgs?: string[] } = {}): Promise<RunningWebhook> {
  clusterEnv(); // fail before starting anything when there is no cluster
  const { cmd, args } = cliCommand();
  const certDir = mkdtempSync(join(tmpdir(), 'kube-canary-e2e-certs-'));
  await run(cmd, [...args, 'certs', '--out', certDir, '--hosts', '127.0.0.1,localhost'], { timeoutMs: 60_000 });
  const caPem = readFileSync(join(certDir, 'ca.crt'), 'utf8');
  const port = await freePort();
  const proc = startProcess(`webhook-${port}`, cmd, [
    ...args,
    'webhook',
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--tls-cert',
    join(certDir, 'tls.crt'),
    '--tls-key',
    join(certDir, 'tls.key'),
    ...(opts.extraArgs ?? []),
  ]);
  const baseUrl = `https://127.0.0.1:${port}`;
  try {
    await waitFor(
      `kube-canary webhook ${baseUrl}/readyz`,
      async () => {
        const code = proc.exitCode();
        if (code !== undefined) throw new Error(`webhook exited with ${code}:\n${proc.output()}`);
        return (await httpsGet(`${baseUrl}/readyz`, caPem)) === 200;
      },
      { timeoutMs: 30_000, describe: () => `webhook output:\n${proc.output()}` },
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return {
    port,
    baseUrl,
    caPem,
    process: proc,
    async stop() {
      await proc.stop();
      rmSync(certDir, { recursive: true, force: true });
    },
  };
}

/** Create (or replace) the MutatingWebhookConfiguration. */
export async function registerWebhook(cfg: V1MutatingWebhookConfiguration): Promise<void> {
  const { admission } = clients();
  const name = cfg.metadata?.name ?? '';
  await admission.deleteMutatingWebhookConfiguration({ name }).catch(() => undefined);
  await admission.createMutatingWebhookConfiguration({ body: cfg });
}

export async function unregisterWebhook(name: string): Promise<void> {
  try {
    await clients().admission.deleteMutatingWebhookConfiguration({ name });
  } catch {
    // already gone, or no cluster
  }
}
