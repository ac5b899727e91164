import assert from 'node:assert/strict';
import request from 'supertest';
import { createLogger } from '../../src/kube/logger.js';
import { createWebhookMetrics } from '../../src/webhook/metrics.js';
import { createApp } from '../../src/webhook/server.js';
import { config, loadReview } from './fixtures.js';

function app(bodyLimit?: number) {
  const metrics = createWebhookMetrics();
  let ready = true;
  const a = createApp({ config, metrics, log: createLogger('test', 'silent'), ...(bodyLimit ? { bodyLimit } : {}), isReady: () => ready });
  return { app: a, metrics, setReady: (r: boolean) => (ready = r) };
}

describe('webhook HTTP app', () => {
  it('answers an AdmissionReview on /mutate with a JSONPatch and warnings', async () => {
    const { app: a } = app();
    const res = await request(a).post('/mutate').set('content-type', 'application/json').send(JSON.stringify(loadReview('review-set-image'))).expect(200);
    assert.equal(res.body.apiVersion, 'admission.k8s.io/v1');
    assert.equal(res.body.kind, 'AdmissionReview');
    assert.equal(res.body.response.allowed, true);
    assert.equal(res.body.response.patchType, 'JSONPatch');
    const ops = JSON.parse(Buffer.from(res.body.response.patch, 'base64').toString());
    assert.ok(ops.some((o: { path: string; value: unknown }) => o.path === '/spec/paused' && o.value === true));
    assert.ok(res.body.response.warnings.length >= 1);
  });

  it("accepts the apiserver's ?timeout= query on the admission paths", async () => {
    const { app: a } = app();
    const res = await request(a).post('/mutate?timeout=10s').send(loadReview('review-set-image')).expect(200);
    assert.equal(res.body.response.patchType, 'JSONPatch');
  });

  it('routes /mutate/namespace with namespace opt-in semantics', async () => {
    const { app: a } = app();
    const r = loadReview('review-set-image');
    delete r.request.object.metadata!.labels!['kube-canary.io/enabled'];
    delete r.request.oldObject!.metadata!.labels!['kube-canary.io/enabled'];
    const viaLabel = await request(a).post('/mutate').send(r).expect(200);
    assert.equal(viaLabel.body.response.patch, undefined);
    const viaNs = await request(a).post('/mutate/namespace').send(r).expect(200);
    assert.equal(viaNs.body.response.patchType, 'JSONPatch');
  });

  const malformed: Array<[string, string | object, number, RegExp]> = [
    ['an empty body', '', 400, /empty body/],
    ['text that is not JSON', 'hello', 400, /not JSON/],
    ['a JSON array', '[1,2]', 400, /not a JSON object/],
    ['a wrong apiVersion', { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} }, 400, /expected apiVersion admission.k8s.io\/v1.*admissionReviewVersions/],
    ['a wrong kind', { apiVersion: 'admission.k8s.io/v1', kind: 'Pod' }, 400, /kind AdmissionReview/],
    ['a missing request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, 400, /has no request/],
    ['a request without uid', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { operation: 'UPDATE' } }, 400, /no uid/],
    ['deeply nested JSON', `${'['.repeat(100000)}${']'.repeat(100000)}`, 400, /nested 100000 levels deep/],
  ];
  for (const [name, body, status, message] of malformed) {
    it(`answers ${name} with ${status} and a reason, then keeps serving`, async () => {
      const { app: a, metrics } = app();
      const res = await request(a).post('/mutate').set('content-type', 'application/json').send(typeof body === 'string' ? body : JSON.stringify(body)).expect(status);
      assert.match(res.body.message, message);
      await request(a).post('/mutate').send(loadReview('review-set-image')).expect(200);
      assert.match(await metrics.registry.metrics(), /kube_canary_webhook_admissions_total\{decision="invalid",operation="unknown"\} 1/);
    });
  }

  it('refuses a body over the limit with 413 and keeps serving', async () => {
    const { app: a } = app(64 * 1024);
    const r = loadReview('review-set-image');
    r.request.object.metadata!.annotations!.big = 'x'.repeat(100 * 1024);
    const res = await request(a).post('/mutate').send(r).expect(413);
    assert.match(res.body.message, /larger than the limit of 65536 bytes/);
    await request(a).post('/mutate').send(loadReview('review-set-image')).expect(200);
  });

  it('denies a Deployment without a template inside a valid review (200 with allowed=false)', async () => {
    const { app: a } = app();
    const r = loadReview('review-set-image');
    delete (r.request.object.spec as { template?: unknown }).template;
    const res = await request(a).post('/mutate').send(r).expect(200);
    assert.equal(res.body.response.allowed, false);
    assert.match(res.body.response.status.message, /no spec.template/);
  });

  it('serves healthz, readyz (503 while stopping) and metrics', async () => {
    const { app: a, setReady } = app();
    await request(a).get('/healthz').expect(200, 'ok');
    await request(a).get('/readyz').expect(200);
    setReady(false);
    await request(a).get('/readyz').expect(503);
    await request(a).post('/mutate').send(loadReview('review-set-image')).expect(200);
    const m = await request(a).get('/metrics').expect(200);
    assert.match(m.text, /kube_canary_webhook_admissions_total\{decision="patched",operation="UPDATE"\} 1/);
    assert.match(m.text, /kube_canary_webhook_admission_duration_seconds_bucket\{le="0.005",decision="patched"\}/);
  });

  it('answers 404 with the routes it has', async () => {
    const { app: a } = app();
    const res = await request(a).get('/mutate').expect(404);
    assert.match(res.body.message, /POST \/mutate/);
  });

  it('logs one flat admission line per request, byte for byte what the redacting logger writes, and keeps redacting other lines', async () => {
    const lines: string[] = [];
    const log = createLogger('webhook', 'info', { write: (l: string) => void lines.push(l) });
    const a = createApp({ config, metrics: createWebhookMetrics(), log });
    await request(a).post('/mutate').send(loadReview('review-set-image')).expect(200);
    const admission = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'admission');
    assert.equal(admission.length, 1);
    const line = admission[0];
    assert.deepEqual(Object.keys(line), ['level', 'time', 'component', 'uid', 'deployment', 'operation', 'user', 'dryRun', 'via', 'decision', 'reason', 'msg']);
    // Flat: the admission line skips pino's redactor (no redact path can match a top-level scalar).
    for (const [k, v] of Object.entries(line)) assert.ok(v === null || typeof v !== 'object', `${k} is not a scalar`);
    assert.deepEqual(
      { deployment: line.deployment, operation: line.operation, decision: line.decision, via: line.via, dryRun: line.dryRun },
      { deployment: 'test/review', operation: 'UPDATE', decision: 'patched', via: 'label', dryRun: false },
    );
    const { level: _l, time: _t, component: _c, msg: _m, ...fields } = line;
    log.info(fields, 'admission');
    const [written, viaParent] = lines.filter((l) => l.includes('"msg":"admission"')).map((l) => l.replace(/"time":"[^"]*"/, ''));
    assert.equal(written, viaParent);
    log.warn({ request: { token: 'secret', headers: { authorization: 'Bearer x' } } }, 'other');
    assert.doesNotMatch(lines.at(-1)!, /secret|Bearer/);
  });
});
