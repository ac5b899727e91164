/**
 * Reads what the simulated Istio data plane needs from the API: Services, Pods,
 * VirtualServices and DestinationRules (networking.istio.io/v1) of the named namespaces.
 * Polling a few namespaced lists every ~500 ms is fine for a test tool.
 */
import * as k8s from '@kubernetes/client-node';
import type { DestinationRuleObj, PodObj, ServiceObj, Snapshot, VirtualServiceObj } from './core.js';

export interface KubeSourceOptions {
  kubeconfig?: string;
  namespaces: string[];
  defaultRps: number;
  istioVersion?: string;
}

export class KubeSource {
  private readonly core: k8s.CoreV1Api;
  private readonly custom: k8s.CustomObjectsApi;
  /** API requests made so far. */
  requests = 0;

  constructor(private readonly opts: KubeSourceOptions) {
    const kc = new k8s.KubeConfig();
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  async snapshot(namespace: string): Promise<Snapshot> {
    const version = this.opts.istioVersion ?? 'v1';
    const custom = (plural: string) =>
      this.custom.listNamespacedCustomObject({ group: 'networking.istio.io', version, namespace, plural }).then(
        (r: { items?: unknown[] }) => r.items ?? [],
        (e: unknown) => {
          // No such namespace yet or CRD missing: no Istio objects.
          if ((e as { code?: number }).code === 404) return [];
          throw e;
        },
      );
    this.requests += 4;
    const [services, pods, vss, drs] = await Promise.all([
      this.core.listNamespacedService({ namespace }).then((r) => r.items),
      this.core.listNamespacedPod({ namespace }).then((r) => r.items),
      custom('virtualservices'),
      custom('destinationrules'),
    ]);
    return {
      namespace,
      defaultRps: this.opts.defaultRps,
      services: services as unknown as ServiceObj[],
      pods: pods as unknown as PodObj[],
      virtualServices: vss as VirtualServiceObj[],
      destinationRules: drs as DestinationRuleObj[],
    };
  }

  async snapshots(): Promise<Snapshot[]> {
    return Promise.all(this.opts.namespaces.map((ns) => this.snapshot(ns)));
  }
}
