/** Option parsers for commander that fail with a message naming the flag and what is allowed. */
import { type Command, InvalidArgumentError, Option } from 'commander';

export function listOption(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

export function intOption(flag: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max) throw new InvalidArgumentError(`${flag} ${JSON.stringify(value)} must be a whole number from ${min} to ${max}`);
    return n;
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
  if (fallback !== undefined) opt.default(fallback);
  cmd.addOption(opt);
}
