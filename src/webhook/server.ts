/**
 * The HTTP layer around the pure decision, and the HTTPS server that serves it
 * with TLS 1.2+, keep-alive tuned for the apiserver, certificate hot-reload and a graceful stop.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { cut } from '../config/show.js';
import type { Logger } from '../kube/logger.js';
import { decide, type WebhookConfig } from './decision.js';
import type { OptInSource } from './filters.js';
import type { WebhookMetrics } from './metrics.js';
import { watchConnectionErrors } from './connection-errors.js';
import { EnvelopeError, parseReview, reviewResponse } from './review.js';
import { type CertFiles, type LoadedCert, TLS_OPTIONS, expiryProblem, loadCert, watchCert } from './tls.js';

/**
 * An AdmissionReview carries the object and the oldObject as JSON. The apiserver takes request
 * bodies of up to 3 MiB and etcd stores up to ~1.5 MiB of protobuf, which is larger as JSON: two
 * objects of the largest size a Deployment can have, plus the envelope, fit in 8 MiB. (3 MiB,
 * as before, refused every update of a Deployment of more than ~1.5 MB of JSON.)
 */
export const DEFAULT_BODY_LIMIT = 8 * 1024 * 1024;

export interface AppOptions {
  config: WebhookConfig;
  metrics: WebhookMetrics;
  log: Logger;
  bodyLimit?: number;
  isReady?: () => boolean;
}

/**
 * The webhook's request listener. Admissions (`POST /mutate`, `POST /mutate/namespace`, with the
 * apiserver's `?timeout=` query) take a lean path straight on node:http; everything else
 * (health, metrics, 404s) is an express app. Express's per-request machinery measured 4x a plain
 * node:https answer on its own (bench/README), too much for the one path that carries load.
 */
export function createApp(opts: AppOptions): RequestListener {
  const express = createExpressApp(opts);
  const admit = admissionHandler(opts);
  return (req, res) => {
    if (req.method === 'POST') {
      const q = req.url?.indexOf('?') ?? -1;
      const path = q >= 0 ? req.url!.slice(0, q) : req.url;
      if (path === '/mutate') return admit(req, res, 'label');
      if (path === '/mutate/namespace') return admit(req, res, 'namespace');
    }
    express(req, res);
  };
}

