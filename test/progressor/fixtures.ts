/** Builders for step() inputs: a stable view, a canary view, gate outcomes (test doubles, no I/O). */
import { parseReleaseConfig } from '../../src/config/release-config.js';
import type { ReleaseStatus } from '../../src/config/status.js';
import type { CanaryView, GateOutcome, Observation, StableView } from '../../src/progressor/types.js';

export const T0 = Date.parse('2026-01-01T00:00:00.000Z');
export const iso = (ms: number) => new Date(ms).toISOString();
export const SEC = 1000;

export function config(analysis: object | string = { interval: '10s', threshold: 2, maxWeight: 50, stepWeight: 25, metrics: [] }, extra: Record<string, string> = {}) {
  const ann: Record<string, string> = { 'kube-canary.io/analysis': typeof analysis === 'string' ? analysis : JSON.stringify(analysis), 'kube-canary.io/progress-deadline': '60s', ...extra };
  const r = parseReleaseConfig('review', ann);
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r;
}

export function stable(over: Partial<StableView> = {}): StableView {
  return {
    namespace: 'test',
    name: 'review',
    generation: 2,
    observedGeneration: 2,
    paused: true,
    replicas: 2,
    statusReplicas: 2,
    updatedReplicas: 0,
    availableReplicas: 2,
    templateHash: 'new1',
    revision: 'new1',
    stableRevision: 'old0',
    config: config(),
    ...over,
  };
}

export function status(over: Partial<ReleaseStatus> = {}): ReleaseStatus {
  return {
    phase: 'Initializing',
    revision: 'new1',
    stableRevision: 'old0',
    weight: 0,
    stepIndex: -1,
    failedChecks: 0,
    startedAt: iso(T0),
    lastTransitionAt: iso(T0),
    message: 'New revision new1 detected',
    // It routes its Service (shared-service.ts): the steady state of a release under way.
    routing: { service: 'review', since: iso(T0) },
    ...over,
  };
}

export function readyCanary(over: Partial<CanaryView> = {}): CanaryView {
  return { templateHash: 'new1', replicas: 1, generation: 1, observedGeneration: 1, statusReplicas: 1, updatedReplicas: 1, availableReplicas: 1, ...over };
}

export const pass: GateOutcome = { passed: true, rollbackRequested: false, results: [{ name: 'request-success-rate', passed: true, value: 100, min: 99, message: 'request-success-rate 100 >= 99' }] };
export const failing = (msg = 'request-success-rate 70 < 99'): GateOutcome => ({ passed: false, rollbackRequested: false, results: [{ name: 'request-success-rate', passed: false, value: 70, min: 99, message: msg }] });

export function obs(st: Partial<StableView>, rest: Partial<Omit<Observation, 'stable'>> = {}): Observation {
  return { stable: stable(st), routes: { stable: 100, canary: 0 }, ...rest };
}
