/**
 * The HTTP layer: an express app around the pure decision, and the HTTPS server that serves it
 * with TLS 1.2+, keep-alive tuned for the apiserver, certificate hot-reload and a graceful stop.
 */
import { createServer, type Server } from 'node:https';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../kube/logger.js';
import { decide, type WebhookConfig } from './decision.js';
import type { OptInSource } from './filters.js';
import type { WebhookMetrics } from './metrics.js';
import { EnvelopeError, parseReview, reviewResponse } from './review.js';
import { type CertFiles, type LoadedCert, TLS_OPTIONS, loadCert, watchCert } from './tls.js';

/** An AdmissionReview carries the object and oldObject; etcd caps an object at ~1.5 MiB. */
export const DEFAULT_BODY_LIMIT = 3 * 1024 * 1024;

export interface AppOptions {
  config: WebhookConfig;
  metrics: WebhookMetrics;
  log: Logger;
  bodyLimit?: number;
  isReady?: () => boolean;
}

export function createApp(opts: AppOptions): express.Express {
  const { config, metrics, log } = opts;
  const app = express();
  app.disable('x-powered-by');
  // The apiserver never revalidates: hashing every answer for an ETag is wasted work.
  app.set('etag', false);
  const body = express.raw({ type: () => true, limit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT });

  const mutate = (source: OptInSource) => (req: Request, res: Response) => {
    const start = process.hrtime.bigint();
    let decision = 'invalid';
    try {
      const request = parseReview(req.body as Buffer | undefined);
      const d = decide(request, source, config);
      decision = d.outcome;
      metrics.admissions.inc({ decision, operation: request.operation });
      log.info(
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
      res.json(reviewResponse(d.response));
    } catch (e) {
      if (!(e instanceof EnvelopeError)) throw e;
      metrics.admissions.inc({ decision, operation: 'unknown' });
      log.warn({ err: e.message }, 'malformed admission request');
      res.status(e.httpStatus).json({ message: e.message });
    } finally {
      metrics.latency.observe({ decision }, Number(process.hrtime.bigint() - start) / 1e9);
    }
  };

  app.post('/mutate', body, mutate('label'));
  app.post('/mutate/namespace', body, mutate('namespace'));
  app.get('/healthz', (_req, res) => void res.type('text').send('ok'));
  app.get('/readyz', (_req, res) => {
    const ready = opts.isReady?.() ?? true;
    res.status(ready ? 200 : 503).type('text').send(ready ? 'ok' : 'shutting down');
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.use((req, res) => void res.status(404).json({ message: `no route ${req.method} ${req.path}; POST /mutate, POST /mutate/namespace, GET /healthz, /readyz, /metrics` }));
  // Body-parser errors (too large, aborted) and anything unexpected: a 4xx/5xx with a reason, never a crash.
  app.use((err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
    const status = err.status && err.status >= 400 && err.status < 600 ? err.status : 500;
    const message =
      err.type === 'entity.too.large'
        ? `request body larger than the limit of ${opts.bodyLimit ?? DEFAULT_BODY_LIMIT} bytes`
        : status === 500
          ? 'internal error while handling the admission request'
          : err.message;
    metrics.admissions.inc({ decision: 'invalid', operation: 'unknown' });
    if (status === 500) log.error({ err: err.message, stack: err.stack }, 'unhandled error in webhook');
    else log.warn({ err: message }, 'rejected request');
    if (!res.headersSent) res.status(status).json({ message });
  });
  return app;
}

export interface ServeOptions extends CertFiles {
  app: express.Express;
  port: number;
  bind: string;
  metrics: WebhookMetrics;
  log: Logger;
  certPollMs?: number;
}

export interface RunningServer {
  server: Server;
  port: number;
  /** Stop accepting, let requests in flight finish (up to graceMs), then close. */
  shutdown(graceMs?: number): Promise<void>;
}

export async function serve(opts: ServeOptions): Promise<RunningServer> {
  const initial = loadCert(opts);
  const setExpiry = (c: LoadedCert) => opts.metrics.certExpiry.set(c.notAfter.getTime() / 1000);
  setExpiry(initial);
  const server = createServer({ ...TLS_OPTIONS, cert: initial.cert, key: initial.key }, opts.app);
  // The apiserver reuses connections and drops idle ones after 90 s: outlive that, so the client
  // always closes first and never sends on a socket we are closing.
  server.keepAliveTimeout = 95_000;
  server.headersTimeout = 100_000;
  server.requestTimeout = 120_000;
  const stopWatch = watchCert(opts, opts.certPollMs ?? 2000, opts.log, (c) => {
    server.setSecureContext({ ...TLS_OPTIONS, cert: c.cert, key: c.key });
    setExpiry(c);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.bind, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    server,
    port,
    shutdown: (graceMs = 20_000) =>
      new Promise<void>((resolve) => {
        stopWatch();
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
