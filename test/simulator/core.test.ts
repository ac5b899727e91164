import assert from 'node:assert/strict';
import {
  ANN_ERROR_RATE,
  ANN_LATENCY_MS,
  ANN_RPS,
  ISTIO_DURATION_BUCKETS,
  advance,
  advanceInPlace,
  behaviourOf,
  bucketIndex,
  emptyState,
  planFlows,
  renderMetrics,
  serviceNameOf,
  workloadOf,
  type PodObj,
  type Snapshot,
} from '../e2e/simulator/core.js';

function pod(name: string, deployment: string, labels: Record<string, string>, ann: Record<string, string> = {}, ready = true): PodObj {
  const hash = 'abc123';
  return {
    metadata: { name, labels: { ...labels, 'pod-template-hash': hash }, annotations: ann, ownerReferences: [{ kind: 'ReplicaSet', name: `${deployment}-${hash}` }] },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

function snapshot(stableW: number, canaryW: number, over: Partial<Snapshot> = {}): Snapshot {
  return {
    namespace: 'test',
    defaultRps: 100,
    services: [{ metadata: { name: 'review' }, spec: { selector: { app: 'review' } } }],
    pods: [
      pod('review-abc123-x1', 'review', { app: 'review', version: 'stable' }, { [ANN_LATENCY_MS]: '40' }),
      pod('review-abc123-x2', 'review', { app: 'review', version: 'stable' }, { [ANN_LATENCY_MS]: '40' }),
      pod('review-canary-abc123-y1', 'review-canary', { app: 'review', version: 'canary' }, { [ANN_ERROR_RATE]: '0.3', [ANN_LATENCY_MS]: '300' }),
    ],
    virtualServices: [
      {
        metadata: { name: 'review' },
        spec: {
          hosts: ['review'],
          http: [{ route: [{ destination: { host: 'review', subset: 'stable' }, weight: stableW }, { destination: { host: 'review', subset: 'canary' }, weight: canaryW }] }],
        },
      },
    ],
    destinationRules: [
      { metadata: { name: 'review' }, spec: { host: 'review.test.svc.cluster.local', subsets: [{ name: 'stable', labels: { version: 'stable' } }, { name: 'canary', labels: { version: 'canary' } }] } },
    ],
    ...over,
  };
}

describe('simulator core: planFlows (VirtualService weights over DestinationRule subsets)', () => {
  it('splits the Service\'s rate by weight, per workload, with each pod\'s own behaviour', () => {
    const p = planFlows(snapshot(75, 25));
    assert.deepEqual(
      p.flows.map((f) => [f.workload, f.service, f.rps, f.errorRate, f.latencyMs]),
      [
        ['review', 'review.test.svc.cluster.local', 75, 0, 40],
        ['review-canary', 'review.test.svc.cluster.local', 25, 0.3, 300],
      ],
    );
    assert.equal(p.unroutedRps, 0);
    assert.deepEqual(p.routes['review.test.svc.cluster.local'], [
      { subset: 'stable', weight: 75, endpoints: 2 },
      { subset: 'canary', weight: 25, endpoints: 1 },
    ]);
  });

  it('weight 0 sends nothing to that subset; 100/0 sends everything to stable', () => {
    const p = planFlows(snapshot(100, 0));
    assert.deepEqual(p.flows.filter((f) => f.rps > 0).map((f) => f.workload), ['review']);
  });

  it('reads behaviour from the running pods, not the (paused) Deployment template', () => {
    const s = snapshot(100, 0);
    s.pods.push(pod('review-def-z1', 'review', { app: 'review', version: 'stable' }, { [ANN_ERROR_RATE]: '1' }));
    const flows = planFlows(s).flows.filter((f) => f.workload === 'review');
    assert.deepEqual(flows.map((f) => [f.errorRate, Math.round(f.rps * 100) / 100]), [[0, 66.67], [1, 33.33]]);
  });

  it('without a VirtualService, all ready endpoints of the Service share the traffic', () => {
    const p = planFlows(snapshot(0, 0, { virtualServices: [] }));
    assert.deepEqual(p.flows.map((f) => [f.workload, Math.round(f.rps * 100) / 100]), [['review', 66.67], ['review-canary', 33.33]]);
  });

  it('not-ready or terminating pods get nothing; a subset without endpoints is unrouted', () => {
    const s = snapshot(50, 50);
    s.pods[2] = { ...s.pods[2]!, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'False' }] } };
    s.pods[1] = { ...s.pods[1]!, metadata: { ...s.pods[1]!.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } };
    const p = planFlows(s);
    assert.deepEqual(p.flows.map((f) => [f.workload, f.rps]), [['review', 50]]);
    assert.equal(p.unroutedRps, 50);
  });

  it('an undefined subset is unrouted and noted', () => {
    const p = planFlows(snapshot(50, 50, { destinationRules: [] }));
    assert.equal(p.flows.length, 0);
    assert.equal(p.unroutedRps, 100);
    assert.ok(p.notes.some((n) => n.includes('subset "stable"')));
  });

  it('uses the first HTTP rule without match, and scales weights not adding to 100', () => {
    const s = snapshot(1, 1);
    s.virtualServices[0]!.spec!.http!.unshift({ match: [{ uri: { prefix: '/x' } }], route: [{ destination: { host: 'review', subset: 'canary' } }] });
    const p = planFlows(s);
    assert.deepEqual(p.flows.map((f) => f.rps), [50, 50]);
    assert.ok(p.notes.some((n) => n.includes('add up to 2')));
  });

  it('honours the per-Service rate annotation and isolates Services by selector', () => {
    const s = snapshot(100, 0);
    s.services[0]!.metadata.annotations = { [ANN_RPS]: '10' };
    s.services.push({ metadata: { name: 'other', annotations: { [ANN_RPS]: '5' } }, spec: { selector: { app: 'other' } } });
    s.pods.push(pod('other-abc123-q', 'other', { app: 'other', version: 'stable' }));
    const p = planFlows(s);
    assert.deepEqual(p.flows.filter((f) => f.rps > 0).map((f) => [f.workload, f.service, f.rps]), [
      ['other', 'other.test.svc.cluster.local', 5],
      ['review', 'review.test.svc.cluster.local', 10],
    ]);
  });

  it('resolves hosts, workloads and behaviour defaults', () => {
    assert.equal(serviceNameOf('review', 'test'), 'review');
    assert.equal(serviceNameOf('review.test.svc.cluster.local', 'test'), 'review');
    assert.equal(serviceNameOf('review.other', 'test'), undefined);
    assert.equal(workloadOf(pod('p', 'review-canary', {})), 'review-canary');
    const notes: string[] = [];
    assert.deepEqual(behaviourOf({ [ANN_ERROR_RATE]: '2', [ANN_LATENCY_MS]: 'x' }, notes, 'pod p'), { errorRate: 0, latencyMs: 20 });
    assert.equal(notes.length, 2);
  });
});

