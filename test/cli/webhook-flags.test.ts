/** `kube-canary webhook` refuses unusable flags and files at start, naming the flag and the fix. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startCli } from '../support/cli.js';

describe('kube-canary webhook: flags and files refused at start (real process)', function () {
  this.timeout(60_000);
  let dir: string;
  let cert: string;
  let key: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kc-wflags-'));
    await runCli(['certs', '--out', join(dir, 'c'), '--hosts', '127.0.0.1']);
    cert = join(dir, 'c/tls.crt');
    key = join(dir, 'c/tls.key');
    mkdirSync(join(dir, 'a-directory'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** The stderr of a start that must fail (with a 10 s bound: a start that succeeds would serve forever). */
  async function refusal(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
    const err = await runCli(['webhook', '--port', '0', ...args], 10_000, env).then(
      () => assert.fail('the webhook started'),
      (e: { stderr: string; killed?: boolean }) => e,
    );
    assert.equal(err.killed, false, `it kept running instead of refusing: ${err.stderr}`);
    return err.stderr;
  }

  it('refuses an empty --bind or KUBE_CANARY_BIND, which would listen on every interface', async () => {
    assert.match(await refusal(['--bind', '', '--tls-cert', cert, '--tls-key', key]), /--bind is empty; give a value, e.g. --bind 127.0.0.1/);
    assert.match(await refusal(['--tls-cert', cert, '--tls-key', key], { KUBE_CANARY_BIND: '' }), /--bind is empty/);
  });

  it('names the flag and the file when the certificate or key cannot be read', async () => {
    assert.match(await refusal(['--tls-cert', join(dir, 'missing.crt'), '--tls-key', key]), /cannot read the serving certificate .*missing\.crt \(--tls-cert\): no such file/);
    assert.match(await refusal(['--tls-cert', cert, '--tls-key', join(dir, 'a-directory')]), /cannot read the private key .*a-directory \(--tls-key\): it is a directory/);
  });

  it('names the environment variable, not the flag, when a bad default analysis came from KUBE_CANARY_DEFAULT_ANALYSIS', async () => {
    assert.match(await refusal(['--tls-cert', cert, '--tls-key', key], { KUBE_CANARY_DEFAULT_ANALYSIS: 'maxWeight: 25\nstepWeight: 50' }), /KUBE_CANARY_DEFAULT_ANALYSIS: analysis.stepWeight 50 is larger than analysis.maxWeight 25/);
    assert.match(await refusal(['--tls-cert', cert, '--tls-key', key, '--default-analysis', 'maxWeight: 25\nstepWeight: 50']), /--default-analysis: analysis.stepWeight 50/);
  });

  it('names the environment variables the certificate and key came from, and which of the two is missing', async () => {
    assert.match(await refusal([], { KUBE_CANARY_TLS_CERT: join(dir, 'nope.crt'), KUBE_CANARY_TLS_KEY: key }), /cannot read the serving certificate .*nope\.crt \(KUBE_CANARY_TLS_CERT\): no such file/);
    assert.match(await refusal([], { KUBE_CANARY_TLS_KEY: key }), /--tls-cert \(KUBE_CANARY_TLS_CERT\) is required: the serving certificate and its key, as PEM files/);
    assert.match(await refusal([]), /--tls-cert \(KUBE_CANARY_TLS_CERT\) and --tls-key \(KUBE_CANARY_TLS_KEY\) are required/);
  });

  it('says which option to change when it cannot listen: a port in use, a privileged port, an address not of this machine', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as AddressInfo).port;
    try {
      assert.match(await refusal(['--port', String(port), '--tls-cert', cert, '--tls-key', key]), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use by another process; stop it or choose another --port`));
      // (refusal() passes --port 0, which would win over the variable)
      const fromEnv = await runCli(['webhook', '--tls-cert', cert, '--tls-key', key], 10_000, { KUBE_CANARY_PORT: String(port) }).then(
        () => assert.fail('the webhook started'),
        (e: { stderr: string }) => e.stderr,
      );
      assert.match(fromEnv, /the port is in use by another process; stop it or choose another KUBE_CANARY_PORT/);
    } finally {
      busy.close();
    }
    assert.match(await refusal(['--bind', '192.0.2.1', '--tls-cert', cert, '--tls-key', key]), /cannot listen on 192\.0\.2\.1:0: --bind "192\.0\.2\.1" is not an address of this machine; give one of its IP addresses, e\.g\. 127\.0\.0\.1/);
  });

  it("takes the progressor's user from the namespace it is installed in (POD_NAMESPACE), unless --progressor-user says otherwise", async () => {
    for (const [args, users] of [[[], ['system:serviceaccount:platform:kube-canary-progressor']], [['--progressor-user', 'ci-bot,alice'], ['ci-bot', 'alice']]] as const) {
      const proc = startCli(['webhook', '--port', '0', '--bind', '127.0.0.1', '--tls-cert', cert, '--tls-key', key, ...args], { POD_NAMESPACE: 'platform' });
      try {
        assert.deepEqual((await proc.waitForLog('webhook serving')).progressorUsers, users);
      } finally {
        await proc.stop('SIGKILL');
      }
    }
  });

  it('refuses a certificate poll interval that is not a number of milliseconds from 50', async () => {
    assert.match(await refusal(['--tls-cert', cert, '--tls-key', key], { KUBE_CANARY_CERT_POLL_MS: 'abc' }), /--cert-poll-ms "abc" must be a whole number from 50 to 600000/);
    assert.match(await refusal(['--tls-cert', cert, '--tls-key', key, '--cert-poll-ms', '1']), /--cert-poll-ms "1" must be/);
  });
});
