/**
 * `kube-canary.io/analysis`: YAML or JSON with Flagger's field names, so a Flagger user can paste
 * their `analysis` block. Every rejection names the field, the value and what is allowed.
 */
import { Lexer, parseDocument } from 'yaml';
import { z } from 'zod';
import { formatDuration, parseDuration } from './duration.js';
import { credentialsProblem } from '../metrics/http-client.js';
import { queryTemplateProblem } from './query-template.js';
import { kindOf, show } from './show.js';

export const BUILTIN_METRICS = ['request-success-rate', 'request-duration'] as const;
export type BuiltinMetric = (typeof BUILTIN_METRICS)[number];

export const WEBHOOK_TYPES = [
  'confirm-rollout',
  'pre-rollout',
  'rollout',
  'confirm-traffic-increase',
  'confirm-promotion',
  'post-rollout',
  'rollback',
  'event',
] as const;
export type WebhookType = (typeof WEBHOOK_TYPES)[number];

export interface MetricCheck {
  name: string;
  /** PromQL; absent for the built-in metrics, whose queries the metric provider owns. */
  query?: string;
  min?: number;
  max?: number;
  /** Range vector window for the built-in metrics, in ms. */
  intervalMs: number;
}

export interface WebhookGate {
  name: string;
  type: WebhookType;
  url: string;
  timeoutMs: number;
  metadata: Record<string, string>;
}

export interface Analysis {
  intervalMs: number;
  threshold: number;
  /** The canary weights to step through, ascending; the last one is the promotion point. */
  steps: number[];
  maxWeight: number;
  metrics: MetricCheck[];
  webhooks: WebhookGate[];
}

/**
 * Sanity bounds. Tests and the e2e suite scale intervals down to seconds (e.g. `interval: 2s`),
 * so 1s is the floor; anything beyond a day is a typo, not a canary.
 */
export const INTERVAL_BOUNDS = { minMs: 1000, maxMs: 24 * 3_600_000, example: '1m' } as const;
export const WEBHOOK_TIMEOUT_BOUNDS = { minMs: 1000, maxMs: 3_600_000, example: '30s' } as const;
/** Deepest nesting of lists and mappings accepted; an analysis needs 4 (webhooks[].metadata.key). */
export const MAX_DEPTH = 16;

/**
 * The built-in defaults, used for every field that neither the annotation nor the cluster default
 * (`--default-analysis`) sets. No stepWeight on purpose: without one the step is
 * min(10, maxWeight), so `maxWeight: 5` alone means one step of 5.
 */
export const DEFAULT_ANALYSIS_SOURCE = {
  interval: '1m',
  threshold: 5,
  maxWeight: 50,
  metrics: [
    { name: 'request-success-rate', thresholdRange: { min: 99 }, interval: '1m' },
    { name: 'request-duration', thresholdRange: { max: 500 }, interval: '1m' },
  ],
};
const BUILTIN_STEP = 10;

// Schemas are built once (building a zod schema costs far more than using it). Their messages
// leave out the field; `messages()` puts the issue's path in front ("analysis.metrics[0].name ...").
const notNumber = (input: unknown, hint: string) =>
  typeof input === 'number' ? `${show(input)} is not a finite number; ${hint}` : `${show(input)} is not a number; ${hint}`;

const weight = z
  .number({ error: (i) => notNumber(i.input, 'use a whole percentage from 1 to 100') })
  .int({ error: (i) => `${show(i.input)} is not a whole number; use a percentage from 1 to 100` })
  .min(1, { error: (i) => `${show(i.input)} is too small; use a percentage from 1 to 100` })
  .max(100, { error: (i) => `${show(i.input)} is too large; use a percentage from 1 to 100` });

const num = z.number({ error: (i) => notNumber(i.input, 'thresholds must be finite numbers, e.g. 99 or 500') });

const str = z.string({ error: (i) => (i.input === undefined ? 'is missing' : `${show(i.input)} is not a string`) }).min(1, { error: 'is empty' });

