/**
 * `npm run bench:progressor`: N concurrent canary releases (default N = 10, 100, 500) on the
 * local control plane, with the traffic simulator (a faithful simulator of the Istio data plane)
 * and a real Prometheus. Per N it reports:
 *
 * - step lag p50/p99: time from a step falling due (the `lastCheckAt` of the last check at the
 *   previous weight, from kube-canary.io/status, + the interval; a failed check is the analysis
 *   holding the weight, not lag, and is counted apart) to the new weight being visible in the VirtualService
 *   (seen through a watch), i.e. scheduling + gates (Prometheus queries) + the weight patch + the
 *   watch delivering it. The watch that counts runs in a separate lightweight process
 *   (bench/vs-watcher.ts) so this process's own work cannot delay the timestamps; this
 *   process's own VirtualService watch is reported beside it as a cross-check;
 *   the progressor's own view is shown too: kube_canary_weight_change_lag_seconds (due -> the
 *   weight PATCH answered) and kube_canary_step_lag_seconds (due -> reconcile start);
 * - API requests per release step: the progressor's kube_canary_api_requests delta / the number
 *   of weight changes applied (steps up, plus the final return to 0);
 * - Prometheus queries per check: Prometheus' own /api/v1/query request count delta / metric
 *   checks run (kube_canary_analysis_checks_total, gate=analysis, metric checks only);
 * - the progressor's peak RSS (VmHWM of its process).
 *
 * Each release: 1 replica, stepWeight 10 up to 50 (5 steps), interval BENCH_INTERVAL s (5),
 * the two built-in metrics. Env: BENCH_N="10,100,500", BENCH_INTERVAL=5, BENCH_RPS=10,
 * BENCH_STAGGER=1 (ship the releases spread over one interval instead of all at once).
 * Also reported, to say where the time goes: the progressor's API client (slot wait by priority,
 * round trip of its PATCHes), the API server's own apiserver_request_duration_seconds, the
 * event-loop delay of both benchmark processes, and the CPU seconds of every process.
 * The progressor runs compiled (dist/, built first) unless KUBE_CANARY_CLI is set (tsx: KUBE_CANARY_CLI=tsx).
 * Results: table on stdout, JSON in bench/results/. Not a CI gate.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Watch, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { clients, clusterDir, clusterEnv, createNamespace, kubeConfig, kubectl, repoRoot, waitFor } from '../test/e2e/harness/cluster.js';
import { applyObjects, behaviourAnnotations, reviewManifests, startReleaseEnv, statusOf, type ReleaseEnv } from '../test/e2e/harness/release.js';

const SIZES = (process.env['BENCH_N'] ?? '10,100,500').split(',').map(Number).filter((n) => n > 0);
const INTERVAL_S = Number(process.env['BENCH_INTERVAL'] ?? 5);
const RPS = Number(process.env['BENCH_RPS'] ?? 10);
/**
 * BENCH_STAGGER=1: ship the releases spread evenly over one interval instead of all at once
 * (how 500 concurrent releases usually reach a real cluster). Lockstep (the default) is the
 * worst case: every step of every release falls due within a few hundred milliseconds.
 */
const STAGGER = process.env['BENCH_STAGGER'] === '1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (s: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);

function analysis(): string {
  return JSON.stringify({
    interval: `${INTERVAL_S}s`,
    threshold: 5,
    maxWeight: 50,
    stepWeight: 10,
    metrics: [
      { name: 'request-success-rate', thresholdRange: { min: 99 }, interval: `${INTERVAL_S}s` },
      { name: 'request-duration', thresholdRange: { max: 500 }, interval: `${INTERVAL_S}s` },
    ],
  });
}

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** Sum of a metric's samples in a Prometheus text exposition, optionally filtered by a label regex. */
function metricSum(text: string, name: string, labelFilter?: RegExp): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    if (labelFilter && !labelFilter.test(m[2] ?? '')) continue;
    sum += Number(m[3]);
  }
  return sum;
}

