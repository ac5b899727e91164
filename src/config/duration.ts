/**
 * Go-style durations ("30s", "1m", "1m30s", "500ms", "1h"), the format Flagger users paste.
 * Returns milliseconds, or an error message naming what is allowed.
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_RE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const PART_RE = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

export function parseDuration(value: unknown): { ms: number } | { error: string } {
  if (typeof value === 'number') {
    return { error: `${value} is a bare number; write a duration with a unit, such as "${value}s" or "${value}m"` };
  }
  if (typeof value !== 'string' || !DURATION_RE.test(value.trim())) {
    return { error: `${JSON.stringify(value)} is not a duration; use a number with a unit: ms, s, m or h (e.g. "30s", "1m", "1m30s")` };
  }
  let ms = 0;
  for (const [, amount, unit] of value.trim().matchAll(PART_RE)) ms += Number(amount) * UNIT_MS[unit!]!;
  return { ms: Math.round(ms) };
}

export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