/** A duration from `minMs` to `maxMs`; the message names both bounds and an example. */
export function checkDuration(v: unknown, b: { minMs: number; maxMs: number; example: string }): { ms: number } | { error: string } {
  const range = `use a duration from ${formatDuration(b.minMs)} to ${formatDuration(b.maxMs)}, e.g. "${b.example}"`;
  if (typeof v === 'number') {
    // Suggest the number with a unit only where that would be accepted ("0s" would not).
    const fits = (unit: string) => Number.isFinite(v) && v > 0 && 'ms' in parseDuration(`${v}${unit}`) && within(parseDuration(`${v}${unit}`), b);
    const units = ['s', 'm'].filter(fits).map((u) => `"${v}${u}"`);
    return { error: `${show(v)} is a bare number; ${units.length ? `write a duration with a unit, such as ${units.join(' or ')}` : range}` };
  }
  const d = parseDuration(v);
  if ('error' in d) return d;
  if (d.ms < b.minMs) return { error: `${show(v)} is shorter than ${formatDuration(b.minMs)}; ${range}` };
  if (!(d.ms <= b.maxMs)) return { error: `${show(v)} is longer than ${formatDuration(b.maxMs)}; ${range}` };
  return d;
}

function within(d: { ms: number } | { error: string }, b: { minMs: number; maxMs: number }): boolean {
  return 'ms' in d && d.ms >= b.minMs && d.ms <= b.maxMs;
}

const duration = (b: { minMs: number; maxMs: number; example: string }) =>
  z.unknown().transform((v, ctx) => {
    const d = checkDuration(v, b);
    if ('error' in d) {
      ctx.addIssue({ code: 'custom', message: d.error });
      return z.NEVER;
    }
    return d.ms;
  });

/**
 * Fields of Flagger's Canary that people paste along with the rest; kube-canary does not have
 * them, and says what to do instead rather than just "unknown field".
 */
const FLAGGER_FIELDS: Record<string, string> = {
  iterations: 'A/B testing, not supported: kube-canary shifts traffic by weight (stepWeight or stepWeights, maxWeight)',
  match: 'A/B routing by header or cookie, not supported: kube-canary shifts traffic by weight',
  mirror: 'traffic mirroring, not supported',
  mirrorWeight: 'traffic mirroring, not supported',
  sessionAffinity: 'session affinity, not supported',
  sessionAffinityCookie: 'session affinity, not supported',
  alerts: 'alert providers, not supported: for notifications use a webhook of type event',
  canaryReadyThreshold: 'not supported: kube-canary waits until every canary replica is ready, bounded by the annotation kube-canary.io/progress-deadline',
  primaryReadyThreshold: 'not supported: kube-canary waits until every replica is ready, bounded by the annotation kube-canary.io/progress-deadline',
  stepWeightPromotion: 'not supported: kube-canary promotes by rolling the Deployment out to the new template',
  retries: 'not supported: a failed webhook call is a failed check and is called again at the next interval',
  skipAnalysis: 'here an annotation: kube-canary.io/skip-analysis: "true"',
  progressDeadlineSeconds: 'here an annotation: kube-canary.io/progress-deadline, e.g. "10m"',
  templateVariables: 'not supported: write the values into the query',
};
/** A wrapper pasted along with the block (the canary article's `canaryAnalysis:`). */
const WRAPPERS = new Set(['analysis', 'canaryAnalysis', 'spec']);
/** Unknown fields named in one message; the rest are counted (a pasted object may have thousands). */
const MAX_NAMED_FIELDS = 5;

function unknownFieldNote(key: string): string | undefined {
  if (Object.hasOwn(FLAGGER_FIELDS, key)) return `"${key}" is Flagger's: ${FLAGGER_FIELDS[key]}`;
  if (WRAPPERS.has(key)) return `paste only the fields under "${key}:" (interval, threshold, ...), not "${key}:" itself`;
  if (key.includes('//') || key.includes('/*')) return 'JSON has no comments; in YAML a comment starts with #';
  return undefined;
}