/**
 * Histogram quantile from cumulative buckets of a text exposition (linear within a bucket, like
 * PromQL), over all the histogram's series summed (e.g. every `gate` label value).
 */
function histogramQuantile(text: string, name: string, q: number): number {
  const byLe = new Map<number, number>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}_bucket\\{[^}]*le="([^"]+)"[^}]*\\}\\s+(\\S+)`).exec(line);
    if (m) {
      const le = m[1] === '+Inf' ? Infinity : Number(m[1]);
      byLe.set(le, (byLe.get(le) ?? 0) + Number(m[2]));
    }
  }
  const buckets = [...byLe].sort((a, b) => a[0] - b[0]);
  const total = buckets[buckets.length - 1]?.[1] ?? 0;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1, count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/** Cumulative buckets (le -> count) of a histogram, summed over the series whose labels match `labelFilter`. */
function histogramBuckets(text: string, name: string, labelFilter?: RegExp): Map<number, number> {
  const byLe = new Map<number, number>();
  const prefix = `${name}_bucket{`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const m = /^[^{]+\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!m || (labelFilter && !labelFilter.test(m[1]!))) continue;
    const le = /le="([^"]+)"/.exec(m[1]!)?.[1];
    if (le === undefined) continue;
    const k = le === '+Inf' ? Infinity : Number(le);
    byLe.set(k, (byLe.get(k) ?? 0) + Number(m[2]));
  }
  return byLe;
}

/** Quantile of (after - before) cumulative buckets, linear within a bucket like PromQL; and the count. */
function deltaQuantile(before: Map<number, number>, after: Map<number, number>, q: number): { value: number; count: number } {
  const buckets = [...after].map(([le, c]) => [le, c - (before.get(le) ?? 0)] as const).sort((a, b) => a[0] - b[0]);
  const total = buckets[buckets.length - 1]?.[1] ?? 0;
  if (total <= 0) return { value: Number.NaN, count: 0 };
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) return { value: le === Infinity ? prevLe : prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1, count - prevCount), count: total };
    prevLe = le;
    prevCount = count;
  }
  return { value: prevLe, count: total };
}

/** CPU seconds (user + system) of every process on the machine, by pid, with its command name. */
function cpuSnapshot(): Map<number, { comm: string; cpuS: number }> {
  const out = new Map<number, { comm: string; cpuS: number }>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(e), { comm, cpuS: (Number(f[11]) + Number(f[12])) / 100 });
    } catch {
      /* gone */
    }
  }
  return out;
}

/** CPU seconds used between two snapshots, by role (known pids named, the rest by command). */
function cpuByRole(before: Map<number, { comm: string; cpuS: number }>, after: Map<number, { comm: string; cpuS: number }>, roles: Map<number, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [pid, a] of after) {
    const d = a.cpuS - (before.get(pid)?.cpuS ?? 0);
    if (d <= 0) continue;
    const role = roles.get(pid) ?? `other:${a.comm}`;
    out[role] = Math.round(((out[role] ?? 0) + d) * 10) / 10;
  }
  return Object.fromEntries(Object.entries(out).sort((x, y) => y[1] - x[1]));
}

function clusterPids(): Map<number, string> {
  const roles = new Map<number, string>();
  for (const c of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok']) {
    try {
      roles.set(Number(readFileSync(join(clusterDir, 'pids', `${c}.pid`), 'utf8').trim().split(/\s+/)[0]), c);
    } catch {
      /* not recorded */
    }
  }
  return roles;
}

async function apiserverMetrics(): Promise<string> {
  return (await kubectl(['get', '--raw', '/metrics'], { allowFailure: true })).stdout;
}

/** The lightweight VirtualService watcher process (bench/vs-watcher.ts), ready once its watch is open. */
async function startWatcher(ns: string): Promise<ChildProcess> {
  const child = fork(join(repoRoot, 'bench/vs-watcher.ts'), [clusterEnv().kubeconfig, ns], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`vs-watcher exited (${code})`)));
  });
  return child;
}

