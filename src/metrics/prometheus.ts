/**
 * Metric gates over Prometheus (Istio's standard telemetry), modelled on Flagger's built-in
 * queries. Query building and result judging are pure functions (unit-tested); the HTTP call is
 * a thin shell around them.
 *
 * Anything that is not exactly one finite sample is a FAILED check, never a pass: Prometheus
 * unreachable, an HTTP error, a timeout, an empty result, several series, NaN or +/-Inf.
 */
import type { MetricCheck } from '../config/analysis.js';
import { formatDuration } from '../config/duration.js';
import { type QueryVars, renderQuery } from '../config/query-template.js';
import { UNTRUSTED_FIX, post, redactUrl, takeBasicAuth } from './http-client.js';
import type { CheckResult, MetricProvider, MetricTarget } from './provider.js';

export interface PrometheusOptions {
  /** Base URL, e.g. http://127.0.0.1:9090 (a path prefix is kept; user:pass@ becomes basic auth). */
  url: string;
  /** Per query; the request is aborted and the check fails after this long. */
  timeoutMs: number;
  /**
   * Built-in metric checks of one namespace that arrive within this window are sent as one
   * query (default 20 ms; 0 sends every check on its own). Hundreds of releases started
   * together check together, and one query over N workloads costs Prometheus far less than N.
   */
  batchWindowMs?: number;
  /** At most this many workloads per batched query (bounds the regex and the answer). */
  maxBatch?: number;
}

type BuiltinMetric = 'request-success-rate' | 'request-duration';
type Outcome = { value: number } | { error: string };
interface Batch {
  metric: BuiltinMetric;
  namespace: string;
  interval: string;
  waiters: Map<string, Array<(o: Outcome) => void>>;
  timer?: NodeJS.Timeout;
}

/** Prometheus' duration syntax: "1m", "30s", "1500ms" (formatDuration already emits that). */
export function promDuration(ms: number): string {
  const whole = Math.max(1, Math.round(ms));
  return formatDuration(whole);
}

/** A PromQL double-quoted string literal with the value escaped. */
export function promString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

export function varsFor(metric: MetricCheck, target: MetricTarget): QueryVars {
  const ms = metric.intervalMs > 0 ? metric.intervalMs : target.intervalMs;
  return { namespace: target.namespace, target: target.canary, canary: target.canary, stable: target.stable, interval: promDuration(ms) };
}

/** Istio's series as seen by the server-side sidecars of one namespace's workloads named `op` `value` (`=` or `=~`). */
function istioSelector(namespace: string, op: '=' | '=~', value: string): string {
  return `reporter="destination",destination_workload_namespace=${promString(namespace)},destination_workload${op}${promString(value)}`;
}

/**
 * A built-in metric over the selected series: one series, or one per value of the `by` labels.
 *
 * The success rate is Flagger's, except for its numerator: a canary that answered every request
 * with a 5xx has no non-5xx series at all, and Flagger's `sum(non-5xx) / sum(all)` is then empty,
 * which reads as "no data: has the canary received traffic?" for the very release that is
 * failing everything. `or 0 * sum(all)` makes that numerator 0 wherever the canary had requests,
 * so the check says 0 %; with no requests the denominator is still empty (no data) or 0 (NaN).
 */
function builtinQuery(metric: BuiltinMetric, sel: string, interval: string, by: string[] = []): string {
  if (metric === 'request-success-rate') {
    const sum = by.length ? `sum by (${by.join(', ')}) ` : 'sum';
    const all = `${sum}(rate(istio_requests_total{${sel}}[${interval}]))`;
    return `(${sum}(rate(istio_requests_total{${sel},response_code!~"5.*"}[${interval}])) or 0 * ${all}) / ${all} * 100`;
  }
  return `histogram_quantile(0.99, sum by (${['le', ...by].join(', ')}) (rate(istio_request_duration_milliseconds_bucket{${sel}}[${interval}])))`;
}

