/**
 * A small HTTPS load generator for the benchmarks: keep-alive connections, the same body on every
 * request, latencies from hrtime. Closed loop (fixed concurrency) measures throughput; open loop
 * (fixed rate, requests scheduled on the clock, latency counted from the scheduled time so a
 * stalled server cannot hide queueing) measures latency at a given load.
 *
 * Both open their connections before the clock starts, as the apiserver holds its connections to
 * a webhook open (the servers keep idle ones 95 s). Opened inside the timed window, they were a
 * storm: a client stall of a few ms made several requests due at once, each took a new TLS
 * connection (~1 ms of this process's CPU and a handshake on the server's), which stalled it
 * further, up to all 64 sockets; that alone put either server's p99 at 1,000 requests/s at 40-70 ms
 * in most rounds (measured 2026-11-27: 30-64 connections opened in those rounds, none in the others).
 */
import { Agent, request } from 'node:https';

export interface Target {
  port: number;
  path: string;
  ca: Buffer;
  body: string;
}

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50ms: number;
  p99ms: number;
}

function once(agent: Agent, t: Target): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port: t.port, path: t.path, method: 'POST', ca: t.ca, agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(t.body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      },
    );
    req.on('error', () => resolve(false));
    req.end(t.body);
  });
}

/** Opens `n` connections on the agent (n requests at once, each needing its own socket) and keeps them. */
async function warm(agent: Agent, t: Target, n: number): Promise<void> {
  await Promise.all(Array.from({ length: n }, () => once(agent, t)));
}

function summarise(latencies: number[], errors: number, seconds: number): LoadResult {
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { requests: latencies.length, errors, seconds, rps: latencies.length / seconds, p50ms: q(0.5), p99ms: q(0.99) };
}

export async function closedLoop(t: Target, concurrency: number, seconds: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  await warm(agent, t, concurrency);
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        if (await once(agent, t)) latencies.push(performance.now() - s);
        else errors++;
      }
    }),
  );
  agent.destroy();
  return summarise(latencies, errors, (performance.now() - start) / 1000);
}

/** Connections of the open loop: requests beyond this many in flight wait for one (and show as latency). */
const OPEN_LOOP_SOCKETS = 64;

export async function openLoop(t: Target, rate: number, seconds: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: OPEN_LOOP_SOCKETS });
  await warm(agent, t, OPEN_LOOP_SOCKETS);
  const latencies: number[] = [];
  let errors = 0;
  const total = Math.round(rate * seconds);
  const start = performance.now();
  const inflight: Array<Promise<void>> = [];
  // Timers have ~1 ms granularity: each tick sends every request already due, each timed from
  // its own due time, so a late tick or a slow server shows up as latency, not as a lower rate.
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    while (sent < total && start + (sent * 1000) / rate <= now) {
      const due = start + (sent * 1000) / rate;
      sent++;
      inflight.push(
        once(agent, t).then((ok) => {
          if (ok) latencies.push(performance.now() - due);
          else errors++;
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(inflight);
  agent.destroy();
  return summarise(latencies, errors, (performance.now() - start) / 1000);
}
