/**
 * A small raw-JSON client for the Kubernetes API over node:http(s), authenticated by
 * ApiCredentials (credentials.ts).
 *
 * Why not the generated typed clients: they deserialize through a model that drops fields it
 * does not know. A pod-spec field newer than the library would vanish from what the progressor
 * reads and copies into the canary, and the template hash (computed over raw JSON by the
 * webhook) would no longer match. Raw JSON in, raw JSON out keeps every field.
 */
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { VERSION } from '../version.js';
import type { ApiCredentials } from './credentials.js';

/**
 * Who the progressor is to the API server: the manager `managedFields` and server-side apply
 * conflicts name for the fields it writes (otherwise "unknown", so Argo CD and Flux users cannot
 * tell who owns a field), and the User-Agent of audit logs and API server metrics.
 */
const FIELD_MANAGER = 'kube-canary-progressor';
const USER_AGENT = `${FIELD_MANAGER}/${VERSION}`;
/** The verbs that take a fieldManager (GET and DELETE do not). */
const WRITES = new Set(['POST', 'PUT', 'PATCH']);

export class ApiError extends Error {
  constructor(readonly code: number, message: string, readonly body: unknown) {
    super(message);
  }
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  /** The whole request, from the call to the last byte of the answer: slot, socket and round trip (default 30 s). */
  timeoutMs?: number;
  /**
   * Order among requests waiting for one of the `maxInFlight` slots: `high` for what users feel
   * at once or what keeps us safe (traffic weights, the leader Lease), `low` for best-effort
   * writes (Events). At 500 releases stepping together the weight changes then go out ahead
   * of the status writes and Events of the same burst instead of queueing behind them.
   */
  priority?: Priority;
}

export type Priority = 'high' | 'normal' | 'low';

export interface KubeHttpOptions {
  /** Requests (not watches) in flight at once; the rest wait by priority. Default 64. */
  maxInFlight?: number;
}

/** What one finished request cost: time waiting for a slot, then the round trip to the API. */
export interface RequestTiming {
  verb: string;
  resource: string;
  priority: Priority;
  waitedMs: number;
  roundTripMs: number;
}

export class KubeHttp {
  /** API requests made so far (for metrics and the benchmark). */
  requests = 0;
  /** The same by verb and resource, e.g. "PATCH virtualservices", "WATCH deployments". */
  readonly requestsBy = new Map<string, number>();
  /** Called after every request (not watches), for metrics. */
  onTiming?: (t: RequestTiming) => void;
  private readonly server: URL;
  private agents?: Agents;
  private makeAgent?: Promise<(o: https.AgentOptions) => http.Agent>;
  private readonly maxInFlight: number;
  private inFlight = 0;
  /** `normal` and `low` requests in flight. */
  private otherInFlight = 0;
  private readonly waiting: Record<Priority, Array<() => void>> = { high: [], normal: [], low: [] };

  constructor(private readonly credentials: ApiCredentials, o: KubeHttpOptions = {}) {
    this.server = new URL(credentials.server);
    this.maxInFlight = o.maxInFlight ?? 64;
  }

  /**
   * Waits for a request slot; slots are handed over highest priority first, FIFO within one.
   * `high` requests may use every slot; `normal` and `low` ones never take the last quarter, so
   * a traffic weight change finds a free slot at once even when status writes fill the rest
   * (measured at 500 releases stepping together: the weight PATCH waited up to 0.9 s for a
   * slot). A tighter cap on them while weights are pending was tried and dropped: status
   * commits, which the next step of the same release waits for, fell seconds behind.
   */
  private async acquire(priority: Priority, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (priority === 'high') {
      if (this.inFlight < this.maxInFlight && this.waiting.high.length === 0) {
        this.inFlight += 1;
        return;
      }
    } else if (this.waiting.high.length === 0 && this.waiting.normal.length === 0 && this.waiting.low.length === 0 && this.otherMayStart()) {
      this.inFlight += 1;
      this.otherInFlight += 1;
      return;
    }
    const queue = this.waiting[priority];
    await new Promise<void>((resolve, reject) => {
      // Given up (deadline, caller's abort): leave the queue, so no slot is handed to nobody.
      const giveUp = () => {
        queue.splice(queue.indexOf(grant), 1);
        reject(signal.reason);
      };
      const grant = () => {
        signal.removeEventListener('abort', giveUp);
        resolve();
      };
      queue.push(grant);
      signal.addEventListener('abort', giveUp, { once: true });
    });
  }

