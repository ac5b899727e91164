/**
 * The floor under the progressor benchmark's lockstep step lag on this machine: how long the
 * local API server takes to accept N VirtualService weight PATCHes sent at the same instant,
 * with nothing else running (no progressor, simulator, Prometheus, releases), and how long until a
 * watch has seen all of them. One step of N lockstep releases cannot be faster than this, as
 * its weight PATCHes are exactly these requests (plus gates before, and a status PATCH and an
 * Event per release competing with them).
 *
 *   node --import tsx bench/vs-patch-floor.ts   (env: FLOOR_N=500, FLOOR_IN_FLIGHT=64, FLOOR_ROUNDS=3)
 *
 * Uses the local control plane (make cluster-up) and a namespace of its own, deleted at the end.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { credentialsFromKubeConfig } from '../src/kube/credentials.js';
import { KubeHttp } from '../src/kube/http.js';
import { clusterDir, createNamespace, kubeConfig, kubectl } from '../test/e2e/harness/cluster.js';

const N = Number(process.env['FLOOR_N'] ?? 500);
const IN_FLIGHT = Number(process.env['FLOOR_IN_FLIGHT'] ?? 64);
const ROUNDS = Number(process.env['FLOOR_ROUNDS'] ?? 3);

const q = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(p * xs.length) - 1)]! : Number.NaN);
function cpuS(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(x[11]) + Number(x[12])) / 100;
}
const pidOf = (c: string) => Number(readFileSync(join(clusterDir, 'pids', `${c}.pid`), 'utf8').trim().split(/\s+/)[0]);

async function main(): Promise<void> {
  // A namespace still being deleted (a benchmark's 500 releases) keeps the API server busy.
  for (let i = 0; i < 120; i++) {
    const out = (await kubectl(['get', 'namespaces', '-o', 'name'], { allowFailure: true })).stdout;
    if (!/namespace\/(bench-|vs-floor)/.test(out)) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const ns = await createNamespace('vs-floor');
  const http = new KubeHttp(credentialsFromKubeConfig(kubeConfig()), { maxInFlight: IN_FLIGHT });
  const base = `/apis/networking.istio.io/v1/namespaces/${ns}/virtualservices`;
  try {
    const names = Array.from({ length: N }, (_, i) => `svc${String(i).padStart(3, '0')}`);
    await Promise.all(names.map((name) => http.request('POST', base, { body: { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace: ns }, spec: { hosts: [name], http: [{ route: [{ destination: { host: name, subset: 'stable' }, weight: 100 }, { destination: { host: name, subset: 'canary' }, weight: 0 }] }] } } })));
    // A watch that records when each object's new weight arrives.
    const seen = new Map<string, number>();
    let want = 0;
    const ac = new AbortController();
    let rv = '0';
    // Watched again from the last resourceVersion whenever the server ends the stream.
    const watching = (async () => {
      while (!ac.signal.aborted) {
        await http.watch(base, { resourceVersion: rv }, (e) => {
          const o = e.object as { metadata: { name: string; resourceVersion?: string }; spec: { http: Array<{ route: Array<{ weight: number }> }> } };
          if (o.metadata?.resourceVersion) rv = o.metadata.resourceVersion;
          if (o.spec?.http?.[0]?.route?.[1]?.weight === want && !seen.has(o.metadata.name)) seen.set(o.metadata.name, performance.now());
        }, ac.signal).catch(() => undefined);
      }
    })();
    await new Promise((r) => setTimeout(r, 2000));
    const api = pidOf('kube-apiserver');
    const etcd = pidOf('etcd');
    for (let round = 1; round <= ROUNDS; round++) {
      want = round * 10;
      seen.clear();
      const c0 = { api: cpuS(api), etcd: cpuS(etcd) };
      const t0 = performance.now();
      const answered: number[] = [];
      await Promise.all(
        names.map(async (name) => {
          await http.request('PATCH', `${base}/${name}`, { contentType: 'application/json-patch+json', priority: 'high', body: [
            { op: 'test', path: '/spec/http/0/route/0/destination/subset', value: 'stable' },
            { op: 'replace', path: '/spec/http/0/route/0/weight', value: 100 - want },
            { op: 'test', path: '/spec/http/0/route/1/destination/subset', value: 'canary' },
            { op: 'replace', path: '/spec/http/0/route/1/weight', value: want },
          ] });
          answered.push(performance.now() - t0);
        }),
      );
      while (seen.size < N && performance.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 10));
      const visible = [...seen.values()].map((t) => t - t0);
      const c1 = { api: cpuS(api), etcd: cpuS(etcd) };
      process.stdout.write(
        `round ${round}: ${N} PATCHes (${IN_FLIGHT} in flight): answered p50 ${q(answered, 0.5).toFixed(0)} / p99 ${q(answered, 0.99).toFixed(0)} / last ${Math.max(...answered).toFixed(0)} ms; ` +
          `seen through a watch p50 ${q(visible, 0.5).toFixed(0)} / p99 ${q(visible, 0.99).toFixed(0)} / last ${(visible.length ? Math.max(...visible) : Number.NaN).toFixed(0)} ms (${visible.length}/${N}); ` +
          `CPU: kube-apiserver ${(c1.api - c0.api).toFixed(2)} s (${(((c1.api - c0.api) / N) * 1000).toFixed(1)} ms per PATCH), etcd ${(c1.etcd - c0.etcd).toFixed(2)} s\n`,
      );
      await new Promise((r) => setTimeout(r, 2000));
    }
    ac.abort();
    await watching;
  } finally {
    await kubectl(['delete', 'namespace', ns, '--wait=false'], { allowFailure: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`vs-patch-floor failed: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