/** A mapping with exactly these fields; `refusedLater`: fields parsed only to be refused with their own message, so not listed as allowed. */
function strict<T extends z.ZodRawShape>(shape: T, refusedLater: string[] = []) {
  const allowed = Object.keys(shape)
    .filter((k) => !refusedLater.includes(k))
    .join(', ');
  const unknown = (keys: string[]) => {
    const named = keys.slice(0, MAX_NAMED_FIELDS).map(show).join(', ');
    const more = keys.length > MAX_NAMED_FIELDS ? ` and ${keys.length - MAX_NAMED_FIELDS} more` : '';
    const notes = [...new Set(keys.map(unknownFieldNote).filter((n) => n !== undefined))];
    return `has unknown field${keys.length > 1 ? 's' : ''} ${named}${more}; allowed: ${allowed}${notes.length ? ` (${notes.join('; ')})` : ''}`;
  };
  return z.strictObject(shape, {
    error: (i) => (i.code === 'unrecognized_keys' ? unknown(i.keys) : `must be a mapping (got ${show(i.input)}); allowed fields: ${allowed}`),
  });
}

const metricSchema = strict({
  name: str,
  query: z
    .string({ error: (i) => `${show(i.input)} is not a string` })
    .refine((q) => q.trim() !== '', { error: 'is empty; give a PromQL query, or leave query out for the built-in request-success-rate and request-duration', abort: true })
    .superRefine((q, ctx) => {
      const problem = queryTemplateProblem(q);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  thresholdRange: strict({ min: num.optional(), max: num.optional() }).optional(),
  threshold: num.optional(),
  interval: duration(INTERVAL_BOUNDS).optional(),
  templateRef: z.unknown().optional(),
}, ['templateRef']);

const webhookSchema = strict({
  name: str,
  type: z
    .string({ error: (x) => `${show(x.input)} is not a string` })
    .optional()
    .refine((t) => t === undefined || (WEBHOOK_TYPES as readonly string[]).includes(t), {
      error: (x) => `${show(x.input)} is not a webhook type; allowed: ${WEBHOOK_TYPES.join(', ')}`,
    }),
  url: str
    .refine(isHttpUrl, { error: (x) => `${show(withoutCredentials(String(x.input)))} is not an http(s) URL, e.g. http://loadtester.test/`, abort: true })
    // The progressor sends them as basic auth and could not decode them: every call would fail.
    .refine((u) => credentialsProblem(new URL(u)) === undefined, { error: (x) => `${show(withoutCredentials(String(x.input)))}: ${credentialsProblem(new URL(String(x.input)))}` }),
  timeout: duration(WEBHOOK_TIMEOUT_BOUNDS).optional(),
  metadata: z
    // Metadata may carry tokens for the webhook: its values are never quoted back.
    .record(z.string(), z.string({ error: (x) => `is ${kindOf(x.input, 'a mapping')}; metadata values must be strings (put quotes around it)` }), {
      error: (x) => `must be a mapping of strings, got ${kindOf(x.input, 'a mapping')}`,
    })
    .optional(),
  muteAlert: z.unknown().optional(),
});

const list = (example: string) => z.array(z.unknown(), { error: (i) => `${show(i.input)} must be a list${example}` });

const analysisSchema = strict({
  interval: duration(INTERVAL_BOUNDS).optional(),
  threshold: z
    .number({ error: (i) => notNumber(i.input, 'use a whole number of failed checks, at least 1') })
    .max(Number.MAX_SAFE_INTEGER, { error: (i) => `${show(i.input)} is too large; use a whole number of failed checks, at least 1`, abort: true })
    .int({ error: (i) => `${show(i.input)} is not a whole number of failed checks` })
    .min(1, { error: (i) => `${show(i.input)} is too small; at least 1 failed check must trigger the rollback` })
    .optional(),
  maxWeight: weight.optional(),
  stepWeight: weight.optional(),
  stepWeights: list(' of percentages, e.g. [5, 10, 25, 50]').optional(),
  metrics: list('').optional(),
  webhooks: list('').optional(),
});

/** Guards against alias bombs in a user-written annotation (the yaml library counts the values aliases expand to). */
const MAX_ALIAS_COUNT = 50;

export type ParseResult<T> = { ok: true; value: T } | { ok: false; errors: string[] };

/**
 * Most entries (keys, list items, flow separators) an analysis may have. The yaml library's cost
 * grows with the number of nodes, faster than linearly for the keys of one mapping (~0.4 s for a
 * 64 KB mapping of 9,000 keys, on every admission that carries it); counting first bounds it.
 * An analysis with eight custom queries and a webhook has about 60; a k6 script in a webhook's
 * metadata is one entry however long.
 */
export const MAX_ENTRIES = 1000;

/** An upper bound of the entries, in one cheap pass: every `:` `,` `[` `{` and line break, in strings and block scalars too. */
function separators(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 58 /* : */ || c === 44 /* , */ || c === 91 /* [ */ || c === 123 /* { */ || c === 10 /* \n */) n++;
  }
  return n;
}

