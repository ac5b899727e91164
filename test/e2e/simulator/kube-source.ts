/**
 * Reads what the simulated Istio data plane needs from the API: Services, Pods,
 * VirtualServices and DestinationRules (networking.istio.io/v1) of the named namespaces.
 *
 * Watch-backed, like istiod: one list, then only the changes. (Polling every list each second
 * cost the API server several MB of JSON per second at 500 Services, which the benchmark then
 * measured as progressor lag.) Uses the project's own informer, which relists and rewatches on
 * errors, so a namespace or CRD that appears later is picked up.
 */
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { pino } from 'pino';
import { credentialsFromKubeConfig } from '../../../src/kube/credentials.js';
import { KubeHttp } from '../../../src/kube/http.js';
import { Informer } from '../../../src/kube/informer.js';
import { createLogger } from '../../../src/kube/logger.js';
import type { DestinationRuleObj, PodObj, ServiceObj, Snapshot, VirtualServiceObj } from './core.js';

export interface KubeSourceOptions {
  kubeconfig?: string;
  namespaces: string[];
  defaultRps: number;
  istioVersion?: string;
}

interface NamespaceCaches {
  services: Informer<KubernetesObject>;
  pods: Informer<KubernetesObject>;
  virtualServices: Informer<KubernetesObject>;
  destinationRules: Informer<KubernetesObject>;
}

export class KubeSource {
  private readonly http: KubeHttp;
  private readonly caches = new Map<string, NamespaceCaches>();

  constructor(private readonly opts: KubeSourceOptions) {
    const kc = new KubeConfig();
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
    this.http = new KubeHttp(credentialsFromKubeConfig(kc));
    // Informer warnings (watch restarts, retries) go to stderr; stdout carries the simulator's own lines.
    const log = createLogger('simulator', 'warn', pino.destination(2));
    const version = opts.istioVersion ?? 'v1';
    const informer = (namespace: string, name: string, path: string) => new Informer<KubernetesObject>(this.http, { name: `${name}(${namespace})`, path, backoffMaxMs: 2000 }, log).start();
    for (const ns of opts.namespaces) {
      this.caches.set(ns, {
        services: informer(ns, 'services', `/api/v1/namespaces/${ns}/services`),
        pods: informer(ns, 'pods', `/api/v1/namespaces/${ns}/pods`),
        virtualServices: informer(ns, 'virtualservices', `/apis/networking.istio.io/${version}/namespaces/${ns}/virtualservices`),
        destinationRules: informer(ns, 'destinationrules', `/apis/networking.istio.io/${version}/namespaces/${ns}/destinationrules`),
      });
    }
  }

  /** API requests made so far. */
  get requests(): number {
    return this.http.requests;
  }

  /** What the caches hold now; before a cache's first list, it contributes nothing. */
  snapshot(namespace: string): Snapshot {
    const c = this.caches.get(namespace)!;
    return {
      namespace,
      defaultRps: this.opts.defaultRps,
      services: c.services.list() as unknown as ServiceObj[],
      pods: c.pods.list() as unknown as PodObj[],
      virtualServices: c.virtualServices.list() as unknown as VirtualServiceObj[],
      destinationRules: c.destinationRules.list() as unknown as DestinationRuleObj[],
    };
  }

  async snapshots(): Promise<Snapshot[]> {
    return this.opts.namespaces.map((ns) => this.snapshot(ns));
  }

  async stop(): Promise<void> {
    await Promise.all([...this.caches.values()].flatMap((c) => [c.services, c.pods, c.virtualServices, c.destinationRules].map((i) => i.stop())));
  }
}
