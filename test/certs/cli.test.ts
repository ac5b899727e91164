/** The real `kube-canary certs` process: what it leaves on disk, and how it refuses bad input. */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/cli.js';

/** The CLI's stderr when it exits non-zero (fails the test if it succeeds or is killed by the timeout). */
async function refusal(args: string[]): Promise<string> {
  try {
    await runCli(['certs', ...args], 20_000);
  } catch (e) {
    const err = e as { code?: number; killed?: boolean; stderr: string };
    assert.equal(err.killed, false, `killed after 20 s: ${args.join(' ')}`);
    assert.equal(err.code, 1);
    return err.stderr;
  }
  assert.fail(`certs ${args.join(' ')} succeeded`);
}

describe('kube-canary certs (real process)', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'kc-certs-cli-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('with --force replaces an existing 0644 tls.key with a 0600 one, says the CA is new, and the chain verifies', async () => {
    writeFileSync(join(dir, 'tls.key'), 'old', { mode: 0o644 });
    chmodSync(join(dir, 'tls.key'), 0o644);
    const { stderr } = await runCli(['certs', '--out', dir, '--hosts', '127.0.0.1,localhost', '--valid-days', '4000', '--force'], 30_000);
    assert.match(stderr, /replaced tls\.key in .*: put the new ca\.crt into the webhook configuration's caBundle/);
    assert.equal(statSync(join(dir, 'tls.key')).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
    const ca = new X509Certificate(readFileSync(join(dir, 'ca.crt')));
    const leaf = new X509Certificate(readFileSync(join(dir, 'tls.crt')));
    assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
    assert.ok(Date.parse(ca.validTo) >= Date.parse(leaf.validTo), 'the CA outlives the leaf');
    assert.ok(leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(readFileSync(join(dir, 'tls.key')))));
  });

  it('leaves the old files as they were when one cannot be replaced', async () => {
    writeFileSync(join(dir, 'ca.crt'), 'old ca');
    writeFileSync(join(dir, 'tls.crt'), 'old crt');
    mkdirSync(join(dir, 'tls.key'));
    // Said first, without --force too: --force could not help.
    for (const args of [['--out', dir, '--force'], ['--out', dir]]) {
      const err = await refusal(args);
      assert.match(err, /tls\.key exists and is not a regular file: remove it or choose another --out/);
      assert.doesNotMatch(err, /--force/);
    }
    assert.equal(readFileSync(join(dir, 'ca.crt'), 'utf8'), 'old ca');
    assert.equal(readFileSync(join(dir, 'tls.crt'), 'utf8'), 'old crt');
    assert.deepEqual(readdirSync(dir).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
  });

  it('will not replace a working CA by accident: a second run into the same --out is refused without --force, and nothing changes', async () => {
    await runCli(['certs', '--out', dir], 30_000);
    const before = readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8'));
    const err = await refusal(['--out', dir]);
    assert.match(err, /already has ca\.crt, tls\.crt, tls\.key; new ones come with a new CA, and every webhook configuration whose caBundle holds the current ca\.crt fails each call until it is updated .* Pass --force to replace them, then update the caBundle; or choose another --out/);
    assert.deepEqual(readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8')), before);
    // Each CA has its own name, so "signed by unknown authority" can be told from a signature mix-up.
    await runCli(['certs', '--out', join(dir, 'other')], 30_000);
    assert.match(new X509Certificate(readFileSync(join(dir, 'ca.crt'))).subject, /^CN=kube-canary-ca@\d+$/);
  });

  it('adds up repeated --hosts, and says when the --valid-days it compares with is the default', async () => {
    const { stdout } = await runCli(['certs', '--out', dir, '--hosts', '127.0.0.1', '--hosts', 'kube-canary-webhook.kube-canary.svc'], 30_000);
    assert.match(stdout, /SANs 127\.0\.0\.1, kube-canary-webhook\.kube-canary\.svc/);
    assert.equal(new X509Certificate(readFileSync(join(dir, 'tls.crt'))).subjectAltName, 'IP Address:127.0.0.1, DNS:kube-canary-webhook.kube-canary.svc');
    assert.match(await refusal(['--out', join(dir, 'x'), '--ca-valid-days', '30']), /--ca-valid-days 30 is shorter than the serving certificate's default validity \(--valid-days 365\)/);
  });

  it('refuses a leaf longer than the CA, and a CA under 1 day, writing nothing', async () => {
    const out = join(dir, 'out');
    assert.match(await refusal(['--out', out, '--valid-days', '4000', '--ca-valid-days', '3650']), /--valid-days 4000 is longer than --ca-valid-days 3650/);
    assert.match(await refusal(['--out', out, '--ca-valid-days', '0']), /--ca-valid-days "0" must be a whole number from 1 to 36500/);
    assert.equal(existsSync(out), false);
  });

  it('states the allowed validity range once, the same for a word and for 0', async () => {
    assert.match(await refusal(['--out', dir, '--valid-days', 'abc']), /--valid-days "abc" must be a whole number from 1 to 36500/);
    assert.match(await refusal(['--out', dir, '--valid-days', '0']), /--valid-days "0" must be a whole number from 1 to 36500/);
  });

  it('refuses an empty --out instead of writing into the working directory', async () => {
    assert.match(await refusal(['--out', '']), /--out is empty: give the directory/);
  });

  it('names a bad host and what is allowed', async () => {
    // Every kind of bad host is in test/certs/hosts.test.ts; this is the path from the flag to the message.
    assert.match(await refusal(['--out', dir, '--hosts', 'localhost,256.1.1.1']), /--hosts: "256\.1\.1\.1" looks like an IPv4 address but is not one; allowed: an IPv4 address/);
    assert.deepEqual(readdirSync(dir), []);
  });

  (existsSync('/proc/self') ? it : it.skip)('fails fast on an --out under /proc', async () => {
    assert.match(await refusal(['--out', '/proc/kc']), /cannot create directory \/proc\/kc for --out \/proc\/kc \(ENOENT\)/);
  });
});
