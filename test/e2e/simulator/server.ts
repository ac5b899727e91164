/**
 * The traffic simulator's process shell (a faithful simulator of the Istio data plane): it keeps
 * a plan of flows up to date (from the API, see ./kube-source.ts, or set directly by a test),
 * advances the counters of ./core.ts with the real elapsed time, and serves them.
 *
 *   GET /metrics      Istio-format istio_requests_total / istio_request_duration_milliseconds
 *   GET /healthz      200 once the first plan is in
 *   GET /debug/plan   the current plan (flows, weights per Service, notes) as JSON
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { advanceInPlace, emptyState, renderMetrics, type Plan, type SimState } from './core.js';

export interface SimulatorOptions {
  host: string;
  port: number;
  /** How often counters advance (ms). */
  tickMs?: number;
}

export class Simulator {
  private state: SimState = emptyState();
  private plan: Plan = { flows: [], unroutedRps: 0, notes: [], routes: {} };
  private planned = false;
  private last = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private server: Server | undefined;
  address = '';

  constructor(private readonly opts: SimulatorOptions) {}

  /** Applies a new plan from now on (the time before it ran on the previous plan). */
  setPlan(plan: Plan): void {
    this.tick();
    this.plan = plan;
    this.planned = true;
  }

  currentPlan(): Plan {
    return this.plan;
  }

  tick(): void {
    const now = performance.now();
    advanceInPlace(this.state, this.plan, now - this.last);
    this.last = now;
  }

  metrics(): string {
    this.tick();
    return renderMetrics(this.state);
  }

  async start(): Promise<string> {
    this.last = performance.now();
    this.timer = setInterval(() => this.tick(), this.opts.tickMs ?? 250);
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET') {
        res.writeHead(405).end();
      } else if (path === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(this.metrics());
      } else if (path === '/healthz') {
        res.writeHead(this.planned ? 200 : 503, { 'content-type': 'text/plain' }).end(this.planned ? 'ok\n' : 'no plan yet\n');
      } else if (path === '/debug/plan') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.plan, null, 2));
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.opts.port, this.opts.host, () => resolve());
    });
    const a = this.server.address() as AddressInfo;
    this.address = `${a.address}:${a.port}`;
    return this.address;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const s = this.server;
    this.server = undefined;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }
}
