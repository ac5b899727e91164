import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { type ApiCredentials, CredentialsError, loadCredentials, resolveKubeconfig, specCredentials } from '../../src/kube/credentials.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'other', cluster: { server: 'https://wrong:1' } }, { name: 'c', cluster }],
    users: user ? [{ name: 'u', user }] : [],
    contexts: [{ name: 'ctx', context: { cluster: 'c', ...(user ? { user: 'u' } : {}) } }],
    'current-context': 'ctx',
    ...extra,
  };
}

async function applied(c: ApiCredentials): Promise<https.RequestOptions> {
  const opts: https.RequestOptions = { headers: {} };
  await c.applyToHTTPSOptions(opts);
  return opts;
}

describe('kube/credentials', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kc-creds-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, content: string | object) => {
    const p = join(dir, name);
    writeFileSync(p, typeof content === 'string' ? content : YAML.stringify(content));
    return p;
  };

  it('serves inline certificate data of the current context, not of another cluster', async () => {
    const file = write('config', kubeconfig({ server: 'https://10.0.0.1:6443', 'certificate-authority-data': b64('CA') }, { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') }));
    const c = await loadCredentials(file, {});
    assert.equal(c.server, 'https://10.0.0.1:6443');
    assert.match(c.source, /kubeconfig .*config \(client certificate\)/);
    const o = await applied(c);
    assert.equal(String(o.ca), 'CA');
    assert.equal(String(o.cert), 'CERT');
    assert.equal(String(o.key), 'KEY');
    assert.equal(o.rejectUnauthorized, undefined);
    assert.deepEqual(o.headers, {});
  });

  it('reads file references relative to the kubeconfig, as kubectl does', async () => {
    write('ca.crt', 'CA-FILE');
    write('u.crt', 'CERT-FILE');
    write('u.key', 'KEY-FILE');
    const file = write('config', kubeconfig({ server: 'https://api:6443', 'certificate-authority': 'ca.crt', 'tls-server-name': 'kubernetes', 'insecure-skip-tls-verify': true }, { 'client-certificate': 'u.crt', 'client-key': join(dir, 'u.key') }));
    const o = await applied(await loadCredentials(undefined, { KUBECONFIG: file }));
    assert.equal(String(o.ca), 'CA-FILE');
    assert.equal(String(o.cert), 'CERT-FILE');
    assert.equal(String(o.key), 'KEY-FILE');
    assert.equal(o.servername, 'kubernetes');
    assert.equal(o.rejectUnauthorized, false);
  });

  it('sends a bearer token, and re-reads a token file once a minute (the kubelet rotates it)', async () => {
    const inline = await applied(await loadCredentials(write('a', kubeconfig({ server: 'https://api' }, { token: 'abc' })), {}));
    assert.deepEqual(inline.headers, { Authorization: 'Bearer abc' });

    const tokenFile = write('token', 'first\n');
    let now = 0;
    const c = specCredentials({ server: 'https://api', tokenFile }, 'test', () => now);
    assert.deepEqual((await applied(c)).headers, { Authorization: 'Bearer first' });
    writeFileSync(tokenFile, 'second');
    now = 59_000;
    assert.deepEqual((await applied(c)).headers, { Authorization: 'Bearer first' }, 'cached within the minute');
    now = 60_000;
    assert.deepEqual((await applied(c)).headers, { Authorization: 'Bearer second' });
    rmSync(tokenFile);
    now = 200_000;
    assert.deepEqual((await applied(c)).headers, { Authorization: 'Bearer second' }, 'a rotation in progress keeps the last token');
  });

  it('with both token and tokenFile, the file wins while it can be read and the token is the fallback (client-go)', async () => {
    write('rotating', 'from-file');
    const both = await loadCredentials(write('config', kubeconfig({ server: 'https://api' }, { token: 'static', tokenFile: 'rotating' })), {});
    assert.match(both.source, /\(token file\)$/);
    assert.deepEqual((await applied(both)).headers, { Authorization: 'Bearer from-file' });
    const fallback = await loadCredentials(write('config2', kubeconfig({ server: 'https://api' }, { token: 'static', tokenFile: 'gone' })), {});
    assert.deepEqual((await applied(fallback)).headers, { Authorization: 'Bearer static' });
  });

  it('in a pod, uses the service account: server from the environment (IPv6 in brackets), its CA and token', async () => {
    write('ca.crt', 'SA-CA');
    write('token', 'sa-token');
    const env = { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443', KUBECONFIG: join(dir, 'ignored') };
    const c = await loadCredentials(undefined, env, dir);
    assert.equal(c.server, 'https://[fd00::1]:443');
    assert.match(c.source, /in-cluster service account/);
    const o = await applied(c);
    assert.equal(String(o.ca), 'SA-CA');
    assert.deepEqual(o.headers, { Authorization: 'Bearer sa-token' });
    // --kubeconfig wins over the pod's own account
    const file = write('config', kubeconfig({ server: 'https://elsewhere' }, { token: 't' }));
    assert.equal((await loadCredentials(file, env, dir)).server, 'https://elsewhere');
  });

  it('without a proxy-url, takes HTTPS_PROXY unless NO_PROXY lists the server, and says so without the proxy password', async () => {
    write('ca.crt', 'SA-CA');
    write('token', 'sa-token');
    const pod = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', HTTPS_PROXY: 'http://corp:hunter2@proxy.corp:3128' };
    const proxied = await loadCredentials(undefined, pod, dir);
    assert.equal(proxied.proxyUrl, 'http://corp:hunter2@proxy.corp:3128/');
    assert.equal(proxied.proxy, 'http://proxy.corp:3128 (HTTPS_PROXY)');
    const listed = await loadCredentials(undefined, { ...pod, no_proxy: '.svc,10.96.0.0/12' }, dir);
    assert.equal(listed.proxyUrl, undefined);
    assert.equal(listed.proxy, 'none: HTTPS_PROXY is set, but the server is listed in no_proxy');
    const local = await loadCredentials(write('local', kubeconfig({ server: 'https://127.0.0.1:6443' }, { token: 't' })), { https_proxy: 'proxy.corp:3128' });
    assert.equal(local.proxy, 'none: https_proxy is set, but the server is a loopback address, never proxied');
    assert.equal((await loadCredentials(write('plain', kubeconfig({ server: 'https://api' }, { token: 't' })), {})).proxy, undefined);
    await assert.rejects(
      loadCredentials(undefined, { ...pod, HTTPS_PROXY: 'ftp://corp:hunter2@proxy.corp' }, dir),
      (e: Error) => e instanceof CredentialsError && /^HTTPS_PROXY is not an http:\/\/, https:\/\/ or socks5:\/\/ URL, nor a host:port .*; fix it, or unset it to connect directly$/.test(e.message) && !e.message.includes('hunter2'),
    );
  });

  it('leaves exec plugins to the client library, which runs them', async () => {
    const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'from-exec' } });
    const exec = { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: ['-e', `process.stdout.write(${JSON.stringify(credential)})`], interactiveMode: 'Never' };
    const c = await loadCredentials(write('config', kubeconfig({ server: 'https://api' }, { exec })), {});
    assert.match(c.source, /client library KubeConfig, because .* uses user exec/);
    assert.equal((await applied(c)).headers?.['Authorization' as never], 'Bearer from-exec');
  });

  it('leaves several KUBECONFIG files (merged; missing ones skipped, as kubectl does) and proxies to the client library', async () => {
    const a = write('a', { apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'c', cluster: { server: 'https://merged:6443' } }], users: [{ name: 'u', user: { token: 'merged-token' } }], contexts: [] });
    const b = write('b', { apiVersion: 'v1', kind: 'Config', contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }], 'current-context': 'ctx' });
    const merged = await loadCredentials(undefined, { KUBECONFIG: `${a}:${join(dir, 'absent')}:${b}` });
    assert.equal(merged.server, 'https://merged:6443');
    assert.deepEqual((await applied(merged)).headers, { Authorization: 'Bearer merged-token' });
    const single = await loadCredentials(undefined, { KUBECONFIG: `${join(dir, 'absent')}:${a.replace(/a$/, 'x')}:${write('one', kubeconfig({ server: 'https://one' }, { token: 't' }))}` });
    assert.match(single.source, /^kubeconfig .*one \(token\)$/, 'one existing file: read directly');
    await assert.rejects(loadCredentials(undefined, { KUBECONFIG: `${join(dir, 'n1')}:${join(dir, 'n2')}` }), /none of the files in KUBECONFIG exists/);
    assert.deepEqual(resolveKubeconfig(kubeconfig({ server: 'https://api', 'proxy-url': 'http://proxy:3128' }, { username: 'a', password: 'b' }), dir, 'f'), { kind: 'library', reason: 'cluster proxy-url, user username, user password' });
  });

  it('impersonates as kubectl does (as, as-uid, as-groups, as-user-extra), also when the client library authenticates', async () => {
    const as = { as: 'system:serviceaccount:kube-canary:kube-canary-progressor', 'as-uid': 'u-1', 'as-groups': ['system:serviceaccounts', 'team a'], 'as-user-extra': { 'scopes.example.com/x (%)': ['1', '2'] } };
    const want = {
      'Impersonate-User': 'system:serviceaccount:kube-canary:kube-canary-progressor',
      'Impersonate-Uid': 'u-1',
      'Impersonate-Group': ['system:serviceaccounts', 'team a'],
      'Impersonate-Extra-scopes.example.com%2Fx%20%28%25%29': ['1', '2'], // escaped as client-go does
    };
    const lean = await loadCredentials(write('as-token', kubeconfig({ server: 'https://api' }, { token: 't', ...as })), {});
    assert.match(lean.source, /\(token, impersonating system:serviceaccount:kube-canary:kube-canary-progressor\)$/);
    assert.deepEqual((await applied(lean)).headers, { ...want, Authorization: 'Bearer t' });
    const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'from-exec' } });
    const exec = { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: ['-e', `process.stdout.write(${JSON.stringify(credential)})`], interactiveMode: 'Never' };
    const viaLibrary = await loadCredentials(write('as-exec', kubeconfig({ server: 'https://api' }, { exec, ...as })), {});
    assert.match(viaLibrary.source, /client library/);
    const headers = (await applied(viaLibrary)).headers as Record<string, unknown>;
    for (const [k, v] of Object.entries(want)) assert.deepEqual(headers[k], v, k);
    assert.equal(headers.Authorization, 'Bearer from-exec');
    await assert.rejects(loadCredentials(write('as-bad', kubeconfig({ server: 'https://api' }, { token: 't', 'as-groups': ['g'] })), {}), /user "u": as-groups, as-uid or as-user-extra need as \(the user to impersonate\)/);
    await assert.rejects(loadCredentials(write('as-bad2', kubeconfig({ server: 'https://api' }, { token: 't', as: 'x', 'as-groups': 'g' })), {}), /user "u": as-groups must be a list of strings/);
  });

  it('merges KUBECONFIG files with the same names as kubectl does: the first entry of each name wins, not an error', async () => {
    const file = (server: string, token: string) => ({ apiVersion: 'v1', kind: 'Config', 'current-context': 'ctx', clusters: [{ name: 'c', cluster: { server } }], users: [{ name: 'u', user: { token } }], contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }] });
    const first = write('dup-a', file('https://first:6443', 'first-token'));
    const second = write('dup-b', file('https://second:6443', 'second-token'));
    const merged = await loadCredentials(undefined, { KUBECONFIG: `${first}:${second}` });
    assert.equal(merged.server, 'https://first:6443');
    assert.deepEqual((await applied(merged)).headers, { Authorization: 'Bearer first-token' });
    // Impersonation of the merged user, groups included (the library alone would send only Impersonate-User).
    const users = write('dup-users', { apiVersion: 'v1', kind: 'Config', users: [{ name: 'v', user: { token: 'tv', as: 'someone', 'as-groups': ['g1'] } }], contexts: [{ name: 'ctx-v', context: { cluster: 'c', user: 'v' } }], 'current-context': 'ctx-v' });
    const impersonating = await loadCredentials(undefined, { KUBECONFIG: `${users}:${first}` });
    assert.deepEqual((await applied(impersonating)).headers, { Authorization: 'Bearer tv', 'Impersonate-User': 'someone', 'Impersonate-Group': ['g1'] });
  });

  it('refuses a broken kubeconfig with what is wrong and how to fix it', async () => {
    const cases: Array<[unknown, RegExp]> = [
      ['just text', /not a kubeconfig/],
      [kubeconfig({ server: 'https://api' }, undefined, { 'current-context': '' }), /no current-context; set one with "kubectl config use-context NAME"/],
      [kubeconfig({ server: 'https://api' }, undefined, { 'current-context': 'prod' }), /current-context "prod" is not among its contexts/],
      [{ ...kubeconfig({ server: 'https://api' }, undefined), clusters: [] }, /names cluster "c", which is not among its clusters/],
      [{ ...kubeconfig({ server: 'https://api' }, {}), users: [] }, /names user "u", which is not among its users/],
      [kubeconfig({}, undefined), /cluster "c" has no server/],
      [kubeconfig({ server: 'api.example:6443' }, undefined), /server "api.example:6443", which is not an https:\/\/ URL/],
      [kubeconfig({ server: '10.0.0.1:6443' }, undefined), /server "10.0.0.1:6443", which is not an https:\/\/ URL/],
      [kubeconfig({ server: 'https://api' }, { 'client-certificate-data': b64('C') }), /client certificate without a key/],
    ];
    for (const [doc, message] of cases) assert.throws(() => resolveKubeconfig(doc, dir, 'cfg'), (e: Error) => e instanceof CredentialsError && /^kubeconfig cfg: /.test(e.message) && message.test(e.message), JSON.stringify(doc));

    await assert.rejects(loadCredentials(join(dir, 'missing'), {}), /cannot read kubeconfig .*missing \(ENOENT\); pass --kubeconfig FILE, set KUBECONFIG, or run in a pod/);
    await assert.rejects(loadCredentials(write('bad', 'clusters: [\n'), {}), /kubeconfig .*bad is not YAML at line \d+, column \d+/);
    // The parser's own message would quote the lines around the error: a token must not end up in the log.
    const dup = 'apiVersion: v1\nusers:\n- name: u\n  user:\n    token: SECRET-TOKEN-abc123\n    token: SECRET-TOKEN-abc123\n';
    await assert.rejects(loadCredentials(write('dup', dup), {}), (e: Error) => /is not YAML at line 6, column 5 \(DUPLICATE_KEY\)$/.test(e.message) && !e.message.includes('SECRET'));
    await assert.rejects(loadCredentials(write('b64', kubeconfig({ server: 'https://api', 'certificate-authority-data': 'not base64!' }, undefined)), {}), /kubeconfig .*b64: certificate-authority-data is not base64/);
    await assert.rejects(loadCredentials(write('c', kubeconfig({ server: 'https://api', 'certificate-authority': 'nope.crt' }, undefined)), {}), /cannot read the certificate authority .*nope\.crt \(ENOENT\)/);
    await assert.rejects(loadCredentials(undefined, { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }, join(dir, 'no-sa')), /in-cluster service account .*cannot read the certificate authority/);
  });
});
