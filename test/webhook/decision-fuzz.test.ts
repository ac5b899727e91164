import assert from 'node:assert/strict';
import fastJsonPatch from 'fast-json-patch';
import { decide } from '../../src/webhook/decision.js';
import { parseReview } from '../../src/webhook/review.js';
import { config, loadReview } from './fixtures.js';

/**
 * Every member of a recorded AdmissionReview (managedFields aside) replaced, one at a time, by a
 * value of each JSON type: whatever arrives, the decision is an answer (allowed, patched or
 * denied with a reason), never an exception that would become a 500, and a patch it returns
 * applies to the object it was given.
 */
describe('webhook decision over malformed members', () => {
  const VALUES: unknown[] = [null, [], {}, 'x', 5, true];
  for (const fixture of ['review-set-image', 'review-create'] as const) {
    const base = loadReview(fixture);
    const paths: string[][] = [];
    const walk = (o: unknown, p: string[]) => {
      if (p.includes('managedFields')) return;
      paths.push(p);
      if (o && typeof o === 'object') for (const k of Object.keys(o)) walk((o as Record<string, unknown>)[k], [...p, k]);
    };
    walk(base.request, []);
    it(`answers every variant of ${fixture} (${paths.length} members x ${VALUES.length} values x 2 entries)`, () => {
      const failures: string[] = [];
      for (const p of paths) {
        if (p.length === 0) continue;
        for (const v of VALUES) {
          const r = structuredClone(base);
          let o = r.request as unknown as Record<string, unknown>;
          for (const k of p.slice(0, -1)) o = o[k] as Record<string, unknown>;
          o[p.at(-1)!] = structuredClone(v);
          const where = `${p.join('.')}=${JSON.stringify(v)}`;
          let request;
          try {
            request = parseReview(JSON.stringify(r));
          } catch {
            continue; // the envelope itself is refused with a 400: covered by review.test.ts
          }
          for (const source of ['label', 'namespace'] as const) {
            try {
              const d = decide(request, source, config);
              if (d.outcome === 'denied') assert.ok(d.response.status?.message, `${where}: a denial without a message`);
              if (d.response.patch) {
                const ops = JSON.parse(Buffer.from(d.response.patch, 'base64').toString('utf8'));
                fastJsonPatch.applyPatch(structuredClone(request.object), ops, true);
              }
            } catch (e) {
              failures.push(`${source} ${where}: ${(e as Error).message.split("\n")[0]}`);
            }
          }
        }
      }
      assert.deepEqual(failures, []);
    });
  }
});
