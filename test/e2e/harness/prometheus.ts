/**
 * A real Prometheus (Debian's `prometheus`, installed by hack/deps/prometheus.sh) for the e2e
 * tests, the demo and the benchmark: bound to 127.0.0.1 (never its 0.0.0.0 default), scraping
 * the traffic simulator every second, with its TSDB in a temporary directory. The process is
 * recorded in .cluster/pids/<name>.pid (see ./processes.ts), so `make cluster-down` stops it
 * even when the test runner died.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './cluster.js';
import { freePort, startProcess, type HostProcess } from './processes.js';

export interface PrometheusOptions {
  /** host:port of each scrape target (the simulator), e.g. 127.0.0.1:9464 */
  targets: string[];
  /** process name for logs/pids (default "prometheus") */
  name?: string;
  /** fixed port (e.g. to restart on the same URL); a free one otherwise */
  port?: number;
  /** TSDB directory to reuse (e.g. on restart); a fresh temporary one otherwise */
  dataDir?: string;
  scrapeIntervalS?: number;
  /** wait until every target was scraped successfully once (default true) */
  waitForTargets?: boolean;
}

export interface PrometheusHandle {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly dataDir: string;
  readonly process: HostProcess;
  /** SIGTERM (then SIGKILL); keeps the data dir unless `removeData`. */
  stop(opts?: { removeData?: boolean }): Promise<void>;
  /** One instant query; the parsed JSON answer. */
  query(promql: string): Promise<unknown>;
  /** Resolves once every target is up (scraped successfully). */
  waitForTargets(timeoutMs?: number): Promise<void>;
}

export function prometheusBinary(): string {
  const bin = process.env['PROMETHEUS_BIN'] ?? 'prometheus';
  try {
    execFileSync(bin, ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error(`${bin} not found: run hack/deps/prometheus.sh (installs Debian's prometheus package)`);
  }
  return bin;
}

export function prometheusConfig(targets: string[], scrapeIntervalS = 1): string {
  return [
    'global:',
    `  scrape_interval: ${scrapeIntervalS}s`,
    `  scrape_timeout: ${Math.round(scrapeIntervalS * 800)}ms`,
    `  evaluation_interval: ${scrapeIntervalS}s`,
    'scrape_configs:',
    '  - job_name: istio-simulator',
    `    static_configs: [{ targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}] }]`,
    '',
  ].join('\n');
}

export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusHandle> {
  const bin = prometheusBinary();
  const name = opts.name ?? 'prometheus';
  const port = opts.port ?? (await freePort());
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'kube-canary-prometheus-'));
  mkdirSync(dataDir, { recursive: true });
  const configFile = join(dataDir, 'prometheus.yml');
  writeFileSync(configFile, prometheusConfig(opts.targets, opts.scrapeIntervalS ?? 1));
  const url = `http://127.0.0.1:${port}`;
  const proc = startProcess(name, bin, [
    `--config.file=${configFile}`,
    `--web.listen-address=127.0.0.1:${port}`,
    `--storage.tsdb.path=${join(dataDir, 'data')}`,
    '--storage.tsdb.retention.time=2h',
    '--web.enable-lifecycle',
    '--log.level=warn',
  ]);

  const query = async (promql: string): Promise<unknown> => {
    const res = await fetch(`${url}/api/v1/query`, { method: 'POST', body: new URLSearchParams({ query: promql }), signal: AbortSignal.timeout(5000) });
    return res.json();
  };
  const waitForTargets = async (timeoutMs = 30_000): Promise<void> => {
    await waitFor(
      `prometheus ${url} to scrape ${opts.targets.join(', ')}`,
      async () => {
        const res = await fetch(`${url}/api/v1/targets?state=active`, { signal: AbortSignal.timeout(2000) });
        const body = (await res.json()) as { data?: { activeTargets?: Array<{ health?: string }> } };
        const t = body.data?.activeTargets ?? [];
        return t.length === opts.targets.length && t.every((x) => x.health === 'up');
      },
      { timeoutMs, intervalMs: 250 },
    );
  };

  const handle: PrometheusHandle = {
    url,
    port,
    pid: proc.pid,
    dataDir,
    process: proc,
    query,
    waitForTargets,
    async stop({ removeData = false } = {}) {
      await proc.stop(5000);
      if (removeData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (proc.exitCode() !== undefined) throw new Error(`prometheus exited (${proc.exitCode()}) before it was ready; log ${proc.logFile}:\n${proc.output().slice(-2000)}`);
      const ready = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`prometheus ${url} not ready after 30 s; log ${proc.logFile}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    if (opts.waitForTargets ?? true) await waitForTargets();
  } catch (e) {
    await handle.stop({ removeData: opts.dataDir === undefined });
    throw e;
  }
  return handle;
}