/** The structure tokens of a YAML or JSON text: `:` `-` `?` `,` `[` `{` (a scalar, of any length, is one token). */
function entries(text: string): number {
  let n = 0;
  for (const token of new Lexer().lex(text)) if (token.length === 1 && ':-?,[{'.includes(token)) n++;
  return n;
}

/**
 * Reads analysis text (YAML or JSON) into a plain value, without validating it. Errors carry the
 * line and column, and the key for a duplicate one; nesting deeper than MAX_DEPTH is refused.
 */
export function readAnalysisText(text: string): ParseResult<unknown> {
  const bad = (why: string): ParseResult<unknown> => ({ ok: false, errors: [`analysis is not valid YAML or JSON: ${why}`] });
  const tooDeep: ParseResult<unknown> = {
    ok: false,
    errors: [`analysis is nested too deep: more than ${MAX_DEPTH} levels of lists or mappings, or an alias that contains itself (an analysis needs at most 4: webhooks[].metadata.key)`],
  };
  // The exact count (the lexer, linear, tells a block scalar or a quoted string from structure) only when the bound is passed.
  if (separators(text) > MAX_ENTRIES) {
    const count = entries(text);
    if (count > MAX_ENTRIES) return { ok: false, errors: [`analysis is too large to read: ${count} entries (keys, list items, flow separators), at most ${MAX_ENTRIES}; a real analysis has well under a hundred`] };
  }
  const at = (pos: [number, number] | undefined, why: string) => {
    if (!pos) return why;
    const before = text.slice(0, pos[0]);
    return `line ${before.split('\n').length}, column ${pos[0] - before.lastIndexOf('\n')}: ${why}`;
  };
  let raw: unknown;
  try {
    // logLevel 'error': a YAML warning is refused below, not printed to stderr by the library. Merge keys (<<: *defaults) as YAML 1.1 has them.
    const doc = parseDocument(text, { prettyErrors: false, merge: true, logLevel: 'error' });
    const problem = doc.errors[0] ?? doc.warnings[0];
    if (problem) {
      if (problem.code === 'MULTIPLE_DOCS') return bad('it holds more than one YAML document ("---" or "..." on a line of its own); keep one');
      if (problem.code === 'DUPLICATE_KEY') {
        const key = /^\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^']|'')*)'|([^:#\n]*?))\s*:/.exec(text.slice(problem.pos[0]));
        const name = key ? (key[1] ?? key[2] ?? key[3]) : undefined;
        return bad(at(problem.pos, name !== undefined ? `key ${show(name)} appears twice; a key may appear only once` : 'a key appears twice; a key may appear only once'));
      }
      if (problem.code === 'TAG_RESOLVE_FAILED') return bad(at(problem.pos, `${problem.message.split('\n')[0]!.replace(/^Unresolved tag/, 'unknown tag')}; an analysis uses no YAML tags, remove it`));
      if (/call stack/i.test(problem.message)) return tooDeep;
      return bad(at(problem.pos, problem.message.split('\n')[0]!));
    }
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    const err = e as Error;
    if (e instanceof RangeError || /call stack/i.test(err.message)) return tooDeep;
    if (/excessive alias count/i.test(err.message)) {
      return bad(`its aliases (*name) expand to too many values: at most ${MAX_ALIAS_COUNT} in all, a guard against alias bombs; write the repeated values out instead`);
    }
    return bad(err.message.split('\n')[0]!);
  }
  if (depthExceeds(raw, MAX_DEPTH)) return tooDeep;
  return { ok: true, value: raw ?? {} };
}

/** True when `v` nests lists/mappings more than `limit` levels deep (iterative: no recursion). */
function depthExceeds(v: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[v, 0]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    if (d >= limit) return true;
    for (const c of Array.isArray(x) ? x : Object.values(x)) stack.push([c, d + 1]);
  }
  return false;
}

/**
 * Parses the annotation text (YAML or JSON). `undefined` text means no annotation.
 * `clusterDefault` is the cluster default source (`--default-analysis`, same shape).
 *
 * Each field comes from the first of annotation, cluster default, built-in default that sets it
 * (metrics and webhooks as whole lists). The steps are one plan, see resolveSteps().
 */
export function parseAnalysis(text: string | undefined, clusterDefault?: unknown): ParseResult<Analysis> {
  const layers: Layer[] = [];
  const errors: string[] = [];
  if (text !== undefined) {
    const raw = readAnalysisText(text);
    if (!raw.ok) return raw;
    const top = readLayer(raw.value, ANNOTATION);
    if (!top.ok) errors.push(...top.errors);
    else layers.push(top.value);
  }
  if (clusterDefault !== undefined) {
    const c = clusterLayer(clusterDefault);
    if (!c.ok) errors.push(...(text === undefined ? c.errors : c.errors.map((e) => `the cluster default (--default-analysis) is invalid: ${e}`)));
    else layers.push(c.value);
  }
  layers.push(BUILTIN);
  if (errors.length > 0) return { ok: false, errors };

  const first = <K extends keyof Fields>(k: K): NonNullable<Fields[K]> => layers.find((l) => l.f[k] !== undefined)!.f[k]!;
  const steps = resolveSteps(layers, errors);
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    value: {
      intervalMs: first('interval'),
      threshold: first('threshold'),
      steps,
      maxWeight: steps[steps.length - 1]!,
      metrics: first('metrics'),
      webhooks: layers.find((l) => l.f.webhooks !== undefined)?.f.webhooks ?? [],
    },
  };
}

