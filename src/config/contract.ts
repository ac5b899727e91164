/**
 * The public contract's names (ARCHITECTURE.md): labels and annotations that users, the Helm
 * chart, the kubectl plugin and the acceptance tests depend on. Change one only together with
 * the docs.
 */
export const PREFIX = 'kube-canary.io/';

export const LABEL_ENABLED = `${PREFIX}enabled`;
export const LABEL_ROLE = `${PREFIX}role`;
export const LABEL_STABLE_NAME = `${PREFIX}stable`;
export const ROLE_CANARY = 'canary';

/** Written by the webhook when it captures a release. */
export const ANN_REVISION = `${PREFIX}revision`;
export const ANN_STABLE_REVISION = `${PREFIX}stable-revision`;
/** Written by the progressor. */
export const ANN_STATUS = `${PREFIX}status`;
export const ANN_FAILED_REVISION = `${PREFIX}failed-revision`;
/** Written by users. */
export const ANN_ANALYSIS = `${PREFIX}analysis`;
export const ANN_PROGRESS_DEADLINE = `${PREFIX}progress-deadline`;
export const ANN_SKIP_ANALYSIS = `${PREFIX}skip-analysis`;
export const ANN_PROVIDER = `${PREFIX}provider`;
export const ANN_SERVICE = `${PREFIX}service`;
/**
 * Written by users (`kubectl annotate`, later the kubectl plugin) to ask the progressor to act on
 * the release once. The progressor removes it in the same guarded patch that commits the result.
 */
export const ANN_REQUEST = `${PREFIX}request`;
export const REQUESTS = ['promote', 'abort', 'pause', 'resume', 'retry'] as const;
export type ReleaseRequest = (typeof REQUESTS)[number];

/** Annotations the webhook and progressor own; a user's rewrite of the object must not drop them mid-release. */
export const MANAGED_ANNOTATIONS = [ANN_REVISION, ANN_STABLE_REVISION, ANN_STATUS, ANN_FAILED_REVISION] as const;

/** Annotations a user may set, validated by src/config/release-config.ts. */
export const USER_ANNOTATIONS = [ANN_ANALYSIS, ANN_PROGRESS_DEADLINE, ANN_SKIP_ANALYSIS, ANN_PROVIDER, ANN_SERVICE, ANN_REQUEST] as const;

export const DEFAULT_TRACK_LABEL = 'version';

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `key` is not a valid Kubernetes label key (`[prefix/]name`), or undefined when it is. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = key.slice(slash + 1);
  if (!LABEL_NAME.test(name)) return `${JSON.stringify(key)} is not a valid label key: the name part must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return `${JSON.stringify(key)} is not a valid label key: the prefix before '/' must be a DNS subdomain (lowercase, at most 253 characters), e.g. example.com/track`;
  return undefined;
}

/**
 * Why `key` cannot be the track label, or undefined: a valid label key that nobody else writes on
 * the pods. The Deployment controller sets `pod-template-hash` on every pod to its own hash, and
 * kube-canary's own labels mean something else: subsets keyed on either would select no pod.
 */
export function trackLabelProblem(key: string): string | undefined {
  const problem = labelKeyProblem(key);
  if (problem) return problem;
  if (key === 'pod-template-hash') return `"pod-template-hash" is set by the Deployment controller on every pod (to the hash of its template), so it cannot tell stable from canary pods; use a key of your own, e.g. ${DEFAULT_TRACK_LABEL} (the default)`;
  if (key.startsWith(PREFIX)) return `${JSON.stringify(key)} is one of kube-canary's own label keys (${PREFIX}...); use a key of your own, e.g. ${DEFAULT_TRACK_LABEL} (the default)`;
  return undefined;
}
export const TRACK_STABLE = 'stable';
export const TRACK_CANARY = 'canary';

/** Never acted on, whatever their labels say. */
export const SYSTEM_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'] as const;

/** The progressor's service account user in the namespace kube-canary is installed in (the chart's default). */
export function progressorUser(namespace: string): string {
  return `system:serviceaccount:${namespace}:kube-canary-progressor`;
}
export const DEFAULT_PROGRESSOR_USER = progressorUser('kube-canary');

export function canaryName(stableName: string): string {
  return `${stableName}-canary`;
}
