/**
 * Where the API server is and how to authenticate to it, from a kubeconfig or the pod's service
 * account. The common cases (client certificates, bearer tokens, token files, in-cluster) are
 * read here; anything else a kubeconfig can ask for (exec plugins, auth providers, proxies,
 * basic auth, several merged files) goes to the client library's KubeConfig, loaded only then:
 * importing it loads the whole generated API (~80 MB of RSS, ~45 MB of heap), more than the
 * progressor's own state for 500 releases (ADR 0009). Without a proxy-url, HTTPS_PROXY,
 * HTTP_PROXY and NO_PROXY decide, as in client-go (proxy-env.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import type https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import YAML from 'yaml';
import { proxyFromEnv } from './proxy-env.js';

/** What KubeHttp needs: the server, and per request the TLS material and Authorization header. */
export interface ApiCredentials {
  readonly server: string;
  /** How they were found, for the startup log line (never the secrets themselves). */
  readonly source: string;
  /** A kubeconfig's proxy-url, else HTTPS_PROXY or HTTP_PROXY (http, https or socks): every connection goes through it. */
  readonly proxyUrl?: string;
  /** Which proxy and where it came from, or why a proxy variable is not used, for the startup log line (never its credentials). */
  readonly proxy?: string;
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** client-go re-reads token files (rotated by the kubelet) at most once a minute; so do we. */
const TOKEN_FILE_TTL_MS = 60_000;

type Bytes = { data: Buffer } | { file: string };

/** A kubeconfig's current context, resolved to what a request needs. */
export interface CredentialSpec {
  server: string;
  ca?: Bytes;
  cert?: Bytes;
  key?: Bytes;
  token?: string;
  tokenFile?: string;
  insecureSkipTlsVerify?: boolean;
  tlsServerName?: string;
  /** Impersonate-* headers from the user's as, as-uid, as-groups, as-user-extra. */
  impersonate?: Record<string, string | string[]>;
}

/** `impersonate`: the client library sends only Impersonate-User (`as`); the rest is added to its requests. */
export type Resolved = { kind: 'spec'; spec: CredentialSpec } | { kind: 'library'; reason: string; impersonate?: Record<string, string | string[]> };

export class CredentialsError extends Error {}

/** What the proxy agents of the client library (and so KubeHttp) connect through. */
const PROXY_PROTOCOLS = new Set(['http:', 'https:', 'socks:', 'socks4:', 'socks4a:', 'socks5:', 'socks5h:']);

const LEAN_CLUSTER_FIELDS = new Set(['server', 'certificate-authority', 'certificate-authority-data', 'insecure-skip-tls-verify', 'tls-server-name', 'disable-compression', 'extensions']);
const IMPERSONATION_FIELDS = ['as', 'as-uid', 'as-groups', 'as-user-extra'];
const LEAN_USER_FIELDS = new Set(['client-certificate', 'client-certificate-data', 'client-key', 'client-key-data', 'token', 'tokenFile', 'extensions', ...IMPERSONATION_FIELDS]);

/**
 * The current context of a parsed kubeconfig: a spec this module can serve, or the reason it
 * needs the client library. Relative file paths are relative to the kubeconfig's directory, as
 * in kubectl. Pure: nothing is read here.
 */
export function resolveKubeconfig(doc: unknown, dir: string, file: string): Resolved {
  const fail = (what: string): never => {
    throw new CredentialsError(`kubeconfig ${file}: ${what}`);
  };
  if (!isObject(doc)) return fail('not a kubeconfig (expected a YAML mapping with clusters, users, contexts and current-context)');
  const current = doc['current-context'];
  if (typeof current !== 'string' || current === '') return fail('no current-context; set one with "kubectl config use-context NAME"');
  const context = named(doc.contexts, current, 'context');
  if (!context) return fail(`current-context "${current}" is not among its contexts`);
  const cluster = named(doc.clusters, context.cluster, 'cluster');
  if (!cluster) return fail(`context "${current}" names cluster ${JSON.stringify(context.cluster)}, which is not among its clusters`);
  const user = context.user === undefined ? {} : named(doc.users, context.user, 'user');
  if (!user) return fail(`context "${current}" names user ${JSON.stringify(context.user)}, which is not among its users`);

  const impersonate = impersonationHeaders(user, (what) => fail(`user ${JSON.stringify(context.user)}: ${what}`));
  const odd = [...Object.keys(cluster).filter((k) => !LEAN_CLUSTER_FIELDS.has(k)).map((k) => `cluster ${k}`), ...Object.keys(user).filter((k) => !LEAN_USER_FIELDS.has(k)).map((k) => `user ${k}`)];
  if (odd.length > 0) return { kind: 'library', reason: odd.join(', '), ...(impersonate ? { impersonate } : {}) };

  if (typeof cluster.server !== 'string' || cluster.server === '') return fail(`cluster ${JSON.stringify(context.cluster)} has no server`);
  if (!URL.canParse(cluster.server) || !['https:', 'http:'].includes(new URL(cluster.server).protocol)) {
    return fail(`cluster ${JSON.stringify(context.cluster)} has server ${JSON.stringify(cluster.server)}, which is not an https:// URL (e.g. https://10.0.0.1:6443)`);
  }
  const bytes = (dataKey: string, fileKey: string, owner: Record<string, unknown>): Bytes | undefined => {
    const data = owner[dataKey];
    if (typeof data === 'string' && data !== '') {
      // Buffer.from ignores what is not base64; kubectl refuses it, and so do we, here rather than as a TLS error later.
      if (!/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(data)) return fail(`${dataKey} is not base64`);
      return { data: Buffer.from(data, 'base64') };
    }
    const f = owner[fileKey];
    return typeof f === 'string' && f !== '' ? { file: path.resolve(dir, f) } : undefined;
  };
  const spec: CredentialSpec = { server: cluster.server };
  const ca = bytes('certificate-authority-data', 'certificate-authority', cluster);
  const cert = bytes('client-certificate-data', 'client-certificate', user);
  const key = bytes('client-key-data', 'client-key', user);
  if (ca) spec.ca = ca;
  if (cert) spec.cert = cert;
  if (key) spec.key = key;
  if ((cert === undefined) !== (key === undefined)) return fail(`user ${JSON.stringify(context.user)} has a client ${cert ? 'certificate without a key' : 'key without a certificate'}`);
  // As client-go: a readable tokenFile wins (it is re-read as it rotates); the token is the fallback.
  if (typeof user.token === 'string' && user.token !== '') spec.token = user.token;
  if (typeof user.tokenFile === 'string' && user.tokenFile !== '') spec.tokenFile = path.resolve(dir, user.tokenFile);
  if (cluster['insecure-skip-tls-verify'] === true) spec.insecureSkipTlsVerify = true;
  if (typeof cluster['tls-server-name'] === 'string' && cluster['tls-server-name'] !== '') spec.tlsServerName = cluster['tls-server-name'];
  if (impersonate) spec.impersonate = impersonate;
  return { kind: 'spec', spec };
}

/**
 * The Impersonate-* headers kubectl sends for a user's as, as-uid, as-groups and as-user-extra,
 * or undefined for none. Without them the progressor would act as the user itself: with
 * different rights, and unseen by the webhook's --progressor-user check.
 */
export function impersonationHeaders(user: Record<string, unknown>, fail: (what: string) => never): Record<string, string | string[]> | undefined {
  const headers: Record<string, string | string[]> = {};
  const text = (v: unknown, field: string): string => (typeof v === 'string' ? v : fail(`${field} must be a string`));
  const texts = (v: unknown, field: string): string[] => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : fail(`${field} must be a list of strings`));
  if (user.as !== undefined && user.as !== '') headers['Impersonate-User'] = text(user.as, 'as');
  if (user['as-uid'] !== undefined && user['as-uid'] !== '') headers['Impersonate-Uid'] = text(user['as-uid'], 'as-uid');
  if (user['as-groups'] !== undefined && user['as-groups'] !== null) {
    const groups = texts(user['as-groups'], 'as-groups');
    if (groups.length > 0) headers['Impersonate-Group'] = groups;
  }
  const extra = user['as-user-extra'];
  if (extra !== undefined && extra !== null) {
    if (!isObject(extra)) fail('as-user-extra must be a mapping of keys to lists of strings');
    for (const [k, v] of Object.entries(extra)) headers[`Impersonate-Extra-${headerKeyEscape(k)}`] = texts(v, `as-user-extra.${k}`);
  }
  if (Object.keys(headers).length === 0) return undefined;
  // The apiserver refuses groups, uid or extra without a user to impersonate.
  if (headers['Impersonate-User'] === undefined) fail('as-groups, as-uid or as-user-extra need as (the user to impersonate)');
  return headers;
}

