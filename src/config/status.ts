/**
 * The release state the progressor keeps in `kube-canary.io/status` on the stable Deployment
 * (all state lives in the API). The webhook reads it only to explain a denial.
 */
export const PHASES = [
  'Initializing',
  'Progressing',
  'Waiting',
  'Paused',
  'Promoting',
  'Finalising',
  'Succeeded',
  'RollingBack',
  'Failed',
] as const;
export type Phase = (typeof PHASES)[number];

export interface ReleaseStatus {
  phase: Phase;
  /** Template hash of the release this status is about. */
  revision: string;
  stableRevision: string;
  /** Canary weight currently applied, 0-100. */
  weight: number;
  /** Index into analysis.steps of the weight applied, -1 before the first step. */
  stepIndex: number;
  failedChecks: number;
  /** ISO timestamps. */
  startedAt: string;
  lastTransitionAt: string;
  /** When the last gate run (pass or fail) happened, to schedule the next one an interval later. */
  lastCheckAt?: string;
  message: string;
  /** ISO time `message` was last said in an Event, when it was said again for a hold that lasts (step.ts HOLD_REPEAT_MS). */
  saidAt?: string;
  /** Phase-specific progress that must survive a restart (all state lives in the API). */
  /** The confirm-rollout gates passed for this revision. */
  rolloutConfirmed?: boolean;
  /** The pre-rollout gates passed for this revision. */
  preRolloutDone?: boolean;
  /** In phase Waiting: which confirm gate holds the release. */
  waitingOn?: WaitingOn;
  /** The release ended because the template was reverted to the running one (no failure recorded). */
  cancelled?: boolean;
  /** ISO time the canary was first seen not ready after it had been ready (bounded by the progress deadline). */
  canaryUnreadySince?: string;
  /** The Deployment whose release routes the same Service: this one waits until it ends (progressor/shared-service.ts). */
  heldBy?: string;
  /** The Service this release sets the routes of, and since when (ISO): its rank among releases behind that Service. */
  routing?: { service: string; since: string };
  /**
   * When and why the revision in kube-canary.io/failed-revision failed: kept through later
   * releases for as long as that annotation names it, so a denial of it can still say so.
   */
  failure?: FailureRecord;
}

export interface FailureRecord {
  revision: string;
  /** ISO time. */
  at: string;
  message: string;
}

export const WAITING_ON = ['confirm-rollout', 'confirm-traffic-increase', 'confirm-promotion'] as const;
export type WaitingOn = (typeof WAITING_ON)[number];

export const TERMINAL_PHASES: readonly Phase[] = ['Succeeded', 'Failed'];
export function isTerminal(phase: Phase): boolean {
  return TERMINAL_PHASES.includes(phase);
}

export function parseStatus(text: string | undefined): ReleaseStatus | undefined {
  if (!text) return undefined;
  try {
    const s = JSON.parse(text) as Partial<ReleaseStatus>;
    if (typeof s !== 'object' || s === null || !PHASES.includes(s.phase as Phase) || typeof s.revision !== 'string') return undefined;
    return {
      phase: s.phase as Phase,
      revision: s.revision,
      stableRevision: typeof s.stableRevision === 'string' ? s.stableRevision : '',
      weight: typeof s.weight === 'number' ? s.weight : 0,
      stepIndex: typeof s.stepIndex === 'number' ? s.stepIndex : -1,
      failedChecks: typeof s.failedChecks === 'number' ? s.failedChecks : 0,
      startedAt: typeof s.startedAt === 'string' ? s.startedAt : '',
      lastTransitionAt: typeof s.lastTransitionAt === 'string' ? s.lastTransitionAt : '',
      ...(typeof s.lastCheckAt === 'string' ? { lastCheckAt: s.lastCheckAt } : {}),
      message: typeof s.message === 'string' ? s.message : '',
      ...(typeof s.saidAt === 'string' ? { saidAt: s.saidAt } : {}),
      ...(s.rolloutConfirmed === true ? { rolloutConfirmed: true } : {}),
      ...(s.preRolloutDone === true ? { preRolloutDone: true } : {}),
      ...(WAITING_ON.includes(s.waitingOn as WaitingOn) ? { waitingOn: s.waitingOn as WaitingOn } : {}),
      ...(s.cancelled === true ? { cancelled: true } : {}),
      ...(typeof s.canaryUnreadySince === 'string' ? { canaryUnreadySince: s.canaryUnreadySince } : {}),
      ...(typeof s.heldBy === 'string' ? { heldBy: s.heldBy } : {}),
      ...(typeof s.routing?.service === 'string' && typeof s.routing.since === 'string' ? { routing: { service: s.routing.service, since: s.routing.since } } : {}),
      ...(isFailure(s.failure) ? { failure: { revision: s.failure.revision, at: s.failure.at, message: s.failure.message } } : {}),
    };
  } catch {
    return undefined;
  }
}

export function serializeStatus(s: ReleaseStatus): string {
  return JSON.stringify(s);
}

function isFailure(f: unknown): f is FailureRecord {
  const r = f as Partial<FailureRecord> | null | undefined;
  return typeof r === 'object' && r !== null && typeof r.revision === 'string' && typeof r.at === 'string' && typeof r.message === 'string';
}