/** Flagger's istio `request-success-rate`: percentage of non-5xx responses seen by the canary's sidecars (0 when all were 5xx, see builtinQuery). */
export function successRateQuery(v: QueryVars): string {
  return builtinQuery('request-success-rate', istioSelector(v.namespace, '=', v.target), v.interval);
}

/** Flagger's istio `request-duration`: p99 latency in milliseconds. */
export function durationQuery(v: QueryVars): string {
  return builtinQuery('request-duration', istioSelector(v.namespace, '=', v.target), v.interval);
}

/** A PromQL regex alternation matching exactly these names (regex metacharacters escaped). */
export function exactAlternation(names: string[]): string {
  return names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
}

/**
 * The built-in metric over several canaries of one namespace in one query, one series per
 * workload (`sum by (destination_workload)`): per workload the same number the single query
 * gives, because both sum the same series. Used when many releases check at the same moment.
 */
export function batchedQuery(metric: BuiltinMetric, namespace: string, workloads: string[], interval: string): string {
  return builtinQuery(metric, istioSelector(namespace, '=~', exactAlternation(workloads)), interval, ['destination_workload']);
}

const CANCELLED = 'the check was cancelled before Prometheus answered';
/**
 * Largest answer read from Prometheus. A check needs one sample, a batched query one per
 * workload (at most maxBatch): a few KB. A custom query over every series can answer hundreds
 * of MB, which would be held in the memory of the progressor that serves every release.
 */
export const MAX_ANSWER_BYTES = 1024 * 1024;
/** Below this, a built-in metric's window may hold fewer than two scrapes (15 s and 30 s scrape intervals are common): said with "no data". */
const SHORT_WINDOW_MS = 60_000;
const NO_DATA = 'no data: the query returned an empty result (no matching series in the window; has the canary received traffic?)';

/** The `data` of an answer Prometheus marked a success, or why there is none. */
function successData(body: unknown): { data: { resultType?: unknown; result?: unknown } | null | undefined } | { error: string } {
  const b = body as { status?: unknown; error?: unknown; errorType?: unknown; data?: { resultType?: unknown; result?: unknown } | null } | null;
  if (b === null || typeof b !== 'object') return { error: 'Prometheus answered with something that is not a JSON object' };
  if (b.status !== 'success') {
    return { error: `Prometheus query failed: ${typeof b.errorType === 'string' ? `${b.errorType}: ` : ''}${typeof b.error === 'string' ? b.error : 'no error message'}` };
  }
  return { data: b.data };
}

/**
 * The answer of a batched query split per `destination_workload`; a workload without a series has
 * no data, or, if some series could not be read (null, no workload label, no sample), a malformed answer.
 */
export function extractByWorkload(body: unknown, workloads: string[]): Map<string, Outcome> {
  const answer = successData(body);
  const data = 'data' in answer ? answer.data : undefined;
  if (data?.resultType !== 'vector' || !Array.isArray(data.result)) {
    const failed = { error: 'error' in answer ? answer.error : 'Prometheus answer to a batched query is not a vector' };
    return new Map(workloads.map((w) => [w, failed]));
  }
  const found = new Map<string, number>();
  let unreadable = 0;
  for (const series of data.result as unknown[]) {
    const { metric, value } = (series ?? {}) as { metric?: { destination_workload?: unknown } | null; value?: unknown };
    const w = metric?.destination_workload;
    if (typeof w === 'string' && Array.isArray(value) && value.length >= 2) found.set(w, parseSampleValue(value[1]));
    else unreadable += 1;
  }
  const missing = unreadable > 0 ? `Prometheus answer is malformed (${unreadable} of ${data.result.length} series unreadable: not {metric: {destination_workload}, value: [time, value]}); none is this workload's` : NO_DATA;
  const out = new Map<string, Outcome>();
  for (const w of workloads) {
    const v = found.get(w);
    out.set(w, v === undefined ? { error: missing } : { value: v });
  }
  return out;
}

