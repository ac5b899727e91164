/**
 * Leader election against a fake Lease API (a test double over HTTP with resourceVersion
 * conflicts, like the API server): one leader at a time, a partitioned leader fences itself
 * before anyone can take over, and a released lease is taken at once.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { specCredentials } from '../../src/kube/credentials.js';
import { KubeHttp } from '../../src/kube/http.js';
import { createLogger } from '../../src/kube/logger.js';
import { LeaderElector } from '../../src/progressor/leader.js';

type Lease = { metadata: { name: string; namespace: string; resourceVersion?: string }; spec?: Record<string, unknown> };

describe('progressor leader election (Lease)', function () {
  this.timeout(30_000);
  let server: http.Server;
  let port: number;
  let lease: Lease | undefined;
  let rv = 0;
  const blocked = new Set<string>();

  before(async () => {
    server = http.createServer((req, res) => {
      const who = (req.headers.authorization ?? '').replace('Bearer ', '');
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const reply = (code: number, obj: unknown) => res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(obj));
        if (blocked.has(who)) return reply(503, { message: 'partitioned' });
        if (req.method === 'GET') return lease ? reply(200, lease) : reply(404, { message: 'not found' });
        const obj = JSON.parse(body) as Lease;
        if (req.method === 'POST') {
          if (lease) return reply(409, { message: 'exists' });
        } else if (obj.metadata.resourceVersion !== lease?.metadata.resourceVersion) {
          return reply(409, { message: 'conflict' });
        }
        lease = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++rv) } };
        return reply(200, lease);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  function elector(id: string, events: string[], logLines?: Array<{ level: number; msg: string }>) {
    const kc = specCredentials({ server: `http://127.0.0.1:${port}`, token: id }, 'test');
    return new LeaderElector(
      new KubeHttp(kc),
      { namespace: 'kube-canary', name: 'test', identity: id, leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 100, onStartedLeading: () => events.push(`${id} start`), onStoppedLeading: () => events.push(`${id} stop`) },
      logLines ? createLogger('test', 'info', { write: (line: string) => void logLines.push(JSON.parse(line)) }) : createLogger('test', 'silent'),
    );
  }

  it('says a shutdown is a step down (info), not a lost leadership it stands by to retake (warn)', async () => {
    lease = undefined;
    const lines: Array<{ level: number; msg: string }> = [];
    const a = elector('a', [], lines);
    a.start();
    while (!a.isLeader()) await new Promise((r) => setTimeout(r, 20));
    await a.release();
    const said = lines.map((l) => `${l.level} ${l.msg}`);
    assert.ok(said.includes('30 stepped down as leader to shut down; stopped acting'), said.join('\n'));
    assert.ok(!said.some((l) => l.includes('lost leadership')), said.join('\n'));
  });

  it('one leader; a partitioned leader fences itself before the other takes over; release hands over at once', async () => {
    lease = undefined;
    const events: string[] = [];
    const a = elector('a', events);
    const b = elector('b', events);
    let overlap = 0;
    const watch = setInterval(() => {
      if (a.isLeader() && b.isLeader()) overlap += 1;
    }, 10);
    try {
      a.start();
      await new Promise((r) => setTimeout(r, 300));
      b.start();
      await new Promise((r) => setTimeout(r, 700));
      assert.deepEqual(events, ['a start']);
      assert.ok(a.isLeader() && !b.isLeader());

      blocked.add('a');
      const partitionedAt = Date.now();
      while (!b.isLeader() && Date.now() - partitionedAt < 10_000) await new Promise((r) => setTimeout(r, 20));
      assert.ok(b.isLeader(), 'b took over');
      const i = events.indexOf('a stop');
      assert.ok(i >= 0 && i < events.indexOf('b start'), `a stopped acting before b started: ${events.join(', ')}`);
      assert.equal(overlap, 0, 'never two leaders at once');

      blocked.delete('a');
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(!a.isLeader(), 'a does not steal a held lease back');

      const releasedAt = Date.now();
      await b.release();
      while (!a.isLeader() && Date.now() - releasedAt < 5000) await new Promise((r) => setTimeout(r, 20));
      assert.ok(a.isLeader());
      // Expiry would take the full 3 s lease duration; a release is taken on the next retry.
      assert.ok(Date.now() - releasedAt < 2000, `a released lease is taken without waiting for expiry (${Date.now() - releasedAt} ms)`);
      assert.equal(overlap, 0);
    } finally {
      clearInterval(watch);
      await a.release();
      await b.release();
    }
  });

  it('a wall clock stepped back (NTP, a resumed VM) does not keep a leader that cannot renew in charge', async () => {
    lease = undefined;
    const events: string[] = [];
    const a = elector('a', events);
    const realNow = Date.now;
    try {
      a.start();
      while (!a.isLeader()) await new Promise((r) => setTimeout(r, 20));
      blocked.add('a');
      const stepped = realNow() - 60_000;
      const since = realNow();
      Date.now = () => stepped + (realNow() - since);
      const t0 = performance.now();
      while (a.isLeader() && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
      assert.ok(!a.isLeader(), 'still leading after 5 s without a renewal');
      assert.ok(performance.now() - t0 < 2500, `fenced after ${Math.round(performance.now() - t0)} ms (renew deadline 2 s)`);
      // The fence (isLeader) is immediate; the controller is stopped on the next retry tick.
      while (events.length < 2 && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(events, ['a start', 'a stop']);
    } finally {
      Date.now = realNow;
      blocked.delete('a');
      await a.release();
    }
  });
});
