/**
 * JSON Patch (RFC 6902) building blocks shared by the webhook and the progressor, which both
 * patch string maps (annotations, labels) whose keys contain `/`.
 */
import type { Operation } from 'fast-json-patch';

/** A JSON Pointer (RFC 6901) from unescaped segments: `~` is `~0` and `/` is `~1` inside a segment. */
export function pointer(...segments: string[]): string {
  let out = '';
  for (const s of segments) out += `/${s.includes('~') || s.includes('/') ? s.replace(/~/g, '~0').replace(/\//g, '~1') : s}`;
  return out;
}

/**
 * The operations that turn the string map at `path` from `before` into `after`: the whole map is
 * added when there was none, otherwise one operation per key removed, added or changed.
 */
export function mapPatch(path: string[], before: Record<string, string> | undefined, after: Record<string, string> | undefined): Operation[] {
  if (before === after || after === undefined) return [];
  if (before === undefined) return Object.keys(after).length > 0 ? [{ op: 'add', path: pointer(...path), value: after }] : [];
  const ops: Operation[] = [];
  for (const k of Object.keys(before)) if (!Object.hasOwn(after, k)) ops.push({ op: 'remove', path: pointer(...path, k) });
  for (const k of Object.keys(after)) {
    if (!Object.hasOwn(before, k)) ops.push({ op: 'add', path: pointer(...path, k), value: after[k] });
    else if (before[k] !== after[k]) ops.push({ op: 'replace', path: pointer(...path, k), value: after[k] });
  }
  return ops;
}
