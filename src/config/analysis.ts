/**
 * `kube-canary.io/analysis`: YAML or JSON with Flagger's field names, so a Flagger user can paste
 * their `analysis` block. Every rejection names the field, the value and what is allowed.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { formatDuration, parseDuration } from './duration.js';

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

/** Used when the annotation is absent; cluster defaults (chart values) override these via flags. */
export const DEFAULT_ANALYSIS_SOURCE = {
  interval: '1m',
  threshold: 5,
  maxWeight: 50,
  stepWeight: 10,
  metrics: [
    { name: 'request-success-rate', thresholdRange: { min: 99 }, interval: '1m' },
    { name: 'request-duration', thresholdRange: { max: 500 }, interval: '1m' },
  ],
};

// Schemas are built once (building a zod schema costs far more than using it). Their messages
// leave out the field; `messages()` puts the issue's path in front ("analysis.metrics[0].name ...").
const weight = z
  .number({ error: (i) => `${show(i.input)} is not a number; use a whole percentage from 1 to 100` })
  .int({ error: (i) => `${show(i.input)} is not a whole number; use a percentage from 1 to 100` })
  .min(1, { error: (i) => `${show(i.input)} is too small; use a percentage from 1 to 100` })
  .max(100, { error: (i) => `${show(i.input)} is too large; use a percentage from 1 to 100` });

const num = z.number({ error: (i) => `${show(i.input)} is not a number` }).refine(Number.isFinite, { error: 'must be a finite number' });

const str = z.string({ error: (i) => `${show(i.input)} is not a string` }).min(1, { error: 'is empty' });

const duration = z.unknown().transform((v, ctx) => {
  const d = parseDuration(v);
  if ('error' in d) {
    ctx.addIssue({ code: 'custom', message: d.error });
    return z.NEVER;
  }
  if (d.ms <= 0) {
    ctx.addIssue({ code: 'custom', message: `${show(v)} must be longer than zero` });
    return z.NEVER;
  }
  return d.ms;
});

function strict<T extends z.ZodRawShape>(shape: T) {
  const allowed = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (i) =>
      i.code === 'unrecognized_keys'
        ? `has unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}; allowed: ${allowed}`
        : `must be a mapping (got ${show(i.input)}); allowed fields: ${allowed}`,
  });
}

const metricSchema = strict({
  name: str,
  query: str.optional(),
  thresholdRange: strict({ min: num.optional(), max: num.optional() }).optional(),
  threshold: num.optional(),
  interval: duration.optional(),
  templateRef: z.unknown().optional(),
});

const webhookSchema = strict({
  name: str,
  type: z
    .string({ error: (x) => `${show(x.input)} is not a string` })
    .optional()
    .refine((t) => t === undefined || (WEBHOOK_TYPES as readonly string[]).includes(t), {
      error: (x) => `${show(x.input)} is not a webhook type; allowed: ${WEBHOOK_TYPES.join(', ')}`,
    }),
  url: str.refine(isHttpUrl, { error: (x) => `${show(x.input)} is not an http(s) URL, e.g. http://loadtester.test/` }),
  timeout: duration.optional(),
  metadata: z
    .record(z.string(), z.string({ error: (x) => `${show(x.input)} is not a string; metadata values must be strings (quote numbers)` }), {
      error: (x) => `must be a mapping of strings, got ${show(x.input)}`,
    })
    .optional(),
  muteAlert: z.unknown().optional(),
});

const list = (example: string) => z.array(z.unknown(), { error: (i) => `${show(i.input)} must be a list${example}` });

const analysisSchema = strict({
  interval: duration.optional(),
  threshold: z
    .number({ error: (i) => `${show(i.input)} is not a number; use a whole number of failed checks, at least 1` })
    .int({ error: (i) => `${show(i.input)} is not a whole number of failed checks` })
    .min(1, { error: (i) => `${show(i.input)} is too small; at least 1 failed check must trigger the rollback` })
    .optional(),
  maxWeight: weight.optional(),
  stepWeight: weight.optional(),
  stepWeights: list(' of percentages, e.g. [5, 10, 25, 50]').optional(),
  metrics: list('').optional(),
  webhooks: list('').optional(),
});

export type ParseResult<T> = { ok: true; value: T } | { ok: false; errors: string[] };

/** Parses the annotation text (YAML or JSON). `undefined` text yields the defaults. */
export function parseAnalysis(text: string | undefined, defaults: unknown = DEFAULT_ANALYSIS_SOURCE): ParseResult<Analysis> {
  let raw: unknown = defaults;
  if (text !== undefined) {
    try {
      // maxAliasCount guards against alias bombs in a user-written annotation.
      raw = parseYaml(text, { maxAliasCount: 50, prettyErrors: false });
    } catch (e) {
      return { ok: false, errors: [`analysis is not valid YAML or JSON: ${(e as Error).message.split('\n')[0]}`] };
    }
    if (raw === null || raw === undefined) raw = {};
  }
  return validateAnalysis(raw, defaults);
}

