/**
 * Cluster defaults from flags (`--default-analysis`, `--default-provider`), shared by the webhook
 * and the progressor. Every error names the flag, so a bad chart value is found at once.
 */
import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { parseAnalysis, readAnalysisText } from '../config/analysis.js';
import { type AvailableTrafficProviderName, isAvailableProvider, providerError } from '../config/release-config.js';

/**
 * `--default-analysis <yaml|@file>`: YAML or JSON (same as the annotation), or `@path` to read it
 * from a file. Returns the parsed source, validated by the annotation's own parser; throws a
 * message that starts with the flag.
 */
export function readAnalysisDefault(value: string, flag = '--default-analysis'): unknown {
  let text = value;
  if (value.startsWith('@')) {
    try {
      text = readFileSync(value.slice(1), 'utf8');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new Error(`${flag} ${value}: cannot read the file (${err.code ? `${err.code}: ` : ''}${reason(err)})`);
    }
  }
  const raw = readAnalysisText(text);
  if (!raw.ok) throw new Error(`${flag}: ${raw.errors.join('; ')}`);
  const check = parseAnalysis(undefined, raw.value);
  if (!check.ok) throw new Error(`${flag}: ${check.errors.join('; ')}`);
  return raw.value;
}

/** How the user set an option, for a message: the flag, or the environment variable it came from. */
export function optionSource(cmd: Command, key: string, flag: string, envVar: string): string {
  return cmd.getOptionValueSource(key) === 'env' ? envVar : flag;
}

/** "no such file or directory" out of "ENOENT: no such file or directory, open '/x'". */
function reason(err: Error): string {
  return err.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '');
}

/** A commander parser for a traffic provider flag: refuses what admission would refuse. */
export function providerOption(flag: string) {
  return (value: string): AvailableTrafficProviderName => {
    if (!isAvailableProvider(value)) throw new InvalidArgumentError(`${flag} ${providerError(value)}`);
    return value;
  };
}
