/**
 * `make demo`: the canary article's scenario on the local control plane, live in the terminal.
 *
 *   1. the control plane (built first if needed, progress shown), then the traffic simulator
 *      (a faithful simulator of the Istio data plane), a real Prometheus, the kube-canary
 *      webhook and the progressor, all on 127.0.0.1;
 *   2. review:1.7.0 in namespace `test`; `kubectl set image ... review:1.8.0` is analysed step
 *      by step and promoted;
 *   3. a bad review:1.9.0 (30% 5xx) is rolled back, and re-applying it is refused;
 *   4. a summary; everything the demo started is stopped (recorded pids), also on Ctrl-C, and
 *      what it made in the cluster is deleted (namespace `test`, the progressor's Lease).
 *
 * Namespace `test` is the demo's: one there before it starts (an earlier demo's) is deleted.
 * Env: DEMO_INTERVAL (analysis interval in s, default 5), KEEP_CLUSTER=1 (leave the control plane
 * up, and namespace `test` with review and its Events, to look at with kubectl afterwards).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAnalysis, type Analysis } from '../src/config/analysis.js';
import { PrometheusProvider } from '../src/metrics/prometheus.js';
import type { CheckResult } from '../src/metrics/provider.js';
import { clients, clusterDir, clusterEnv, getDeployment, kubectl, repoRoot, run, waitFor, waitForDeploymentReady } from '../test/e2e/harness/cluster.js';
import {
  ANN_ANALYSIS,
  ANN_FAILED_REVISION,
  ANN_REVISION,
  applyObjects,
  articleAnalysis,
  deploymentEvents,
  reviewManifests,
  routeWeights,
  ship,
  startReleaseEnv,
  statusOf,
  type ReleaseEnv,
} from '../test/e2e/harness/release.js';

const NS = 'test';
const INTERVAL_S = Number(process.env['DEMO_INTERVAL'] ?? 5);
const KEEP = process.env['KEEP_CLUSTER'] === '1';
const tty = process.stdout.isTTY;
const c = (code: string) => (s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = c('1');
const dim = c('2');
const green = c('32');
const red = c('31');
const yellow = c('33');
const cyan = c('36');
const t0 = Date.now();
const clock = () => dim(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s]`);
const say = (s: string) => process.stdout.write(`${clock()} ${s}\n`);
const title = (s: string) => process.stdout.write(`\n${bold(cyan(`== ${s}`))}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let env: ReleaseEnv | undefined;
let startedCluster = false;
let cleaningUp = false;

async function cleanup(): Promise<void> {
  if (cleaningUp) return;
  cleaningUp = true;
  title('cleaning up');
  if (env) {
    say('stopping progressor, webhook, Prometheus and simulator (recorded pids); deleting the progressor\'s Lease');
    await env.stop().catch((e) => say(red(`stop failed: ${(e as Error).message}`)));
  }
  if (KEEP) {
    say(`namespace ${NS} kept (KEEP_CLUSTER=1): ${inspect()}; delete it with: ${kubectlShown()} delete namespace ${NS}`);
  } else if (existsSync(join(clusterDir, 'env'))) {
    say(`deleting namespace ${NS}`);
    await kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--wait=true', '--timeout=60s'], { allowFailure: true, timeoutMs: 70_000 }).catch(() => undefined);
  }
  if (startedCluster && !KEEP) {
    say('stopping the local control plane (hack/cluster/down.sh)');
    await runShown(join(repoRoot, 'hack/cluster/down.sh'), []).catch(() => undefined);
  } else if (!startedCluster) {
    say('the control plane was already running before the demo; left as it was');
  }
}

/** kubectl as the user can run it against this control plane. */
function kubectlShown(): string {
  const e = clusterEnv();
  return `KUBECONFIG=${e.kubeconfig} ${e.kubectl}`;
}

function inspect(): string {
  return `${kubectlShown()} describe deployment review -n ${NS}`;
}

