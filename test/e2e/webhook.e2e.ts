/**
 * Issue #3, tests 2-6: the kube-canary admission webhook running on the host, called by the real
 * kube-apiserver through `clientConfig.url: https://127.0.0.1:PORT/mutate` with the caBundle from
 * `kube-canary certs`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { V1Deployment } from '@kubernetes/client-node';
import {
  applyDeployment,
  clients,
  createNamespace,
  deleteNamespace,
  deploymentManifest,
  getDeployment,
  kubectl,
  podImages,
  podsOf,
  waitFor,
  waitForDeploymentReady,
} from './harness/cluster.js';
import {
  buildMutatingWebhookConfiguration,
  ENABLED_LABEL,
  registerWebhook,
  startWebhook,
  unregisterWebhook,
  type RunningWebhook,
} from './harness/webhook.js';

const REVISION = 'kube-canary.io/revision';
const STABLE_REVISION = 'kube-canary.io/stable-revision';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const annotations = (d: V1Deployment): Record<string, string> => d.metadata?.annotations ?? {};
const templateImage = (d: V1Deployment): string | undefined => d.spec?.template.spec?.containers[0]?.image;

/** The webhook's verdict on a template change: paused, stamped, new template stored, old pods kept. */
async function assertCaptured(ns: string, name: string, oldImage: string, newImage: string): Promise<void> {
  const d = await getDeployment(ns, name);
  assert.equal(d.spec?.paused, true, `${ns}/${name} should be paused by the webhook`);
  assert.ok(annotations(d)[REVISION], `${ns}/${name} should carry ${REVISION}: ${JSON.stringify(annotations(d))}`);
  assert.ok(annotations(d)[STABLE_REVISION], `${ns}/${name} should carry ${STABLE_REVISION}: ${JSON.stringify(annotations(d))}`);
  assert.equal(templateImage(d), newImage, 'the new image stays in the stored template');
  // Give the deployment controller time to (not) act, then check the running pods.
  await sleep(2000);
  const pods = await podsOf(ns, name);
  const replicas = d.spec?.replicas ?? 0;
  assert.equal(pods.length, replicas, `expected ${replicas} pods, got ${podImages(pods).join(', ')}`);
  assert.ok(
    pods.every((p) => p.spec?.containers[0]?.image === oldImage),
    `running pods should stay on ${oldImage}: ${podImages(pods).join(', ')}`,
  );
  const rs = await clients().apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: `app=${name}` });
  assert.ok(
    rs.items.every((r) => r.spec?.template?.spec?.containers[0]?.image === oldImage),
    `no ReplicaSet for ${newImage} should be created while paused`,
  );
}

/** A change went through untouched: not paused, no revision stamp, rolled out to the new image. */
async function assertUntouchedRollout(ns: string, name: string, newImage: string, replicas = 3): Promise<void> {
  const d = await getDeployment(ns, name);
  assert.notEqual(d.spec?.paused, true, `${ns}/${name} must not be paused`);
  assert.equal(annotations(d)[REVISION], undefined, `${ns}/${name} must not be stamped with ${REVISION}`);
  assert.equal(templateImage(d), newImage);
  await waitForDeploymentReady(ns, name, replicas);
  await waitFor(`all pods of ${ns}/${name} on ${newImage}`, async () => {
    const images = podImages(await podsOf(ns, name));
    return images.length === replicas && images.every((i) => i === newImage) ? images : undefined;
  });
}

