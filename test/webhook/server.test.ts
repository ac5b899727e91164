import assert from 'node:assert/strict';
import { Agent as HttpAgent, createServer, request as httpRequest } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { gzipSync } from 'node:zlib';
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
    ['a wrong kind', { apiVersion: 'admission.k8s.io/v1', kind: 'Pod' }, 400, /kind AdmissionReview; got apiVersion "admission.k8s.io\/v1", kind "Pod"$/],
    ['a missing request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, 400, /has no request/],
    ['a request without uid', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { operation: 'UPDATE' } }, 400, /no uid/],
    ['a uid that is not a string', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 5, operation: 'UPDATE' } }, 400, /request.uid is a number; expected a string/],
    ['a user name that is an object (never quoted back: it could carry a token)', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', operation: 'UPDATE', userInfo: { username: { token: 'SECRET-TOKEN' } } } }, 400, /^AdmissionReview request.userInfo.username is an object; expected a string$/],
    ['a name of 100,000 characters', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', operation: 'UPDATE', name: 'x'.repeat(100_000) } }, 400, /^AdmissionReview request.name is 100000 characters long; at most 1024 are accepted$/],
    ['an apiVersion of 100,000 characters, quoted back cut short', { apiVersion: 'v'.repeat(100_000), kind: 'AdmissionReview' }, 400, /got apiVersion "v{56}\.\.\., kind "AdmissionReview"/],
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

  it('refuses a compressed body with 415 naming the encoding, and keeps serving', async () => {
    const { app: a, metrics } = app();
    const gz = gzipSync(JSON.stringify(loadReview('review-set-image')));
    const res = await request(a).post('/mutate').set('content-type', 'application/json').set('content-encoding', 'gzip').send(gz).expect(415);
    assert.match(res.body.message, /Content-Encoding "gzip" is not accepted; send the AdmissionReview as uncompressed JSON/);
    await request(a).post('/mutate').set('content-encoding', 'identity').send(loadReview('review-set-image')).expect(200);
    assert.match(await metrics.registry.metrics(), /kube_canary_webhook_admissions_total\{decision="invalid",operation="unknown"\} 1/);
  });

  it('logs a refused compressed body, naming the header', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const a = createApp({ config, metrics: createWebhookMetrics(), log: createLogger('test', 'info', { write: (l: string) => void lines.push(JSON.parse(l)) }) });
    await request(a).post('/mutate').set('content-encoding', 'br').send('x').expect(415);
    assert.ok(lines.some((l) => l.msg === 'admission request refused: compressed body' && l['Content-Encoding'] === 'br' && l.level === 40), JSON.stringify(lines));
  });

  it('takes an empty or identity-only Content-Encoding (no compression) as such', async () => {
    const { app: a } = app();
    for (const value of ['', 'identity, identity', 'Identity']) {
      const res = await request(a).post('/mutate').set('content-type', 'application/json').set('content-encoding', value).send(JSON.stringify(loadReview('review-set-image')));
      assert.equal(res.status, 200, `Content-Encoding ${JSON.stringify(value)}: ${res.text}`);
    }
  });

  it('refuses a transfer coding other than chunked with 415, and takes a plain chunked body', async () => {
    const { app: a, metrics } = app();
    const server = createServer(a);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const exchange = (head: string, body: Buffer) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
        let text = '';
        socket.on('data', (c) => (text += c.toString()));
        socket.on('error', reject);
        socket.write(`POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n${head}\r\n`);
        socket.end(Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]));
        socket.once('close', () => resolve(text));
      });
    try {
      const review = Buffer.from(JSON.stringify(loadReview('review-set-image')));
      const gz = await exchange('Transfer-Encoding: gzip, chunked\r\n', gzipSync(review));
      assert.match(gz, /^HTTP\/1\.1 415 /);
      assert.match(gz, /Transfer-Encoding \\"gzip, chunked\\" is not accepted; send the AdmissionReview as uncompressed JSON/);
      const plain = await exchange('Transfer-Encoding: chunked\r\n', review);
      assert.match(plain, /^HTTP\/1\.1 200 /);
      assert.match(plain, /"patchType":"JSONPatch"/);
      assert.match(await metrics.registry.metrics(), /kube_canary_webhook_admissions_total\{decision="invalid",operation="unknown"\} 1/);
    } finally {
      server.close();
    }
  });

  it('by default admits the update of a Deployment as large as the apiserver stores (two ~1.9 MB objects in one review), and captures it', async () => {
    const { app: a } = app();
    const r = loadReview('review-set-image');
    const env = Array.from({ length: 1700 }, (_, j) => ({ name: `E${j}`, value: 'v' }));
    for (const o of [r.request.oldObject!, r.request.object]) {
      const c = o.spec!.template.spec!.containers[0]!;
      o.spec!.template.spec!.containers = Array.from({ length: 40 }, (_, i) => ({ ...c, name: `c${i}`, env }));
    }
    r.request.object.spec!.template.spec!.containers[0]!.image = 'review:1.9.9';
    const body = JSON.stringify(r);
    assert.ok(body.length > 3.5 * 1024 * 1024, `${body.length} bytes`);
    const res = await request(a).post('/mutate').set('content-type', 'application/json').send(body).expect(200);
    assert.equal(res.body.response.allowed, true);
    assert.equal(res.body.response.patchType, 'JSONPatch', 'captured');
  });

  it('refuses a body over the limit with 413, naming the flag that sets it, and keeps serving', async () => {
    const { app: a } = app(64 * 1024);
    const r = loadReview('review-set-image');
    r.request.object.metadata!.annotations!.big = 'x'.repeat(100 * 1024);
    const res = await request(a).post('/mutate').send(r).expect(413);
    assert.match(res.body.message, /larger than the limit of 65536 bytes; the webhook's --body-limit \(KUBE_CANARY_BODY_LIMIT\) sets it/);
    assert.equal(res.headers.connection, 'close', 'the rest of such a body is not read');
    await request(a).post('/mutate').send(loadReview('review-set-image')).expect(200);
  });

  it('answers 413 as soon as the declared or the received length is over the limit, without waiting for the rest, and counts it in both metrics', async () => {
    const { app: a, metrics } = app(64 * 1024);
    const server = createServer(a);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const socket = connect(port, '127.0.0.1');
      let text = '';
      socket.on('data', (c) => (text += c.toString()));
      socket.write('POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000000\r\n\r\n{"apiVersion":');
      await new Promise<void>((resolve, reject) => {
        socket.once('close', () => resolve());
        setTimeout(() => reject(new Error(`no answer within 2 s: ${JSON.stringify(text)}`)), 2000);
      });
      assert.match(text, /^HTTP\/1\.1 413 /);
      assert.match(text, /larger than the limit of 65536 bytes/);
      // Chunked, no declared length: refused once the limit is passed, without reading to the end.
      const chunked = connect(port, '127.0.0.1');
      let answer = '';
      chunked.on('data', (c) => (answer += c.toString()));
      chunked.on('error', () => {}); // the server may close while chunks are still going out
      chunked.write('POST /mutate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
      const chunk = 'x'.repeat(16 * 1024);
      for (let i = 0; i < 6; i++) chunked.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      await new Promise<void>((resolve, reject) => {
        chunked.once('close', () => resolve());
        setTimeout(() => reject(new Error(`no answer within 2 s: ${JSON.stringify(answer)}`)), 2000);
      });
      assert.match(answer, /^HTTP\/1\.1 413 /);
      const m = await metrics.registry.metrics();
      assert.match(m, /kube_canary_webhook_admissions_total\{decision="invalid",operation="unknown"\} 2/);
      assert.match(m, /kube_canary_webhook_admission_duration_seconds_count\{decision="invalid"\} 2/);
    } finally {
      server.close();
    }
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

  it('keeps connections open while ready, and closes each after its answer once stopping', async () => {
    const { app: a, setReady } = app();
    const server = createServer(a);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const agent = new HttpAgent({ keepAlive: true });
    const port = (server.address() as AddressInfo).port;
    const send = (method: string, path: string, body?: string) =>
      new Promise<{ status: number; connection?: string }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, method, path, agent, headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection }));
        });
        req.on('error', reject);
        req.end(body);
      });
    try {
      const review = JSON.stringify(loadReview('review-set-image'));
      assert.deepEqual(await send('POST', '/mutate', review), { status: 200, connection: 'keep-alive' });
      assert.deepEqual(await send('GET', '/healthz'), { status: 200, connection: 'keep-alive' });
      setReady(false);
      assert.deepEqual(await send('POST', '/mutate', review), { status: 200, connection: 'close' });
      assert.deepEqual(await send('POST', '/mutate', '{'), { status: 400, connection: 'close' });
      assert.deepEqual(await send('GET', '/readyz'), { status: 503, connection: 'close' });
    } finally {
      agent.destroy();
      server.close();
    }
  });

  it('answers 404 with the routes it has, and 405 to anything but POST on the admission paths', async () => {
    const { app: a } = app();
    const res = await request(a).get('/validate').expect(404);
    assert.match(res.body.message, /POST \/mutate/);
    for (const path of ['/mutate', '/mutate/namespace']) {
      const r = await request(a).get(path).expect(405);
      assert.equal(r.headers.allow, 'POST');
      assert.match(r.body.message, new RegExp(`GET ${path} is not allowed; the apiserver sends admission requests with POST`));
    }
    await request(a).put('/mutate').send('{}').expect(405);
    // A path that is almost right (a typo in the webhook configuration) is told the real ones.
    for (const path of ['/mutate/', '/MUTATE', '/mutate/namespace/', '/Mutate/Namespace']) {
      const r = await request(a).post(path).send(loadReview('review-set-image')).expect(404);
      assert.match(r.body.message, new RegExp(`no route POST ${path}; POST /mutate, POST /mutate/namespace`));
    }
  });

  it('answers a POST whose request target the admission path does not take as is (an absolute URL) with the 404 that names the paths', async () => {
    const { app: a } = app();
    const server = createServer(a);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as AddressInfo).port;
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: 'http://elsewhere/mutate', headers: { 'content-type': 'application/json' } }, (res) => {
          let data = '';
          res.on('data', (c) => (data += c));
          res.on('end', () => resolve({ status: res.statusCode!, body: data }));
        });
        req.on('error', reject);
        req.end(JSON.stringify(loadReview('review-set-image')));
      });
      assert.equal(status, 404);
      assert.match(JSON.parse(body).message, /^no route POST http:\/\/elsewhere\/mutate; POST \/mutate, POST \/mutate\/namespace/);
    } finally {
      server.close();
    }
  });

  it('counts a fault of its own as "error", apart from invalid requests, in a histogram that reaches 30 s', async () => {
    const metrics = createWebhookMetrics();
    // A configuration the decision cannot use stands for any fault of ours.
    const broken = { ...config, progressorUsers: undefined as unknown as string[] };
    const a = createApp({ config: broken, metrics, log: createLogger('test', 'silent') });
    const res = await request(a).post('/mutate').send(loadReview('review-set-image')).expect(500);
    assert.match(res.body.message, /internal error/);
    const text = await metrics.registry.metrics();
    assert.match(text, /kube_canary_webhook_admissions_total\{decision="error",operation="unknown"\} 1/);
    assert.doesNotMatch(text, /decision="invalid"/);
    assert.match(text, /kube_canary_webhook_admission_duration_seconds_bucket\{le="30",decision="error"\} 1/);
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
