/**
 * How a value a user wrote appears in a message: bounded (it is the sender's text, of any length)
 * and, where it may be a secret, not quoted at all (kindOf).
 */

/** Short, bounded rendering of a value: JSON, cut to 60 characters. */
export function show(v: unknown): string {
  // Infinity and NaN (YAML .inf/.nan, JSON 1e400) would render as null through JSON.
  const s = typeof v === 'string' ? JSON.stringify(v) : v === undefined || typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v);
  return cut(s, 60);
}

/**
 * `s` in at most `max` UTF-16 units, ending with "..." when cut; never between the two halves of
 * a character outside the BMP (an emoji), which would leave a lone surrogate: kubectl shows "�".
 */
export function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  let end = max - 3;
  if ((s.charCodeAt(end - 1) & 0xfc00) === 0xd800) end -= 1;
  return `${s.slice(0, end)}...`;
}

/** What a value is, for a message that must not quote it ("a number", "a list"); `object` names a JSON object as the reader knows it. */
export function kindOf(v: unknown, object = 'an object'): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? object : `a ${typeof v}`;
}
