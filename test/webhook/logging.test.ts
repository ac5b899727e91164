/** Log lines survive a graceful stop: every line written, in order, before the process exits. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createLogger, endLogger } from '../../src/kube/logger.js';
import { runCli, startCli } from '../support/cli.js';
import { loadReview } from './fixtures.js';

describe('logging on shutdown', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'kc-logging-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a LOG_LEVEL that is not a level, naming the variable and the levels', async () => {
    assert.throws(() => createLogger('webhook', 'bogus'), /^Error: LOG_LEVEL "bogus" is not a log level; use one of trace, debug, info, warn, error, fatal, or silent$/);
    const err = await runCli(['webhook', '--tls-cert', 'x', '--tls-key', 'y'], 10_000, { LOG_LEVEL: 'verbose' }).then(
      () => assert.fail('started'),
      (e: { stderr: string }) => e.stderr,
    );
    assert.match(err, /LOG_LEVEL "verbose" is not a log level/);
  });

  it('endLogger resolves once every line of an asynchronous destination is written, in order', async () => {
    const file = join(dir, 'async.log');
    const log = createLogger('test', 'info', pino.destination({ dest: file, sync: false }));
    // One write in flight, the rest queued behind it: what a busy webhook has when SIGTERM lands.
    for (let i = 0; i < 5000; i++) log.info({ i }, 'line');
    await endLogger(log);
    const seq = readFileSync(file, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => (JSON.parse(l) as { i: number }).i);
    assert.equal(seq.length, 5000);
    assert.ok(seq.every((v, i) => v === i), 'lines out of order');
  });

  it('endLogger resolves at once for a destination that is not a stream (tests, custom sinks)', async () => {
    const lines: string[] = [];
    const log = createLogger('test', 'info', { write: (l: string) => void lines.push(l) });
    log.info('x');
    await endLogger(log);
    assert.equal(lines.length, 1);
  });

  it('the webhook process writes every admission line and then "stopping", "stopped", in that order, on SIGTERM', async () => {
    await runCli(['certs', '--out', join(dir, 'certs'), '--hosts', '127.0.0.1']);
    const proc = startCli(['webhook', '--port', '0', '--tls-cert', join(dir, 'certs/tls.crt'), '--tls-key', join(dir, 'certs/tls.key')]);
    const serving = await proc.waitForLog('webhook serving');
    const port = Number(/:(\d+)$/.exec(String(serving.address))![1]);
    const ca = readFileSync(join(dir, 'certs/ca.crt'));
    const body = JSON.stringify(loadReview('review-set-image'));
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const post = () =>
      new Promise<number>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port, path: '/mutate', method: 'POST', ca, agent, headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        req.end(body);
      });
    const n = 200;
    const codes = await Promise.all(Array.from({ length: n }, post));
    agent.destroy();
    assert.ok(codes.every((c) => c === 200));
    assert.equal(await proc.stop('SIGTERM'), 0);
    const msgs = proc.lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    assert.equal(msgs.filter((m) => m === 'admission').length, n);
    assert.deepEqual(msgs.slice(-2), ['stopping: finishing requests in flight', 'stopped']);
  });
});