describe('simulator core: advance and renderMetrics', () => {
  const flows = [
    { namespace: 'test', workload: 'review', service: 'review.test.svc.cluster.local', rps: 75, errorRate: 0, latencyMs: 40 },
    { namespace: 'test', workload: 'review-canary', service: 'review.test.svc.cluster.local', rps: 25, errorRate: 0.3, latencyMs: 300 },
  ];

  it('counts exactly rate x time, with the error fraction, even in small ticks', () => {
    let s = emptyState();
    for (let i = 0; i < 100; i++) s = advance(s, { flows, unroutedRps: 1 }, 100); // 10 s in 100 ms ticks
    const stable = s.series['test/review/review.test.svc.cluster.local']!;
    const canary = s.series['test/review-canary/review.test.svc.cluster.local']!;
    assert.equal(stable.byCode['200']!.requests, 750);
    assert.equal(stable.byCode['503'], undefined);
    assert.equal(canary.byCode['200']!.requests + canary.byCode['503']!.requests, 250);
    assert.equal(canary.byCode['503']!.requests, 75);
    assert.equal(s.unrouted, 10);
  });

  it('does not modify its input state', () => {
    const s0 = advance(emptyState(), { flows, unroutedRps: 0 }, 1000);
    const snap = JSON.stringify(s0);
    advance(s0, { flows, unroutedRps: 0 }, 1000);
    assert.equal(JSON.stringify(s0), snap);
  });

  it('advanceInPlace counts exactly like advance', () => {
    let pure = emptyState();
    const mut = emptyState();
    for (let i = 0; i < 37; i++) {
      pure = advance(pure, { flows, unroutedRps: 0.5 }, 73);
      advanceInPlace(mut, { flows, unroutedRps: 0.5 }, 73);
    }
    assert.deepEqual(mut, pure);
  });

  it('puts latencies in Istio\'s default buckets', () => {
    assert.equal(ISTIO_DURATION_BUCKETS.length, 19);
    assert.equal(ISTIO_DURATION_BUCKETS[bucketIndex(40)], 50);
    assert.equal(ISTIO_DURATION_BUCKETS[bucketIndex(50)], 50);
    assert.equal(ISTIO_DURATION_BUCKETS[bucketIndex(300)], 500);
    assert.equal(bucketIndex(1e9), ISTIO_DURATION_BUCKETS.length);
  });

  it('drops a workload whose endpoints are gone; it restarts from zero when back', () => {
    let s = advance(emptyState(), { flows, unroutedRps: 0 }, 1000);
    s = advance(s, { flows: [flows[0]!], unroutedRps: 0 }, 1000);
    assert.equal(s.series['test/review-canary/review.test.svc.cluster.local'], undefined);
    s = advance(s, { flows, unroutedRps: 0 }, 1000);
    const c = s.series['test/review-canary/review.test.svc.cluster.local']!;
    assert.equal(c.byCode['200']!.requests + c.byCode['503']!.requests, 25);
  });

  it('renders Istio-format counters and cumulative histograms per workload', () => {
    const s = advance(emptyState(), { flows, unroutedRps: 0 }, 4000);
    const text = renderMetrics(s);
    const common = 'destination_workload_namespace="test",destination_service="review.test.svc.cluster.local"';
    assert.match(text, /# TYPE istio_requests_total counter/);
    assert.match(text, new RegExp(`istio_requests_total\\{reporter="destination",[^}]*destination_workload="review-canary",${common}[^}]*response_code="503"[^}]*\\} 30\\n`));
    assert.match(text, new RegExp(`istio_requests_total\\{reporter="destination",[^}]*destination_workload="review",${common}[^}]*response_code="200"[^}]*\\} 300\\n`));
    assert.match(text, /# TYPE istio_request_duration_milliseconds histogram/);
    // review-canary 200s: 70 requests at 300 ms -> 0 up to le=250, 70 from le=500 on.
    assert.match(text, /istio_request_duration_milliseconds_bucket\{[^}]*destination_workload="review-canary"[^}]*response_code="200"[^}]*le="250"\} 0\n/);
    assert.match(text, /istio_request_duration_milliseconds_bucket\{[^}]*destination_workload="review-canary"[^}]*response_code="200"[^}]*le="500"\} 70\n/);
    assert.match(text, /istio_request_duration_milliseconds_bucket\{[^}]*destination_workload="review-canary"[^}]*response_code="200"[^}]*le="\+Inf"\} 70\n/);
    assert.match(text, /istio_request_duration_milliseconds_sum\{[^}]*destination_workload="review-canary"[^}]*response_code="200"[^}]*\} 21000\n/);
    assert.match(text, /istio_request_duration_milliseconds_count\{[^}]*destination_workload="review"[^}]*response_code="200"[^}]*\} 300\n/);
  });
});
