/**
 * Which hosts may go into the serving certificate's SANs: an IPv4 or IPv6 address (an IP SAN), or
 * a DNS name (a DNS SAN), optionally a wildcard whose first label is `*`.
 */
import { isIP } from 'node:net';

export const HOSTS_ALLOWED =
  'allowed: an IPv4 address (four numbers 0-255, e.g. 10.0.0.1), an IPv6 address without brackets or zone (e.g. ::1), ' +
  'or a DNS name of at most 253 characters made of dot-separated labels of 1 to 63 letters, digits and hyphens ' +
  '(no hyphen at either end, the last label not all digits), optionally starting with "*." for a wildcard';

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/i;

/** Whether the host becomes an IP SAN (else a DNS SAN). */
export function isIpHost(host: string): boolean {
  return isIP(host) !== 0;
}

/**
 * The address as the bytes of an iPAddress SAN (4 for IPv4, 16 for IPv6), as a binary string for
 * node-forge. Forge's own parser misreads IPv6 with an IPv4 tail (1:2:3:4:5:6:1.2.3.4 became
 * 1.2.3.4) and refuses ::ffff:1.2.3.4, so the WHATWG URL parser normalises the address first.
 */
export function ipSanBytes(host: string): string {
  if (isIP(host) === 4) return String.fromCharCode(...host.split('.').map(Number));
  const normal = new URL(`http://[${host}]/`).hostname.slice(1, -1); // hex groups only, at most one "::"
  const [head, tail] = normal.includes('::') ? normal.split('::') : [normal, undefined];
  const groups = (part: string | undefined) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
  return String.fromCharCode(...all.flatMap((g) => [g >> 8, g & 0xff]));
}

/** Each host once (DNS names compared without case, addresses by their bytes). */
export function uniqueHosts(hosts: string[]): string[] {
  const seen = new Set<string>();
  return hosts.filter((h) => {
    const key = isIpHost(h) ? `ip:${ipSanBytes(h)}` : `dns:${h.toLowerCase()}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Why the host cannot be a SAN, or undefined when it can. */
export function hostProblem(host: string): string | undefined {
  // What people paste instead of a host: a URL, host:port, a bracketed IPv6 address, a name with the root's dot.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(host)) return 'is a URL; give the host alone (no scheme, port or path), e.g. kube-canary-webhook.kube-canary.svc';
  if (/^\[.*\](:\d+)?$/.test(host)) return `has brackets; write an IPv6 address without them, e.g. ${host.replace(/^\[(.*)\](:\d+)?$/, '$1') || '::1'}`;
  if (/^[^:]+:\d*$/.test(host)) return `has a port (${host.slice(host.indexOf(':'))}); give the host alone, e.g. ${host.slice(0, host.indexOf(':'))}`;
  if (host.includes(':')) return isIP(host) === 6 && !host.includes('%') ? undefined : 'is not a valid IPv6 address';
  if (host.endsWith('.') && host.length > 1) return `ends with a dot; write the name without it, ${host.slice(0, -1)}`;
  if (isIP(host) === 4) return undefined;
  const name = host.startsWith('*.') ? host.slice(2) : host;
  if (host.length > 253) return `is ${host.length} characters long, more than the 253 of a DNS name`;
  const labels = name.split('.');
  if (/^\d+$/.test(labels[labels.length - 1]!)) return 'looks like an IPv4 address but is not one';
  const long = labels.find((l) => l.length > 63);
  if (long) return `has a label of ${long.length} characters, more than the 63 of a DNS label`;
  const bad = labels.find((l) => !LABEL.test(l));
  return bad === undefined ? undefined : `has the invalid DNS label ${JSON.stringify(bad)}`;
}

/** Throws, naming the first bad host and what is allowed, unless every host can be a SAN. */
export function checkHosts(hosts: string[]): void {
  if (hosts.length === 0) throw new Error('no hosts given: pass --hosts with at least one IP or DNS name, e.g. 127.0.0.1,localhost');
  for (const h of hosts) {
    const problem = hostProblem(h);
    if (problem) throw new Error(`--hosts: ${JSON.stringify(h)} ${problem}; ${HOSTS_ALLOWED}`);
  }
}