/** The pod's service account, as client-go's rest.InClusterConfig finds it. */
export function inClusterSpec(env: NodeJS.ProcessEnv, saDir = SERVICE_ACCOUNT_DIR): CredentialSpec {
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  const port = env.KUBERNETES_SERVICE_PORT ?? '';
  return { server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`, ca: { file: path.join(saDir, 'ca.crt') }, tokenFile: path.join(saDir, 'token') };
}

/**
 * `kubeconfig` if given, else in-cluster when running in a pod, else $KUBECONFIG or
 * ~/.kube/config: the order of client-go and of the client library's loadFromDefault.
 */
export async function loadCredentials(kubeconfig?: string, env: NodeJS.ProcessEnv = process.env, saDir = SERVICE_ACCOUNT_DIR): Promise<ApiCredentials> {
  return withEnvProxy(await findCredentials(kubeconfig, env, saDir), env);
}

/**
 * As client-go: a proxy-url wins; without one, HTTPS_PROXY or HTTP_PROXY (by the server's
 * scheme) unless NO_PROXY lists the server or it is a loopback address.
 */
function withEnvProxy(c: ApiCredentials, env: NodeJS.ProcessEnv): ApiCredentials {
  if (c.proxyUrl || !URL.canParse(c.server)) return c;
  let p: ReturnType<typeof proxyFromEnv>;
  try {
    p = proxyFromEnv(new URL(c.server), env);
  } catch (e) {
    throw new CredentialsError((e as Error).message);
  }
  if (!p) return c;
  if (!p.url) return { ...c, proxy: `none: ${p.variable} is set, but the server is ${p.exempt === 'loopback' ? 'a loopback address, never proxied' : `listed in ${p.exempt}`}` };
  return { ...c, proxyUrl: p.url, proxy: `${shownProxy(p.url)} (${p.variable})` };
}

/** A proxy URL without its user and password. */
function shownProxy(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}`;
}

async function findCredentials(kubeconfig: string | undefined, env: NodeJS.ProcessEnv, saDir: string): Promise<ApiCredentials> {
  if (kubeconfig) return fromKubeconfigFile(kubeconfig);
  if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) return specCredentials(inClusterSpec(env, saDir), `in-cluster service account (${saDir})`);
  // As kubectl: files of the list that do not exist are skipped.
  const listed = (env.KUBECONFIG ?? '').split(path.delimiter).filter(Boolean);
  const files = listed.length > 1 ? listed.filter((f) => existsSync(f)) : listed;
  if (listed.length > 1 && files.length === 0) throw new CredentialsError(`none of the files in KUBECONFIG exists (${listed.join(path.delimiter)}); pass --kubeconfig FILE or fix KUBECONFIG`);
  if (files.length > 1) {
    // kubectl's merge: the first file to set current-context wins, and so does the first entry of
    // each name (the library's own mergeConfig throws "Duplicate cluster" instead).
    let userName: string | undefined;
    const creds = await libraryCredentials((kc, Config) => {
      kc.loadFromFile(files[0]!);
      for (const f of files.slice(1)) {
        const next = new Config();
        next.loadFromFile(f); // relative paths made absolute against f
        for (const c of next.getClusters()) if (!kc.getCluster(c.name)) kc.addCluster(c);
        for (const u of next.getUsers()) if (!kc.getUser(u.name)) kc.addUser(u);
        for (const x of next.getContexts()) if (!kc.getContextObject(x.name)) kc.addContext(x);
        if (!kc.getCurrentContext() && next.getCurrentContext()) kc.setCurrentContext(next.getCurrentContext());
      }
      userName = kc.getCurrentUser()?.name;
    }, `KUBECONFIG lists ${files.length} files to merge`);
    // The library keeps only `as` of the user; the rest comes from that user's first entry.
    const user = files.map((f) => named((YAML.parse(readFileSync(f, 'utf8')) as Record<string, unknown> | null)?.users, userName, 'user')).find(Boolean);
    return withHeaders(creds, user && impersonationHeaders(user, (what) => {
      throw new CredentialsError(`KUBECONFIG user ${JSON.stringify(userName)}: ${what}`);
    }));
  }
  return fromKubeconfigFile(files[0] ?? path.join(os.homedir(), '.kube', 'config'));
}

