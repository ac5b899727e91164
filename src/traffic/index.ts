/**
 * Provider registry: `kube-canary.io/provider` name -> factory. Adding `gateway-api` or
 * `replicas` means one new file implementing TrafficProvider, one line here, and the name in
 * AVAILABLE_TRAFFIC_PROVIDERS (src/config/release-config.ts), which admission checks against.
 */
import type { AvailableTrafficProviderName } from '../config/release-config.js';
import type { CustomObjectClient } from '../kube/custom-objects.js';
import type { ObjectCache } from '../kube/object-cache.js';
import { IstioProvider } from './istio.js';
import type { TrafficProvider } from './provider.js';

export type { RouteTarget, Routes, TrafficProvider } from './provider.js';

export interface ProviderDeps {
  customObjects: CustomObjectClient;
  /** Watch-backed reads of routing objects; optional (tests, one-shot tools read the API). */
  cache?: ObjectCache;
}

export type ProviderFactory = (deps: ProviderDeps) => TrafficProvider;

/** Exactly one factory per available provider (the type makes a missing or extra one an error). */
export const PROVIDERS: Record<AvailableTrafficProviderName, ProviderFactory> = {
  istio: (deps) => new IstioProvider(deps.customObjects, deps.cache),
};

/** One instance per provider name, created on first use. */
export class ProviderRegistry {
  private readonly instances = new Map<string, TrafficProvider>();

  constructor(private readonly deps: ProviderDeps, private readonly factories: Partial<Record<string, ProviderFactory>> = PROVIDERS) {}

  get(name: string): TrafficProvider {
    let p = this.instances.get(name);
    if (!p) {
      const f = this.factories[name];
      if (!f) throw new Error(`traffic provider "${name}" is not available in this version (available: ${Object.keys(this.factories).join(', ')})`);
      p = f(this.deps);
      this.instances.set(name, p);
    }
    return p;
  }
}
