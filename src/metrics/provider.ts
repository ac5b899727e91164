/**
 * The gate interfaces the progressor codes against: metric checks (Prometheus) and webhook gates
 * (Flagger's loadtester payload). Implementations: ./prometheus.ts and ./webhooks.ts.
 * A check that could not be evaluated (no data, unreachable, timeout) is `passed: false`, never a pass.
 */
import type { MetricCheck, WebhookGate } from '../config/analysis.js';
export interface MetricTarget { namespace: string; stable: string; canary: string; intervalMs: number }
export interface CheckResult { name: string; passed: boolean; value?: number; min?: number; max?: number; message: string }
export interface MetricProvider { check(metric: MetricCheck, target: MetricTarget, signal?: AbortSignal): Promise<CheckResult> }
export interface WebhookPayload { name: string; namespace: string; phase: string; checksum: string; metadata: Record<string, string> }
export interface GateRunner { run(gate: WebhookGate, payload: WebhookPayload, signal?: AbortSignal): Promise<CheckResult> }
