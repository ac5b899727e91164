/**
 * `kube-canary progressor` as a process: what its first log lines say about where it connects.
 * The API server is a closed port here (leader election just keeps retrying); only the start-up
 * lines are under test.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

describe('kube-canary progressor start-up', function () {
  this.timeout(30_000);
  let dir: string;
  let child: ChildProcess | undefined;
  let prometheus: http.Server | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kc-progressor-start-'));
    const api = await closedPort();
    writeFileSync(
      join(dir, 'kubeconfig'),
      JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'c', cluster: { server: `http://127.0.0.1:${api}` } }], users: [{ name: 'u', user: { token: 'sekret-token' } }], contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'current-context': 'x' }),
    );
  });

  afterEach(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child!.once('exit', r));
    }
    child = undefined;
    if (prometheus) await new Promise((r) => prometheus!.close(r));
    prometheus = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts the progressor and collects its output until `until` matches a line. */
  async function start(prometheusUrl: string, until: RegExp, env: Record<string, string> = {}, args: string[] = []): Promise<string> {
    child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'progressor', '--kubeconfig', join(dir, 'kubeconfig'), '--prometheus-url', prometheusUrl, '--metrics-addr', '127.0.0.1:0', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${until} within 20 s; output:\n${out}`)), 20_000);
      const onData = (b: Buffer) => {
        out += b.toString();
        if (until.test(out)) {
          clearTimeout(timer);
          resolve(out);
        }
      };
      child!.stdout!.on('data', onData);
      child!.stderr!.on('data', onData);
    });
  }

  it('warns at once, naming the flag, when Prometheus does not answer; no password or token in its lines', async () => {
    const port = await closedPort();
    const out = await start(`http://admin:pa55word@127.0.0.1:${port}/prom`, /Prometheus does not answer/);
    const warn = out.split('\n').find((l) => l.includes('Prometheus does not answer'))!;
    const line = JSON.parse(warn) as { level: number; err: string; msg: string };
    assert.equal(line.level, 40);
    assert.match(line.msg, /every metric check fails .* until it does, which matters only to releases with metric checks; check --prometheus-url/);
    assert.match(line.err, new RegExp(`Prometheus at http://127\\.0\\.0\\.1:${port}/prom is unreachable: ECONNREFUSED`));
    const starting = JSON.parse(out.split('\n').find((l) => l.includes('progressor starting'))!) as { credentials: string; prometheus: string };
    assert.match(starting.credentials, /^kubeconfig .*kubeconfig \(token\)$/);
    assert.equal(starting.prometheus, `http://127.0.0.1:${port}/prom`);
    assert.doesNotMatch(out, /pa55word|sekret-token/);
  });

  it('names the proxy HTTP_PROXY gives and the variable, without its password', async () => {
    const [api, proxy] = [await closedPort(), await closedPort()];
    writeFileSync(
      join(dir, 'kubeconfig'),
      JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'c', cluster: { server: `http://kube.test:${api}` } }], users: [{ name: 'u', user: { token: 'sekret-token' } }], contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'current-context': 'x' }),
    );
    const out = await start(`http://127.0.0.1:${await closedPort()}`, /progressor starting/, { HTTP_PROXY: `http://corp:pa55word@127.0.0.1:${proxy}`, http_proxy: '', NO_PROXY: '', no_proxy: '' });
    const starting = JSON.parse(out.split('\n').find((l) => l.includes('progressor starting'))!) as { proxy: string };
    assert.equal(starting.proxy, `http://127.0.0.1:${proxy} (HTTP_PROXY)`);
    assert.doesNotMatch(out, /pa55word|sekret-token/);
  });

  it('refuses to start with a --prometheus-url without scheme, naming the flag and an example', async () => {
    const out = await start('prometheus.istio-system:9090', /--prometheus-url/);
    await new Promise((r) => (child!.exitCode !== null ? r(undefined) : child!.once('exit', r)));
    assert.notEqual(child!.exitCode, 0);
    assert.match(out, /--prometheus-url "prometheus\.istio-system:9090" is not an http\(s\) URL; write it with its scheme, e\.g\. --prometheus-url http:\/\/prometheus\.istio-system:9090/);
  });

  it('warns when the URL answers, but not as Prometheus does', async () => {
    prometheus = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"hello":"world"}');
    });
    await new Promise<void>((r) => prometheus!.listen(0, '127.0.0.1', r));
    const out = await start(`http://127.0.0.1:${(prometheus.address() as AddressInfo).port}`, /Prometheus answers|Prometheus does not answer/);
    assert.match(out, /"err":"http:\/\/127\.0\.0\.1:\d+\/ answered vector\(1\) with \{\\"hello\\":\\"world\\"\}, not as Prometheus does"/);
  });

  it('says Prometheus answers when it does', async () => {
    prometheus = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [{ metric: {}, value: [0, '1'] }] } }));
    });
    await new Promise<void>((r) => prometheus!.listen(0, '127.0.0.1', r));
    const out = await start(`http://127.0.0.1:${(prometheus.address() as AddressInfo).port}`, /Prometheus answers|Prometheus does not answer/);
    assert.match(out, /"msg":"Prometheus answers"/);
  });

  it('bounds the gate sets in flight by --gate-concurrency (KUBE_CANARY_GATE_CONCURRENCY), --concurrency by default, says so at start and serves kube_canary_gate_runs', async () => {
    const prom = `http://127.0.0.1:${await closedPort()}`;
    const cases = [
      [{}, [], 32, 32],
      [{}, ['--concurrency', '200'], 200, 200],
      [{ KUBE_CANARY_GATE_CONCURRENCY: '4' }, [], 4, 32],
      [{ KUBE_CANARY_GATE_CONCURRENCY: '4' }, ['--gate-concurrency', '7', '--concurrency', '200'], 7, 200],
    ] as const;
    for (const [env, args, expected, concurrency] of cases) {
      const out = await start(prom, /progressor starting/, env, [...args]);
      const starting = JSON.parse(out.split('\n').find((l) => l.includes('progressor starting'))!) as { gateConcurrency: number; concurrency: number; metrics: string };
      assert.deepEqual([starting.gateConcurrency, starting.concurrency], [expected, concurrency]);
      if (expected === 32) {
        const text = await (await fetch(`http://${starting.metrics}/metrics`)).text();
        assert.match(text, /^kube_canary_gate_runs\{state="waiting"\} 0$/m);
        assert.match(text, /^kube_canary_gate_runs\{state="running"\} 0$/m);
      }
      const exited = new Promise((r) => child!.once('exit', r));
      child!.kill('SIGKILL');
      await exited;
      child = undefined;
    }
  });

  it('refuses a --gate-concurrency that is not a whole number from 1 to 1000, from the flag or the environment', async () => {
    const prom = `http://127.0.0.1:${await closedPort()}`;
    for (const [env, args] of [[{}, ['--gate-concurrency', '0']], [{ KUBE_CANARY_GATE_CONCURRENCY: 'many' }, []]] as const) {
      const out = await start(prom, /must be a whole number/, env, [...args]);
      await new Promise((r) => (child!.exitCode !== null ? r(undefined) : child!.once('exit', r)));
      assert.notEqual(child!.exitCode, 0);
      assert.match(out, /--gate-concurrency "(0|many)" must be a whole number from 1 to 1000/);
      if (env.KUBE_CANARY_GATE_CONCURRENCY) assert.match(out, /from env 'KUBE_CANARY_GATE_CONCURRENCY'/);
    }
  });
});