async function dumpWatcher(child: ChildProcess): Promise<{ applied: Map<string, Array<{ t: number; canary: number }>>; loopDelayMs: { p99: number; max: number } }> {
  const m = await new Promise<{ applied: Array<[string, Array<[number, number]>]>; loopDelayMs: { p99: number; max: number } }>((resolve) => {
    child.once('message', (x) => resolve(x as never));
    child.send('dump');
  });
  return { applied: new Map(m.applied.map(([k, v]) => [k, v.map(([t, canary]) => ({ t, canary }))])), loopDelayMs: m.loopDelayMs };
}

/** Per-step delta of kube_canary_api_requests_by_resource, keyed "VERB resource". */
function requestsBy(before: string, after: string, steps: number): Record<string, number> {
  const read = (t: string) => {
    const m = new Map<string, number>();
    for (const line of t.split('\n')) {
      const x = /^kube_canary_api_requests_by_resource\{([^}]*)\}\s+(\S+)/.exec(line);
      if (!x) continue;
      const verb = /verb="([^"]*)"/.exec(x[1]!)?.[1];
      const resource = /resource="([^"]*)"/.exec(x[1]!)?.[1];
      m.set(`${verb} ${resource}`, Number(x[2]));
    }
    return m;
  };
  const b = read(before);
  const out: Record<string, number> = {};
  for (const [k, v] of read(after)) if (v - (b.get(k) ?? 0) > 0 && steps > 0) out[k] = Math.round(((v - (b.get(k) ?? 0)) / steps) * 100) / 100;
  return out;
}

async function text(url: string): Promise<string> {
  return waitFor(`GET ${url}`, async () => {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    return res.ok ? res.text() : undefined;
  }, { timeoutMs: 30_000, intervalMs: 500 });
}

function peakRssMb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

interface Result {
  n: number;
  mode: 'lockstep' | 'staggered over one interval';
  /** other: releases not ended when the bench stopped waiting (BENCH_TIMEOUT_S, default 300 + 2 s per release). */
  releases: { succeeded: number; failed: number; other: number };
  wallSeconds: number;
  /** Step lag with the new weight seen by the separate watcher process (bench/vs-watcher.ts): the headline figure. */
  stepLagMs: { p50: number; p99: number; max: number; samples: number };
  /** The same definition, seen by the watch inside this (busy) benchmark process: what was reported before. */
  stepLagInBenchMs: { p50: number; p99: number; max: number; samples: number };
  /** Event-loop delay of this benchmark process and of the watcher process during the releases. */
  benchLoopDelayMs: { p99: number; max: number };
  watcherLoopDelayMs: { p99: number; max: number };
  /** The API server's own view (apiserver_request_duration_seconds, delta over the releases) of the progressor's writes. */
  apiserverMs: Record<string, { p50: number; p99: number; count: number }>;
  /** CPU seconds per process over the releases (the machine has 2 cores: 2 x wall is all there is). */
  cpuSeconds: Record<string, number>;
  progressorStepLagMs: { p50: number; p99: number };
  /** The progressor's own view: due -> the new weight accepted by the API (kube_canary_weight_change_lag_seconds). */
  progressorWeightLagMs: { p50: number; p99: number };
  apiRequestsPerStep: number;
  /** Inside the progressor: waiting for a client request slot (by priority), and the round trip of its writes. */
  progressorApiMs: Record<string, { p50: number; p99: number; count: number }>;
  /** The same by verb and resource (kube_canary_api_requests_by_resource), per step. */
  apiRequestsPerStepBy: Record<string, number>;
  promQueriesPerCheck: number;
  progressorPeakRssMb: number;
  /** Metric checks that failed (no data included): with a healthy simulator this should be 0. */
  failedChecks: number;
  /** Where a step's time goes, from the progressor's own histograms: gate sets (Prometheus) and whole reconciles. */
  gateMs: { p50: number; p99: number };
  reconcileMs: { p50: number; p99: number };
  /** Peak V8 heap in use and external (Buffers) memory, sampled every 2 s: what the RSS is made of. */
  progressorPeakHeapMb: number;
  progressorPeakExternalMb: number;
  /** Fraction of successful scrapes of the simulator during the releases, and the slowest scrape. */
  simulatorScrape: { upRatio: number; maxSeconds: number };
}

