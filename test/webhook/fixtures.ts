/** AdmissionReviews recorded in the shape the apiserver sends them, and helpers to vary them. */
import { readFileSync } from 'node:fs';
import type { V1Deployment } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import type { Decision, WebhookConfig } from '../../src/webhook/decision.js';
import type { AdmissionRequest } from '../../src/webhook/review.js';

export interface Review {
  apiVersion: string;
  kind: string;
  request: AdmissionRequest & { object: V1Deployment; oldObject: V1Deployment | null };
}

export function loadReview(name: 'review-set-image' | 'review-create'): Review {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8')) as Review;
}

export const config: WebhookConfig = {
  trackLabel: 'version',
  progressorUsers: ['system:serviceaccount:kube-canary:kube-canary-progressor'],
  ownNamespace: 'kube-canary',
  defaults: {},
};

/** The object the apiserver would persist: the request's object with the returned patch applied. */
export function patchedObject(review: Review, d: Decision): V1Deployment {
  const obj = structuredClone(review.request.object);
  if (!d.response.patch) return obj;
  const ops = JSON.parse(Buffer.from(d.response.patch, 'base64').toString('utf8'));
  return fastJsonPatch.applyPatch(obj, ops, true).newDocument as V1Deployment;
}

export function setImage(d: V1Deployment, image: string): void {
  d.spec!.template.spec!.containers[0]!.image = image;
}
