/**
 * The mocha hooks every e2e scenario shares: a fresh namespace and an environment started in it
 * before the tests, both removed after them. Tests read `ns` and `env` when they run.
 */
import { createNamespace, deleteNamespace } from './cluster.js';

export function useScenario<E extends { stop(): Promise<void> }>(prefix: string, start: (ns: string) => Promise<E>, namespaceLabels: Record<string, string> = {}): { readonly ns: string; readonly env: E } {
  let ns = '';
  let env: E | undefined;
  before(async () => {
    ns = await createNamespace(prefix, namespaceLabels);
    env = await start(ns);
  });
  after(async () => {
    await env?.stop();
    if (ns) await deleteNamespace(ns);
  });
  return {
    get ns() {
      return ns;
    },
    get env() {
      if (!env) throw new Error(`the ${prefix} environment is not up (its before hook failed)`);
      return env;
    },
  };
}
