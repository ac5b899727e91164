/**
 * Webhook gates, compatible with Flagger's loadtester: POST a JSON payload
 * `{ name, namespace, phase, checksum, metadata }`; any 2xx passes, anything else (another
 * status, a redirect, a network error, the gate's timeout) fails with a message naming the URL
 * and what happened. Metadata values may carry secrets (tokens in a load-test command), so they
 * never appear in a message: the response body is shown only with every metadata value masked.
 */
import type { WebhookGate } from '../config/analysis.js';
import { UNTRUSTED_FIX, post, redactUrl, takeBasicAuth } from './http-client.js';
import type { CheckResult, GateRunner, WebhookPayload } from './provider.js';

const BODY_SNIPPET = 200;
/** Of an answer only a snippet is shown; more than this is not read (see post()). */
export const MAX_ANSWER_BYTES = 64 * 1024;

/** The exact JSON Flagger's loadtester expects. */
export function webhookBody(payload: WebhookPayload): string {
  return JSON.stringify({ name: payload.name, namespace: payload.namespace, phase: payload.phase, checksum: payload.checksum, metadata: payload.metadata });
}

/** A short, single-line excerpt of a response body with every secret-looking value masked. */
export function bodySnippet(text: string, secrets: string[]): string {
  let s = text;
  for (const v of secrets.filter((x) => x.length > 0).sort((a, b) => b.length - a.length)) s = s.split(v).join('***');
  s = s.replace(/\s+/g, ' ').trim();
  return s.length > BODY_SNIPPET ? `${s.slice(0, BODY_SNIPPET - 3)}...` : s;
}

export class HttpGateRunner implements GateRunner {
  /** Calls made so far (for metrics and the benchmark). */
  calls = 0;

  async run(gate: WebhookGate, payload: WebhookPayload, signal?: AbortSignal): Promise<CheckResult> {
    const shown = redactUrl(gate.url);
    const label = `webhook ${gate.name} (${gate.type}) ${shown}`;
    const fail = (message: string): CheckResult => ({ name: gate.name, passed: false, message: `${label}: ${message}` });
    let url: URL;
    try {
      url = new URL(gate.url);
    } catch {
      return fail('the URL is not valid');
    }
    let authorization: string | undefined;
    try {
      authorization = takeBasicAuth(url);
    } catch (err) {
      return fail((err as Error).message);
    }
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/plain, */*', ...(authorization ? { authorization } : {}) };
    this.calls += 1;
    const res = await post(url, { headers, body: webhookBody(payload), redirect: 'manual' }, gate.timeoutMs, signal, MAX_ANSWER_BYTES);
    if ('failed' in res) {
      if (res.failed === 'timeout') return fail(`no answer within the gate's timeout of ${gate.timeoutMs}ms`);
      if (res.failed === 'cancelled') return fail('cancelled before it answered');
      if (res.failed === 'untrusted') return fail(`its TLS certificate is not accepted: ${res.detail}; ${UNTRUSTED_FIX}`);
      return fail(`unreachable: ${res.detail}`);
    }
    const secrets = Object.values(payload.metadata);
    // A cut answer may end inside a secret, which masking would then miss: its tail is dropped.
    const longest = Math.max(0, ...secrets.map((v) => v.length));
    const snippet = bodySnippet(res.truncated ? res.text.slice(0, Math.max(0, res.text.length - longest)) : res.text, secrets);
    if (res.status >= 200 && res.status < 300) {
      return { name: gate.name, passed: true, message: `${label}: HTTP ${res.status}` };
    }
    if (res.status >= 300 && res.status < 400) {
      return fail(`HTTP ${res.status} redirect; a gate must answer 2xx itself (redirects are not followed)`);
    }
    return fail(`HTTP ${res.status}${snippet ? `: ${snippet}` : ''}`);
  }
}
