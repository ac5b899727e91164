/**
 * The data the pure step function works on: what the reconciler observed (Observation), what it
 * may ask for before deciding (Need), and what it must do afterwards (Action). Nothing here does
 * I/O; the reconciler turns these into API calls.
 */
import type { WebhookType } from '../config/analysis.js';
import type { ReleaseConfig } from '../config/release-config.js';
import type { Phase, ReleaseStatus } from '../config/status.js';
import type { CheckResult } from '../metrics/provider.js';

/** A Deployment's rollout as the step function sees it (stable and canary alike). */
export interface RolloutView {
  generation: number;
  observedGeneration: number;
  /** spec.replicas (default 1). */
  replicas: number;
  /** status.* counts: all pods, pods of the current template, and available pods of any template. */
  statusReplicas: number;
  updatedReplicas: number;
  availableReplicas: number;
  /** templateHash of spec.template (for the stable Deployment: the newest template the user wrote). */
  templateHash: string;
  /** The reason of a true ReplicaFailure condition: pods cannot be created (a ResourceQuota, admission). */
  replicaFailure?: string;
}

/** The stable Deployment as the step function needs to see it. */
export interface StableView extends RolloutView {
  namespace: string;
  name: string;
  paused: boolean;
  /** strategy Recreate: during its rollout the Deployment has no pods at all. */
  recreate?: true;
  /** kube-canary.io/revision: present exactly while a release is in progress. */
  revision?: string;
  /** kube-canary.io/stable-revision: the template the running pods use. */
  stableRevision?: string;
  status?: ReleaseStatus;
  /** kube-canary.io/failed-revision: the last revision that was rolled back. */
  failedRevision?: string;
  /** kube-canary.io/request, as written (the webhook validates it, but an odd value may get past it). */
  request?: string;
  /** Parsed without kube-canary.io/request: a request is not configuration. */
  config: { ok: true; value: ReleaseConfig } | { ok: false; errors: string[] };
  /**
   * No longer opted in (the label left the Deployment or its Namespace) while a release was in
   * progress: the release ends and the Deployment carries on as a plain one.
   */
  optedOut?: true;
}

/** The `<name>-canary` Deployment, if it exists. */
export type CanaryView = RolloutView;

/**
 * Gate sets the step function can ask the reconciler to run. `analysis` is one interval's
 * metric checks plus the `rollout` and `rollback` webhooks.
 */
export type GateKind = 'confirm-rollout' | 'pre-rollout' | 'analysis' | 'confirm-traffic-increase' | 'confirm-promotion';

export interface GateOutcome {
  passed: boolean;
  /** A `rollback` webhook answered 2xx: roll back now, whatever the other checks said. */
  rollbackRequested: boolean;
  results: CheckResult[];
}

/** A check of a gate set that has not answered yet (for the hold message while its set runs long). */
export type PendingCheck = { kind: 'metric'; name: string } | { kind: 'webhook'; name: string; timeoutMs: number };

export interface Observation {
  stable: StableView;
  canary?: CanaryView;
  /** Route weights as the traffic provider reports them; undefined when not looked up or absent. */
  routes?: { stable: number; canary: number };
  /**
   * Another Deployment whose release, started first, routes the same Service: its name. Its
   * release sets the routes; this one touches none and waits in an analysing phase (shared-service.ts).
   */
  routeHolder?: string;
  /** Outcomes of gates the step function asked for in this reconcile. */
  gates?: Partial<Record<GateKind, GateOutcome>>;
  /** Whether the ReplicaSet of the stable revision was found (looked up only on request). */
  stableTemplateFound?: boolean;
}

/** Best-effort notifications (never gates): `event` for every Event recorded (the reconciler sends those), `post-rollout` at the end. */
export type NotifyType = Extract<WebhookType, 'event' | 'post-rollout'>;

/** Every action is idempotent: performing it twice, or after a crash half-way, is harmless. */
export type Action =
  /** Create or update `<name>-canary` from the stable Deployment's current (captured) template. */
  /** `recreated`: the canary was seen ready before, so creating it means it was deleted (a Warning, sent only if the create happens). */
  | { type: 'ensureCanary'; revision: string; replicas: number; recreated?: string }
  | { type: 'deleteCanary' }
  /** Make sure the routing objects exist (generated ones are created; the user's are left as they are). */
  | { type: 'ensureRoutes' }
  | { type: 'setWeight'; canary: number }
  /** The following six touch the stable Deployment and are written as one patch, guarded by its uid and generation (stable-patch.ts). */
  | { type: 'unpauseStable' }
  | { type: 'restoreStableTemplate'; revision: string }
  /** Remove kube-canary.io/revision and stable-revision (the release is over); optionally record the failed revision. */
  | { type: 'clearRelease'; failedRevision?: string }
  | { type: 'writeStatus'; status: ReleaseStatus }
  /**
   * Remove kube-canary.io/request: the request was acted on (or ignored, `ignored` says why) by
   * this very commit, so it is acted on exactly once.
   */
  | { type: 'clearRequest'; request: string; ignored?: string }
  /** Remove kube-canary.io/failed-revision (a `retry` request). */
  | { type: 'clearFailedRevision' }
  /** Kubernetes Event on the stable Deployment; emitted only after the stable patch succeeded. */
  | { type: 'emitEvent'; warning: boolean; reason: string; message: string }
  | { type: 'notify'; hook: NotifyType; phase: string };

/** `gates`: for the release of `revision`, in `phase` (a new release's, not the stored status's). */
export type Need = { need: 'gates'; gate: GateKind; revision: string; phase: Phase } | { need: 'stableTemplate'; revision: string };

export interface Decision {
  status?: ReleaseStatus;
  actions: Action[];
  /** Reconcile again after this long (a due step, a deadline); undefined = only on a watch event. */
  requeueAfterMs?: number;
}

export type StepResult = ({ kind: 'decision' } & Decision) | ({ kind: 'need' } & Need);

/** Actions that are folded into the single stable-Deployment patch. */
export const STABLE_PATCH_ACTIONS = ['unpauseStable', 'restoreStableTemplate', 'clearRelease', 'clearRequest', 'clearFailedRevision', 'writeStatus'] as const;