describe('kube-canary webhook against the real API server', function () {
  const configName = `kube-canary-e2e-${randomBytes(3).toString('hex')}`;
  let webhook: RunningWebhook | undefined;
  const namespaces: string[] = [];
  const systemDeployments: string[] = [];

  async function namespace(prefix: string, labels: Record<string, string> = {}): Promise<string> {
    const ns = await createNamespace(prefix, labels);
    namespaces.push(ns);
    return ns;
  }

  async function readyDeployment(ns: string, name: string, image: string, labels: Record<string, string> = {}, replicas = 3): Promise<void> {
    await applyDeployment(deploymentManifest({ name, namespace: ns, image, replicas, labels }));
    await waitForDeploymentReady(ns, name, replicas);
  }

  before(async function () {
    webhook = await startWebhook();
    await registerWebhook(buildMutatingWebhookConfiguration({ name: configName, baseUrl: webhook.baseUrl, caPem: webhook.caPem }));
  });

  after(async function () {
    await webhook?.stop();
    await unregisterWebhook(configName);
    for (const name of systemDeployments) {
      await clients().apps.deleteNamespacedDeployment({ name, namespace: 'kube-system' }).catch(() => undefined);
    }
    for (const ns of namespaces) await deleteNamespace(ns);
  });

  it('2. `kubectl set image` on an opted-in Deployment is captured: warning, paused, stamped, pods stay on the old image', async function () {
    const ns = await namespace('test');
    await readyDeployment(ns, 'review', 'review:1.7.0', { [ENABLED_LABEL]: 'true' });

    const out = await kubectl(['-n', ns, 'set', 'image', 'deployment/review', 'review=review:1.8.0']);
    assert.match(out.stderr, /Warning:.*kube-canary/i, `kubectl should print the webhook's warning; stderr: ${out.stderr}`);
    await assertCaptured(ns, 'review', 'review:1.7.0', 'review:1.8.0');
  });

  it('3. opt-in through the Namespace label; "false" on the Deployment opts out; kube-system is never touched', async function () {
    const ns = await namespace('test-ns-optin', { [ENABLED_LABEL]: 'true' });
    await readyDeployment(ns, 'review', 'review:1.7.0');
    await readyDeployment(ns, 'optout', 'optout:1.0.0', { [ENABLED_LABEL]: 'false' });

    const captured = await kubectl(['-n', ns, 'set', 'image', 'deployment/review', 'review=review:1.8.0']);
    assert.match(captured.stderr, /Warning:.*kube-canary/i, `stderr: ${captured.stderr}`);
    await assertCaptured(ns, 'review', 'review:1.7.0', 'review:1.8.0');

    const optout = await kubectl(['-n', ns, 'set', 'image', 'deployment/optout', 'optout=optout:1.1.0']);
    assert.doesNotMatch(optout.stderr, /kube-canary/i);
    await assertUntouchedRollout(ns, 'optout', 'optout:1.1.0');

    const sys = `e2e-sys-${randomBytes(3).toString('hex')}`;
    systemDeployments.push(sys);
    await readyDeployment('kube-system', sys, 'sys:1.0.0', { [ENABLED_LABEL]: 'true' }, 1);
    const sysOut = await kubectl(['-n', 'kube-system', 'set', 'image', `deployment/${sys}`, `${sys}=sys:1.1.0`]);
    assert.doesNotMatch(sysOut.stderr, /kube-canary/i);
    await assertUntouchedRollout('kube-system', sys, 'sys:1.1.0', 1);
  });

  it('3b. a Deployment labelled "true" in an opted-in Namespace is handled once; taking its own label off keeps it in', async function () {
    const ns = await namespace('test-both-optin', { [ENABLED_LABEL]: 'true' });
    await readyDeployment(ns, 'review', 'review:1.7.0', { [ENABLED_LABEL]: 'true' });

    const captured = await kubectl(['-n', ns, 'set', 'image', 'deployment/review', 'review=review:1.8.0']);
    assert.match(captured.stderr, /Warning:.*captured revision/i, `stderr: ${captured.stderr}`);
    // A second webhook call would have seen the first one's annotations as written by hand.
    assert.doesNotMatch(captured.stderr, /kube-canary's own/, `stderr: ${captured.stderr}`);
    await assertCaptured(ns, 'review', 'review:1.7.0', 'review:1.8.0');

    // Mid-release, the Namespace still opts it in: this is no opt-out, so it is not refused.
    await kubectl(['-n', ns, 'label', 'deployment/review', `${ENABLED_LABEL}-`]);
    const d = await getDeployment(ns, 'review');
    assert.equal(d.metadata?.labels?.[ENABLED_LABEL], undefined);
    assert.equal(d.spec?.paused, true);
  });

  it('3c. mid-release, `kubectl replace` of the manifest (no paused, no release annotations) keeps the release; `rollout resume` is refused', async function () {
    const ns = await namespace('test-replace');
    await readyDeployment(ns, 'review', 'review:1.7.0', { [ENABLED_LABEL]: 'true' });
    await kubectl(['-n', ns, 'set', 'image', 'deployment/review', 'review=review:1.8.0']);
    const before = await getDeployment(ns, 'review');

    const manifest = deploymentManifest({ name: 'review', namespace: ns, image: 'review:1.8.0', replicas: 3, labels: { [ENABLED_LABEL]: 'true' } });
    await kubectl(['replace', '-f', '-'], { input: JSON.stringify(manifest) });
    const after = await getDeployment(ns, 'review');
    assert.equal(after.spec?.paused, true, 'a rewrite of the whole object must not unpause the release');
    assert.equal(annotations(after)[REVISION], annotations(before)[REVISION]);
    assert.equal(annotations(after)[STABLE_REVISION], annotations(before)[STABLE_REVISION]);

    const resume = await kubectl(['-n', ns, 'rollout', 'resume', 'deployment/review'], { allowFailure: true });
    assert.notEqual(resume.code, 0);
    assert.match(resume.stderr, /unpausing it by hand would skip the analysis/);
  });

  it('3d. on the label entry a typo in the opt-in label ("True", "yes") is refused, not read as "not opted in"', async function () {
    const ns = await namespace('test-typo');
    await readyDeployment(ns, 'review', 'review:1.7.0', { [ENABLED_LABEL]: 'true' });
    const typo = await kubectl(['-n', ns, 'label', '--overwrite', 'deployment/review', `${ENABLED_LABEL}=True`], { allowFailure: true });
    assert.notEqual(typo.code, 0);
    assert.match(typo.stderr, /label kube-canary.io\/enabled="True" is neither "true" nor "false"; set it to "false" to opt the Deployment out/, `stderr: ${typo.stderr}`);
    assert.equal((await getDeployment(ns, 'review')).metadata?.labels?.[ENABLED_LABEL], 'true');
    // A new Deployment with the typo is refused too: it never reaches the webhook with a selector on "true" alone.
    const created = await kubectl(['create', '-f', '-'], { input: JSON.stringify(deploymentManifest({ name: 'other', namespace: ns, image: 'other:1.0.0', labels: { [ENABLED_LABEL]: 'yes' } })), allowFailure: true });
    assert.notEqual(created.code, 0);
    assert.match(created.stderr, /label kube-canary.io\/enabled="yes" is neither "true" nor "false"/, `stderr: ${created.stderr}`);
  });

  it('3e. in an opted-in Namespace, a Deployment created with generateName, or named api.v2, is created; api.v2 is told to name its Service', async function () {
    const ns = await namespace('test-names', { [ENABLED_LABEL]: 'true' });
    const generated = deploymentManifest({ name: 'unused', namespace: ns, image: 'worker:1.0.0', replicas: 1 });
    delete generated.metadata!.name;
    generated.metadata!.generateName = 'worker-';
    const out = await kubectl(['create', '-o', 'json', '-f', '-'], { input: JSON.stringify(generated) });
    const created = JSON.parse(out.stdout) as V1Deployment;
    assert.match(created.metadata?.name ?? '', /^worker-[a-z0-9]{5}$/);
    assert.equal(created.spec?.template.metadata?.labels?.version, 'stable');

    const dotted = await kubectl(['create', '-f', '-'], { input: JSON.stringify(deploymentManifest({ name: 'api.v2', namespace: ns, image: 'api:2.0.0', replicas: 1, container: 'api' })) });
    assert.match(dotted.stderr, /Warning: kube-canary: the name "api.v2" is not a Service name.*set kube-canary.io\/service to the Service in front of this Deployment/, `stderr: ${dotted.stderr}`);
    await waitForDeploymentReady(ns, 'api.v2', 1);
    const refused = await kubectl(['-n', ns, 'set', 'image', 'deployment/api.v2', 'api=api:2.1.0'], { allowFailure: true });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /This update ships a new pod template, which kube-canary cannot release until that is fixed/, `stderr: ${refused.stderr}`);
    await kubectl(['-n', ns, 'annotate', 'deployment/api.v2', 'kube-canary.io/service=api']);
    const captured = await kubectl(['-n', ns, 'set', 'image', 'deployment/api.v2', 'api=api:2.1.0']);
    assert.match(captured.stderr, /captured revision/, `stderr: ${captured.stderr}`);
  });

  it('3f. a caBundle that is not the CA of the serving certificate: the apiserver says so, and the webhook logs what to check', async function () {
    const ns = await namespace('test-bad-ca');
    await readyDeployment(ns, 'review', 'review:1.7.0', { [ENABLED_LABEL]: 'true' });
    const other = await startWebhook(); // only for a CA that did not sign the first webhook's certificate
    const name = `${configName}-bad-ca`;
    try {
      const cfg = buildMutatingWebhookConfiguration({ name, baseUrl: webhook!.baseUrl, caPem: other.caPem });
      cfg.webhooks = [{ ...cfg.webhooks![0]!, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } }];
      await registerWebhook(cfg);
      // The apiserver takes a new configuration up within a moment: wait for it with dry runs (which call webhooks too).
      await waitFor('the apiserver to call the new webhook entry', async () => {
        const r = await kubectl(['-n', ns, 'set', 'image', '--dry-run=server', 'deployment/review', 'review=review:1.8.0'], { allowFailure: true });
        return r.code !== 0 ? true : undefined;
      });
      const refused = await kubectl(['-n', ns, 'set', 'image', 'deployment/review', 'review=review:1.8.0'], { allowFailure: true });
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /failed calling webhook.*x509|certificate signed by unknown authority/, `stderr: ${refused.stderr}`);
      const line = await waitFor('the webhook log line about the refused handshake, with what to check', async () =>
        webhook!.process.output().split('\n').find((l) => l.includes('"msg":"TLS handshake failed"') && l.includes('caBundle')),
      );
      assert.match(line, /"hint":"the client does not trust this certificate: the webhook configuration's caBundle must be the CA that signed --tls-cert/);
      assert.match(line, /"level":40/);
    } finally {
      await unregisterWebhook(name);
      await other.stop();
    }
  });

  it('4. `kubectl apply --dry-run=server` of the same change returns the warning and stores nothing', async function () {
    const ns = await namespace('test-dryrun');
    await readyDeployment(ns, 'review', 'review:1.7.0', { [ENABLED_LABEL]: 'true' });
    const before = await getDeployment(ns, 'review');

    const changed = deploymentManifest({ name: 'review', namespace: ns, image: 'review:1.8.0', labels: { [ENABLED_LABEL]: 'true' } });
    const out = await kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], { input: JSON.stringify(changed) });
    assert.match(out.stderr, /Warning:.*kube-canary/i, `stderr: ${out.stderr}`);
    const dryRun = JSON.parse(out.stdout) as V1Deployment;
    assert.equal(dryRun.spec?.paused, true, 'the dry-run answer shows what would be stored');

    const after = await getDeployment(ns, 'review');
    assert.equal(after.metadata?.resourceVersion, before.metadata?.resourceVersion, 'nothing is stored');
    assert.equal(templateImage(after), 'review:1.7.0');
    assert.notEqual(after.spec?.paused, true);
    assert.equal(annotations(after)[REVISION], annotations(before)[REVISION]);
  });

  it('5. a replicas-only change (`kubectl scale`) of an opted-in Deployment is not paused', async function () {
    const ns = await namespace('test-scale');
    await readyDeployment(ns, 'review', 'review:1.7.0', { [ENABLED_LABEL]: 'true' });

    await kubectl(['-n', ns, 'scale', 'deployment/review', '--replicas=5']);
    const d = await getDeployment(ns, 'review');
    assert.notEqual(d.spec?.paused, true, 'scaling must not pause');
    assert.equal(d.spec?.replicas, 5);
    await waitForDeploymentReady(ns, 'review', 5);
    assert.deepEqual([...new Set(podImages(await podsOf(ns, 'review')))], ['review:1.7.0']);
  });

  it('5b. a Deployment created paused gets no canary for its first template: it rolls out as written once resumed, and the next change is captured', async function () {
    const ns = await namespace('test-created-paused');
    const manifest = deploymentManifest({ name: 'review', namespace: ns, image: 'review:1.7.0', replicas: 2, labels: { [ENABLED_LABEL]: 'true' } });
    manifest.spec!.paused = true;
    await applyDeployment(manifest);
    // What the webhook decides on: the Deployment controller has seen it and made no ReplicaSet.
    await waitFor('the controller to observe the paused Deployment', async () => ((await getDeployment(ns, 'review')).status?.observedGeneration ?? 0) >= 1 || undefined);
    assert.equal(annotations(await getDeployment(ns, 'review'))['deployment.kubernetes.io/revision'], undefined);
    assert.equal((await clients().apps.listNamespacedReplicaSet({ namespace: ns })).items.length, 0);

    const out = await kubectl(['-n', ns, 'set', 'image', 'deployment/review', 'review=review:1.8.0']);
    assert.match(out.stderr, /has not rolled out yet \(it has been paused since it was created\), so this template change is not a canary/, `stderr: ${out.stderr}`);
    const held = await getDeployment(ns, 'review');
    assert.equal(annotations(held)[REVISION], undefined, 'no release is captured');
    assert.equal(held.spec?.paused, true, "the user's pause stays");

    // Nothing of kube-canary's holds it: resuming it is not refused, and it rolls out what was written.
    const resumed = await kubectl(['-n', ns, 'rollout', 'resume', 'deployment/review']);
    assert.doesNotMatch(resumed.stderr, /kube-canary/, `stderr: ${resumed.stderr}`);
    await assertUntouchedRollout(ns, 'review', 'review:1.8.0', 2);

    await kubectl(['-n', ns, 'set', 'image', 'deployment/review', 'review=review:1.9.0']);
    await assertCaptured(ns, 'review', 'review:1.8.0', 'review:1.9.0');
  });

  it('6. with the webhook down and failurePolicy Fail, opted-in updates are refused with a reason; others go through', async function () {
    const optedIn = await namespace('test-down');
    await readyDeployment(optedIn, 'review', 'review:1.7.0', { [ENABLED_LABEL]: 'true' });
    const nsOptedIn = await namespace('test-down-ns', { [ENABLED_LABEL]: 'true' });
    await readyDeployment(nsOptedIn, 'review', 'review:1.7.0');
    const plain = await namespace('test-down-plain');
    await readyDeployment(plain, 'other', 'other:1.0.0');
    const sys = `e2e-sys-${randomBytes(3).toString('hex')}`;
    systemDeployments.push(sys);
    await readyDeployment('kube-system', sys, 'sys:1.0.0', { [ENABLED_LABEL]: 'true' }, 1);

    await webhook?.stop();
    webhook = undefined;

    for (const ns of [optedIn, nsOptedIn]) {
      const refused = await kubectl(['-n', ns, 'set', 'image', 'deployment/review', 'review=review:1.8.0'], { allowFailure: true });
      assert.notEqual(refused.code, 0, `the update in ${ns} must be refused while the webhook is down`);
      assert.match(refused.stderr, /failed calling webhook "[a-z.]*kube-canary\.io"/, `stderr: ${refused.stderr}`);
      assert.match(refused.stderr, /connection refused|dial tcp|no such host|timeout/i, `the refusal says why; stderr: ${refused.stderr}`);
      const d = await getDeployment(ns, 'review');
      assert.equal(templateImage(d), 'review:1.7.0', 'nothing stored');
    }

    await kubectl(['-n', plain, 'set', 'image', 'deployment/other', 'other=other:1.1.0']);
    await assertUntouchedRollout(plain, 'other', 'other:1.1.0');
    await kubectl(['-n', 'kube-system', 'set', 'image', `deployment/${sys}`, `${sys}=sys:1.1.0`]);
    await assertUntouchedRollout('kube-system', sys, 'sys:1.1.0', 1);
  });
});