/** What one source (annotation, cluster default, built-in) sets, each field checked on its own. */
interface Fields {
  interval?: number;
  threshold?: number;
  maxWeight?: number;
  stepWeight?: number;
  stepWeights?: number[];
  metrics?: MetricCheck[];
  webhooks?: WebhookGate[];
}
interface Layer {
  f: Fields;
  /** For messages citing a value this source supplied: "the built-in default". */
  cite: string;
  /** For a maxWeight taken from the last of its stepWeights. */
  citeLastStep: string;
  /** Where the user sets a field to override it: "the annotation". */
  setIn: string;
}
type Who = Omit<Layer, 'f'>;
const ANNOTATION: Who = { cite: 'the annotation', citeLastStep: "the last of the annotation's stepWeights", setIn: 'the annotation' };
const CLUSTER: Who = {
  cite: 'the cluster default (--default-analysis)',
  citeLastStep: "the last of the cluster default's stepWeights (--default-analysis)",
  setIn: '--default-analysis',
};

const clusterLayers = new WeakMap<object, ParseResult<Layer>>();
function clusterLayer(source: unknown): ParseResult<Layer> {
  if (source === null || typeof source !== 'object') return readLayer(source, CLUSTER);
  let l = clusterLayers.get(source);
  if (!l) clusterLayers.set(source, (l = readLayer(source, CLUSTER)));
  return l;
}

