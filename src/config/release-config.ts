/**
 * Everything a user configures on an opted-in Deployment through `kube-canary.io/*` annotations,
 * parsed and validated in one place so the webhook (which denies bad config at admission) and
 * the progressor (which acts on it) can never disagree.
 */
import { type Analysis, checkDuration, INTERVAL_BOUNDS, parseAnalysis } from './analysis.js';
import { show } from './show.js';
import { ANN_ANALYSIS, ANN_PROGRESS_DEADLINE, ANN_PROVIDER, ANN_REQUEST, ANN_SERVICE, ANN_SKIP_ANALYSIS, PREFIX, REQUESTS, MANAGED_ANNOTATIONS, USER_ANNOTATIONS, LABEL_ENABLED, LABEL_ROLE, LABEL_STABLE_NAME } from './contract.js';
import type { ReleaseRequest } from './contract.js';

/** Every traffic provider name of the design (ARCHITECTURE.md), implemented or planned. */
export const TRAFFIC_PROVIDERS = ['istio', 'gateway-api', 'replicas'] as const;
export type TrafficProviderName = (typeof TRAFFIC_PROVIDERS)[number];
/**
 * The providers this version implements: the only ones admission accepts. src/traffic/index.ts
 * has one factory for each (its PROVIDERS is typed by this list; test/traffic/providers.test.ts).
 */
export const AVAILABLE_TRAFFIC_PROVIDERS = ['istio'] as const satisfies readonly TrafficProviderName[];
export type AvailableTrafficProviderName = (typeof AVAILABLE_TRAFFIC_PROVIDERS)[number];

/**
 * Why `name` cannot be used as a traffic provider (no field prefix: the caller names the
 * annotation or flag), or undefined when it can.
 */
export function providerError(name: string): string | undefined {
  if ((AVAILABLE_TRAFFIC_PROVIDERS as readonly string[]).includes(name)) return undefined;
  const available = AVAILABLE_TRAFFIC_PROVIDERS.join(', ');
  if ((TRAFFIC_PROVIDERS as readonly string[]).includes(name)) return `${show(name)} is planned but not available in this version; available: ${available}`;
  const planned = TRAFFIC_PROVIDERS.filter((p) => !(AVAILABLE_TRAFFIC_PROVIDERS as readonly string[]).includes(p));
  return `${show(name)} is not a traffic provider; allowed: ${available}${planned.length ? ` (${planned.join(', ')} ${planned.length > 1 ? 'are' : 'is'} planned, not available in this version)` : ''}`;
}

export function isAvailableProvider(name: string): name is AvailableTrafficProviderName {
  return providerError(name) === undefined;
}

export interface ReleaseConfig {
  analysis: Analysis;
  progressDeadlineMs: number;
  skipAnalysis: boolean;
  provider: AvailableTrafficProviderName;
  /** The Service whose host the traffic provider routes; defaults to the Deployment's name. */
  service: string;
}

export interface ClusterDefaults {
  /** Analysis source (same shape as the annotation) used for fields the annotation leaves out. */
  analysis?: unknown;
  progressDeadlineMs?: number;
  provider?: AvailableTrafficProviderName;
}

export const DEFAULT_PROGRESS_DEADLINE_MS = 10 * 60_000;
/** How long a canary may take to become ready: from 1s to a day. */
export const PROGRESS_DEADLINE_BOUNDS = { ...INTERVAL_BOUNDS, example: '10m' } as const;

const MANAGED = new Set<string>(MANAGED_ANNOTATIONS);
const KNOWN = new Set<string>(USER_ANNOTATIONS);
const LABELS = new Set<string>([LABEL_ENABLED, LABEL_ROLE, LABEL_STABLE_NAME]);
/** A Service name: a DNS-1035 label (unlike most names, it must start with a letter). */
const SERVICE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function isReleaseRequest(v: string): v is ReleaseRequest {
  return (REQUESTS as readonly string[]).includes(v);
}

