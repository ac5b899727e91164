/**
 * The core of kube-canary's traffic simulator: a faithful simulator of the Istio data plane for
 * tests and the demo (no Envoy, no real requests). Pure functions only:
 *
 *   planFlows(API objects)            -> flows: request rate per (workload, behaviour)
 *   advance(state, flows, elapsed ms) -> counter increments (requests, 5xx, latency histogram)
 *   renderMetrics(state)              -> Istio-format Prometheus exposition
 *
 * What it models, as Istio does it:
 * - A Service's traffic follows the VirtualService whose hosts name it (the first HTTP rule
 *   without `match`), split by route weight over DestinationRule subsets. A subset's endpoints
 *   are the ready pods selected by the Service's selector plus the subset's labels; a route's
 *   share is spread evenly over its endpoints. Without a VirtualService all ready endpoints of
 *   the Service share its traffic (plain Kubernetes round-robin).
 * - Each pod answers according to its OWN pod annotations
 *   (`simulator.kube-canary.io/error-rate`, `simulator.kube-canary.io/latency-ms`), so a paused
 *   Deployment whose template already changed keeps answering like its running pods.
 * - Metrics are those of the destination sidecars (`reporter="destination"`), labelled with the
 *   pod's workload (its Deployment). A destination without ready endpoints gets no destination
 *   telemetry (the source proxy would answer 503 "no healthy upstream"); it is counted as unrouted.
 * - A workload whose pods are all gone stops being exported (its proxies are gone); if it comes
 *   back its counters start again from zero (Prometheus sees a counter reset).
 */

export const ANN_ERROR_RATE = 'simulator.kube-canary.io/error-rate';
export const ANN_LATENCY_MS = 'simulator.kube-canary.io/latency-ms';
/** On a Service: requests per second sent to it (default: the simulator's --rps). */
export const ANN_RPS = 'simulator.kube-canary.io/rps';

export const DEFAULT_LATENCY_MS = 20;

/** Istio's default bucket boundaries for istio_request_duration_milliseconds (ms). */
export const ISTIO_DURATION_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000] as const;

// ---- the API objects the simulator reads (only the fields it needs) ----

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: unknown;
  ownerReferences?: Array<{ kind: string; name: string }>;
}
export interface ServiceObj { metadata: ObjectMeta; spec?: { selector?: Record<string, string> } }
export interface PodObj {
  metadata: ObjectMeta;
  status?: { phase?: string; conditions?: Array<{ type: string; status: string }> };
}
export interface VirtualServiceObj {
  metadata: ObjectMeta;
  spec?: {
    hosts?: string[];
    http?: Array<{ match?: unknown[]; route?: Array<{ destination?: { host?: string; subset?: string }; weight?: number }> }>;
  };
}
export interface DestinationRuleObj {
  metadata: ObjectMeta;
  spec?: { host?: string; subsets?: Array<{ name: string; labels?: Record<string, string> }> };
}

export interface Snapshot {
  namespace: string;
  /** Requests per second for a Service without the rps annotation. */
  defaultRps: number;
  services: ServiceObj[];
  pods: PodObj[];
  virtualServices: VirtualServiceObj[];
  destinationRules: DestinationRuleObj[];
}

export interface Behaviour {
  errorRate: number;
  latencyMs: number;
}

/** A steady stream of requests answered by one workload with one behaviour. */
export interface Flow {
  namespace: string;
  workload: string;
  /** FQDN, as Istio's destination_service label. */
  service: string;
  rps: number;
  errorRate: number;
  latencyMs: number;
}

export interface Plan {
  flows: Flow[];
  /** Requests per second that found no ready endpoint (no destination telemetry). */
  unroutedRps: number;
  /** Human-readable notes on what the simulator could not resolve (for its log). */
  notes: string[];
  /** The weights in force per Service FQDN (for /debug and the demo). */
  routes: Record<string, Array<{ subset: string; weight: number; endpoints: number }>>;
}