/** The PromQL a metric check runs, or why it cannot be built. */
export function buildQuery(metric: MetricCheck, target: MetricTarget): { query: string } | { error: string } {
  const v = varsFor(metric, target);
  if (metric.query !== undefined) return renderQuery(metric.query, v);
  if (metric.name === 'request-success-rate') return { query: successRateQuery(v) };
  if (metric.name === 'request-duration') return { query: durationQuery(v) };
  return { error: `"${metric.name}" is not a built-in metric and has no query` };
}

/** Parses a Prometheus sample value ("12.5", "NaN", "+Inf", "-Inf"). */
export function parseSampleValue(s: unknown): number {
  if (typeof s !== 'string') return Number.NaN;
  if (s === '+Inf' || s === 'Inf') return Number.POSITIVE_INFINITY;
  if (s === '-Inf') return Number.NEGATIVE_INFINITY;
  const n = Number(s);
  return s.trim() === '' ? Number.NaN : n;
}

/** The single value of an instant-query answer (`data` of /api/v1/query), or why there is none. */
export function extractValue(body: unknown): Outcome {
  const answer = successData(body);
  if ('error' in answer) return answer;
  const { data } = answer;
  if (!data || typeof data !== 'object') return { error: 'Prometheus answer has no data' };
  const { resultType, result } = data;
  if (resultType === 'scalar') {
    if (!Array.isArray(result) || result.length < 2) return { error: 'Prometheus scalar result is malformed' };
    return { value: parseSampleValue(result[1]) };
  }
  if (resultType === 'vector') {
    if (!Array.isArray(result)) return { error: 'Prometheus vector result is malformed' };
    if (result.length === 0) return { error: NO_DATA };
    if (result.length > 1) return { error: `the query returned ${result.length} series; it must return exactly one (aggregate it, e.g. with sum(...))` };
    const sample = (result[0] as { value?: unknown } | null)?.value;
    if (!Array.isArray(sample) || sample.length < 2) return { error: 'Prometheus sample is malformed' };
    return { value: parseSampleValue(sample[1]) };
  }
  return { error: `the query returned a ${String(resultType)}; it must return a single instant value (a scalar or one-element vector)` };
}

/**
 * How far (relative to the bound) a value may miss its bound and still be at it. Prometheus
 * computes an exact 29 % success rate, 29 of every 100 requests, as 28.999999999999996 (and 7 %
 * as 6.999999999999999 in one query, 7.000000000000001 in the batched one): float rounding, not
 * a worse canary. A real difference is many orders of magnitude larger than 1e-9.
 */
const ROUNDING = 1e-9;
const atBound = (value: number, bound: number) => Math.abs(value - bound) <= ROUNDING * Math.max(1, Math.abs(bound));

/** Compares a value against the inclusive range [min, max]. NaN and +/-Inf never pass. */
export function judge(name: string, value: number, min?: number, max?: number): CheckResult {
  const range = { ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) };
  if (Number.isNaN(value)) {
    return { name, passed: false, value, ...range, message: `${name}: no data: the query returned NaN (e.g. 0/0: no requests in the window)` };
  }
  if (!Number.isFinite(value)) {
    return { name, passed: false, value, ...range, message: `${name}: the query returned ${value > 0 ? '+Inf' : '-Inf'}, which is never a pass` };
  }
  if (min !== undefined && value < min && !atBound(value, min)) return { name, passed: false, value, ...range, message: `${name} ${fmtAgainst(value, min)} is below the minimum ${fmt(min)}` };
  if (max !== undefined && value > max && !atBound(value, max)) return { name, passed: false, value, ...range, message: `${name} ${fmtAgainst(value, max)} is above the maximum ${fmt(max)}` };
  return { name, passed: true, value, ...range, message: `${name} ${fmt(value)} is within ${rangeText(min, max)}` };
}

