/**
 * The proxy client-go (kubectl, every Go controller) takes from the environment when the
 * kubeconfig gives no proxy-url: Go's http.ProxyFromEnvironment (golang.org/x/net/http/httpproxy,
 * as vendored by Go 1.26), whose NO_PROXY also takes CIDR ranges (client-go adds them for older
 * Go). Users behind
 * a corporate proxy set these once for every tool and expect the progressor to follow them.
 * Pure: the environment is an argument.
 */
import net from 'node:net';
import { domainToASCII } from 'node:url';

export interface EnvProxy {
  /** The variable the proxy comes from: HTTPS_PROXY, https_proxy, HTTP_PROXY or http_proxy. */
  variable: string;
  /** The proxy to connect through; undefined when the server is exempt. */
  url?: string;
  /** Why the server goes around the proxy: the NO_PROXY variable that lists it, or `loopback`. */
  exempt?: string;
}

/** What KubeHttp's proxy agents connect through (Go's transport: http, https, socks5, socks5h). */
const SCHEMES = new Set(['http:', 'https:', 'socks5:', 'socks5h:']);

/**
 * The proxy for `server` from `env`, or undefined when no proxy variable applies to its scheme.
 * Throws, naming the variable but never quoting it (it may carry the proxy's password), when a
 * proxy that would be used is not a URL of a scheme we can connect through. (Go ignores a value
 * it cannot parse and goes direct; silently going around a proxy someone set is not what they
 * meant, and the fix is one line.)
 */
export function proxyFromEnv(server: URL, env: Record<string, string | undefined>): EnvProxy | undefined {
  // Upper case first, as Go 1.26 reads them; an empty value counts as unset.
  const first = (...names: string[]) => names.find((n) => env[n]);
  const variable = server.protocol === 'https:' ? first('HTTPS_PROXY', 'https_proxy') : server.protocol === 'http:' ? first('HTTP_PROXY', 'http_proxy') : undefined;
  if (!variable) return undefined;
  const host = server.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = server.port || (server.protocol === 'https:' ? '443' : '80');
  if (isLoopback(host)) return { variable, exempt: 'loopback' };
  const noProxy = first('NO_PROXY', 'no_proxy');
  if (noProxy && noProxyMatches(env[noProxy]!, host, port)) return { variable, exempt: noProxy };
  return { variable, url: proxyUrl(env[variable]!, variable) };
}

/** Go's parseProxy: a value without a scheme (proxy.example:3128) means http://. */
function proxyUrl(value: string, variable: string): string {
  let u = URL.canParse(value) ? new URL(value) : undefined;
  // "proxy.example:3128" parses as the scheme "proxy.example:", with no host. A value with a
  // scheme stays as it is: "http://http://proxy.example:99999" would parse, with the host "http".
  if (!u?.host && !value.includes('://') && URL.canParse(`http://${value}`)) u = new URL(`http://${value}`);
  if (!u?.host || !SCHEMES.has(u.protocol)) {
    throw new Error(`${variable} is not an http://, https:// or socks5:// URL, nor a host:port (e.g. http://proxy.example:3128); fix it, or unset it to connect directly`);
  }
  return u.href;
}

/** Go never proxies localhost or a loopback address, whatever NO_PROXY says. */
function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const family = net.isIP(host);
  return family !== 0 && LOOPBACK.check(host, ipv(family));
}

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/**
 * Whether NO_PROXY exempts host:port, entry by entry as Go's httpproxy reads it: `*` exempts
 * everything; an IP range (10.0.0.0/8) any address in it; an IP (with an optional :port) that
 * address; a name (with an optional :port) that name and its subdomains, and with a leading "."
 * (or "*.") its subdomains only. Names never match an IP address, nor IPs a name: the name
 * is not resolved.
 */
function noProxyMatches(noProxy: string, host: string, port: string): boolean {
  const family = net.isIP(host);
  for (const raw of noProxy.split(',')) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    const cidr = /^([^/]+)\/(\d{1,3})$/.exec(entry);
    if (cidr) {
      const f = net.isIP(cidr[1]!);
      const bits = Number(cidr[2]);
      if (f !== 0 && bits <= (f === 4 ? 32 : 128)) {
        const range = new net.BlockList();
        range.addSubnet(cidr[1]!, bits, ipv(f));
        if (family !== 0 && range.check(host, ipv(family))) return true;
      }
      continue;
    }
    // Go's net.SplitHostPort: name:port, [ipv6]:port; anything else is a bare host.
    const split = /^\[([^\]]*)\]:([^:[\]]*)$/.exec(entry) ?? /^([^:[\]]*):([^:[\]]*)$/.exec(entry);
    const [entryHost, entryPort] = split ? [split[1]!, split[2]!] : [entry, ''];
    if (entryPort !== '' && entryPort !== port) continue;
    const entryFamily = net.isIP(entryHost);
    if (entryFamily !== 0) {
      if (family !== 0 && sameIp(entryHost, host)) return true;
      continue;
    }
    if (entryHost === '' || family !== 0) continue;
    const name = entryHost.startsWith('*.') ? entryHost.slice(1) : entryHost;
    const suffix = name.startsWith('.') ? name : `.${name}`;
    const ascii = domainToASCII(suffix) || suffix; // as the URL gives the host: bücher.de is xn--bcher-kva.de
    if (host.endsWith(ascii) || (suffix !== name && host === ascii.slice(1))) return true;
  }
  return false;
}

/** Go's net.IP.Equal: 10.0.0.1 is ::ffff:10.0.0.1. */
function sameIp(a: string, b: string): boolean {
  const one = new net.BlockList();
  one.addAddress(a, ipv(net.isIP(a)));
  return one.check(b, ipv(net.isIP(b)));
}

const ipv = (family: number) => (family === 4 ? 'ipv4' : 'ipv6');