const BUILTIN: Layer = (() => {
  const l = readLayer(DEFAULT_ANALYSIS_SOURCE, { cite: 'the built-in default', citeLastStep: 'the built-in default', setIn: 'the built-in defaults' });
  if (!l.ok) throw new Error(`built-in analysis defaults are invalid: ${l.errors.join('; ')}`);
  return l.value;
})();

function readLayer(raw: unknown, who: Who): ParseResult<Layer> {
  const top = analysisSchema.safeParse(raw);
  if (!top.success) return { ok: false, errors: messages(top.error, 'analysis') };
  const a = top.data;
  const errors: string[] = [];
  const f: Fields = {};
  if (a.interval !== undefined) f.interval = a.interval;
  if (a.threshold !== undefined) f.threshold = a.threshold;
  if (a.maxWeight !== undefined) f.maxWeight = a.maxWeight;
  if (a.stepWeight !== undefined) f.stepWeight = a.stepWeight;
  if (a.metrics !== undefined) f.metrics = readMetrics(a.metrics, errors);
  if (a.webhooks !== undefined) f.webhooks = readWebhooks(a.webhooks, errors);

  if (a.stepWeights !== undefined) {
    if (a.stepWeight !== undefined) {
      errors.push(`analysis sets both stepWeight ${a.stepWeight} and stepWeights; keep one: stepWeight for equal steps, stepWeights for a list`);
    } else if (a.stepWeights.length === 0) {
      errors.push('analysis.stepWeights is empty; list at least one percentage, e.g. [10, 25, 50]');
    } else {
      const steps: number[] = [];
      a.stepWeights.forEach((w, i) => {
        const r = weight.safeParse(w);
        if (!r.success) return void errors.push(...messages(r.error, `analysis.stepWeights[${i}]`));
        if (steps.length > 0 && r.data <= steps[steps.length - 1]!) {
          errors.push(`analysis.stepWeights[${i}] ${r.data} is not larger than the step before it (${steps[steps.length - 1]}); weights must increase`);
        }
        steps.push(r.data);
      });
      const last = steps[steps.length - 1];
      if (a.maxWeight !== undefined && last !== undefined && last > a.maxWeight) {
        errors.push(`analysis.stepWeights ends at ${last}, above analysis.maxWeight ${a.maxWeight}; lower the last step or raise maxWeight`);
      }
      f.stepWeights = steps;
    }
  }
  if (a.stepWeight !== undefined && a.maxWeight !== undefined && a.stepWeight > a.maxWeight) {
    errors.push(
      `analysis.stepWeight ${a.stepWeight} is larger than analysis.maxWeight ${a.maxWeight}: the first step would already send more than the maximum canary weight. Set stepWeight to at most ${a.maxWeight}, or raise maxWeight`,
    );
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value: { f, ...who } };
}

/**
 * The step plan (stepWeights, or stepWeight up to maxWeight) is decided by the first source that
 * sets any of stepWeight, stepWeights, maxWeight ("the plan's source"); what it leaves out comes
 * from the sources below it:
 * - stepWeights: taken as written (a lower source's maxWeight does not apply).
 * - stepWeight: equal steps up to its own maxWeight, else the lower sources' maxWeight or the
 *   last of their stepWeights (a cluster default `stepWeights: [5, 10, 20]` and an annotation
 *   `stepWeight: 5` give 5, 10, 15, 20), else 50. A stepWeight above a maxWeight it did not set
 *   is refused, naming where that maxWeight comes from.
 * - maxWeight alone: a lower source's stepWeights cut at maxWeight and ending on it ([5, 10, 20]
 *   with maxWeight 15: 5, 10, 15; with 50: 5, 10, 20, 50); else equal steps of a lower source's
 *   stepWeight, or of 10, capped at maxWeight (`maxWeight: 5` alone: one step of 5).
 */
