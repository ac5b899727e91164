/**
 * The few custom-object calls the traffic providers make, behind a small interface so a
 * provider can be tested against an in-memory double, and so JSON patches always go out with
 * the right content type.
 */
import { type CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Operation } from 'fast-json-patch';

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
}

export interface CustomObjectClient {
  list(gvr: Gvr, namespace: string): Promise<ApiObject[]>;
  create(gvr: Gvr, namespace: string, body: ApiObject): Promise<ApiObject>;
  jsonPatch(gvr: Gvr, namespace: string, name: string, ops: Operation[]): Promise<ApiObject>;
}

export class KubeCustomObjects implements CustomObjectClient {
  constructor(private readonly api: CustomObjectsApi) {}

  async list(gvr: Gvr, namespace: string): Promise<ApiObject[]> {
    const res = (await this.api.listNamespacedCustomObject({ ...gvr, namespace })) as { items?: ApiObject[] };
    return res.items ?? [];
  }

  async create(gvr: Gvr, namespace: string, body: ApiObject): Promise<ApiObject> {
    return (await this.api.createNamespacedCustomObject({ ...gvr, namespace, body })) as ApiObject;
  }

  async jsonPatch(gvr: Gvr, namespace: string, name: string, ops: Operation[]): Promise<ApiObject> {
    return (await this.api.patchNamespacedCustomObject({ ...gvr, namespace, name, body: ops }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch))) as ApiObject;
  }
}