/**
 * Why a Deployment of this name cannot have a release, if it cannot: the canary is labelled with
 * the name (a label value has at most 63 characters), and the Service defaults to it. An empty
 * name (generateName: the apiserver names the object after admission) is checked on later updates.
 */
export function deploymentNameProblem(name: string, serviceAnnotation: string | undefined): NameProblem | undefined {
  if (name === '') return undefined;
  if (name.length > 63) {
    return { message: `the Deployment's name is ${name.length} characters long; kube-canary labels its canary with it (${LABEL_STABLE_NAME}), and a label value has at most 63 characters`, fix: 'rename' };
  }
  if (serviceAnnotation === undefined && !SERVICE_NAME.test(name)) {
    return { message: `the name ${show(name)} is not a Service name (a-z, 0-9 and '-', starting with a letter), so kube-canary cannot take the Service from it: set ${ANN_SERVICE} to the Service in front of this Deployment`, fix: 'service' };
  }
  return undefined;
}

/** `fix`: what ends it: a kube-canary.io/service annotation, or only a new object under another name. */
export interface NameProblem {
  message: string;
  fix: 'service' | 'rename';
}

/** At most this many problems are listed: a list of thousands of bad entries would make a denial (and its log line) of megabytes. */
const MAX_LISTED_ERRORS = 10;
function capped(errors: string[]): string[] {
  if (errors.length <= MAX_LISTED_ERRORS) return errors;
  const more = errors.length - MAX_LISTED_ERRORS;
  return [...errors.slice(0, MAX_LISTED_ERRORS), `and ${more} more problem${more === 1 ? '' : 's'} (fix these first)`];
}

export type ReleaseConfigResult = { ok: true; value: ReleaseConfig } | { ok: false; errors: string[] };

// Parsing is pure and the same annotations arrive on every admission of a Deployment, so results
// are memoised (bounded; oldest dropped first). Results are shared: callers must not mutate them.
// Only configurations of a real size are kept: an admission arrives before the apiserver checks
// annotation sizes, so anyone who may create a Deployment could otherwise fill the cache with
// megabyte-sized keys (2,048 x 16 KiB is the most it holds).
const CACHE_LIMIT = 2048;
const CACHE_KEY_LIMIT = 16 * 1024;
/** Longer kube-canary annotations are refused before any parsing (YAML of megabytes costs CPU on every admission). */
export const ANNOTATION_LIMIT = 64 * 1024;
const caches = new WeakMap<ClusterDefaults, Map<string, ReleaseConfigResult>>();
const NO_DEFAULTS: ClusterDefaults = {};

/** The annotations a user configures a release with: `kube-canary.io/*` except those kube-canary writes itself. */
export function configAnnotations(annotations: Record<string, string> | undefined): Array<[string, string]> {
  return Object.entries(annotations ?? {}).filter(([k]) => k.startsWith(PREFIX) && !MANAGED.has(k));
}

/** Whether two objects carry the same configuration annotations (in any order), a one-shot `kube-canary.io/request` aside. */
export function sameConfigAnnotations(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const x = configAnnotations(a).filter(([k]) => k !== ANN_REQUEST);
  const y = configAnnotations(b).filter(([k]) => k !== ANN_REQUEST);
  return x.length === y.length && x.every(([k, v]) => b![k] === v);
}

/** The whole configuration of a release of this Deployment: its annotations, and whether its name can have a release. */
export function parseReleaseConfig(deploymentName: string, annotations: Record<string, string> | undefined, defaults: ClusterDefaults = NO_DEFAULTS): ReleaseConfigResult {
  const result = parseConfigAnnotations(deploymentName, annotations, defaults);
  const nameProblem = deploymentNameProblem(deploymentName, annotations?.[ANN_SERVICE]);
  if (!nameProblem) return result;
  return { ok: false, errors: [nameProblem.message, ...(result.ok ? [] : result.errors)] };
}

