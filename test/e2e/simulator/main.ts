/**
 * kube-canary traffic simulator: a faithful simulator of the Istio data plane for the e2e tests,
 * the demo and the benchmark. See ./core.ts for what it models.
 *
 *   node --import tsx test/e2e/simulator/main.ts --kubeconfig K --listen 127.0.0.1:PORT \
 *     --namespace test [--namespace other] --rps 100 [--poll-ms 500] [--pid-file F]
 *
 * Per-Service rate: annotation simulator.kube-canary.io/rps on the Service. Per-version
 * behaviour: pod template annotations simulator.kube-canary.io/error-rate ("0.3") and
 * simulator.kube-canary.io/latency-ms ("50").
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Plan } from './core.js';
import { planFlows } from './core.js';
import { KubeSource } from './kube-source.js';
import { Simulator } from './server.js';

function log(msg: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), component: 'simulator', msg, ...extra })}\n`);
}

const { values } = parseArgs({
  options: {
    kubeconfig: { type: 'string' },
    listen: { type: 'string', default: '127.0.0.1:9464' },
    namespace: { type: 'string', multiple: true },
    rps: { type: 'string', default: '50' },
    'poll-ms': { type: 'string', default: '500' },
    'pid-file': { type: 'string' },
  },
});

const [host, portText] = (values.listen ?? '').split(/:(?=\d+$)/);
if (!host || portText === undefined) throw new Error(`--listen ${values.listen} is not HOST:PORT`);
if (host === '0.0.0.0' || host === '::') throw new Error('--listen must be a loopback address (e.g. 127.0.0.1:9464)');
const namespaces = (values.namespace ?? ['default']).flatMap((n) => n.split(',')).filter(Boolean);
const rps = Number(values.rps);
const pollMs = Number(values['poll-ms']);
if (!Number.isFinite(rps) || rps < 0) throw new Error(`--rps ${values.rps} is not a rate`);

const source = new KubeSource({ ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}), namespaces, defaultRps: rps });
const sim = new Simulator({ host, port: Number(portText) });
const address = await sim.start();
if (values['pid-file']) writeFileSync(values['pid-file'], `${process.pid}\n`);
log('listening', { address, namespaces, rps, pollMs });

let lastNotes = '';
let lastRoutes = '';
let failing = false;
let stopped = false;
async function poll(): Promise<void> {
  while (!stopped) {
    const started = Date.now();
    try {
      const snaps = await source.snapshots();
      const plans = snaps.map(planFlows);
      const plan: Plan = {
        flows: plans.flatMap((p) => p.flows),
        unroutedRps: plans.reduce((a, p) => a + p.unroutedRps, 0),
        notes: plans.flatMap((p) => p.notes),
        routes: Object.assign({}, ...plans.map((p) => p.routes)),
      };
      sim.setPlan(plan);
      if (failing) log('API reachable again');
      failing = false;
      const notes = plan.notes.join('\n');
      if (notes !== lastNotes && notes) log('notes', { notes: plan.notes });
      lastNotes = notes;
      const routes = JSON.stringify(plan.routes);
      if (routes !== lastRoutes) log('routes', { routes: plan.routes });
      lastRoutes = routes;
    } catch (e) {
      if (!failing) log('API read failed; keeping the last plan', { error: (e as Error).message });
      failing = true;
    }
    await new Promise((r) => setTimeout(r, Math.max(0, pollMs - (Date.now() - started))));
  }
}
void poll();

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    stopped = true;
    log('stopping', { signal: sig });
    void sim.stop().then(() => process.exit(0));
  });
}
