import { constants as osConstants } from 'node:os';
import type { Command } from 'commander';
import { parseReleaseConfig } from '../config/release-config.js';
import { DEFAULT_TRACK_LABEL, progressorUser } from '../config/contract.js';
import { createLogger, endLogger } from '../kube/logger.js';
import { createWebhookMetrics } from '../webhook/metrics.js';
import { DEFAULT_BODY_LIMIT, createApp, serve } from '../webhook/server.js';
import { optionSource, readAnalysisDefault } from './defaults.js';
import { durationOption, envOption, intOption, namespaceOption, nonEmptyListOption, nonEmptyOption, seconds, trackLabelOption } from './options.js';

interface WebhookFlags {
  port: number;
  bind: string;
  tlsCert: string;
  tlsKey: string;
  trackLabel: string;
  progressorUser?: string[];
  namespace: string;
  defaultAnalysis?: string;
  bodyLimit: number;
  certPollMs: number;
  shutdownDelay?: number;
}

export function registerWebhook(program: Command): void {
  const cmd = program
    .command('webhook')
    .description('Serve the mutating admission webhook over HTTPS: POST /mutate, POST /mutate/namespace, GET /healthz, /readyz, /metrics.');
  envOption(cmd, '--port <n>', 'HTTPS port', 'KUBE_CANARY_PORT', intOption('--port', 0, 65535), 8443);
  envOption(cmd, '--bind <addr>', 'address to listen on (0.0.0.0 or :: for every interface, as in a pod)', 'KUBE_CANARY_BIND', nonEmptyOption('--bind', '127.0.0.1'), '127.0.0.1');
  envOption(cmd, '--tls-cert <file>', 'PEM serving certificate (re-read when it changes)', 'KUBE_CANARY_TLS_CERT', nonEmptyOption('--tls-cert', 'certs/local/tls.crt'));
  envOption(cmd, '--tls-key <file>', 'PEM private key of the serving certificate', 'KUBE_CANARY_TLS_KEY', nonEmptyOption('--tls-key', 'certs/local/tls.key'));
  envOption(
    cmd,
    '--shutdown-delay <duration>',
    'on SIGTERM, keep accepting (readyz 503, every answer closing its connection) for this long before stopping, while the Service drops this pod (in a cluster, a few seconds: 5s); SIGINT and a second signal skip it (default: 0s)',
    'KUBE_CANARY_SHUTDOWN_DELAY',
    durationOption('--shutdown-delay', seconds(0, 60, '5s')),
  );
  envOption(cmd, '--cert-poll-ms <n>', 'how often the certificate files are checked for a change, in milliseconds', 'KUBE_CANARY_CERT_POLL_MS', intOption('--cert-poll-ms', 50, 600_000), 2000);
  envOption(cmd, '--track-label <key>', 'pod label key that tells stable from canary pods', 'KUBE_CANARY_TRACK_LABEL', trackLabelOption('--track-label'), DEFAULT_TRACK_LABEL);
  envOption(cmd, '--progressor-user <names>', 'comma-separated usernames (request.userInfo) of the progressor, whose writes pass untouched (default: system:serviceaccount:<--namespace>:kube-canary-progressor)', 'KUBE_CANARY_PROGRESSOR_USER', nonEmptyListOption('--progressor-user'));
  envOption(cmd, '--namespace <ns>', "kube-canary's own namespace, never managed", 'POD_NAMESPACE', namespaceOption('--namespace'), 'kube-canary');
  envOption(cmd, '--default-analysis <yaml|@file>', 'cluster default analysis (same YAML as the kube-canary.io/analysis annotation); @path reads a file', 'KUBE_CANARY_DEFAULT_ANALYSIS', String);
  envOption(cmd, '--body-limit <bytes>', 'largest accepted request body (an AdmissionReview carries the object and oldObject)', 'KUBE_CANARY_BODY_LIMIT', intOption('--body-limit', 1024), DEFAULT_BODY_LIMIT);
  cmd.action(async (f: WebhookFlags) => {
    const missing = [!f.tlsCert && '--tls-cert (KUBE_CANARY_TLS_CERT)', !f.tlsKey && '--tls-key (KUBE_CANARY_TLS_KEY)'].filter(Boolean);
    if (missing.length > 0) throw new Error(`${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} required: the serving certificate and its key, as PEM files (make them with: kube-canary certs --out DIR)`);
    const log = createLogger('webhook');
    const analysisFlag = optionSource(cmd, 'defaultAnalysis', '--default-analysis', 'KUBE_CANARY_DEFAULT_ANALYSIS');
    const defaults = f.defaultAnalysis ? { analysis: readAnalysisDefault(f.defaultAnalysis, analysisFlag) } : {};
    const check = parseReleaseConfig('default', {}, defaults);
    if (!check.ok) throw new Error(`${analysisFlag} is invalid: ${check.errors.join('; ')}`);
    // Installed in another namespace, the progressor's service account is that namespace's.
    const progressorUsers = f.progressorUser ?? [progressorUser(f.namespace)];
    const metrics = createWebhookMetrics({ processMetrics: true });
    let ready = true;
    const app = createApp({
      config: { trackLabel: f.trackLabel, progressorUsers, ownNamespace: f.namespace, defaults },
      metrics,
      log,
      bodyLimit: f.bodyLimit,
      isReady: () => ready,
    });
    const certOption = optionSource(cmd, 'tlsCert', '--tls-cert', 'KUBE_CANARY_TLS_CERT');
    const keyOption = optionSource(cmd, 'tlsKey', '--tls-key', 'KUBE_CANARY_TLS_KEY');
    const running = await serve({ app, port: f.port, bind: f.bind, certFile: f.tlsCert, keyFile: f.tlsKey, certOption, keyOption, metrics, log, certPollMs: f.certPollMs }).catch((e: unknown) => {
      throw new Error(listenProblem(e, f.port, f.bind, optionSource(cmd, 'port', '--port', 'KUBE_CANARY_PORT'), optionSource(cmd, 'bind', '--bind', 'KUBE_CANARY_BIND')) ?? (e as Error).message);
    });
    let delay: NodeJS.Timeout | undefined;
    let stopping: Promise<void> | undefined;
    let stopped = false;
    // 0 after a graceful stop; 128 + the signal's number (as a shell reports a process killed by
    // it) when a second signal cut connections short, so a supervisor can tell the two apart.
    let exitCode = 0;
    const finish = (signal: string) => {
      clearTimeout(delay);
      if (!stopping) log.info({ signal }, 'stopping: finishing requests in flight');
      stopping ??= running.shutdown().then(async () => {
        stopped = true;
        log.info('stopped');
        await endLogger(log); // every line out, in order, before the exit
        process.exit(exitCode);
      });
    };
    const stop = (signal: NodeJS.Signals) => {
      // Nothing left to cut short (the last lines are being written). `timeout` and some
      // supervisors signal the process and its group, so two signals can arrive at once.
      if (stopped) return;
      if (!ready) {
        // Someone is waiting on a terminal, or a supervisor has run out of patience.
        finish(signal);
        const cut = running.terminate(); // the shutdown above then ends at once
        log.warn({ signal, connections: cut }, 'second signal: closed every connection');
        if (cut > 0) exitCode = 128 + osConstants.signals[signal];
        return;
      }
      ready = false;
      // SIGTERM is how Kubernetes stops a pod, still reachable through its Service for a moment;
      // SIGINT is someone at a terminal.
      const delayMs = signal === 'SIGTERM' ? (f.shutdownDelay ?? 0) : 0;
      if (delayMs === 0) return finish(signal);
      log.info({ signal, delayMs }, 'stopping: not ready, still accepting until the delay is over (a second signal stops at once)');
      delay = setTimeout(() => finish(signal), delayMs);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    // What operators send to make a server re-read its files (nginx, Prometheus); by default it would end the process mid-request.
    process.on('SIGHUP', () => {
      log.info('SIGHUP: looking at the certificate files now');
      running.reloadCert();
    });
    // Announced only once a signal would stop it gracefully: the line may be read (by a test, a
    // supervisor) before this function returns, since pino writes it on another thread.
    log.info({ address: `https://${f.bind.includes(':') ? `[${f.bind}]` : f.bind}:${running.port}`, trackLabel: f.trackLabel, progressorUsers, certificate: running.certificate }, 'webhook serving');
  });
}

/** A listen error in words that name the option to change, or undefined for any other error. */
export function listenProblem(e: unknown, port: number, bind: string, portOption: string, bindOption: string): string | undefined {
  const code = (e as NodeJS.ErrnoException).code;
  const at = `${bind.includes(':') ? `[${bind}]` : bind}:${port}`;
  if (code === 'EADDRINUSE') return `cannot listen on ${at}: the port is in use by another process; stop it or choose another ${portOption}`;
  if (code === 'EACCES') return `cannot listen on ${at}: ports below 1024 need privileges; choose ${portOption} 1024 or above, e.g. 8443`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EADDRNOTAVAIL') {
    return `cannot listen on ${at}: ${bindOption} ${JSON.stringify(bind)} is not an address of this machine; give one of its IP addresses, e.g. 127.0.0.1 (0.0.0.0 or :: for every interface, as in a pod)`;
  }
  return undefined;
}
