/**
 * The members of a Deployment the decision reads or patches, checked for their JSON type. The
 * apiserver decodes and re-encodes every object before admission, so it never sends a wrong type;
 * a hand-made or corrupted request can, and must get a denial that names the member, not a
 * crash (a 500) or a patch the apiserver cannot apply.
 */

type Json = Record<string, unknown>;

const isMap = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/** Absent, or an object (anything else is named in the message). */
function objectProblem(v: unknown, path: string): string | undefined {
  return v === undefined || isMap(v) ? undefined : `${path} is ${kindOf(v)}; expected an object`;
}

/** Absent, or an object whose values are all strings (labels, annotations, matchLabels). */
function stringMapProblem(v: unknown, path: string): string | undefined {
  if (v === undefined) return undefined;
  if (!isMap(v)) return `${path} is ${kindOf(v)}; expected a map of strings`;
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') return `${path}[${JSON.stringify(k)}] is ${kindOf(x)}; label and annotation values are strings`;
  }
  return undefined;
}

/** The first member of `d` (an object already known to be one) with a type the decision cannot act on, named from `path`. */
export function deploymentShapeProblem(d: Json, path: string): string | undefined {
  const meta = d.metadata;
  const spec = d.spec;
  const template = isMap(spec) ? spec.template : undefined;
  const tmeta = isMap(template) ? template.metadata : undefined;
  const selector = isMap(spec) ? spec.selector : undefined;
  return (
    objectProblem(meta, `${path}.metadata`) ??
    (isMap(meta) ? (stringMapProblem(meta.labels, `${path}.metadata.labels`) ?? stringMapProblem(meta.annotations, `${path}.metadata.annotations`)) : undefined) ??
    objectProblem(spec, `${path}.spec`) ??
    objectProblem(template, `${path}.spec.template`) ??
    objectProblem(tmeta, `${path}.spec.template.metadata`) ??
    (isMap(tmeta) ? (stringMapProblem(tmeta.labels, `${path}.spec.template.metadata.labels`) ?? stringMapProblem(tmeta.annotations, `${path}.spec.template.metadata.annotations`)) : undefined) ??
    objectProblem(selector, `${path}.spec.selector`) ??
    (isMap(selector) ? stringMapProblem(selector.matchLabels, `${path}.spec.selector.matchLabels`) : undefined) ??
    (isMap(spec) && spec.paused !== undefined && typeof spec.paused !== 'boolean' ? `${path}.spec.paused is ${kindOf(spec.paused)}; expected true or false` : undefined)
  );
}