function resolveSteps(layers: Layer[], errors: string[]): number[] {
  const hasPlan = (l: Layer) => l.f.stepWeight !== undefined || l.f.stepWeights !== undefined || l.f.maxWeight !== undefined;
  const at = layers.findIndex(hasPlan); // the built-in layer sets maxWeight, so always found
  const plan = layers[at]!;
  const below = layers.slice(at + 1);
  if (plan.f.stepWeights) return plan.f.stepWeights.slice();

  if (plan.f.stepWeight !== undefined) {
    const step = plan.f.stepWeight;
    if (plan.f.maxWeight !== undefined) return equalSteps(step, plan.f.maxWeight);
    const src = below.find((l) => l.f.maxWeight !== undefined || l.f.stepWeights !== undefined)!;
    const max = src.f.maxWeight ?? src.f.stepWeights![src.f.stepWeights!.length - 1]!;
    if (step > max) {
      const whose = src.f.maxWeight !== undefined ? src.cite : src.citeLastStep;
      errors.push(
        `analysis.stepWeight ${step} is larger than maxWeight ${max}, ${whose}, as ${plan.setIn} sets no maxWeight: the first step would already send more than the maximum canary weight. Set stepWeight to at most ${max}, or set maxWeight (up to 100) in ${plan.setIn}`,
      );
      return [];
    }
    return equalSteps(step, max);
  }

  const max = plan.f.maxWeight!;
  const src = below.find((l) => l.f.stepWeight !== undefined || l.f.stepWeights !== undefined);
  if (src?.f.stepWeights) {
    const steps = src.f.stepWeights.filter((w) => w < max);
    steps.push(max);
    return steps;
  }
  return equalSteps(Math.min(src?.f.stepWeight ?? BUILTIN_STEP, max), max);
}

function equalSteps(step: number, max: number): number[] {
  const steps: number[] = [];
  for (let w = step; w < max; w += step) steps.push(w);
  steps.push(max);
  return steps;
}

function readMetrics(list: unknown[], errors: string[]): MetricCheck[] {
  const metrics: MetricCheck[] = [];
  list.forEach((m, i) => {
    const at = `analysis.metrics[${i}]`;
    const r = metricSchema.safeParse(m);
    if (!r.success) return void errors.push(...messages(r.error, at));
    const builtin = (BUILTIN_METRICS as readonly string[]).includes(r.data.name);
    const name = show(r.data.name);
    if (r.data.templateRef !== undefined) {
      errors.push(`${at}.templateRef is Flagger's MetricTemplate reference, which kube-canary does not use; put the template's PromQL in ${at}.query instead`);
      return;
    }
    if (!builtin && !r.data.query) {
      errors.push(`${at} ${name} is not a built-in metric (${BUILTIN_METRICS.join(', ')}) and has no query; add a PromQL query or use a built-in name`);
      return;
    }
    let { min, max } = r.data.thresholdRange ?? {};
    let minField = `${at}.thresholdRange.min`;
    let maxField = `${at}.thresholdRange.max`;
    if (r.data.threshold !== undefined) {
      if (r.data.thresholdRange) {
        errors.push(`${at} sets both threshold and thresholdRange; keep only thresholdRange {min, max}`);
        return;
      }
      // Flagger's legacy `threshold`: a floor for success rate, a ceiling for everything else.
      if (r.data.name === 'request-success-rate') [min, minField] = [r.data.threshold, `${at}.threshold`];
      else [max, maxField] = [r.data.threshold, `${at}.threshold`];
    }
    if (min === undefined && max === undefined) {
      errors.push(`${at} ${name} has no threshold; set thresholdRange.min and/or thresholdRange.max`);
      return;
    }
    if (min !== undefined && max !== undefined && min > max) {
      errors.push(`${at}.thresholdRange min ${min} is larger than max ${max}; no value could pass`);
      return;
    }
    // A built-in metric's range is known: a threshold outside it can never pass.
    if (!r.data.query && r.data.name === 'request-success-rate') {
      const what = 'request-success-rate is a percentage from 0 to 100';
      if (min !== undefined && min > 100) return void errors.push(`${minField} ${min} can never pass: ${what}; use a min of at most 100, e.g. 99`);
      if (max !== undefined && max < 0) return void errors.push(`${maxField} ${max} can never pass: ${what}; use a max of at least 0`);
    }
    // histogram_quantile interpolates inside Istio's first bucket (0 to 0.5 ms), so a p99 is never 0.
    if (!r.data.query && r.data.name === 'request-duration' && max !== undefined && max <= 0) {
      return void errors.push(`${maxField} ${max} can never pass: request-duration is a p99 latency in milliseconds, always above 0; use a max above 0, e.g. 500`);
    }
    metrics.push({ name: r.data.name, ...(r.data.query ? { query: r.data.query } : {}), ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}), intervalMs: r.data.interval ?? 60_000 });
  });
  const names = metrics.map((m) => m.name);
  const dupMetric = names.find((n, i) => names.indexOf(n) !== i);
  if (dupMetric) errors.push(`analysis.metrics has ${show(dupMetric)} twice; metric names must be unique`);
  return metrics;
}

