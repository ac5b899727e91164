/**
 * The template variables of a custom metric's `query`: Flagger's `{{ namespace }}`,
 * `{{ target }}` and `{{ interval }}`, and kube-canary's `{{ canary }}` / `{{ stable }}`. One
 * module for both ends, so that the webhook refuses at admission exactly the queries the
 * progressor could not render (which would otherwise fail every check and roll the release back).
 */

import { cut } from './show.js';

/** Values for the variables; `target` is Flagger's name for the workload under analysis (the canary). */
export interface QueryVars {
  namespace: string;
  target: string;
  canary: string;
  stable: string;
  /** A PromQL duration, e.g. "30s", "1m". */
  interval: string;
}

const NAMES: ReadonlyArray<keyof QueryVars> = ['namespace', 'target', 'canary', 'stable', 'interval'];
const ALLOWED = NAMES.map((n) => `{{ ${n} }}`).join(', ');
const VARIABLE = /\{\{\s*([A-Za-z_][\w.]*)\s*\}\}/g;

const isName = (n: string): n is keyof QueryVars => (NAMES as readonly string[]).includes(n);

/** Why a query cannot be rendered ("uses unknown template variable {{ ns }}; allowed: ..."), or undefined. */
export function queryTemplateProblem(template: string): string | undefined {
  const unknown = new Set<string>();
  const rest = template.replace(VARIABLE, (_whole, name: string) => {
    if (!isName(name)) unknown.add(cut(name, 40));
    return '';
  });
  if (unknown.size > 0) {
    const names = [...unknown].map((n) => `{{ ${n} }}`).join(', ');
    // Flagger's MetricTemplate has `templateVariables`, used as {{ variables.name }}.
    const flagger = [...unknown].some((n) => n.startsWith('variables.')) ? ' (Flagger\'s templateVariables are not supported: write the value into the query)' : '';
    return `uses unknown template variable${unknown.size > 1 ? 's' : ''} ${names}; allowed: ${ALLOWED}${flagger}`;
  }
  // PromQL itself never has "{{": what is left is a variable written wrongly, e.g. "{{namespace}" or "{{ name-space }}".
  if (rest.includes('{{')) return `has a "{{" that is not a template variable; write one as {{ name }}, with name one of ${ALLOWED}`;
  return undefined;
}

/** The query with its variables substituted, or why that cannot be done (the query is then not sent). */
export function renderQuery(template: string, vars: QueryVars): { query: string } | { error: string } {
  const problem = queryTemplateProblem(template);
  if (problem) return { error: `query ${problem}` };
  return { query: template.replace(VARIABLE, (_whole, name: string) => vars[name as keyof QueryVars]) };
}