function admissionHandler(opts: AppOptions) {
  const { config, metrics, log } = opts;
  const limit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  // The admission line has only top-level strings and booleans, which the logger's redact paths
  // (`*.token` and the like: members of nested objects) can never match, yet pino runs every
  // value of a line through the redactor when a path starts with a wildcard: ~8 µs of a ~13 µs
  // line. This child writes the same bytes without it. Keep the line flat (a test checks it);
  // anything nested belongs in a line logged through `log`.
  const admissionLog = log.child({}, { redact: [] });

  // Once not ready (stopping), every answer closes its connection: a client that keeps connections
  // open (the apiserver does) then reconnects to another replica instead of holding this one open.
  const closing = () => opts.isReady?.() === false;

  const answer = (body: Buffer | undefined, source: OptInSource, res: ServerResponse, start: bigint) => {
    let decision = 'invalid';
    try {
      const request = parseReview(body);
      const d = decide(request, source, config);
      decision = d.outcome;
      metrics.admissions.inc({ decision, operation: request.operation });
      admissionLog.info(
        {
          uid: request.uid,
          deployment: `${request.namespace ?? ''}/${request.name ?? ''}`,
          operation: request.operation,
          user: request.userInfo.username,
          dryRun: request.dryRun === true,
          via: source,
          decision,
          reason: d.reason,
        },
        'admission',
      );
      sendJson(res, 200, reviewResponse(d.response), closing());
    } catch (e) {
      // A fault of ours, not the sender's, is counted apart from the invalid requests.
      decision = e instanceof EnvelopeError ? 'invalid' : 'error';
      metrics.admissions.inc({ decision, operation: 'unknown' });
      if (e instanceof EnvelopeError) {
        log.warn({ err: e.message }, 'malformed admission request');
        sendJson(res, e.httpStatus, { message: e.message }, closing());
      } else {
        log.error({ err: (e as Error).message, stack: (e as Error).stack }, 'unhandled error in webhook');
        sendJson(res, 500, { message: 'internal error while handling the admission request' }, closing());
      }
    } finally {
      metrics.latency.observe({ decision }, Number(process.hrtime.bigint() - start) / 1e9);
    }
  };

  /** Answers a request refused before its body is read, counting it as invalid; the rest of the body is drained. */
  const refuse = (req: IncomingMessage, res: ServerResponse, status: number, message: string, close: boolean, start: bigint) => {
    metrics.admissions.inc({ decision: 'invalid', operation: 'unknown' });
    req.removeAllListeners('data');
    req.resume();
    sendJson(res, status, { message }, close);
    metrics.latency.observe({ decision: 'invalid' }, Number(process.hrtime.bigint() - start) / 1e9);
  };
  /** 413 at once, closing the connection: reading the rest of such a body is wasted. */
  const refuseTooLarge = (req: IncomingMessage, res: ServerResponse, bytes: number, start: bigint) => {
    log.warn({ bytes, limit }, 'admission request body over the limit (--body-limit)');
    refuse(req, res, 413, `request body larger than the limit of ${limit} bytes; the webhook's --body-limit (KUBE_CANARY_BODY_LIMIT) sets it`, true, start);
  };

  return (req: IncomingMessage, res: ServerResponse, source: OptInSource) => {
    const start = process.hrtime.bigint();
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) return refuseTooLarge(req, res, declared, start);
    // The apiserver sends admissions uncompressed; a compressed body would only be reported as "not
    // JSON". Closed like a 413: the body is not read, and may be of any length. Node takes chunks
    // apart but decodes no other transfer coding ("gzip, chunked" would arrive compressed).
    const encoding = req.headers['content-encoding'];
    const transfer = req.headers['transfer-encoding'];
    if (codings(encoding, 'identity') || codings(transfer, 'chunked')) {
      const [header, value] = codings(encoding, 'identity') ? ['Content-Encoding', encoding] : ['Transfer-Encoding', transfer];
      log.warn({ [header]: clip(String(value)) }, 'admission request refused: compressed body');
      return refuse(req, res, 415, `${header} ${JSON.stringify(clip(String(value)))} is not accepted; send the AdmissionReview as uncompressed JSON, as the apiserver does`, true, start);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) refuseTooLarge(req, res, size, start);
      else chunks.push(c);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (size <= limit) answer(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), source, res, start);
    });
  };
}

/** Whether a coding header names a coding other than `plain` (a list, as HTTP allows; empty entries aside). */
function codings(header: string | undefined, plain: string): boolean {
  return header !== undefined && header.split(',').some((c) => c.trim() !== '' && c.trim().toLowerCase() !== plain);
}

/** A request target or header for a message: the sender's text, of any length. */
function clip(s: string): string {
  return cut(s, 200);
}

/** One write of head and body, as a plain node:https server does; `close` ends the connection after it. */
function sendJson(res: ServerResponse, status: number, body: unknown, close: boolean): void {
  const text = JSON.stringify(body);
  const head: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) };
  if (close) head.connection = 'close';
  res.writeHead(status, head);
  res.end(text);
}

function createExpressApp(opts: AppOptions): express.Express {
  const { metrics, log } = opts;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Paths as the admission fast path matches them: /mutate/ or /MUTATE get the 404 that lists
  // the real paths, not a 405 that contradicts itself ("POST ... is not allowed; ... POST").
  app.set('strict routing', true);
  app.set('case sensitive routing', true);
  app.use((_req, res, next) => {
    if (opts.isReady?.() === false) res.set('connection', 'close'); // stopping: see admissionHandler
    next();
  });

  app.get('/healthz', (_req, res) => void res.type('text').send('ok'));
  app.get('/readyz', (_req, res) => {
    const ready = opts.isReady?.() ?? true;
    res.status(ready ? 200 : 503).type('text').send(ready ? 'ok' : 'shutting down');
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.all(['/mutate', '/mutate/namespace'], (req, res, next) => {
    // A POST lands here only with a request target the admission path does not take as is (an
    // absolute URL, a fragment): the 404 below names the real paths.
    if (req.method === 'POST') return next();
    res.status(405).set('allow', 'POST').json({ message: `${req.method} ${req.path} is not allowed; the apiserver sends admission requests with POST` });
  });
  app.use((req, res) => void res.status(404).json({ message: `no route ${req.method} ${clip(req.originalUrl)}; POST /mutate, POST /mutate/namespace, GET /healthz, /readyz, /metrics` }));
  // Anything unexpected on these routes: a 500 with a reason, never a crash.
  app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    log.error({ err: err.message, stack: err.stack }, 'unhandled error in webhook');
    if (!res.headersSent) res.status(500).json({ message: 'internal error' });
  });
  return app;
}

