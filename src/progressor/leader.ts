/**
 * Leader election on a coordination.k8s.io/v1 Lease, following client-go's leaderelection:
 * - a candidate takes the lease only when the holder has not renewed it for leaseDuration,
 *   measured on OUR clock from when WE last saw the record change (no cross-node clock trust);
 *   every duration is on the monotonic clock (performance.now()), so a wall-clock step (NTP, a
 *   VM resumed) cannot make a deposed leader believe it still leads;
 * - every write carries the resourceVersion we read, so two candidates cannot both win;
 * - the leader renews every retryPeriod; if it cannot renew for renewDeadline (< leaseDuration)
 *   it considers itself deposed and stops acting at once, before anyone else can take over; a
 *   renewal counts from when it was sent, not from when its answer came back;
 * - on shutdown it releases the lease (holder cleared) so a successor starts immediately.
 */
import type { Logger } from '../kube/logger.js';
import { microTime } from '../kube/events.js';
import { ApiError, type KubeHttp } from '../kube/http.js';

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
}

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: { holderIdentity?: string | null; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

/** Milliseconds on the monotonic clock. */
const mono = (): number => performance.now();

export class LeaderElector {
  private leading = false;
  /** mono() when the last successful renewal was sent. */
  private lastRenew = -Infinity;
  private observed?: { record: string; at: number };
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;

  constructor(private readonly http: KubeHttp, private readonly o: LeaderOptions, private readonly log: Logger) {
    this.leaseMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryMs = o.retryPeriodMs ?? 2_000;
    if (this.renewDeadlineMs >= this.leaseMs) throw new Error('the renew deadline must be shorter than the lease duration');
  }

  /** True only while the lease is held AND was renewed recently enough: the fence before every write. */
  isLeader(): boolean {
    return this.leading && !this.stopped && mono() - this.lastRenew < this.renewDeadlineMs;
  }

  start(): void {
    void this.tick();
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.o.namespace}/leases`;
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.tryAcquireOrRenew();
    } catch (err) {
      this.log.warn({ err: (err as Error).message, lease: `${this.o.namespace}/${this.o.name}` }, 'lease update failed');
    }
    if (this.leading && mono() - this.lastRenew >= this.renewDeadlineMs) this.lose('could not renew the lease within the renew deadline');
    if (!this.stopped) this.timer = setTimeout(() => void this.tick(), this.retryMs);
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const now = new Date();
    const sentAt = mono();
    let lease: Lease | undefined;
    try {
      lease = await this.http.request<Lease>('GET', `${this.path}/${this.o.name}`, { timeoutMs: this.retryMs * 2, priority: 'high' });
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 404)) throw err;
    }
    const spec = {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.ceil(this.leaseMs / 1000),
      renewTime: microTime(now),
    };
    if (!lease) {
      await this.http.request('POST', this.path, { body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.o.name, namespace: this.o.namespace }, spec: { ...spec, acquireTime: microTime(now), leaseTransitions: 0 } }, timeoutMs: this.retryMs * 2, priority: 'high' });
      this.renewed(sentAt);
      return;
    }
    const s = lease.spec ?? {};
    const record = JSON.stringify([s.holderIdentity, s.renewTime, s.leaseTransitions]);
    if (this.observed?.record !== record) this.observed = { record, at: mono() };
    const mine = s.holderIdentity === this.o.identity;
    const held = !!s.holderIdentity;
    const expired = mono() - this.observed.at > (s.leaseDurationSeconds ? s.leaseDurationSeconds * 1000 : this.leaseMs);
    if (!mine && held && !expired) {
      if (this.leading) this.lose(`lease now held by ${s.holderIdentity}`);
      return;
    }
    const body: Lease = {
      ...lease,
      spec: {
        ...s,
        ...spec,
        ...(mine ? {} : { acquireTime: microTime(now), leaseTransitions: (s.leaseTransitions ?? 0) + 1 }),
      },
    };
    try {
      await this.http.request('PUT', `${this.path}/${this.o.name}`, { body, timeoutMs: this.retryMs * 2, priority: 'high' });
    } catch (err) {
      // 409: someone else wrote the lease since we read it; they won this round.
      if (err instanceof ApiError && err.code === 409) {
        if (this.leading) this.lose('lost a write race on the lease');
        return;
      }
      throw err;
    }
    this.renewed(sentAt);
  }

  private renewed(sentAt: number): void {
    // A write still in flight when release() ran: leading again now would start a controller during shutdown.
    if (this.stopped) return;
    this.lastRenew = sentAt;
    if (!this.leading) {
      this.leading = true;
      this.log.info({ identity: this.o.identity, lease: `${this.o.namespace}/${this.o.name}` }, 'became leader');
      this.o.onStartedLeading();
    }
  }

  private lose(why: string): void {
    if (!this.leading) return;
    this.leading = false;
    // Stepping down to exit is no loss: said as such, not as a warning that it stands by.
    if (this.stopped) this.log.info({ identity: this.o.identity }, 'stepped down as leader to shut down; stopped acting');
    else this.log.warn({ identity: this.o.identity, why }, 'lost leadership; stopped acting, standing by to take the lease again');
    this.o.onStoppedLeading();
  }

  /** Stop campaigning; if leading, give the lease up so another replica takes over without waiting. */
  async release(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const wasLeading = this.leading;
    this.lose('shutting down'); // said apart: see lose()
    if (!wasLeading) return;
    try {
      const lease = await this.http.request<Lease>('GET', `${this.path}/${this.o.name}`, { timeoutMs: 3000, priority: 'high' });
      if (lease.spec?.holderIdentity !== this.o.identity) return;
      await this.http.request('PUT', `${this.path}/${this.o.name}`, {
        body: { ...lease, spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime(new Date()) } },
        timeoutMs: 3000,
        priority: 'high',
      });
      this.log.info({ identity: this.o.identity }, 'released the lease');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not release the lease; it expires on its own');
    }
  }
}
