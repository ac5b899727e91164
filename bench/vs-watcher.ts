/**
 * A separate, lightweight watcher process for `bench:progressor`: it watches the VirtualServices
 * of one namespace and timestamps every change of a release's canary weight the moment the
 * bytes arrive (one Date.now() per socket read, before parsing), and does nothing else. The
 * benchmark's own process also parses every stable Deployment event, samples metrics and
 * waits on the API; a stall there would be measured as step lag. Same definition (due -> the new
 * weight visible in the VirtualService through a watch), a watcher that is never busy.
 *
 * Started by the benchmark with child_process.fork (IPC): argv = kubeconfig, namespace.
 * Messages: parent -> 'dump'; child -> { applied: [name, [t, canary][]][], loopDelayMs }.
 */
import https from 'node:https';
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadCredentials } from '../src/kube/credentials.js';

const [kubeconfig, namespace] = process.argv.slice(2);
if (!kubeconfig || !namespace || !process.send) {
  process.stderr.write('usage: fork(vs-watcher.ts, [kubeconfig, namespace])\n');
  process.exit(2);
}
const kc = await loadCredentials(kubeconfig);
const server = new URL(kc.server);
const applied = new Map<string, Array<[number, number]>>();
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
let resourceVersion = '';
let stopped = false;
let announced = false;

function onObject(obj: { metadata?: { name?: string; resourceVersion?: string }; spec?: { hosts?: string[]; http?: Array<{ route?: Array<{ destination?: { subset?: string }; weight?: number }> }> } }, t: number): void {
  if (obj.metadata?.resourceVersion) resourceVersion = obj.metadata.resourceVersion;
  const host = obj.spec?.hosts?.[0]?.split('.')[0] ?? obj.metadata?.name ?? '';
  let canary = 0;
  for (const r of obj.spec?.http?.[0]?.route ?? []) if (r.destination?.subset === 'canary') canary += r.weight ?? 0;
  const seq = applied.get(host) ?? [];
  if (seq.length === 0 || seq[seq.length - 1]![1] !== canary) seq.push([t, canary]);
  applied.set(host, seq);
}

async function watchOnce(): Promise<void> {
  const opts: https.RequestOptions = { headers: {} };
  await kc.applyToHTTPSOptions(opts);
  const u = new URL(`${server.origin}${server.pathname.replace(/\/$/, '')}/apis/networking.istio.io/v1/namespaces/${namespace}/virtualservices`);
  u.searchParams.set('watch', 'true');
  u.searchParams.set('allowWatchBookmarks', 'true');
  if (resourceVersion) u.searchParams.set('resourceVersion', resourceVersion);
  const lib = server.protocol === 'https:' ? https : http;
  await new Promise<void>((resolve, reject) => {
    const req = lib.request(u, { ...opts, method: 'GET', headers: { ...(opts.headers as Record<string, string>), accept: 'application/json' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`watch: ${res.statusCode}`));
        return;
      }
      if (!announced) {
        announced = true;
        process.send!({ ready: true });
      }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const t = Date.now();
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.trim()) continue;
          const ev = JSON.parse(line) as { type: string; object: never };
          if (ev.type === 'ADDED' || ev.type === 'MODIFIED') onObject(ev.object, t);
          else if (ev.type === 'BOOKMARK') resourceVersion = (ev.object as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion ?? resourceVersion;
          else if (ev.type === 'ERROR') resourceVersion = '';
        }
      });
      res.on('end', resolve);
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  while (!stopped) {
    try {
      await watchOnce();
    } catch (err) {
      process.stderr.write(`vs-watcher: ${(err as Error).message}; watching again\n`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

process.on('message', (m) => {
  if (m === 'dump') {
    process.send!({ applied: [...applied], loopDelayMs: { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 } });
  } else if (m === 'stop') {
    stopped = true;
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
void main();
