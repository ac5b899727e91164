/** Stopping: the HTTPS server's shutdown in-process, and the signals of the real `kube-canary webhook` process. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCerts } from '../../src/certs/generate.js';
import { createLogger } from '../../src/kube/logger.js';
import { createWebhookMetrics } from '../../src/webhook/metrics.js';
import { createApp, serve } from '../../src/webhook/server.js';
import { startCli } from '../support/cli.js';
import { config, loadReview } from './fixtures.js';

describe('webhook shutdown', function () {
  this.timeout(30_000);
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kc-shutdown-'));
    const c = generateCerts({ hosts: ['127.0.0.1'], validDays: 1, keyBits: 1024 });
    writeFileSync(join(dir, 'tls.crt'), c.cert);
    writeFileSync(join(dir, 'tls.key'), c.key);
    writeFileSync(join(dir, 'ca.crt'), c.caCert);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function start() {
    const metrics = createWebhookMetrics();
    const log = createLogger('webhook', 'silent');
    return serve({ app: createApp({ config, metrics, log }), port: 0, bind: '127.0.0.1', certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), metrics, log, certPollMs: 60_000 });
  }

  it('a connection that never starts its TLS handshake (a port probe) is closed at the end of the grace, not after minutes', async () => {
    const running = await start();
    const probe = connect(running.port, '127.0.0.1');
    await new Promise((r) => probe.once('connect', r));
    const closed = new Promise((r) => probe.once('close', r));
    const t0 = Date.now();
    await running.shutdown(300);
    await closed;
    assert.ok(Date.now() - t0 < 2000, `stopped after ${Date.now() - t0} ms`);
  });

  it('logs a server error after the start (EMFILE on accept) instead of losing the first and crashing on the second', async () => {
    const lines: Array<{ msg: string; err?: string }> = [];
    const metrics = createWebhookMetrics();
    const log = createLogger('webhook', 'info', { write: (l: string) => void lines.push(JSON.parse(l)) });
    const running = await serve({ app: createApp({ config, metrics, log }), port: 0, bind: '127.0.0.1', certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), metrics, log, certPollMs: 60_000 });
    try {
      running.server.emit('error', new Error('accept EMFILE'));
      running.server.emit('error', new Error('accept EMFILE'));
      assert.equal(lines.filter((l) => l.msg === 'server error' && l.err === 'accept EMFILE').length, 2);
    } finally {
      await running.shutdown(100);
    }
  });

  it('closes an idle kept-alive connection at once', async () => {
    const running = await start();
    const agent = new Agent({ keepAlive: true });
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: running.port, path: '/mutate', method: 'POST', ca: readFileSync(join(dir, 'ca.crt')), agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end(JSON.stringify(loadReview('review-set-image')));
    });
    assert.equal(status, 200);
    const t0 = Date.now();
    await running.shutdown(20_000);
    agent.destroy();
    assert.ok(Date.now() - t0 < 1000, `stopped after ${Date.now() - t0} ms`);
  });

  describe('signals to the real process', () => {
    async function startProcess(args: string[] = []) {
      const proc = startCli(['webhook', '--port', '0', '--bind', '127.0.0.1', '--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key'), ...args]);
      await proc.waitForLog('webhook serving');
      const exited = new Promise<number | null>((resolve) => proc.child.once('exit', (code) => resolve(code)));
      return { proc, exited };
    }
    const msgs = (lines: string[]) => lines.map((l) => (JSON.parse(l) as { msg: string }).msg);

    const portOf = (proc: { lines: string[] }) => Number(new URL(JSON.parse(proc.lines.find((l) => l.includes('webhook serving'))!).address).port);

    it('SIGTERM waits the --shutdown-delay; a second signal stops at once, with the exit code of a killed process (143) when it cut a connection', async () => {
      const { proc, exited } = await startProcess(['--shutdown-delay', '30s']);
      const open = connect(portOf(proc), '127.0.0.1');
      open.on('error', () => {});
      await new Promise((r) => open.once('connect', r));
      try {
        proc.child.kill('SIGTERM');
        const line = await proc.waitForLog('stopping: not ready, still accepting until the delay is over (a second signal stops at once)');
        assert.equal(line.delayMs, 30_000);
        const t0 = Date.now();
        proc.child.kill('SIGTERM');
        assert.equal(await exited, 143);
        assert.ok(Date.now() - t0 < 2000, `exited ${Date.now() - t0} ms after the second signal`);
        assert.deepEqual(msgs(proc.lines).slice(-2), ['second signal: closed every connection', 'stopped']);
        assert.equal(proc.lines.map((l) => JSON.parse(l) as { msg: string; connections?: number }).find((l) => l.msg.startsWith('second signal'))?.connections, 1);
      } finally {
        open.destroy();
        await proc.stop('SIGKILL');
      }
    });

    it('two signals at once with nothing to cut short (timeout(1) signals the process and its group): a clean stop, exit 0', async () => {
      for (let i = 0; i < 3; i++) {
        const { proc, exited } = await startProcess();
        try {
          proc.child.kill('SIGTERM');
          proc.child.kill('SIGTERM');
          assert.equal(await exited, 0, proc.stderr());
          assert.equal(msgs(proc.lines).at(-1), 'stopped');
          assert.doesNotMatch(proc.stderr(), /Error|destroyed/);
        } finally {
          await proc.stop('SIGKILL');
        }
      }
    });

    it('SIGHUP re-reads the certificate files at once (as nginx or Prometheus do) instead of ending the process', async () => {
      const own = mkdtempSync(join(tmpdir(), 'kc-hup-'));
      const first = generateCerts({ hosts: ['127.0.0.1'], validDays: 1, keyBits: 1024 });
      writeFileSync(join(own, 'tls.crt'), first.cert);
      writeFileSync(join(own, 'tls.key'), first.key);
      const proc = startCli(['webhook', '--port', '0', '--bind', '127.0.0.1', '--tls-cert', join(own, 'tls.crt'), '--tls-key', join(own, 'tls.key'), '--cert-poll-ms', '600000']);
      try {
        await proc.waitForLog('webhook serving');
        const next = generateCerts({ hosts: ['127.0.0.1', 'localhost'], validDays: 2, keyBits: 1024 });
        writeFileSync(join(own, 'tls.key'), next.key);
        writeFileSync(join(own, 'tls.crt'), next.cert);
        proc.child.kill('SIGHUP');
        const reloaded = await proc.waitForLog('serving certificate reloaded', 3000);
        assert.match(String(reloaded.subjectAltName), /DNS:localhost/);
        assert.equal(proc.child.exitCode, null, 'still running');
      } finally {
        await proc.stop('SIGKILL');
        rmSync(own, { recursive: true, force: true });
      }
    });

    it('SIGINT (someone at a terminal) skips the delay', async () => {
      const { proc, exited } = await startProcess(['--shutdown-delay', '30s']);
      try {
        const t0 = Date.now();
        proc.child.kill('SIGINT');
        assert.equal(await exited, 0);
        assert.ok(Date.now() - t0 < 3000, `exited ${Date.now() - t0} ms after SIGINT`);
        assert.ok(!msgs(proc.lines).some((m) => m.startsWith('stopping: not ready')));
      } finally {
        await proc.stop('SIGKILL');
      }
    });

    it('a second signal also ends a stop held up by a connection that sends nothing', async () => {
      const { proc, exited } = await startProcess();
      const silent = connect(portOf(proc), '127.0.0.1');
      silent.on('error', () => {});
      await new Promise((r) => silent.once('connect', r));
      try {
        proc.child.kill('SIGTERM');
        await proc.waitForLog('stopping: finishing requests in flight');
        await new Promise((r) => setTimeout(r, 300));
        const t0 = Date.now();
        proc.child.kill('SIGINT');
        assert.equal(await exited, 130);
        assert.ok(Date.now() - t0 < 2000, `exited ${Date.now() - t0} ms after the second signal`);
        assert.deepEqual(msgs(proc.lines).slice(-3), ['stopping: finishing requests in flight', 'second signal: closed every connection', 'stopped']);
      } finally {
        silent.destroy();
        await proc.stop('SIGKILL');
      }
    });
  });
});
