/**
 * Runs the gate set step() asked for, through the metric provider and the webhook runner (the
 * metrics package owns Prometheus and HTTP). All checks of a set run in parallel; a set passes
 * only if every check in it passed. A check that throws is a failed check, never a pass.
 */
import type { Analysis, WebhookGate, WebhookType } from '../config/analysis.js';
import { canaryName } from '../config/contract.js';
import type { CheckResult, GateRunner, MetricProvider } from '../metrics/provider.js';
import type { GateKind, GateOutcome, NotifyType, PendingCheck } from './types.js';

export interface GateDeps {
  metrics: MetricProvider;
  webhooks: GateRunner;
}

export interface GateContext {
  namespace: string;
  name: string;
  revision: string;
  phase: string;
}

const hooks = (a: Analysis, type: WebhookType) => a.webhooks.filter((w) => w.type === type);

/** `pending`: the check is in it until it answers, so a set that runs long can say which of its checks it waits for. */
async function safe(name: string, f: () => Promise<CheckResult>, pending?: Set<PendingCheck>, check?: PendingCheck): Promise<CheckResult> {
  if (check) pending?.add(check);
  try {
    return await f();
  } catch (err) {
    return { name, passed: false, message: `${name}: ${(err as Error).message}` };
  } finally {
    if (check) pending?.delete(check);
  }
}

/** `extra`: metadata of the call itself, which wins over the hook's own keys of the same name (as in Flagger). */
function callHook(deps: GateDeps, gate: WebhookGate, c: GateContext, signal?: AbortSignal, extra?: Record<string, string>, pending?: Set<PendingCheck>): Promise<CheckResult> {
  const check: PendingCheck = { kind: 'webhook', name: gate.name, timeoutMs: gate.timeoutMs };
  return safe(gate.name, () => deps.webhooks.run(gate, { name: c.name, namespace: c.namespace, phase: c.phase, checksum: c.revision, metadata: extra ? { ...gate.metadata, ...extra } : gate.metadata }, signal), pending, check);
}

/** `pending` holds the checks that have not answered yet, while the set runs. */
export async function runGates(kind: GateKind, a: Analysis, c: GateContext, deps: GateDeps, signal?: AbortSignal, pending?: Set<PendingCheck>): Promise<GateOutcome> {
  if (kind !== 'analysis') {
    const results = await Promise.all(hooks(a, kind).map((g) => callHook(deps, g, c, signal, undefined, pending)));
    return { passed: results.every((r) => r.passed), rollbackRequested: false, results };
  }
  const target = { namespace: c.namespace, stable: c.name, canary: canaryName(c.name) };
  const [metrics, rollout, rollback] = await Promise.all([
    Promise.all(a.metrics.map((m) => safe(m.name, () => deps.metrics.check(m, { ...target, intervalMs: m.intervalMs }, signal), pending, { kind: 'metric', name: m.name }))),
    Promise.all(hooks(a, 'rollout').map((g) => callHook(deps, g, c, signal, undefined, pending))),
    Promise.all(hooks(a, 'rollback').map((g) => callHook(deps, g, c, signal, undefined, pending))),
  ]);
  const checks = [...metrics, ...rollout];
  // A rollback hook "passing" (2xx) is the request to roll back; its failures mean "carry on".
  const asked = rollback.filter((r) => r.passed);
  return { passed: checks.every((r) => r.passed), rollbackRequested: asked.length > 0, results: [...checks, ...asked] };
}

/**
 * Best-effort notification hooks (`event`, `post-rollout`): results are only logged. An `event`
 * hook gets Flagger's metadata for the Event it reports: eventMessage, eventType (Normal or
 * Warning) and timestamp (Unix milliseconds).
 */
export async function notify(hook: NotifyType, a: Analysis, c: GateContext, deps: GateDeps, event?: { message: string; warning: boolean; at: number }): Promise<CheckResult[]> {
  const extra = event ? { eventMessage: event.message, eventType: event.warning ? 'Warning' : 'Normal', timestamp: String(event.at) } : undefined;
  return Promise.all(hooks(a, hook).map((g) => callHook(deps, g, c, undefined, extra)));
}