/** The value as fmt() shows it, unless that reads as the bound it failed ("98.9996 is below 99" must not say "99 is below 99"). */
function fmtAgainst(value: number, bound: number): string {
  const shown = fmt(value);
  return shown === fmt(bound) ? String(value) : shown;
}

function rangeText(min?: number, max?: number): string {
  if (min !== undefined && max !== undefined) return `[${fmt(min)}, ${fmt(max)}]`;
  if (min !== undefined) return `the minimum ${fmt(min)}`;
  return `the maximum ${fmt(max!)}`;
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return Number.isInteger(n) ? String(n) : String(Math.round(n * 1000) / 1000);
}

export class PrometheusProvider implements MetricProvider {
  private readonly endpoint: string;
  private readonly authorization: string | undefined;
  private readonly shownUrl: string;
  readonly timeoutMs: number;
  /** HTTP queries sent so far (for the benchmark's "queries per check"). */
  queries = 0;
  private readonly batchWindowMs: number;
  private readonly maxBatch: number;
  private readonly batches = new Map<string, Batch>();

  constructor(opts: PrometheusOptions) {
    const u = new URL(opts.url);
    this.authorization = takeBasicAuth(u);
    u.search = '';
    u.hash = '';
    u.pathname = `${u.pathname.replace(/\/+$/, '')}/api/v1/query`;
    this.endpoint = u.toString();
    this.shownUrl = redactUrl(opts.url);
    this.timeoutMs = opts.timeoutMs;
    this.batchWindowMs = opts.batchWindowMs ?? 20;
    this.maxBatch = opts.maxBatch ?? 100;
  }

  async check(metric: MetricCheck, target: MetricTarget, signal?: AbortSignal): Promise<CheckResult> {
    const range = { ...(metric.min !== undefined ? { min: metric.min } : {}), ...(metric.max !== undefined ? { max: metric.max } : {}) };
    const fail = (message: string): CheckResult => ({ name: metric.name, passed: false, ...range, message: `${metric.name}: ${message}` });
    let outcome: Outcome;
    if (metric.query === undefined && (metric.name === 'request-success-rate' || metric.name === 'request-duration') && this.batchWindowMs > 0) {
      outcome = await this.batched(metric.name, varsFor(metric, target), signal);
    } else {
      const built = buildQuery(metric, target);
      if ('error' in built) return fail(built.error);
      const answer = await this.query(built.query, signal);
      outcome = 'error' in answer ? answer : extractValue(answer.body);
    }
    if ('error' in outcome) return fail(outcome.error === NO_DATA && metric.query === undefined && metric.intervalMs < SHORT_WINDOW_MS ? `${NO_DATA}; a rate over ${formatDuration(metric.intervalMs)} needs two scrapes in that window: make the metric's interval at least twice Prometheus' scrape interval (e.g. 1m)` : outcome.error);
    return judge(metric.name, outcome.value, metric.min, metric.max);
  }

  /** Joins (or opens) the batch for this metric, namespace and window; resolves with this workload's value. */
  private batched(metric: Batch['metric'], v: QueryVars, signal?: AbortSignal): Promise<Outcome> {
    const key = `${metric}\n${v.namespace}\n${v.interval}`;
    let batch = this.batches.get(key);
    if (!batch) {
      batch = { metric, namespace: v.namespace, interval: v.interval, waiters: new Map() };
      const b = batch;
      this.batches.set(key, b);
      b.timer = setTimeout(() => void this.send(key, b), this.batchWindowMs);
    }
    const b = batch;
    const result = new Promise<Outcome>((resolve) => b.waiters.set(v.target, [...(b.waiters.get(v.target) ?? []), resolve]));
    if (b.waiters.size >= this.maxBatch) {
      clearTimeout(b.timer);
      void this.send(key, b);
    }
    if (!signal) return result;
    if (signal.aborted) return Promise.resolve({ error: CANCELLED });
    // The caller may give up; the batch goes on for the others. The signal outlives this check
    // (it is the progressor's), so the listener goes when the check ends, however it ends.
    return new Promise<Outcome>((resolve) => {
      const cancelled = () => resolve({ error: CANCELLED });
      signal.addEventListener('abort', cancelled, { once: true });
      void result.then((o) => {
        signal.removeEventListener('abort', cancelled);
        resolve(o);
      });
    });
  }

