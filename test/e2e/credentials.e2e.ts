/**
 * The progressor's own credentials code against the real kube-apiserver: a kubeconfig that
 * impersonates (as kubectl's --as, --as-group) is honoured, which the apiserver reports back
 * through a SelfSubjectReview.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import YAML from 'yaml';
import { loadCredentials } from '../../src/kube/credentials.js';
import { KubeHttp } from '../../src/kube/http.js';
import { clusterEnv } from './harness/cluster.js';

interface SelfSubjectReview {
  status?: { userInfo?: { username?: string; groups?: string[]; extra?: Record<string, string[]> } };
}

describe('progressor credentials against the real API server', function () {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'kc-e2e-creds-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('impersonates the user, groups and extra a kubeconfig names (as, as-groups, as-user-extra), as kubectl does', async function () {
    const source = clusterEnv().kubeconfig;
    const doc = YAML.parse(readFileSync(source, 'utf8')) as { users: Array<{ user: Record<string, unknown> }>; clusters: Array<{ cluster: Record<string, unknown> }> };
    // The copy lives elsewhere: its relative paths must keep pointing at the cluster's files.
    const absolute = (o: Record<string, unknown>, k: string) => typeof o[k] === 'string' && (o[k] = resolve(dirname(source), o[k] as string));
    for (const { user } of doc.users) ['client-certificate', 'client-key', 'tokenFile'].forEach((k) => absolute(user, k));
    for (const { cluster } of doc.clusters) absolute(cluster, 'certificate-authority');
    for (const { user } of doc.users) Object.assign(user, { as: 'e2e-impersonated', 'as-groups': ['e2e-group-a', 'e2e group b'], 'as-user-extra': { 'example.com/scopes': ['x', 'y'] } });
    const file = join(dir, 'kubeconfig');
    writeFileSync(file, YAML.stringify(doc), { mode: 0o600 });

    const creds = await loadCredentials(file, {});
    assert.match(creds.source, /impersonating e2e-impersonated/);
    const review = await new KubeHttp(creds).request<SelfSubjectReview>('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    });
    const who = review.status?.userInfo;
    assert.equal(who?.username, 'e2e-impersonated');
    assert.ok(['e2e-group-a', 'e2e group b'].every((g) => who?.groups?.includes(g)), `groups: ${JSON.stringify(who?.groups)}`);
    assert.deepEqual(who?.extra?.['example.com/scopes'], ['x', 'y']);
  });
});
