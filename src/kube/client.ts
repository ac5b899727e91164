/**
 * Client construction and the typed helpers the progressor uses. Objects stay raw JSON (see
 * http.ts); the @kubernetes/client-node types only describe them.
 */
import type { V1Deployment, V1ReplicaSet, V1Service } from '@kubernetes/client-node';
import type { Operation } from 'fast-json-patch';
import type { KubeHttp } from './http.js';

export interface List<T> {
  items: T[];
  metadata?: { resourceVersion?: string; continue?: string };
}

const JSON_PATCH = 'application/json-patch+json';

export const deploymentsPath = (ns?: string) => (ns ? `/apis/apps/v1/namespaces/${ns}/deployments` : '/apis/apps/v1/deployments');
export const namespacesPath = () => '/api/v1/namespaces';

export class Kube {
  constructor(readonly http: KubeHttp) {}

  list<T>(path: string, labelSelector?: string, signal?: AbortSignal): Promise<List<T>> {
    return this.http.request<List<T>>('GET', path, { query: { labelSelector }, ...(signal ? { signal } : {}) });
  }

  getDeployment(ns: string, name: string): Promise<V1Deployment> {
    return this.http.request('GET', `${deploymentsPath(ns)}/${name}`);
  }

  createDeployment(ns: string, body: V1Deployment): Promise<V1Deployment> {
    return this.http.request('POST', deploymentsPath(ns), { body });
  }

  patchDeployment(ns: string, name: string, ops: Operation[]): Promise<V1Deployment> {
    return this.http.request('PATCH', `${deploymentsPath(ns)}/${name}`, { body: ops, contentType: JSON_PATCH });
  }

  /** Foreground-free delete; `uid` as a precondition so we never delete a same-named successor. */
  deleteDeployment(ns: string, name: string, uid?: string): Promise<unknown> {
    return this.http.request('DELETE', `${deploymentsPath(ns)}/${name}`, {
      body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background', ...(uid ? { preconditions: { uid } } : {}) },
    });
  }

  listReplicaSets(ns: string, labelSelector: string): Promise<List<V1ReplicaSet>> {
    return this.list(`/apis/apps/v1/namespaces/${ns}/replicasets`, labelSelector);
  }

  getService(ns: string, name: string): Promise<V1Service> {
    return this.http.request('GET', `/api/v1/namespaces/${ns}/services/${name}`);
  }
}