  /** Never rejects (it runs unawaited) and settles every waiter: a check left waiting holds its release. */
  private async send(key: string, b: Batch): Promise<void> {
    if (this.batches.get(key) === b) this.batches.delete(key);
    const workloads = [...b.waiters.keys()];
    let outcomes: Map<string, Outcome>;
    try {
      outcomes = await this.answer(b, workloads);
    } catch (err) {
      outcomes = new Map(workloads.map((w) => [w, { error: `the batched query failed: ${(err as Error).message}` }]));
    }
    for (const [w, resolvers] of b.waiters) for (const r of resolvers) r(outcomes.get(w)!);
  }

  private async answer(b: Batch, workloads: string[]): Promise<Map<string, Outcome>> {
    if (workloads.length === 1) {
      // Alone in its window: exactly the single-workload query (Flagger's).
      const answer = await this.query(builtinQuery(b.metric, istioSelector(b.namespace, '=', workloads[0]!), b.interval));
      return new Map([[workloads[0]!, 'error' in answer ? answer : extractValue(answer.body)]]);
    }
    const answer = await this.query(batchedQuery(b.metric, b.namespace, workloads, b.interval));
    return 'error' in answer ? new Map(workloads.map((w) => [w, answer])) : extractByWorkload(answer.body, workloads);
  }

  /** One instant query. Never throws: returns the parsed JSON body or a message saying what went wrong. */
  async query(promql: string, signal?: AbortSignal): Promise<{ body: unknown } | { error: string }> {
    const form = new URLSearchParams({ query: promql, timeout: `${Math.max(1, Math.floor(this.timeoutMs / 1000))}s` });
    this.queries += 1;
    const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...(this.authorization ? { authorization: this.authorization } : {}) };
    const res = await post(this.endpoint, { headers, body: form, redirect: 'manual' }, this.timeoutMs, signal, MAX_ANSWER_BYTES);
    if ('failed' in res) {
      if (res.failed === 'timeout') return { error: `Prometheus at ${this.shownUrl} did not answer within ${this.timeoutMs}ms (timeout)` };
      if (res.failed === 'cancelled') return { error: CANCELLED };
      if (res.failed === 'untrusted') return { error: `Prometheus at ${this.shownUrl}: its TLS certificate is not accepted: ${res.detail}; ${UNTRUSTED_FIX}` };
      return { error: `Prometheus at ${this.shownUrl} is unreachable: ${res.detail}` };
    }
    // Not followed: a POST redirected is a GET elsewhere (an SSO login page, another host that would get the credentials).
    if (res.status >= 300 && res.status < 400) {
      return { error: `Prometheus at ${this.shownUrl} answered HTTP ${res.status} (a redirect, e.g. to a login page of a proxy in front of it); point --prometheus-url at Prometheus itself (its /api/v1/query answers)` };
    }
    if (res.truncated) {
      return { error: `Prometheus at ${this.shownUrl} answered HTTP ${res.status} with more than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB, not read; a check needs one series: aggregate the query (e.g. with sum(...))` };
    }
    let body: unknown;
    try {
      body = JSON.parse(res.text);
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      const detail = body && typeof body === 'object' && typeof (body as { error?: unknown }).error === 'string' ? `: ${(body as { error: string }).error}` : '';
      return { error: `Prometheus at ${this.shownUrl} answered HTTP ${res.status}${detail}` };
    }
    if (body === undefined) return { error: `Prometheus at ${this.shownUrl} answered HTTP ${res.status} with a body that is not JSON` };
    return { body };
  }
}