  private otherMayStart(): boolean {
    return this.inFlight < this.maxInFlight && this.otherInFlight < Math.max(1, this.maxInFlight - Math.floor(this.maxInFlight / 4));
  }

  private releaseSlot(priority: Priority): void {
    this.inFlight -= 1;
    if (priority !== 'high') this.otherInFlight -= 1;
    while (this.inFlight < this.maxInFlight) {
      const high = this.waiting.high.shift();
      if (high) {
        this.inFlight += 1;
        high();
        continue;
      }
      if (!this.otherMayStart()) break;
      const next = this.waiting.normal.shift() ?? this.waiting.low.shift();
      if (!next) break;
      this.inFlight += 1;
      this.otherInFlight += 1;
      next();
    }
  }

  get serverUrl(): string {
    return this.server.toString();
  }

  /**
   * Headers, basic auth and keep-alive agents for one request or watch, from what the credentials
   * give now. The client library's own `agent` is not used: it builds a new one per call, without
   * keep-alive; ours go through the same kind of proxy agent for a kubeconfig's proxy-url (or
   * HTTPS_PROXY, see proxy-env.ts). The
   * caller hands the agents back with done().
   */
  private async options(): Promise<{ headers: Record<string, string>; auth?: string; agents: Agents }> {
    const opts: https.RequestOptions = { headers: {} };
    // Re-applied per request: bearer tokens (in-cluster projected tokens, exec plugins) rotate,
    // and so do client certificates an exec plugin hands out.
    await this.credentials.applyToHTTPSOptions(opts);
    const make = await (this.makeAgent ??= agentMaker(this.server, this.credentials.proxyUrl));
    const material: Tls = {};
    for (const f of TLS_FIELDS) if (opts[f] !== undefined) Object.assign(material, { [f]: opts[f] });
    if (!this.agents || !sameTls(this.agents.tls, material)) {
      if (this.agents) this.retire(this.agents);
      // Two pools: every watch holds its socket for minutes, and there is one per opted-in
      // Namespace and per namespace with routing objects, so watches sharing a capped pool with
      // requests took every socket and a Lease GET queued behind them. Requests get a socket per
      // slot; watches are as many as the informers, uncapped.
      this.agents = { tls: material, request: make({ ...material, keepAlive: true, maxSockets: this.maxInFlight }), watch: make({ ...material, keepAlive: true }), users: 0, retired: false };
    }
    this.agents.users += 1;
    return { headers: { ...(opts.headers as Record<string, string>), 'user-agent': USER_AGENT }, ...(opts.auth ? { auth: opts.auth } : {}), agents: this.agents };
  }

  /** Agents built for TLS material that has changed are closed once their last request or watch ends. */
  private retire(a: Agents): void {
    a.retired = true;
    if (a.users === 0) destroy(a);
  }

  private done(a: Agents): void {
    a.users -= 1;
    if (a.retired && a.users === 0) destroy(a);
  }

