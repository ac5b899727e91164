/**
 * The few custom-object calls the traffic providers make, behind a small interface so a
 * provider can be tested against an in-memory double, and so JSON patches always go out with
 * the right content type.
 */
import type { Operation } from 'fast-json-patch';
import { ApiError, type KubeHttp, type Priority } from './http.js';

export interface ApiObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  spec?: Record<string, unknown>;
  [k: string]: unknown;
}

export interface Gvr {
  group: string;
  version: string;
  plural: string;
  /** What installs the resource, for the message when the cluster does not serve it (e.g. "Istio 1.22 or newer"). */
  servedBy?: string;
}

export interface CustomObjectClient {
  list(gvr: Gvr, namespace: string): Promise<ApiObject[]>;
  get(gvr: Gvr, namespace: string, name: string): Promise<ApiObject>;
  create(gvr: Gvr, namespace: string, body: ApiObject): Promise<ApiObject>;
  /** `priority`: see KubeHttp; traffic weight changes go out `high`. */
  jsonPatch(gvr: Gvr, namespace: string, name: string, ops: Operation[], priority?: Priority): Promise<ApiObject>;
}

const path = (g: Gvr, ns: string) => `/apis/${g.group}/${g.version}/namespaces/${ns}/${g.plural}`;

export class KubeCustomObjects implements CustomObjectClient {
  constructor(private readonly http: KubeHttp) {}

  async list(gvr: Gvr, namespace: string): Promise<ApiObject[]> {
    try {
      return (await this.http.request<{ items?: ApiObject[] }>('GET', path(gvr, namespace))).items ?? [];
    } catch (err) {
      // A list in a namespace that does not exist is empty: a 404 here means the resource itself is not served.
      if (err instanceof ApiError && err.code === 404) throw new ApiError(404, notServedMessage(gvr), err.body);
      throw err;
    }
  }

  get(gvr: Gvr, namespace: string, name: string): Promise<ApiObject> {
    return this.http.request('GET', `${path(gvr, namespace)}/${name}`);
  }

  create(gvr: Gvr, namespace: string, body: ApiObject): Promise<ApiObject> {
    return this.http.request('POST', path(gvr, namespace), { body });
  }

  jsonPatch(gvr: Gvr, namespace: string, name: string, ops: Operation[], priority?: Priority): Promise<ApiObject> {
    return this.http.request('PATCH', `${path(gvr, namespace)}/${name}`, { body: ops, contentType: 'application/json-patch+json', ...(priority ? { priority } : {}) });
  }
}

/** Why reading a resource failed with 404 on its collection: its CustomResourceDefinition is missing. */
export function notServedMessage(gvr: Gvr): string {
  const by = gvr.servedBy ? ` (${gvr.servedBy})` : '';
  return `the API server does not serve ${gvr.plural}.${gvr.group}/${gvr.version}: install its CustomResourceDefinition${by}`;
}