export function fqdn(name: string, namespace: string): string {
  return `${name}.${namespace}.svc.cluster.local`;
}

/** The Service a host names within `namespace` ("review", "review.test", "review.test.svc[.cluster.local]"). */
export function serviceNameOf(host: string, namespace: string): string | undefined {
  const parts = host.split('.');
  if (parts.length === 1) return parts[0];
  const rest = parts.slice(1).join('.');
  if (rest === namespace || rest === `${namespace}.svc` || rest === `${namespace}.svc.cluster.local`) return parts[0];
  return undefined;
}

export function isReady(pod: PodObj): boolean {
  if (pod.metadata.deletionTimestamp) return false;
  if (pod.status?.phase !== undefined && pod.status.phase !== 'Running') return false;
  return (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** The Deployment a pod belongs to: its ReplicaSet's name minus the pod-template-hash suffix. */
export function workloadOf(pod: PodObj): string {
  const owner = pod.metadata.ownerReferences?.find((o) => o.kind === 'ReplicaSet') ?? pod.metadata.ownerReferences?.[0];
  if (!owner) return pod.metadata.name;
  const hash = pod.metadata.labels?.['pod-template-hash'];
  if (owner.kind === 'ReplicaSet' && hash && owner.name.endsWith(`-${hash}`)) return owner.name.slice(0, -(hash.length + 1));
  return owner.name;
}

export function behaviourOf(annotations: Record<string, string> | undefined, notes?: string[], who = ''): Behaviour {
  const b: Behaviour = { errorRate: 0, latencyMs: DEFAULT_LATENCY_MS };
  const er = annotations?.[ANN_ERROR_RATE];
  if (er !== undefined) {
    const v = Number(er);
    if (er.trim() !== '' && Number.isFinite(v) && v >= 0 && v <= 1) b.errorRate = v;
    else notes?.push(`${who}: ${ANN_ERROR_RATE} ${JSON.stringify(er)} is not a fraction from 0 to 1; using 0`);
  }
  const lat = annotations?.[ANN_LATENCY_MS];
  if (lat !== undefined) {
    const v = Number(lat);
    if (lat.trim() !== '' && Number.isFinite(v) && v >= 0) b.latencyMs = v;
    else notes?.push(`${who}: ${ANN_LATENCY_MS} ${JSON.stringify(lat)} is not a number of milliseconds; using ${DEFAULT_LATENCY_MS}`);
  }
  return b;
}

function matches(labels: Record<string, string> | undefined, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** Which requests go where, from the API objects alone. */
export function planFlows(s: Snapshot): Plan {
  const notes: string[] = [];
  const routes: Plan['routes'] = {};
  const pieces: Flow[] = [];
  let unroutedRps = 0;
  const ns = s.namespace;
  const services = new Map(s.services.filter((x) => x.spec?.selector && Object.keys(x.spec.selector).length > 0).map((x) => [x.metadata.name, x]));
  // Indexes, so a plan costs O(objects) rather than O(services x pods): the simulator re-plans
  // twice a second, and a scan per Service took ~290 ms at 500 Services (half a core).
  const readyByLabel = new Map<string, PodObj[]>();
  for (const p of s.pods) {
    if (!isReady(p)) continue;
    for (const [k, v] of Object.entries(p.metadata.labels ?? {})) {
      const key = `${k}=${v}`;
      const list = readyByLabel.get(key);
      if (list) list.push(p);
      else readyByLabel.set(key, [p]);
    }
  }
  const byServiceName = <T extends { metadata: ObjectMeta }>(objects: T[], hostsOf: (o: T) => Array<string | undefined>): Map<string, T[]> => {
    const index = new Map<string, T[]>();
    for (const o of [...objects].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
      for (const name of new Set(hostsOf(o).map((h) => (h ? serviceNameOf(h, ns) : undefined)))) {
        if (name === undefined) continue;
        const list = index.get(name);
        if (list) list.push(o);
        else index.set(name, [o]);
      }
    }
    return index;
  };
  const virtualServicesOf = byServiceName(s.virtualServices, (v) => v.spec?.hosts ?? []);
  const destinationRulesOf = byServiceName(s.destinationRules, (r) => [r.spec?.host]);

  const endpointsOf = (svc: ServiceObj, extra: Record<string, string>): PodObj[] => {
    const sel = { ...svc.spec!.selector!, ...extra };
    const [k, v] = Object.entries(sel)[0]!; // services without a selector were left out above
    return (readyByLabel.get(`${k}=${v}`) ?? []).filter((p) => matches(p.metadata.labels, sel));
  };
  const spread = (svc: ServiceObj, rps: number, pods: PodObj[]) => {
    if (pods.length === 0) {
      unroutedRps += rps;
      return;
    }
    for (const p of pods) {
      const b = behaviourOf(p.metadata.annotations, notes, `pod ${p.metadata.name}`);
      pieces.push({ namespace: ns, workload: workloadOf(p), service: fqdn(svc.metadata.name, ns), rps: rps / pods.length, ...b });
    }
  };

  for (const svc of [...services.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const name = svc.metadata.name;
    const rawRps = svc.metadata.annotations?.[ANN_RPS];
    let rps = s.defaultRps;
    if (rawRps !== undefined) {
      const v = Number(rawRps);
      if (rawRps.trim() !== '' && Number.isFinite(v) && v >= 0) rps = v;
      else notes.push(`service ${name}: ${ANN_RPS} ${JSON.stringify(rawRps)} is not a rate; using ${s.defaultRps}`);
    }
    const vs = virtualServicesOf.get(name)?.[0];
    const rule = vs ? (vs.spec?.http ?? []).find((r) => !r.match || r.match.length === 0) ?? vs.spec?.http?.[0] : undefined;
    const dests = rule?.route ?? [];
    if (!vs || dests.length === 0) {
      const pods = endpointsOf(svc, {});
      routes[fqdn(name, ns)] = [{ subset: '', weight: 100, endpoints: pods.length }];
      spread(svc, rps, pods);
      continue;
    }
    const weights = dests.map((d) => (typeof d.weight === 'number' ? d.weight : dests.length === 1 ? 100 : 0));
    const total = weights.reduce((a, b) => a + b, 0);
    if (total <= 0) {
      notes.push(`virtualservice ${vs.metadata.name}: route weights add up to 0; no traffic sent`);
      unroutedRps += rps;
      continue;
    }
    if (total !== 100) notes.push(`virtualservice ${vs.metadata.name}: route weights add up to ${total}, not 100; scaled`);
    const shown: Array<{ subset: string; weight: number; endpoints: number }> = [];
    dests.forEach((d, i) => {
      const share = (rps * weights[i]!) / total;
      const destName = d.destination?.host ? serviceNameOf(d.destination.host, ns) : undefined;
      const destSvc = destName ? services.get(destName) : undefined;
      if (!destSvc) {
        notes.push(`virtualservice ${vs.metadata.name}: destination host ${JSON.stringify(d.destination?.host)} is not a Service with a selector in ${ns}`);
        unroutedRps += share;
        shown.push({ subset: d.destination?.subset ?? '', weight: weights[i]!, endpoints: 0 });
        return;
      }
      let extra: Record<string, string> = {};
      const subset = d.destination?.subset;
      if (subset) {
        const dr = destinationRulesOf.get(destSvc.metadata.name)?.find((r) => (r.spec?.subsets ?? []).some((x) => x.name === subset));
        const def = dr?.spec?.subsets?.find((x) => x.name === subset);
        if (!def) {
          // Istio answers 503 (NR: no route) at the source for an undefined subset.
          notes.push(`virtualservice ${vs.metadata.name}: subset ${JSON.stringify(subset)} of ${destSvc.metadata.name} is not defined by any DestinationRule`);
          unroutedRps += share;
          shown.push({ subset, weight: weights[i]!, endpoints: 0 });
          return;
        }
        extra = def.labels ?? {};
      }
      const pods = endpointsOf(destSvc, extra);
      shown.push({ subset: subset ?? '', weight: weights[i]!, endpoints: pods.length });
      spread(destSvc, share, pods);
    });
    routes[fqdn(name, ns)] = shown;
  }

  // One flow per (workload, service, behaviour): deterministic order and keys.
  const merged = new Map<string, Flow>();
  for (const p of pieces) {
    const k = flowKey(p);
    const m = merged.get(k);
    if (m) m.rps += p.rps;
    else merged.set(k, { ...p });
  }
  const flows = [...merged.values()].sort((a, b) => a.workload.localeCompare(b.workload) || a.service.localeCompare(b.service) || flowKey(a).localeCompare(flowKey(b)));
  return { flows, unroutedRps, notes: [...new Set(notes)], routes };
}

export function flowKey(f: Pick<Flow, 'namespace' | 'workload' | 'service' | 'errorRate' | 'latencyMs'>): string {
  return `${f.namespace}/${f.workload}/${f.service}/${f.errorRate}/${f.latencyMs}`;
}

function seriesKey(f: Pick<Flow, 'namespace' | 'workload' | 'service'>): string {
  return `${f.namespace}/${f.workload}/${f.service}`;
}

// ---- counters ----

export interface CodeCounters {
  requests: number;
  /** Non-cumulative counts per ISTIO_DURATION_BUCKETS index; the last slot is +Inf. */
  buckets: number[];
  sumMs: number;
}

export interface SeriesState {
  namespace: string;
  workload: string;
  service: string;
  byCode: Record<string, CodeCounters>;
}

export interface SimState {
  /** Fractional requests and errors carried to the next tick, per flow key (so rates are exact over time). */
  carry: Record<string, { requests: number; errors: number }>;
  series: Record<string, SeriesState>;
  unrouted: number;
  unroutedCarry: number;
}

export function emptyState(): SimState {
  return { carry: {}, series: {}, unrouted: 0, unroutedCarry: 0 };
}

export function bucketIndex(latencyMs: number): number {
  const i = ISTIO_DURATION_BUCKETS.findIndex((b) => latencyMs <= b);
  return i === -1 ? ISTIO_DURATION_BUCKETS.length : i;
}

function emptyCode(): CodeCounters {
  return { requests: 0, buckets: new Array<number>(ISTIO_DURATION_BUCKETS.length + 1).fill(0), sumMs: 0 };
}

/**
 * Advances the counters by `elapsedMs` of traffic following `plan`. Returns a new state (the
 * input is not modified). Request and error counts are exact over time: fractions carry over.
 */
export function advance(prev: SimState, plan: Pick<Plan, 'flows' | 'unroutedRps'>, elapsedMs: number): SimState {
  return advanceInPlace(structuredClone(prev), plan, elapsedMs);
}

/** Same as advance(), updating `state` itself (the simulator process ticks this way: no copy per tick). */
export function advanceInPlace(state: SimState, plan: Pick<Plan, 'flows' | 'unroutedRps'>, elapsedMs: number): SimState {
  const dt = Math.max(0, elapsedMs) / 1000;
  const live = new Set(plan.flows.map(seriesKey));
  for (const k of Object.keys(state.series)) if (!live.has(k)) delete state.series[k];
  const carries: SimState['carry'] = {};
  for (const f of plan.flows) {
    const fk = flowKey(f);
    const carry = state.carry[fk] ?? { requests: 0, errors: 0 };
    const exact = f.rps * dt + carry.requests;
    const n = Math.floor(exact + 1e-9);
    const exactErr = n * f.errorRate + carry.errors;
    const e = Math.min(n, Math.floor(exactErr + 1e-9));
    carries[fk] = { requests: Math.max(0, exact - n), errors: Math.max(0, exactErr - e) };
    const sk = seriesKey(f);
    const s = (state.series[sk] ??= { namespace: f.namespace, workload: f.workload, service: f.service, byCode: {} });
    const b = bucketIndex(f.latencyMs);
    for (const [code, count] of [['200', n - e], ['503', e]] as const) {
      if (count <= 0) continue;
      const c = (s.byCode[code] ??= emptyCode());
      c.requests += count;
      c.buckets[b]! += count;
      c.sumMs += count * f.latencyMs;
    }
  }
  state.carry = carries;
  const exactU = plan.unroutedRps * dt + state.unroutedCarry;
  const u = Math.floor(exactU + 1e-9);
  state.unrouted += u;
  state.unroutedCarry = Math.max(0, exactU - u);
  return state;
}

function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(l: Record<string, string>): string {
  return `{${Object.entries(l).map(([k, v]) => `${k}="${labelValue(v)}"`).join(',')}}`;
}

/** Label prefix per (series, code), cached: rendering runs every scrape over every series. */
const prefixCache = new Map<string, string>();
function prefix(s: SeriesState, code: string): string {
  const key = `${s.namespace}\u0000${s.workload}\u0000${s.service}\u0000${code}`;
  let p = prefixCache.get(key);
  if (p === undefined) {
    if (prefixCache.size > 200_000) prefixCache.clear();
    // The Istio standard labels the gates select on (reporter, destination_workload[_namespace],
    // destination_service, response_code); Istio's other labels (source_*, destination_app,
    // connection_security_policy, ...) are left out to keep a scrape of hundreds of workloads small.
    p = labels({
      reporter: 'destination',
      destination_workload: s.workload,
      destination_workload_namespace: s.namespace,
      destination_service: s.service,
      response_code: code,
    }).slice(0, -1);
    prefixCache.set(key, p);
  }
  return p;
}

const LE = ISTIO_DURATION_BUCKETS.map((le) => `,le="${le}"}`);

/** Prometheus text exposition of the Istio standard metrics (destination reporter). */
export function renderMetrics(state: SimState): string {
  const out: string[] = [];
  const series = Object.keys(state.series).sort().map((k) => state.series[k]!);
  out.push('# HELP istio_requests_total Total requests (kube-canary traffic simulator of the Istio data plane).');
  out.push('# TYPE istio_requests_total counter');
  for (const s of series) {
    for (const code of Object.keys(s.byCode).sort()) out.push(`istio_requests_total${prefix(s, code)}} ${s.byCode[code]!.requests}`);
  }
  out.push('# HELP istio_request_duration_milliseconds Request duration (kube-canary traffic simulator of the Istio data plane).');
  out.push('# TYPE istio_request_duration_milliseconds histogram');
  for (const s of series) {
    for (const code of Object.keys(s.byCode).sort()) {
      const c = s.byCode[code]!;
      const p = prefix(s, code);
      let cumulative = 0;
      for (let i = 0; i < LE.length; i++) {
        cumulative += c.buckets[i]!;
        out.push(`istio_request_duration_milliseconds_bucket${p}${LE[i]} ${cumulative}`);
      }
      cumulative += c.buckets[LE.length]!;
      out.push(`istio_request_duration_milliseconds_bucket${p},le="+Inf"} ${cumulative}`);
      out.push(`istio_request_duration_milliseconds_sum${p}} ${c.sumMs}`);
      out.push(`istio_request_duration_milliseconds_count${p}} ${c.requests}`);
    }
  }
  out.push('# HELP simulator_unrouted_requests_total Requests that found no ready endpoint (no destination telemetry).');
  out.push('# TYPE simulator_unrouted_requests_total counter');
  out.push(`simulator_unrouted_requests_total ${state.unrouted}`);
  return `${out.join('\n')}\n`;
}