  private url(path: string, query?: RequestOptions['query']): URL {
    const base = this.server.pathname.replace(/\/$/, '');
    const u = new URL(this.server.origin + base + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u;
  }

  async request<T = unknown>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const { res, text } = await this.exchange(method, path, o);
    const status = res.statusCode ?? 0;
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: keep the text */
    }
    if (status < 200 || status >= 300) {
      const msg = body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string' ? (body as { message: string }).message : `${status} ${text.slice(0, 200)}`;
      throw new ApiError(status, `${method} ${path}: ${msg}`, body);
    }
    return body as T;
  }

  /**
   * One request under one deadline, counted from this call: it covers the wait for a slot, for a
   * socket and for the answer. (Node's own `timeout` starts only once a socket is assigned, so a
   * request queued for a socket used to wait without any bound.) The error says what it was
   * still waiting for.
   */
  private async exchange(method: string, path: string, o: RequestOptions): Promise<{ res: http.IncomingMessage; text: string }> {
    const priority = o.priority ?? 'normal';
    const timeoutMs = o.timeoutMs ?? 30_000;
    let stage: 'slot' | 'connection' | 'answer' = 'slot';
    const waitingFor = () => (stage === 'slot' ? `one of the ${this.maxInFlight} request slots (${this.inFlight} in use)` : stage === 'connection' ? 'a connection to the API server' : "the API server's answer");
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(new Error(`${method} ${path}: no answer within ${timeoutMs} ms: still waiting for ${waitingFor()}`)), timeoutMs);
    const cancel = () => ctrl.abort(o.signal?.reason);
    if (o.signal?.aborted) cancel();
    else o.signal?.addEventListener('abort', cancel, { once: true });
    try {
      const queued = performance.now();
      await this.acquire(priority, ctrl.signal);
      const started = performance.now();
      stage = 'connection';
      try {
        return await this.send(method, path, o, timeoutMs, ctrl.signal, () => (stage = 'answer'));
      } finally {
        this.releaseSlot(priority);
        this.onTiming?.({ verb: method, resource: resourceOf(path), priority, waitedMs: started - queued, roundTripMs: performance.now() - started });
      }
    } catch (err) {
      throw ctrl.signal.aborted ? ctrl.signal.reason : err;
    } finally {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', cancel);
    }
  }

  private async send(method: string, path: string, o: RequestOptions, timeoutMs: number, signal: AbortSignal, onSocket: () => void): Promise<{ res: http.IncomingMessage; text: string }> {
    const opts = await this.options();
    const query = WRITES.has(method) ? { ...o.query, fieldManager: FIELD_MANAGER } : o.query;
    const payload = o.body === undefined ? undefined : JSON.stringify(o.body);
    const headers: Record<string, string> = { ...opts.headers, accept: 'application/json' };
    if (payload !== undefined) {
      headers['content-type'] = o.contentType ?? 'application/json';
      // Explicit length: a chunked DELETE body confused keep-alive reuse (a 400 on the next request).
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    this.count(method, path);
    const lib = this.server.protocol === 'https:' ? https : http;
    try {
      return await new Promise((resolve, reject) => {
        // `timeout` is also the bound a proxy agent gives its CONNECT, so a stalled proxy leaves no pending connection behind.
        const req = lib.request(this.url(path, query), { method, headers, auth: opts.auth, agent: opts.agents.request, signal, timeout: timeoutMs }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ res, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        });
        req.once('socket', onSocket);
        req.on('error', reject);
        if (payload !== undefined) req.write(payload);
        req.end();
      });
    } finally {
      this.done(opts.agents);
    }
  }

  private count(verb: string, path: string): void {
    this.requests += 1;
    const key = `${verb} ${resourceOf(path)}`;
    this.requestsBy.set(key, (this.requestsBy.get(key) ?? 0) + 1);
  }

  /**
   * A watch: GET with watch=true, one JSON event per line. Resolves when the server closes the
   * stream, rejects on an error; `signal` aborts it (the informer's watchdog uses that).
   */
  async watch(path: string, query: RequestOptions['query'], onEvent: (e: { type: string; object: unknown }) => void, signal: AbortSignal): Promise<void> {
    const opts = await this.options();
    this.count('WATCH', path);
    const lib = this.server.protocol === 'https:' ? https : http;
    return new Promise<void>((resolve, reject) => {
      const req = lib.request(this.url(path, { ...query, watch: true }), { method: 'GET', headers: { ...opts.headers, accept: 'application/json' }, auth: opts.auth, agent: opts.agents.watch, signal }, (res) => {
        if ((res.statusCode ?? 0) !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => reject(new ApiError(res.statusCode ?? 0, `watch ${path}: ${res.statusCode} ${Buffer.concat(chunks).toString('utf8').slice(0, 200)}`, undefined)));
          return;
        }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            try {
              onEvent(JSON.parse(line) as { type: string; object: unknown });
            } catch (err) {
              req.destroy(err as Error);
              return;
            }
          }
        });
        res.on('end', () => resolve());
        res.on('error', reject);
        res.on('aborted', () => reject(new Error(`watch ${path}: aborted`)));
      });
      req.on('error', reject);
      req.end();
    }).finally(() => this.done(opts.agents));
  }
}

