import assert from 'node:assert/strict';
import { ProgressorMetrics } from '../../src/progressor/metrics.js';

describe('progressor metrics', () => {
  it("forgets every series of a Deployment that is gone, counters included, and only its own", async () => {
    const m = new ProgressorMetrics(false);
    for (const name of ['review', 'other']) {
      m.setPhase('test', name, 'Progressing');
      m.weight.set({ namespace: 'test', name }, 25);
      m.failedChecks.set({ namespace: 'test', name }, 1);
      m.checks.inc({ namespace: 'test', name, gate: 'analysis', check: 'request-success-rate', result: 'pass' });
      m.promotions.inc({ namespace: 'test', name });
      m.rollbacks.inc({ namespace: 'test', name });
    }
    await m.forget('test', 'review');
    const text = await m.registry.metrics();
    assert.doesNotMatch(text, /name="review"/);
    for (const metric of ['kube_canary_release_phase', 'kube_canary_release_canary_weight', 'kube_canary_release_failed_checks', 'kube_canary_analysis_checks_total', 'kube_canary_promotions_total', 'kube_canary_rollbacks_total']) {
      assert.match(text, new RegExp(`${metric}\\{[^}]*name="other"`), metric);
    }
  });
});