export interface ServeOptions extends CertFiles {
  app: RequestListener;
  port: number;
  bind: string;
  metrics: WebhookMetrics;
  log: Logger;
  certPollMs?: number;
}

export interface RunningServer {
  server: Server;
  port: number;
  /** The certificate served at start, for the start-up line. */
  certificate: { notAfter: string; subjectAltName: string };
  /**
   * Stop accepting, let requests in flight finish (up to graceMs), then close. Idle kept-alive
   * connections close at once; the others after their current answer, which says `Connection:
   * close` once the app is no longer ready (createApp's isReady), as it is when the CLI shuts
   * down. A connection that has not sent a request yet (it may be about to) gets the grace too.
   */
  shutdown(graceMs?: number): Promise<void>;
  /**
   * Close every connection now, whatever it is doing (handshakes included): a second signal, or
   * the end of the grace. Returns how many were open.
   */
  terminate(): number;
  /** Looks at the certificate files now (SIGHUP), not at the next poll. */
  reloadCert(): void;
}

export async function serve(opts: ServeOptions): Promise<RunningServer> {
  const initial = loadCert(opts);
  // Served anyway (a renewal may be on its way), but said at once: every call will fail until then.
  const expired = expiryProblem(initial);
  if (expired) opts.log.warn({ certFile: opts.certFile }, expired);
  const setExpiry = (c: LoadedCert) => opts.metrics.certExpiry.set(c.notAfter.getTime() / 1000);
  setExpiry(initial);
  // The timeouts below are checked every 5 s (Node's default: 30 s). A TLS handshake has 10 s
  // (Node's default: 120 s), so that a client that connects and says nothing (a port probe, a
  // stalled peer) holds a socket no longer than that.
  const server = createServer({ ...TLS_OPTIONS, cert: initial.cert, key: initial.key, connectionsCheckingInterval: 5_000, handshakeTimeout: 10_000 }, opts.app);
  // Every socket from its TCP accept on: the HTTP server only knows those past the TLS handshake,
  // and server.close() waits for the others too.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const terminate = () => {
    const open = sockets.size;
    server.closeAllConnections();
    for (const socket of sockets) socket.destroy();
    return open;
  };
  // The apiserver reuses connections and drops idle ones after 90 s: outlive that, so the client
  // always closes first and never sends on a socket we are closing.
  server.keepAliveTimeout = 95_000;
  // It waits for an answer at most its timeoutSeconds (30 s at most): a request still arriving
  // after that has no one waiting for it, and a slow or stalled client holds a connection no
  // longer. (Both count from a request's first byte; an idle kept-alive connection is not timed by them.)
  server.headersTimeout = 30_000;
  server.requestTimeout = 35_000;
  // Expect: 100-continue: the app refuses an over-limit or compressed body at once, and the
  // client then never sends it; anything else is told to go on.
  server.on('checkContinue', (req, res) => {
    opts.app(req, res);
    if (!res.headersSent) res.writeContinue();
  });
  watchConnectionErrors(server, opts.metrics, opts.log);
  const certWatch = watchCert(opts, opts.certPollMs ?? 2000, opts.log, (c) => {
    server.setSecureContext({ ...TLS_OPTIONS, cert: c.cert, key: c.key });
    setExpiry(c);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.bind, () => {
      // From now on an error (EMFILE on accept under load) is logged; left to `reject`, the first
      // would vanish and the second, with no listener, would end the process.
      server.off('error', reject);
      server.on('error', (err) => opts.log.error({ err: err.message }, 'server error'));
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    server,
    port,
    certificate: { notAfter: initial.notAfter.toISOString(), subjectAltName: initial.subjectAltName },
    terminate,
    reloadCert: () => certWatch.checkNow(),
    shutdown: (graceMs = 20_000) =>
      new Promise<void>((resolve) => {
        certWatch.stop();
        const force = setTimeout(terminate, graceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