/** What an agent's TLS is built from; new material (an exec plugin's next client certificate) builds new agents. */
const TLS_FIELDS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'servername', 'rejectUnauthorized'] as const;
type Tls = Pick<https.AgentOptions, (typeof TLS_FIELDS)[number]>;

interface Agents {
  tls: Tls;
  request: http.Agent;
  watch: http.Agent;
  /** Requests and watches using them now. */
  users: number;
  retired: boolean;
}

function destroy(a: Agents): void {
  a.request.destroy();
  a.watch.destroy();
}

function sameTls(a: Tls, b: Tls): boolean {
  const same = (x: unknown, y: unknown): boolean => {
    if (x === y) return true;
    if (Array.isArray(x) && Array.isArray(y)) return x.length === y.length && x.every((v, i) => same(v, y[i]));
    const bytes = (v: unknown) => (typeof v === 'string' ? Buffer.from(v) : Buffer.isBuffer(v) ? v : undefined);
    const [bx, by] = [bytes(x), bytes(y)];
    return bx !== undefined && by !== undefined && bx.equals(by);
  };
  return TLS_FIELDS.every((f) => same(a[f], b[f]));
}

/**
 * Builds agents for the server, through a kubeconfig's proxy-url or HTTPS_PROXY/HTTP_PROXY with
 * the proxy agents the client library uses for a proxy-url (hpagent for http and https proxies,
 * socks-proxy-agent for socks), loaded only then.
 */
async function agentMaker(server: URL, proxyUrl: string | undefined): Promise<(o: https.AgentOptions) => http.Agent> {
  const secure = server.protocol === 'https:';
  if (!proxyUrl) return (o) => (secure ? new https.Agent(o) : new http.Agent(o));
  if (proxyUrl.startsWith('socks')) {
    const { SocksProxyAgent } = await import('socks-proxy-agent');
    // It drops `host` before its TLS handshake, so a server given by IP address was checked
    // against "localhost" and refused (TooTallNate/proxy-agents#365): check the server's name.
    const host = server.hostname.replace(/^\[(.*)\]$/, '$1');
    return (o) => new SocksProxyAgent(proxyUrl, secure ? { ...o, checkServerIdentity: (_: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(o.servername ?? host, cert) } : o);
  }
  const { HttpProxyAgent, HttpsProxyAgent } = await import('hpagent');
  return (o) => (secure ? new HttpsProxyAgent({ ...o, proxy: proxyUrl }) : new HttpProxyAgent({ ...o, proxy: proxyUrl }));
}

/** The resource a request path names: /apis/apps/v1/namespaces/x/deployments/y -> deployments. */
export function resourceOf(path: string): string {
  const parts = path.split('?')[0]!.split('/').filter(Boolean);
  // /api/v1/... or /apis/GROUP/VERSION/...
  const rest = parts[0] === 'api' ? parts.slice(2) : parts.slice(3);
  if (rest[0] === 'namespaces' && rest.length >= 3) return rest[2]!;
  return rest[0] ?? '';
}