function readWebhooks(list: unknown[], errors: string[]): WebhookGate[] {
  const webhooks: WebhookGate[] = [];
  list.forEach((w, i) => {
    const r = webhookSchema.safeParse(w);
    if (!r.success) return void errors.push(...messages(r.error, `analysis.webhooks[${i}]`));
    webhooks.push({
      name: r.data.name,
      type: (r.data.type ?? 'rollout') as WebhookType,
      url: r.data.url,
      timeoutMs: r.data.timeout ?? 60_000,
      metadata: r.data.metadata ?? {},
    });
  });
  // Results, metrics and events name a webhook by its type and name: two of both could not be told apart.
  const keys = webhooks.map((w) => `${w.type} webhook ${show(w.name)}`);
  const dup = keys.find((k, i) => keys.indexOf(k) !== i);
  if (dup) errors.push(`analysis.webhooks has the ${dup} twice; give each webhook of a type its own name`);
  return webhooks;
}

/** "analysis.metrics[0].thresholdRange.min 5 is ..." from the issue's path under `at`. */
function messages(err: z.ZodError, at: string): string[] {
  return err.issues.map((i) => {
    const field = i.path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : `${acc}.${String(p)}`), at);
    return `${field} ${i.message}`;
  });
}

/** A URL for a message: user and password (basic auth for the webhook) replaced by "***". */
export function withoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)?[^/?#]*@/i, (_m, scheme: string | undefined) => `${scheme ?? ''}***@`);
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** One line a person can read: "steps 25%, 50% every 1m; roll back after 5 failed checks". */
export function describeAnalysis(a: Analysis): string {
  // A long plan is shortened: the line is an admission warning, which the apiserver cuts at 256 characters.
  const list = a.steps.length <= 8 ? a.steps.map((s) => `${s}%`).join(', ') : `${a.steps[0]}%, ${a.steps[1]}%, ..., ${a.steps.at(-1)}% (${a.steps.length} steps)`;
  const steps = `steps ${list} every ${formatDuration(a.intervalMs)}`;
  // Only notification webhooks (event, post-rollout) and no metrics: nothing can hold or fail a step.
  if (a.metrics.length === 0 && a.webhooks.every((w) => w.type === 'event' || w.type === 'post-rollout')) {
    return `${steps}; no metrics or gating webhooks check them, so every step passes`;
  }
  return `${steps}; roll back after ${a.threshold} failed check${a.threshold === 1 ? '' : 's'}`;
}