async function runOne(n: number): Promise<Result> {
  log(`N=${n}: namespace, components`);
  const ns = await createNamespace(`bench-${n}`);
  let env: ReleaseEnv | undefined;
  const aborts: AbortController[] = [];
  let stopWatching = (): void => undefined;
  let watcher: ChildProcess | undefined;
  try {
    env = await startReleaseEnv(ns, { rps: RPS, pollMs: 1000, progressorArgs: ['--concurrency', String(Math.min(1000, Math.max(32, n)))] });
    const names = Array.from({ length: n }, (_, i) => `svc${String(i).padStart(3, '0')}`);
    log(`N=${n}: ${n} Services + Deployments`);
    for (let i = 0; i < names.length; i += 100) {
      const objs = names.slice(i, i + 100).flatMap((name) => {
        const m = reviewManifests({ namespace: ns, name, image: `${name}:1.0.0`, replicas: 1, analysis: analysis(), behaviour: { errorRate: 0, latencyMs: 20 } });
        return [m.service, m.deployment];
      });
      await applyObjects(...objs);
    }
    await waitFor(`${n} deployments ready`, async () => {
      const list = await clients().apps.listNamespacedDeployment({ namespace: ns });
      return list.items.filter((d) => d.status?.readyReplicas === 1).length === n;
    }, { timeoutMs: 30_000 + n * 1000, intervalMs: 1000 });

    // Watches: VirtualService weights (applied) and the status annotations (due times).
    const applied = new Map<string, Array<{ t: number; canary: number }>>();
    const due = new Map<string, Map<number, number>>(); // name -> weight -> lastCheckAt ms
    const watch = new Watch(kubeConfig());
    let watching = true;
    // A watch that ends (timeout, error) is started again; the replayed ADDED events are deduplicated below.
    const keepWatching = async (path: string, onObject: (obj: any) => void, query: Record<string, string> = {}): Promise<void> => {
      const start = async (): Promise<void> => {
        if (!watching) return;
        const ac = await watch.watch(path, query, (_phase, obj) => onObject(obj), (err: unknown) => {
          if (err && watching) log(`watch ${path} ended: ${(err as Error).message ?? String(err)}; restarting`);
          if (watching) setTimeout(() => void start().catch((e) => log(`watch restart failed: ${(e as Error).message}`)), 500);
        });
        aborts.push(ac);
      };
      await start();
    };
    stopWatching = () => (watching = false);
    await keepWatching(`/apis/networking.istio.io/v1/namespaces/${ns}/virtualservices`, (obj: { metadata: { name: string }; spec?: { hosts?: string[]; http?: Array<{ route?: Array<{ destination?: { subset?: string }; weight?: number }> }> } }) => {
      const host = obj.spec?.hosts?.[0]?.split('.')[0] ?? obj.metadata.name;
      const canary = (obj.spec?.http?.[0]?.route ?? []).filter((r) => r.destination?.subset === 'canary').reduce((a, r) => a + (r.weight ?? 0), 0);
      const seq = applied.get(host) ?? [];
      if (seq.length === 0 || seq[seq.length - 1]!.canary !== canary) seq.push({ t: Date.now(), canary });
      applied.set(host, seq);
    });
    // Phase per release, from the same watch: the wait below must not list 1,000 Deployments
    // every few seconds, which blocked this process for long enough to delay the timestamps
    // it takes of VirtualService changes (it measured its own stalls as lag).
    const phases = new Map<string, string>();
    await keepWatching(`/apis/apps/v1/namespaces/${ns}/deployments`, (obj) => {
      const s = statusOf(obj);
      if (s && obj.metadata?.labels?.['kube-canary.io/enabled'] === 'true') phases.set(obj.metadata.name, s.phase);
      if (!s || s.phase !== 'Progressing' || typeof s['lastCheckAt'] !== 'string') return;
      const m = due.get(obj.metadata.name) ?? new Map<number, number>();
      // The latest check at this weight: a failed check is the analysis saying "not yet", not
      // lag, and the next check falls due one interval after it.
      const at = Date.parse(s['lastCheckAt'] as string);
      if (at > (m.get(s.weight) ?? 0)) m.set(s.weight, at);
      due.set(obj.metadata.name, m);
    }, { labelSelector: 'kube-canary.io/enabled=true' }); // the stable Deployments only: not the canaries' status churn

    const peaks = { heap: 0, external: 0 };
    const sampler = setInterval(() => {
      fetch(env!.progressor.metricsUrl, { signal: AbortSignal.timeout(2000) })
        .then((r) => r.text())
        .then((t) => {
          peaks.heap = Math.max(peaks.heap, metricSum(t, 'nodejs_heap_size_used_bytes'));
          peaks.external = Math.max(peaks.external, metricSum(t, 'nodejs_external_memory_bytes'));
        })
        .catch(() => undefined);
    }, 2000);
    const progBefore = await text(env.progressor.metricsUrl);
    const promBefore = await text(`${env.prometheus.url}/metrics`);
    watcher = await startWatcher(ns);
    const roles = clusterPids();
    roles.set(process.pid, 'bench');
    roles.set(watcher.pid!, 'bench vs-watcher');
    roles.set(env.progressor.process.pid, 'progressor');
    roles.set(env.simulator.process.pid, 'simulator');
    roles.set(env.prometheus.pid, 'prometheus');
    roles.set(env.webhook.process.pid, 'webhook');
    const apiBeforeText = await apiserverMetrics();
    const cpuBefore = cpuSnapshot();
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    log(`N=${n}: shipping ${n} releases ${STAGGER ? `spread over ${INTERVAL_S} s` : 'at once'}`);
    const t0 = Date.now();
    const { apps } = clients();
    const queue = [...names];
    await Promise.all(
      Array.from({ length: Math.min(50, n) }, async () => {
        for (let name = queue.shift(); name; name = queue.shift()) {
          if (STAGGER) {
            const at = t0 + (names.indexOf(name) * INTERVAL_S * 1000) / n;
            if (at > Date.now()) await sleep(at - Date.now());
          }
          const body = { spec: { template: { metadata: { annotations: behaviourAnnotations({ errorRate: 0, latencyMs: 20 }) }, spec: { containers: [{ name, image: `${name}:2.0.0` }] } } } };
          await apps.patchNamespacedDeployment({ name, namespace: ns, body }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
        }
      }),
    );
    // Wait for every release to end; past the deadline, report what finished (the rest as "other").
    const deadline = Date.now() + Number(process.env['BENCH_TIMEOUT_S'] ?? 300 + n * 2) * 1000;
    let terminal: string[] = [];
    for (;;) {
      terminal = names.map((name) => phases.get(name) ?? 'none');
      const done = terminal.filter((p) => p === 'Succeeded' || p === 'Failed').length;
      if (done === n) break;
      if (Date.now() > deadline) {
        const counts = terminal.reduce<Record<string, number>>((a, p) => ({ ...a, [p]: (a[p] ?? 0) + 1 }), {});
        log(`N=${n}: deadline reached with ${done}/${n} releases ended (${JSON.stringify(counts)}); reporting what was measured`);
        break;
      }
      await sleep(1000);
    }
    const wallSeconds = (Date.now() - t0) / 1000;
    loop.disable();
    const cpuAfter = cpuSnapshot();
    const apiAfterText = await apiserverMetrics();
    const fromWatcher = await dumpWatcher(watcher);
    // The outcome from the API itself, once.
    terminal = (await clients().apps.listNamespacedDeployment({ namespace: ns, labelSelector: 'kube-canary.io/enabled=true' })).items.map((d) => statusOf(d)?.phase ?? 'none');
    clearInterval(sampler);
    await sleep(1000);
    const progAfter = await text(env.progressor.metricsUrl);
    const promAfter = await text(`${env.prometheus.url}/metrics`);
    const rss = peakRssMb(env.progressor.process.pid);
    // Did Prometheus keep scraping the simulator? (no data = failed checks, never a pass)
    const window = `${Math.ceil(wallSeconds)}s`;
    const scalar = async (q: string) => {
      const body = (await env!.prometheus.query(q)) as { data?: { result?: Array<{ value: [number, string] }> } };
      return Number(body.data?.result?.[0]?.value[1] ?? Number.NaN);
    };
    const scrapeUp = await scalar(`avg_over_time(up{job="istio-simulator"}[${window}])`).catch(() => Number.NaN);
    const scrapeMaxS = await scalar(`max_over_time(scrape_duration_seconds{job="istio-simulator"}[${window}])`).catch(() => Number.NaN);

    const lagsOf = (appliedBy: Map<string, Array<{ t: number; canary: number }>>) => {
      const lags: number[] = [];
      let steps = 0;
      for (const name of names) {
        const seq = appliedBy.get(name) ?? [];
        const d = due.get(name) ?? new Map<number, number>();
        for (let i = 1; i < seq.length; i++) {
          if (seq[i]!.canary !== seq[i - 1]!.canary) steps += 1;
          // A gated step up: due = the last check at the previous weight + interval.
          const prev = seq[i - 1]!.canary;
          if (seq[i]!.canary > prev && prev > 0 && d.has(prev)) lags.push(seq[i]!.t - (d.get(prev)! + INTERVAL_S * 1000));
        }
      }
      return { lags, steps, stats: { p50: quantile(lags, 0.5), p99: quantile(lags, 0.99), max: lags.length ? Math.max(...lags) : Number.NaN, samples: lags.length } };
    };
    const outside = lagsOf(fromWatcher.applied);
    const inside = lagsOf(applied);
    const steps = outside.steps;
    const apiserverMs: Result['apiserverMs'] = {};
    for (const [label, filter] of [
      ['PATCH virtualservices', /verb="PATCH".*resource="virtualservices"|resource="virtualservices".*verb="PATCH"/],
      ['PATCH deployments', /verb="PATCH".*resource="deployments"|resource="deployments".*verb="PATCH"/],
      ['POST events', /verb="POST".*resource="events"|resource="events".*verb="POST"/],
    ] as const) {
      const b = histogramBuckets(apiBeforeText, 'apiserver_request_duration_seconds', filter);
      const a = histogramBuckets(apiAfterText, 'apiserver_request_duration_seconds', filter);
      const p50 = deltaQuantile(b, a, 0.5);
      const p99 = deltaQuantile(b, a, 0.99);
      apiserverMs[label] = { p50: p50.value * 1000, p99: p99.value * 1000, count: p50.count };
    }
    {
      const b = histogramBuckets(apiBeforeText, 'apiserver_flowcontrol_request_wait_duration_seconds');
      const a = histogramBuckets(apiAfterText, 'apiserver_flowcontrol_request_wait_duration_seconds');
      apiserverMs['APF queue wait (all)'] = { p50: deltaQuantile(b, a, 0.5).value * 1000, p99: deltaQuantile(b, a, 0.99).value * 1000, count: deltaQuantile(b, a, 0.5).count };
    }
    const apiBefore = metricSum(progBefore, 'kube_canary_api_requests');
    const apiAfter = metricSum(progAfter, 'kube_canary_api_requests');
    const queries = metricSum(promAfter, 'prometheus_http_requests_total', /handler="\/api\/v1\/query"/) - metricSum(promBefore, 'prometheus_http_requests_total', /handler="\/api\/v1\/query"/);
    const metricChecks =
      metricSum(progAfter, 'kube_canary_analysis_checks_total', /gate="analysis".*check="request-(success-rate|duration)"|check="request-(success-rate|duration)".*gate="analysis"/) -
      metricSum(progBefore, 'kube_canary_analysis_checks_total', /gate="analysis".*check="request-(success-rate|duration)"|check="request-(success-rate|duration)".*gate="analysis"/);
    const r: Result = {
      n,
      mode: STAGGER ? 'staggered over one interval' : 'lockstep',
      releases: { succeeded: terminal.filter((p) => p === 'Succeeded').length, failed: terminal.filter((p) => p === 'Failed').length, other: terminal.filter((p) => p !== 'Succeeded' && p !== 'Failed').length },
      wallSeconds,
      stepLagMs: outside.stats,
      stepLagInBenchMs: inside.stats,
      benchLoopDelayMs: { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
      watcherLoopDelayMs: fromWatcher.loopDelayMs,
      apiserverMs,
      cpuSeconds: cpuByRole(cpuBefore, cpuAfter, roles),
      progressorWeightLagMs: { p50: histogramQuantile(progAfter, 'kube_canary_weight_change_lag_seconds', 0.5) * 1000, p99: histogramQuantile(progAfter, 'kube_canary_weight_change_lag_seconds', 0.99) * 1000 },
      progressorStepLagMs: { p50: histogramQuantile(progAfter, 'kube_canary_step_lag_seconds', 0.5) * 1000, p99: histogramQuantile(progAfter, 'kube_canary_step_lag_seconds', 0.99) * 1000 },
      apiRequestsPerStep: steps ? (apiAfter - apiBefore) / steps : Number.NaN,
      apiRequestsPerStepBy: requestsBy(progBefore, progAfter, steps),
      progressorApiMs: Object.fromEntries(
        (
          [
            ['slot wait high', 'kube_canary_api_request_slot_wait_seconds', /priority="high"/],
            ['slot wait normal', 'kube_canary_api_request_slot_wait_seconds', /priority="normal"/],
            ['slot wait low', 'kube_canary_api_request_slot_wait_seconds', /priority="low"/],
            ['PATCH virtualservices', 'kube_canary_api_request_duration_seconds', /verb="PATCH".*resource="virtualservices"|resource="virtualservices".*verb="PATCH"/],
            ['PATCH deployments', 'kube_canary_api_request_duration_seconds', /verb="PATCH".*resource="deployments"|resource="deployments".*verb="PATCH"/],
          ] as const
        ).map(([label, metric, filter]) => {
          const b = histogramBuckets(progBefore, metric, filter);
          const a = histogramBuckets(progAfter, metric, filter);
          const p50 = deltaQuantile(b, a, 0.5);
          return [label, { p50: p50.value * 1000, p99: deltaQuantile(b, a, 0.99).value * 1000, count: p50.count }];
        }),
      ),
      promQueriesPerCheck: metricChecks ? queries / metricChecks : Number.NaN,
      progressorPeakRssMb: rss,
      failedChecks: metricSum(progAfter, 'kube_canary_analysis_checks_total', /result="fail"/) - metricSum(progBefore, 'kube_canary_analysis_checks_total', /result="fail"/),
      gateMs: { p50: histogramQuantile(progAfter, 'kube_canary_gate_duration_seconds', 0.5) * 1000, p99: histogramQuantile(progAfter, 'kube_canary_gate_duration_seconds', 0.99) * 1000 },
      reconcileMs: { p50: histogramQuantile(progAfter, 'kube_canary_reconcile_duration_seconds', 0.5) * 1000, p99: histogramQuantile(progAfter, 'kube_canary_reconcile_duration_seconds', 0.99) * 1000 },
      progressorPeakHeapMb: peaks.heap / 2 ** 20,
      progressorPeakExternalMb: peaks.external / 2 ** 20,
      simulatorScrape: { upRatio: scrapeUp, maxSeconds: scrapeMaxS },
    };
    log(`N=${n}: ${JSON.stringify(r)}`);
    return r;
  } finally {
    stopWatching();
    for (const a of aborts) a.abort();
    watcher?.kill();
    await env?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false'], { allowFailure: true });
  }
}

async function main(): Promise<void> {
  if (!existsSync(join(clusterDir, 'env'))) {
    log('no local control plane: starting it (hack/cluster/up.sh)');
    execFileSync(join(repoRoot, 'hack/cluster/up.sh'), { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  // Measure the progressor as shipped (compiled JS), not through tsx's in-process transpiler.
  if (process.env['KUBE_CANARY_CLI'] === undefined) {
    log('building dist/ (tsc -p tsconfig.build.json)');
    execFileSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', join(repoRoot, 'tsconfig.build.json')], { stdio: 'inherit' });
    process.env['KUBE_CANARY_CLI'] = 'dist';
  }
  const results: Result[] = [];
  for (const n of SIZES) results.push(await runOne(n));
  const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const rows = [
    ['N', 'ok/failed/unfinished', 'wall s', 'step lag p50 ms', 'p99 ms', '(in-bench watch p50/p99 ms)', '(progressor: weight p50/p99 ms', 'start p50/p99 ms)', 'gates p50/p99 ms', 'reconcile p50/p99 ms', 'API req/step', 'Prom queries/check', 'failed checks', 'peak RSS MB', '(heap/external MB)', 'scrapes ok'],
    ...results.map((r) => [String(r.n), `${r.releases.succeeded}/${r.releases.failed}/${r.releases.other}`, f(r.wallSeconds, 1), f(r.stepLagMs.p50), f(r.stepLagMs.p99), `${f(r.stepLagInBenchMs.p50)}/${f(r.stepLagInBenchMs.p99)}`, `${f(r.progressorWeightLagMs.p50)}/${f(r.progressorWeightLagMs.p99)}`, `${f(r.progressorStepLagMs.p50, 1)}/${f(r.progressorStepLagMs.p99, 1)}`, `${f(r.gateMs.p50)}/${f(r.gateMs.p99)}`, `${f(r.reconcileMs.p50)}/${f(r.reconcileMs.p99)}`, f(r.apiRequestsPerStep, 1), f(r.promQueriesPerCheck, 2), f(r.failedChecks), f(r.progressorPeakRssMb), `${f(r.progressorPeakHeapMb)}/${f(r.progressorPeakExternalMb)}`, `${f(r.simulatorScrape.upRatio * 100, 1)}%`]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(`\nprogressor benchmark (interval ${INTERVAL_S}s, stepWeight 10 -> 50, ${RPS} req/s per service, releases shipped ${STAGGER ? `spread over one interval (BENCH_STAGGER=1)` : 'all at once (lockstep)'}, ${process.env['BENCH_NOTE'] ?? 'local control plane'})\n`);
  for (const r of rows) process.stdout.write(`  ${r.map((c, i) => c.padStart(widths[i]!)).join('  ')}\n`);
  for (const r of results) {
    process.stdout.write(`  N=${r.n}: event-loop delay p99/max: bench ${f(r.benchLoopDelayMs.p99)}/${f(r.benchLoopDelayMs.max)} ms, watcher ${f(r.watcherLoopDelayMs.p99)}/${f(r.watcherLoopDelayMs.max)} ms\n`);
    process.stdout.write(`    API server (apiserver_request_duration_seconds) p50/p99 ms (count): ${Object.entries(r.apiserverMs).map(([k, v]) => `${k} ${f(v.p50)}/${f(v.p99)} (${v.count})`).join(', ')}\n`);
    process.stdout.write(`    progressor's API client p50/p99 ms (count): ${Object.entries(r.progressorApiMs).map(([k, v]) => `${k} ${f(v.p50)}/${f(v.p99)} (${v.count})`).join(', ')}\n`);
    process.stdout.write(`    progressor API requests per step: ${Object.entries(r.apiRequestsPerStepBy).map(([k, v]) => `${k} ${f(v, 2)}`).join(', ')}\n`);
    process.stdout.write(`    CPU s over ${f(r.wallSeconds)} s wall (2 cores): ${Object.entries(r.cpuSeconds).filter(([, v]) => v >= 1).map(([k, v]) => `${k} ${f(v, 1)}`).join(', ')}\n`);
  }
  mkdirSync(join(repoRoot, 'bench/results'), { recursive: true });
  const file = join(repoRoot, 'bench/results', `progressor-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ intervalS: INTERVAL_S, rps: RPS, results }, null, 2));
  process.stdout.write(`  (json: ${file})\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench:progressor failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