function validateAnalysis(raw: unknown, defaults: unknown): ParseResult<Analysis> {
  const top = analysisSchema.safeParse(raw);
  if (!top.success) return { ok: false, errors: messages(top.error, 'analysis') };
  const a = top.data;
  const errors: string[] = [];

  const metrics: MetricCheck[] = [];
  const metricList = a.metrics ?? (raw === defaults ? [] : defaultMetrics(defaults));
  metricList.forEach((m, i) => {
    const at = `analysis.metrics[${i}]`;
    const r = metricSchema.safeParse(m);
    if (!r.success) return void errors.push(...messages(r.error, at));
    const builtin = (BUILTIN_METRICS as readonly string[]).includes(r.data.name);
    if (!builtin && !r.data.query) {
      errors.push(`${at} "${r.data.name}" is not a built-in metric (${BUILTIN_METRICS.join(', ')}) and has no query; add a PromQL query or use a built-in name`);
      return;
    }
    if (r.data.templateRef !== undefined) {
      errors.push(`${at}.templateRef is Flagger's MetricTemplate reference, which kube-canary does not use; put the PromQL in ${at}.query instead`);
      return;
    }
    let { min, max } = r.data.thresholdRange ?? {};
    if (r.data.threshold !== undefined) {
      if (r.data.thresholdRange) {
        errors.push(`${at} sets both threshold and thresholdRange; keep only thresholdRange {min, max}`);
        return;
      }
      // Flagger's legacy `threshold`: a floor for success rate, a ceiling for everything else.
      if (r.data.name === 'request-success-rate') min = r.data.threshold;
      else max = r.data.threshold;
    }
    if (min === undefined && max === undefined) {
      errors.push(`${at} "${r.data.name}" has no threshold; set thresholdRange.min and/or thresholdRange.max`);
      return;
    }
    if (min !== undefined && max !== undefined && min > max) {
      errors.push(`${at}.thresholdRange min ${min} is larger than max ${max}; no value could pass`);
      return;
    }
    metrics.push({ name: r.data.name, ...(r.data.query ? { query: r.data.query } : {}), ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}), intervalMs: r.data.interval ?? 60_000 });
  });
  const names = metrics.map((m) => m.name);
  const dupMetric = names.find((n, i) => names.indexOf(n) !== i);
  if (dupMetric) errors.push(`analysis.metrics has "${dupMetric}" twice; metric names must be unique`);

  const webhooks: WebhookGate[] = [];
  (a.webhooks ?? []).forEach((w, i) => {
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

  const steps = resolveSteps(a.maxWeight, a.stepWeight, a.stepWeights, raw === defaults ? undefined : defaults, errors);
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    value: {
      intervalMs: a.interval ?? fromDefaults(defaults, 'interval', 60_000),
      threshold: a.threshold ?? (get(defaults, 'threshold') as number | undefined) ?? 5,
      steps,
      maxWeight: steps[steps.length - 1]!,
      metrics,
      webhooks,
    },
  };
}

function resolveSteps(
  maxWeight: number | undefined,
  stepWeight: number | undefined,
  stepWeights: unknown[] | undefined,
  defaults: unknown,
  errors: string[],
): number[] {
  if (stepWeights !== undefined) {
    if (stepWeight !== undefined) {
      errors.push(`analysis sets both stepWeight ${stepWeight} and stepWeights; keep one: stepWeight for equal steps, stepWeights for a list`);
      return [];
    }
    if (stepWeights.length === 0) {
      errors.push('analysis.stepWeights is empty; list at least one percentage, e.g. [10, 25, 50]');
      return [];
    }
    const steps: number[] = [];
    stepWeights.forEach((w, i) => {
      const r = weight.safeParse(w);
      if (!r.success) return void errors.push(...messages(r.error, `analysis.stepWeights[${i}]`));
      if (steps.length > 0 && r.data <= steps[steps.length - 1]!) {
        errors.push(`analysis.stepWeights[${i}] ${r.data} is not larger than the step before it (${steps[steps.length - 1]}); weights must increase`);
      }
      steps.push(r.data);
    });
    const last = steps[steps.length - 1];
    if (maxWeight !== undefined && last !== undefined && last > maxWeight) {
      errors.push(`analysis.stepWeights ends at ${last}, above analysis.maxWeight ${maxWeight}; lower the last step or raise maxWeight`);
    }
    return steps;
  }
  const max = maxWeight ?? (get(defaults, 'maxWeight') as number | undefined) ?? 50;
  const step = stepWeight ?? (get(defaults, 'stepWeight') as number | undefined) ?? Math.min(10, max);
  if (step > max) {
    errors.push(
      `analysis.stepWeight ${step} is larger than analysis.maxWeight ${max}: the first step would already send more than the maximum canary weight. Set stepWeight to at most ${max}, or raise maxWeight`,
    );
    return [];
  }
  const steps: number[] = [];
  for (let w = step; w < max; w += step) steps.push(w);
  steps.push(max);
  return steps;
}

function defaultMetrics(defaults: unknown): unknown[] {
  const m = get(defaults, 'metrics');
  return Array.isArray(m) ? m : [];
}

function fromDefaults(defaults: unknown, key: string, fallback: number): number {
  const d = parseDuration(get(defaults, key));
  return 'ms' in d ? d.ms : fallback;
}

function get(o: unknown, key: string): unknown {
  return o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[key] : undefined;
}

/** "analysis.metrics[0].thresholdRange.min 5 is ..." from the issue's path under `at`. */
function messages(err: z.ZodError, at: string): string[] {
  return err.issues.map((i) => {
    const field = i.path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : `${acc}.${String(p)}`), at);
    return `${field} ${i.message}`;
  });
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** Short, bounded rendering of a user value for error messages. */
export function show(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'undefined' : JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** One line a person can read: "steps 25%, 50% every 1m; roll back after 5 failed checks". */
export function describeAnalysis(a: Analysis): string {
  return `steps ${a.steps.map((s) => `${s}%`).join(', ')} every ${formatDuration(a.intervalMs)}; roll back after ${a.threshold} failed check${a.threshold === 1 ? '' : 's'}`;
}
