/** Option parsers for commander that fail with a message naming the flag and what is allowed. */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { checkDuration, withoutCredentials } from '../config/analysis.js';
import { trackLabelProblem } from '../config/contract.js';
import { credentialsProblem } from '../metrics/http-client.js';

export function listOption(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

/** A list that must name at least one entry (an empty one would silently match nothing). */
export function nonEmptyListOption(flag: string) {
  return (value: string): string[] => {
    const list = listOption(value);
    if (list.length === 0) throw new InvalidArgumentError(`${flag} ${JSON.stringify(value)} names nobody; give at least one comma-separated value`);
    return list;
  };
}

/** A value that must not be empty (an empty --bind would listen on every interface). */
export function nonEmptyOption(flag: string, example: string) {
  return (value: string): string => {
    if (value.trim() === '') throw new InvalidArgumentError(`${flag} is empty; give a value, e.g. ${flag} ${example}`);
    return value;
  };
}

const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** A namespace name (DNS-1123 label): kube-canary's own namespace names its identity, so a typo would match nothing. */
export function namespaceOption(flag: string) {
  return (value: string): string => {
    if (!NAMESPACE_NAME.test(value)) {
      throw new InvalidArgumentError(`${flag} ${JSON.stringify(value)} is not a namespace name: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters, e.g. ${flag} kube-canary`);
    }
    return value;
  };
}

/** The track label key: kube-canary writes it on pods, so a bad one would make every write fail, and a reserved one select nothing. */
export function trackLabelOption(flag: string) {
  return (value: string): string => {
    const problem = trackLabelProblem(value);
    if (problem) throw new InvalidArgumentError(`${flag} ${problem}`);
    return value;
  };
}

/**
 * An http(s) base URL. Without this, "prometheus.istio-system:9090" (no scheme) parses as a URL
 * of scheme "prometheus.istio-system:", and every metric check of every release failed with
 * "unknown scheme" until the releases rolled back; "127.0.0.1:9090" stopped the start with a
 * bare "Invalid URL". Credentials in it are never quoted back.
 */
export function httpUrlOption(flag: string, example: string) {
  return (value: string): string => {
    const shown = JSON.stringify(withoutCredentials(value));
    let u: URL | undefined;
    try {
      u = new URL(value);
    } catch {
      u = undefined;
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) {
      throw new InvalidArgumentError(`${flag} ${shown} is not an http(s) URL; write it with its scheme, e.g. ${flag} ${example}`);
    }
    const problem = credentialsProblem(u);
    if (problem) throw new InvalidArgumentError(`${flag} ${shown}: ${problem}`);
    return value;
  };
}

export function intOption(flag: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max) throw new InvalidArgumentError(`${flag} ${JSON.stringify(value)} must be a whole number from ${min} to ${max}`);
    return n;
  };
}

export interface DurationBounds {
  minMs: number;
  maxMs: number;
  example: string;
}

export const seconds = (min: number, max: number, example: string): DurationBounds => ({ minMs: min * 1000, maxMs: max * 1000, example });

/** A duration flag within bounds (a zero or absurd value would spin or never fire). */
export function durationOption(flag: string, bounds: DurationBounds) {
  return (value: string): number => {
    const d = checkDuration(value, bounds);
    if ('error' in d) throw new InvalidArgumentError(`${flag} ${d.error}`);
    return d.ms;
  };
}

/** A flag with an environment-variable equivalent (for the Helm chart); --help names both. */
export function envOption<T>(
  cmd: Command,
  flags: string,
  description: string,
  envVar: string,
  parse: (value: string, previous: T) => T,
  fallback?: T,
): void {
  const opt = new Option(flags, description).env(envVar).argParser(parse);
  // A list's default shown as it is written (a,b), not as JSON.
  if (fallback !== undefined) opt.default(fallback, Array.isArray(fallback) ? fallback.join(',') : undefined);
  cmd.addOption(opt);
}
