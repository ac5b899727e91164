/**
 * `npm run bench:webhook`: /mutate of the real `kube-canary webhook` process against a plain
 * node:https server answering a constant AdmissionReview, both over HTTPS, same machine, same run.
 * Body: a realistic ~7 KB AdmissionReview (the article's review Deployment, 1.7.0 -> 1.8.0).
 * Target: >= 0.7 of the plain server's throughput; p99 < 5 ms at 1,000 requests/s.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCerts } from '../src/certs/generate.js';
import { DEFAULT_PROGRESSOR_USER } from '../src/config/contract.js';
import { decide } from '../src/webhook/decision.js';
import { parseReview, reviewResponse } from '../src/webhook/review.js';
import { type LoadResult, closedLoop, openLoop } from './load.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
/** The webhook's compiled entry point; point it at another build (e.g. of an older commit) to compare. */
const WEBHOOK_MAIN = process.env.BENCH_WEBHOOK_MAIN ?? 'dist/src/cli/main.js';
const root = fileURLToPath(new URL('..', import.meta.url));

/** Starts a server whose logs go to a file, as a container runtime would take them (not through this busy process). */
async function startServer(args: string[], logFile: string): Promise<{ port: number; pid: number; stop: () => void }> {
  const out = openSync(logFile, 'w');
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', out, 'inherit'], env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' } });
  closeSync(out);
  let exited = false;
  child.once('exit', () => (exited = true));
  for (let i = 0; i < 300 && !exited; i++) {
    const m = /"address":"https:\/\/127\.0\.0\.1:(\d+)"/.exec(readFileSync(logFile, 'utf8'));
    if (m) return { port: Number(m[1]), pid: child.pid!, stop: () => child.kill('SIGKILL') };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`server did not start; see ${logFile}`);
}

async function measure(name: string, args: string[], ca: Buffer, body: string, logFile: string) {
  const s = await startServer(args, logFile);
  const t = { port: s.port, path: '/mutate', ca, body };
  await closedLoop(t, CONCURRENCY, 2); // warm-up: JIT, TLS sessions
  const cpu0 = cpuSeconds(s.pid);
  const throughput = await closedLoop(t, CONCURRENCY, SECONDS);
  // Server CPU per request: robust against a busy machine, unlike requests per second.
  const cpuUsPerRequest = ((cpuSeconds(s.pid) - cpu0) * 1e6) / throughput.requests;
  const atRate = await openLoop(t, RATE, SECONDS);
  s.stop();
  return { name, throughput, atRate, cpuUsPerRequest };
}

/** utime + stime of a process, from /proc (Linux), in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * The admission handler alone (parse, decision, answer), in this process without HTTP, TLS, log
 * line or metrics: the part of the webhook's CPU per request that the plain server does not have.
 */
function handlerMicros(body: string): number {
  const buf = Buffer.from(body);
  const config = { trackLabel: 'version', progressorUsers: [DEFAULT_PROGRESSOR_USER], ownNamespace: 'kube-canary', defaults: {} };
  const run = (n: number) => {
    let bytes = 0;
    for (let i = 0; i < n; i++) bytes += JSON.stringify(reviewResponse(decide(parseReview(buf), 'label', config).response)).length;
    return bytes;
  };
  run(5000);
  const start = process.hrtime.bigint();
  run(20000);
  return Number(process.hrtime.bigint() - start) / 20000 / 1000;
}

const row = (name: string, mode: string, r: LoadResult) =>
  `${name.padEnd(22)} ${mode.padEnd(20)} ${r.rps.toFixed(0).padStart(7)} req/s  p50 ${r.p50ms.toFixed(2).padStart(6)} ms  p99 ${r.p99ms.toFixed(2).padStart(6)} ms  errors ${r.errors}`;

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'kc-bench-'));
  try {
    const c = generateCerts({ hosts: ['127.0.0.1'], validDays: 1 });
    writeFileSync(join(dir, 'tls.crt'), c.cert);
    writeFileSync(join(dir, 'tls.key'), c.key, { mode: 0o600 });
    const ca = Buffer.from(c.caCert);
    const body = JSON.stringify(JSON.parse(readFileSync(join(root, 'test/webhook/fixtures/review-set-image.json'), 'utf8')));
    console.log(`webhook ${WEBHOOK_MAIN}; AdmissionReview body ${body.length} bytes; closed loop ${CONCURRENCY} connections ${SECONDS}s; open loop ${RATE} req/s ${SECONDS}s; node ${process.version}`);
    // The webhook runs as shipped (compiled dist/, no tsx loader or source maps); the plain
    // server's per-request path is Node's own whatever loads it.
    execFileSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: 'inherit' });
    const plain = await measure('plain node:https', ['--import', 'tsx', 'bench/plain-server.ts', join(dir, 'tls.crt'), join(dir, 'tls.key')], ca, body, join(dir, 'plain.log'));
    const kc = await measure('kube-canary webhook', [WEBHOOK_MAIN, 'webhook', '--port', '0', '--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key')], ca, body, join(dir, 'webhook.log'));
    for (const r of [plain, kc]) {
      console.log(row(r.name, `max (c=${CONCURRENCY})`, r.throughput));
      console.log(row(r.name, `at ${RATE} req/s`, r.atRate));
    }
    for (const r of [plain, kc]) console.log(`${r.name.padEnd(22)} server CPU per request ${r.cpuUsPerRequest.toFixed(0)} µs`);
    const handlerUs = handlerMicros(body);
    console.log(`admission handler of this tree alone (parse, decide, answer; in-process, no HTTP/TLS): ${handlerUs.toFixed(0)} µs`);
    const ratio = kc.throughput.rps / plain.throughput.rps;
    console.log(`throughput ratio kube-canary / plain: ${ratio.toFixed(2)} (target >= 0.70)`);
    console.log(`kube-canary p99 at ${RATE} req/s: ${kc.atRate.p99ms.toFixed(2)} ms (target < 5 ms)`);
    mkdirSync(join(root, 'bench/results'), { recursive: true });
    writeFileSync(join(root, 'bench/results/webhook.json'), JSON.stringify({ date: new Date().toISOString(), plain, kc, ratio, cpuRatio: plain.cpuUsPerRequest / kc.cpuUsPerRequest, handlerUs }, null, 2));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
