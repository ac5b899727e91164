/** Failures before a request can be answered, against the real HTTPS server (serve) with the real app. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { generateCerts } from '../../src/certs/generate.js';
import { createLogger } from '../../src/kube/logger.js';
import { classifyConnectionError } from '../../src/webhook/connection-errors.js';
import { createWebhookMetrics } from '../../src/webhook/metrics.js';
import { type RunningServer, createApp, serve } from '../../src/webhook/server.js';
import { config, loadReview } from './fixtures.js';

const err = (message: string, code?: string) => Object.assign(new Error(message), code ? { code } : {});

describe('webhook connection errors: classification', () => {
  // Messages and codes as Node 20 reports them.
  const cases: Array<[string, Error, string, RegExp | undefined, string | undefined]> = [
    ['a client that does not trust the certificate (Go, OpenSSL)', err('80:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42', 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE'), 'tls', /caBundle/, undefined],
    ['a client that names the unknown CA', err('80:error:0A000418:SSL routines:ssl3_read_bytes:tlsv1 alert unknown ca', 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'), 'tls', /caBundle/, undefined],
    ['plain HTTP on the HTTPS port', err('80:error:0A00009C:SSL routines:ssl3_get_record:http request', 'ERR_SSL_HTTP_REQUEST'), 'tls', /must use https/, undefined],
    ['TLS 1.1 offered', err('80:error:0A000102:SSL routines:tls_early_post_process_client_hello:unsupported protocol', 'ERR_SSL_UNSUPPORTED_PROTOCOL'), 'tls', /TLS 1\.2/, undefined],
    ['a TCP probe that connects and leaves', err('Client network socket disconnected before secure TLS connection was established', 'ECONNRESET'), 'disconnect', undefined, undefined],
    ['a client that closes after the handshake', err('socket hang up', 'ECONNRESET'), 'disconnect', undefined, undefined],
    ['a client that never finishes its handshake', err('TLS handshake timeout', 'ERR_TLS_HANDSHAKE_TIMEOUT'), 'timeout', /10 s/, undefined],
    ['a request not received whole in time', err('Request timeout', 'ERR_HTTP_REQUEST_TIMEOUT'), 'timeout', /30 s/, '408 Request Timeout'],
    ['headers too large', err('Header overflow', 'HPE_HEADER_OVERFLOW'), 'http', undefined, '431 Request Header Fields Too Large'],
    ['a malformed request line', err('Invalid method encountered', 'HPE_INVALID_METHOD'), 'http', undefined, '400 Bad Request'],
  ];
  for (const [name, e, kind, hint, status] of cases) {
    it(`${name}: ${kind}${status ? `, answered ${status}` : ''}`, () => {
      const c = classifyConnectionError(e);
      assert.equal(c.kind, kind);
      assert.equal(c.status, status);
      if (hint) assert.match(c.hint ?? '', hint);
    });
  }
});

describe('webhook connection errors: the real HTTPS server', function () {
  this.timeout(20_000);
  let dir: string;
  let running: RunningServer;
  let ca: string;
  let otherCa: string;
  const lines: Array<Record<string, unknown>> = [];
  const metrics = createWebhookMetrics();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kc-connerr-'));
    const c = generateCerts({ hosts: ['127.0.0.1'], validDays: 1, keyBits: 1024 });
    ca = c.caCert;
    otherCa = generateCerts({ hosts: ['127.0.0.1'], validDays: 1, keyBits: 1024 }).caCert;
    writeFileSync(join(dir, 'tls.crt'), c.cert);
    writeFileSync(join(dir, 'tls.key'), c.key);
    const log = createLogger('webhook', 'info', { write: (l: string) => void lines.push(JSON.parse(l)) });
    const app = createApp({ config, metrics, log, bodyLimit: 64 * 1024 });
    running = await serve({ app, port: 0, bind: '127.0.0.1', certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), metrics, log, certPollMs: 60_000 });
  });
  after(async () => {
    await running?.shutdown(0);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes `raw` over TLS (trusting `trust`), resolves with everything read until the server closes or the handshake fails. */
  const exchange = (raw: string | ((s: import('node:tls').TLSSocket) => void), trust = ca) =>
    new Promise<{ text: string; error?: Error }>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: running.port, ca: trust, servername: undefined });
      let text = '';
      s.on('secureConnect', () => (typeof raw === 'string' ? s.write(raw) : raw(s)));
      s.on('data', (c) => (text += c.toString()));
      s.on('error', (error) => resolve({ text, error }));
      s.on('close', () => resolve({ text }));
    });
  const until = async (cond: () => boolean | Promise<boolean>) => {
    for (let i = 0; i < 100 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 20));
  };

  it('logs a handshake the client refused, with what to check, once a minute at most, and counts every one', async () => {
    // openssl s_client, like the apiserver's Go client, sends the alert a refusing client sends (Node's own client just hangs up).
    writeFileSync(join(dir, 'other-ca.crt'), otherCa);
    const refuse = () =>
      new Promise<string>((resolve) => {
        const p = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${running.port}`, '-CAfile', join(dir, 'other-ca.crt'), '-verify_return_error'], (_e, out, errOut) => resolve(`${out}${errOut}`));
        p.stdin!.end();
      });
    assert.match(await refuse(), /verify error|certificate verify failed/);
    await refuse();
    await until(async () => /kind="tls"\} 2/.test(await metrics.registry.metrics()));
    const logged = lines.filter((l) => l.msg === 'TLS handshake failed');
    assert.equal(logged.length, 1, 'the second failure within the minute is only counted');
    assert.equal(logged[0]!.level, 40);
    assert.match(String(logged[0]!.hint), /caBundle must be the CA that signed --tls-cert/);
    assert.equal(logged[0]!.err, 'sslv3 alert bad certificate');
    assert.equal(logged[0]!.remote, '127.0.0.1');
    assert.match(await metrics.registry.metrics(), /kube_canary_webhook_connection_errors_total\{kind="tls"\} 2/);
  });

  it('answers a malformed request with 400 and closes, counts and logs it, and keeps serving', async () => {
    const bad = await exchange('NOT-A-METHOD /mutate HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(bad.text, /^HTTP\/1\.1 400 Bad Request\r\n/);
    await until(() => lines.some((l) => l.msg === 'malformed HTTP request'));
    assert.ok(lines.some((l) => l.msg === 'malformed HTTP request' && l.kind === 'http'));
    assert.match(await metrics.registry.metrics(), /kube_canary_webhook_connection_errors_total\{kind="http"\} 1/);
    const body = JSON.stringify(loadReview('review-set-image'));
    const ok = await exchange(`POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    assert.match(ok.text, /^HTTP\/1\.1 200 /);
  });

  it('answers 408 to a request whose body stalled, and counts and logs it (Node reports the timeout as a clientError on that socket)', async () => {
    // The real timeout is 35 s; the server reacts to Node's event, raised here on the real socket as Node raises it.
    const got = new Promise<import('node:net').Socket>((resolve) => running.server.once('request', (req) => resolve(req.socket)));
    const stalled = exchange('POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"apiVersion":');
    const socket = await got;
    running.server.emit('clientError', Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), socket);
    assert.match((await stalled).text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    await until(async () => /kind="timeout"\} 1/.test(await metrics.registry.metrics()));
    assert.match(await metrics.registry.metrics(), /kube_canary_webhook_connection_errors_total\{kind="timeout"\} 1/);
    assert.ok(lines.some((l) => l.msg === 'connection timed out before a whole request arrived' && String(l.hint).includes('30 s')));
  });

  it('does not log a client that connects and leaves (a TCP probe), but counts it', async () => {
    const before = lines.length;
    await new Promise<void>((resolve) => {
      const s = netConnect(running.port, '127.0.0.1', () => s.destroy());
      s.on('close', () => resolve());
    });
    await until(async () => /kind="disconnect"\} 1/.test(await metrics.registry.metrics()));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(lines.slice(before).filter((l) => l.level === 40).length, 0);
    assert.match(await metrics.registry.metrics(), /kube_canary_webhook_connection_errors_total\{kind="disconnect"\} 1/);
  });

  it('Expect: 100-continue: refuses an over-limit body at once (no 100, the body is never sent), and lets a good one through', async () => {
    const big = await exchange('POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n');
    assert.match(big.text, /^HTTP\/1\.1 413 /, 'no 100 Continue before the refusal');
    assert.match(big.text, /larger than the limit of 65536 bytes/);
    const body = JSON.stringify(loadReview('review-set-image'));
    const good = await exchange((s) => {
      s.write(`POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`);
      s.once('data', (c) => {
        assert.match(c.toString(), /^HTTP\/1\.1 100 Continue\r\n/);
        s.write(body);
      });
    });
    assert.match(good.text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    assert.match(good.text, /"patchType":"JSONPatch"/);
  });
});