/**
 * The `kube-canary.io/*` annotations alone (the Service defaults to `deploymentName`, whose own
 * problems deploymentNameProblem reports): the webhook judges the two apart, since a name is not
 * something a user can fix in an update.
 */
export function parseConfigAnnotations(deploymentName: string, annotations: Record<string, string> | undefined, defaults: ClusterDefaults = NO_DEFAULTS): ReleaseConfigResult {
  const ours = configAnnotations(annotations);
  const oversized = ours.filter(([, v]) => v.length > ANNOTATION_LIMIT);
  if (oversized.length > 0) {
    return { ok: false, errors: oversized.map(([k, v]) => `${k} is ${v.length} characters long; at most ${ANNOTATION_LIMIT} are read (a real configuration is a few hundred)`) };
  }
  const key = JSON.stringify([deploymentName, ours]);
  let cache = caches.get(defaults);
  if (!cache) caches.set(defaults, (cache = new Map()));
  const hit = cache.get(key);
  if (hit) return hit;
  const result = parse(deploymentName, Object.fromEntries(ours), defaults);
  if (key.length > CACHE_KEY_LIMIT) return result;
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  cache.set(key, result);
  return result;
}

function parse(deploymentName: string, ann: Record<string, string>, defaults: ClusterDefaults): ReleaseConfigResult {
  const errors: string[] = [];

  for (const key of Object.keys(ann)) {
    if (LABELS.has(key)) {
      errors.push(`${key} is a label, not an annotation; set it under metadata.labels`);
    } else if (key.startsWith(PREFIX) && !KNOWN.has(key)) {
      errors.push(`annotation ${key} is not a kube-canary annotation; known: ${USER_ANNOTATIONS.join(', ')}`);
    }
  }

  const analysis = parseAnalysis(ann[ANN_ANALYSIS], defaults.analysis);
  if (!analysis.ok) errors.push(...analysis.errors.map((e) => `${ANN_ANALYSIS}: ${e}`));

  let progressDeadlineMs = defaults.progressDeadlineMs ?? DEFAULT_PROGRESS_DEADLINE_MS;
  if (ann[ANN_PROGRESS_DEADLINE] !== undefined) {
    const d = checkDuration(ann[ANN_PROGRESS_DEADLINE], PROGRESS_DEADLINE_BOUNDS);
    if ('error' in d) errors.push(`${ANN_PROGRESS_DEADLINE}: ${d.error}`);
    else progressDeadlineMs = d.ms;
  }

  let skipAnalysis = false;
  const skip = ann[ANN_SKIP_ANALYSIS];
  if (skip !== undefined) {
    if (skip === 'true' || skip === 'false') skipAnalysis = skip === 'true';
    else errors.push(`${ANN_SKIP_ANALYSIS}: ${show(skip)} is not "true" or "false"`);
  }

  let provider: AvailableTrafficProviderName = defaults.provider ?? 'istio';
  const p = ann[ANN_PROVIDER];
  if (p !== undefined) {
    if (isAvailableProvider(p)) provider = p;
    else errors.push(`${ANN_PROVIDER}: ${providerError(p)}`);
  }

  // A one-shot request, not configuration: validated here so the webhook refuses a typo; the
  // progressor reads it separately (src/progressor/observe.ts) and removes it once acted on.
  const req = ann[ANN_REQUEST];
  if (req !== undefined && !isReleaseRequest(req)) errors.push(`${ANN_REQUEST}: ${show(req)} is not a request; allowed: ${REQUESTS.join(', ')}`);

  const service = ann[ANN_SERVICE] ?? deploymentName;
  if (ann[ANN_SERVICE] !== undefined && !SERVICE_NAME.test(service)) errors.push(`${ANN_SERVICE}: ${show(service)} is not a valid Service name (lower-case letters, digits and '-', starting with a letter, at most 63)`);

  if (errors.length > 0 || !analysis.ok) return { ok: false, errors: capped(errors) };
  return { ok: true, value: { analysis: analysis.value, progressDeadlineMs, skipAnalysis, provider, service } };
}