async function fromKubeconfigFile(file: string): Promise<ApiCredentials> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CredentialsError(`cannot read kubeconfig ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); pass --kubeconfig FILE, set KUBECONFIG, or run in a pod with a service account`);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text, { prettyErrors: false });
  } catch (e) {
    // Only where: the parser's own message quotes the offending lines, tokens and keys included.
    const before = e instanceof YAML.YAMLError ? text.slice(0, e.pos[0]) : undefined;
    const at = before === undefined ? '' : ` at line ${before.split('\n').length}, column ${before.length - before.lastIndexOf('\n')}`;
    throw new CredentialsError(`kubeconfig ${file} is not YAML${at}${e instanceof YAML.YAMLError ? ` (${e.code})` : ''}`);
  }
  const r = resolveKubeconfig(doc, path.dirname(file), file);
  if (r.kind === 'library') return withHeaders(await libraryCredentials((kc) => kc.loadFromFile(file), `kubeconfig ${file} uses ${r.reason}`), r.impersonate);
  return specCredentials(r.spec, `kubeconfig ${file}`);
}

/** Reads the spec's files now (a missing certificate fails at start, not at the first request). */
export function specCredentials(spec: CredentialSpec, source: string, now: () => number = Date.now): ApiCredentials {
  const read = (b: Bytes | undefined, what: string): Buffer | undefined => {
    if (!b) return undefined;
    if ('data' in b) return b.data;
    try {
      return readFileSync(b.file);
    } catch (e) {
      throw new CredentialsError(`${source}: cannot read the ${what} ${b.file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  };
  const tls: https.RequestOptions = {};
  const ca = read(spec.ca, 'certificate authority');
  const cert = read(spec.cert, 'client certificate');
  const key = read(spec.key, 'client key');
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  if (spec.insecureSkipTlsVerify) tls.rejectUnauthorized = false;
  if (spec.tlsServerName) tls.servername = spec.tlsServerName;

  let token = spec.token;
  let readAt = -Infinity;
  const bearer = (): string | undefined => {
    if (!spec.tokenFile || now() - readAt < TOKEN_FILE_TTL_MS) return token;
    try {
      token = readFileSync(spec.tokenFile, 'utf8').trim();
      readAt = now();
    } catch (e) {
      // A rotation in progress keeps the last token (still valid for a while); none at all is fatal.
      if (token === undefined) throw new CredentialsError(`${source}: cannot read the token file ${spec.tokenFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    return token;
  };
  bearer();
  const as = spec.impersonate?.['Impersonate-User'];
  const what = `${[cert ? 'client certificate' : '', spec.tokenFile ? 'token file' : spec.token ? 'token' : ''].filter(Boolean).join(' and ') || 'no client credentials'}${as ? `, impersonating ${as}` : ''}`;
  return {
    server: spec.server,
    source: `${source} (${what})`,
    applyToHTTPSOptions: async (opts) => {
      Object.assign(opts, tls);
      const t = bearer();
      if (t || spec.impersonate) opts.headers = { ...(opts.headers as Record<string, string>), ...spec.impersonate, ...(t ? { Authorization: `Bearer ${t}` } : {}) };
    },
  };
}

/** The client library's KubeConfig as ApiCredentials: for what resolveKubeconfig leaves to it, and for test tools that already hold one. */
export function credentialsFromKubeConfig(kc: KubeConfig, source = 'client library KubeConfig'): ApiCredentials {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new CredentialsError(`${source}: the kubeconfig has no current cluster`);
  const proxyUrl = cluster.proxyUrl || undefined;
  // Checked here rather than at the first connection; not quoted, it may carry the proxy's password.
  if (proxyUrl && !(URL.canParse(proxyUrl) && PROXY_PROTOCOLS.has(new URL(proxyUrl).protocol))) {
    throw new CredentialsError(`${source}: the cluster's proxy-url is not an http://, https:// or socks5:// URL (e.g. http://proxy.example:3128); fix it in the kubeconfig`);
  }
  return { server: cluster.server, source, ...(proxyUrl ? { proxyUrl, proxy: `${shownProxy(proxyUrl)} (the cluster's proxy-url)` } : {}), applyToHTTPSOptions: (opts) => kc.applyToHTTPSOptions(opts) };
}

/** client-go's headerKeyEscape: bytes that are neither unreserved (RFC 3986) nor header token characters become %XX. */
function headerKeyEscape(key: string): string {
  let out = '';
  for (const b of Buffer.from(key, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-_.~!#$&'*+^`|]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Credentials that also send `headers` on every request. */
function withHeaders(c: ApiCredentials, headers: Record<string, string | string[]> | undefined): ApiCredentials {
  if (!headers) return c;
  return {
    ...c,
    applyToHTTPSOptions: async (opts) => {
      await c.applyToHTTPSOptions(opts);
      opts.headers = { ...(opts.headers as Record<string, string>), ...headers };
    },
  };
}

async function libraryCredentials(load: (kc: KubeConfig, Config: typeof KubeConfig) => void, why: string): Promise<ApiCredentials> {
  const { KubeConfig: Config } = await import('@kubernetes/client-node');
  const kc = new Config();
  load(kc, Config);
  return credentialsFromKubeConfig(kc, `client library KubeConfig, because ${why}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The `field` mapping of the entry called `name` in a kubeconfig list (`clusters`, `users`, `contexts`). */
function named(list: unknown, name: unknown, field: string): Record<string, unknown> | undefined {
  if (!Array.isArray(list) || typeof name !== 'string') return undefined;
  const entry: unknown = list.find((e) => isObject(e) && e.name === name);
  if (!isObject(entry)) return undefined;
  return isObject(entry[field]) ? entry[field] : {};
}