/** Runs a command with its output prefixed and shown as it comes (progress of the build). */
function runShown(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    const show = (d: Buffer) => {
      for (const line of d.toString('utf8').split('\n').filter(Boolean)) process.stdout.write(`   ${dim(line)}\n`);
    };
    child.stdout.on('data', show);
    child.stderr.on('data', show);
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}`))));
  });
}

async function clusterUp(): Promise<void> {
  title('local control plane');
  const alreadyUp = await recordedClusterAnswers();
  if (alreadyUp) {
    say('already running (.cluster/env); reusing it');
    return;
  }
  say('starting etcd, kube-apiserver, controller-manager, scheduler and kwok (building them first if not cached; a cold build takes 10-30 min)');
  const before = apiserverPid();
  startedCluster = true;
  await runShown(join(repoRoot, 'hack/cluster/up.sh'), []);
  // up.sh checks again and keeps a recorded cluster that answers after all (it was only slow to
  // answer us): not the demo's to stop, then. One it started has a new apiserver pid.
  startedCluster = apiserverPid() !== before;
}

function apiserverPid(): string | undefined {
  try {
    return readFileSync(join(clusterDir, 'pids/kube-apiserver.pid'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Whether the cluster recorded in .cluster/env answers /readyz (read directly: the harness caches the env). */
async function recordedClusterAnswers(): Promise<boolean> {
  const file = join(clusterDir, 'env');
  if (!existsSync(file)) return false;
  const vars = Object.fromEntries(readFileSync(file, 'utf8').split('\n').map((l) => /^([A-Z0-9_]+)=(.*)$/.exec(l.trim())).filter((m): m is RegExpExecArray => m !== null).map((m) => [m[1], m[2]]));
  if (!vars['KUBECTL'] || !vars['KUBECONFIG']) return false;
  const r = await run(vars['KUBECTL'], ['--kubeconfig', vars['KUBECONFIG'], 'get', '--raw', '/readyz'], { allowFailure: true, timeoutMs: 5000 }).catch(() => undefined);
  return r?.code === 0;
}

interface Release {
  label: string;
  startedAt: number;
  endedAt?: number;
  phase?: string;
  revision?: string;
  weights: string[];
  events: string[];
  failedChecks: number;
}

/**
 * One gate's value as the demo queries it now, for display: the progressor's own checks run once
 * an interval and are what "failed checks" counts. No data yet (a canary just getting traffic) is
 * shown as such; to the progressor, no data at check time is a failed check.
 */
function mark(r: CheckResult): string {
  const range = [r.min !== undefined ? `min ${r.min}` : '', r.max !== undefined ? `max ${r.max}` : ''].filter(Boolean).join(', ');
  if (r.value === undefined || Number.isNaN(r.value)) return `${r.name} ${yellow('no data yet')} (${range})`;
  const v = r.value.toFixed(2);
  return `${r.name} ${r.passed ? green(v) : red(v)} (${range}) ${r.passed ? green('ok') : red('out of range')}`;
}

/**
 * Follows a release live: phase, weight and failed checks from kube-canary.io/status, the
 * route weights from the VirtualService, each gate's current value against its threshold (the
 * same queries the progressor runs, evaluated here for display), and new Events as they come.
 */
async function follow(label: string, analysis: Analysis, timeoutMs: number): Promise<Release> {
  const rel: Release = { label, startedAt: Date.now(), weights: [], events: [], failedChecks: 0 };
  const seenEvents = new Set((await deploymentEvents(NS, 'review')).map((e) => e.metadata?.uid));
  const provider = new PrometheusProvider({ url: env!.prometheus.url, timeoutMs: 2000 });
  let lastLine = '';
  let lastGates = 0;
  let gates = '';
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (env!.progressor.process.exitCode() !== undefined) {
      throw new Error(`the progressor exited (${env!.progressor.process.exitCode()}); its log: ${env!.progressor.process.logFile}\n${env!.progressor.process.output().slice(-1500)}`);
    }
    const d = await getDeployment(NS, 'review');
    const s = statusOf(d);
    const w = await routeWeights(NS, 'review').catch(() => undefined);
    for (const e of await deploymentEvents(NS, 'review')) {
      if (seenEvents.has(e.metadata?.uid)) continue;
      seenEvents.add(e.metadata?.uid);
      const msg = e.message ?? '';
      rel.events.push(msg);
      say(`${e.type === 'Warning' ? yellow('event') : cyan('event')} ${msg}`);
    }
    const routes = w ? `${w.stable}/${w.canary}` : '-';
    if (w && rel.weights[rel.weights.length - 1] !== routes) rel.weights.push(routes);
    if (s && s.revision === d.metadata?.annotations?.[ANN_REVISION]) rel.revision = s.revision;
    if (s?.phase === 'Progressing' && Date.now() - lastGates >= 1000) {
      lastGates = Date.now();
      const target = { namespace: NS, stable: 'review', canary: 'review-canary', intervalMs: analysis.intervalMs };
      const results = await Promise.all(analysis.metrics.map((m) => provider.check(m, target)));
      gates = results.map(mark).join('   ');
    }
    if (s && s.phase !== 'Progressing') gates = '';
    const line = s ? `${bold((s.phase ?? '?').padEnd(12))} canary weight ${String(s.weight).padStart(3)}%  routes ${routes.padEnd(7)} failed checks ${s.failedChecks}/${analysis.threshold}${gates ? `   ${gates}` : ''}` : 'waiting for the progressor to pick the release up';
    if (line !== lastLine) say(line);
    lastLine = line;
    if (s) {
      rel.phase = s.phase;
      rel.failedChecks = Math.max(rel.failedChecks, s.failedChecks);
    }
    if (s && (s.phase === 'Succeeded' || s.phase === 'Failed') && s.revision === rel.revision) {
      rel.endedAt = Date.now();
      if (s.message) say(dim(s.message));
      return rel;
    }
    if (Date.now() > deadline) throw new Error(`release ${label} did not finish within ${timeoutMs / 1000}s (phase ${s?.phase ?? 'none'})`);
    await sleep(500);
  }
}

async function main(): Promise<void> {
  process.stdout.write(`${bold('kube-canary demo')}: the canary article's scenario (review in namespace ${NS}), intervals scaled to ${INTERVAL_S}s\n`);
  await clusterUp();

  title('components');
  if ((await kubectl(['get', 'namespace', NS], { allowFailure: true })).code === 0) {
    say(`deleting namespace ${NS} left from an earlier run (the demo's own namespace)`);
    await kubectl(['delete', 'namespace', NS, '--wait=true', '--timeout=60s'], { allowFailure: true, timeoutMs: 70_000 });
  }
  await clients().core.createNamespace({ body: { metadata: { name: NS } } });
  await waitFor(`ServiceAccount ${NS}/default`, async () => {
    await clients().core.readNamespacedServiceAccount({ name: 'default', namespace: NS });
    return true;
  });
  env = await startReleaseEnv(NS, { rps: 100, log: (m) => say(`starting ${m}`) });
  say(`simulator ${env.simulator.address} (100 req/s to review), Prometheus ${env.prometheus.url}, webhook ${env.webhook.baseUrl}, progressor pid ${env.progressor.process.pid}`);
  say(dim(`logs: ${join(clusterDir, 'logs')}/`));

  title('review:1.7.0');
  const analysisText = articleAnalysis(INTERVAL_S, 5);
  const parsed = parseAnalysis(analysisText);
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  const analysis = parsed.value;
  const { service, deployment } = reviewManifests({ namespace: NS, image: 'review:1.7.0', analysis: analysisText, behaviour: { errorRate: 0, latencyMs: 30 } });
  await applyObjects(service, deployment);
  say(`deployment/review (label kube-canary.io/enabled=true, ${ANN_ANALYSIS}: interval ${INTERVAL_S}s, stepWeight 25, maxWeight 50, threshold 5, success rate >= 99%, p99 <= 500ms)`);
  await waitForDeploymentReady(NS, 'review', 2);
  say(green('review:1.7.0 is running (2 pods)'));

  title('release 1: kubectl -n test set image deployment/review review=review:1.8.0');
  const good = await ship(NS, 'review', 'review:1.8.0');
  for (const l of `${good.stdout}${good.stderr}`.split('\n').filter(Boolean)) say(dim(`kubectl: ${l}`));
  const r1 = await follow('1.8.0', analysis, 240_000);
  if (r1.phase !== 'Succeeded') throw new Error(`release 1.8.0 ended ${r1.phase}, expected Succeeded`);
  await waitForDeploymentReady(NS, 'review', 2);

  title('release 2: a bad review:1.9.0 (30% of requests answer 503)');
  say(dim('kubectl -n test patch deployment review: image review:1.9.0 + simulator.kube-canary.io/error-rate "0.3"'));
  const bad = await ship(NS, 'review', 'review:1.9.0', { errorRate: 0.3, latencyMs: 30 });
  for (const l of `${bad.stdout}${bad.stderr}`.split('\n').filter(Boolean)) say(dim(`kubectl: ${l}`));
  const r2 = await follow('1.9.0', analysis, 240_000);
  if (r2.phase !== 'Failed') throw new Error(`release 1.9.0 ended ${r2.phase}, expected Failed (rolled back)`);
  await waitForDeploymentReady(NS, 'review', 2);

  title('re-applying the failed release');
  const again = await ship(NS, 'review', 'review:1.9.0', { errorRate: 0.3, latencyMs: 30 }, true);
  for (const l of `${again.stdout}${again.stderr}`.split('\n').filter(Boolean)) say(`${again.code === 0 ? yellow('kubectl:') : green('refused:')} ${l}`);

  const final = await getDeployment(NS, 'review');
  title('summary');
  const dur = (r: Release) => (((r.endedAt ?? Date.now()) - r.startedAt) / 1000).toFixed(1);
  process.stdout.write(
    [
      `  release 1.8.0: ${r1.phase === 'Succeeded' ? green('promoted') : red(r1.phase ?? '?')} in ${dur(r1)}s; routes ${r1.weights.join(' -> ')}; ${r1.events.length} events`,
      `  release 1.9.0: ${r2.phase === 'Failed' ? green('rolled back') : red(r2.phase ?? '?')} in ${dur(r2)}s after ${r2.failedChecks} failed checks; routes ${r2.weights.join(' -> ')}`,
      `  re-apply of 1.9.0: ${again.code !== 0 ? green('refused by the webhook') : red('accepted (unexpected)')}`,
      `  review now runs ${final.spec?.template.spec?.containers[0]?.image}; failed revision recorded: ${final.metadata?.annotations?.[ANN_FAILED_REVISION] ? 'yes' : 'no'}`,
      KEEP ? `  see it yourself: ${inspect()}` : `  see it yourself next time: KEEP_CLUSTER=1 make demo, then kubectl describe deployment review -n ${NS}`,
      '',
    ].join('\n'),
  );
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    process.stdout.write(`\n${yellow(`${sig}: stopping everything the demo started`)}\n`);
    void cleanup().finally(() => process.exit(130));
  });
}

main()
  .then(async () => {
    await cleanup();
    process.stdout.write(`${green('demo finished')}; nothing left running\n`);
    process.exit(0);
  })
  .catch(async (e: unknown) => {
    if (interrupted) return;
    process.stdout.write(`\n${red(`demo failed: ${e instanceof Error ? e.message : String(e)}`)}\n`);
    await cleanup();
    process.exit(1);
  });
