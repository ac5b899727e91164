import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_CA_VALID_DAYS, MAX_VALID_DAYS, checkCertOptions, generateCerts } from '../certs/generate.js';
import { uniqueHosts } from '../certs/hosts.js';
import { checkReplaceable, ensureDir, writeAllOrNothing } from '../certs/write.js';
import { intOption, listOption } from './options.js';

interface CertsFlags {
  out: string;
  hosts?: string[];
  validDays: number;
  caValidDays?: number;
  force?: boolean;
}

const FILES = ['ca.crt', 'tls.crt', 'tls.key'];
const DEFAULT_HOSTS = ['127.0.0.1', 'localhost'];

export function registerCerts(program: Command): void {
  program
    .command('certs')
    .description('Write a CA (ca.crt) and a serving certificate signed by it (tls.crt, tls.key) for the webhook, as PEM files.')
    .requiredOption('--out <dir>', 'directory to write ca.crt, tls.crt and tls.key into (created if missing)')
    // Repeated, the lists add up (the default only when none is given).
    .option('--hosts <list>', `comma-separated IPs (IP SANs) and DNS names (DNS SANs; "*." may start a wildcard name); may be repeated (default: ${DEFAULT_HOSTS.join(',')})`, (v: string, previous?: string[]) => [...(previous ?? []), ...listOption(v)])
    .option('--valid-days <n>', `validity of the serving certificate in days (1 to ${MAX_VALID_DAYS})`, intOption('--valid-days', 1, MAX_VALID_DAYS), 365)
    .option(
      '--ca-valid-days <n>',
      `validity of the CA in days, at least --valid-days (default: ${DEFAULT_CA_VALID_DAYS}, or --valid-days if longer)`,
      intOption('--ca-valid-days', 1, MAX_VALID_DAYS),
    )
    .option('--force', 'replace ca.crt, tls.crt and tls.key already in --out (a new CA: update every caBundle that holds the old one)')
    .action((opts: CertsFlags, cmd: Command) => {
      // The one rule that ties two flags: say when the longer one is the default nobody typed.
      if (opts.caValidDays !== undefined && opts.validDays > opts.caValidDays && cmd.getOptionValueSource('validDays') === 'default') {
        throw new Error(`--ca-valid-days ${opts.caValidDays} is shorter than the serving certificate's default validity (--valid-days ${opts.validDays}): the certificate would outlive its CA; give --valid-days of at most ${opts.caValidDays} too, or a longer --ca-valid-days`);
      }
      writeCerts(opts);
    });
}

function writeCerts(flags: CertsFlags): void {
  const opts = { ...flags, hosts: flags.hosts ?? DEFAULT_HOSTS };
  // Everything that can be refused is refused before the disk is touched.
  if (opts.out.trim() === '') throw new Error('--out is empty: give the directory to write ca.crt, tls.crt and tls.key into, e.g. --out certs/local');
  checkCertOptions(opts);
  const existing = FILES.filter((f) => existsSync(join(opts.out, f)));
  // A directory in the way cannot be replaced, with --force or without: said first.
  for (const f of existing) checkReplaceable(join(opts.out, f));
  if (existing.length > 0 && !opts.force) {
    // New files come with a new CA (its key is never kept): whatever trusts the old one fails every call until told.
    const ca = existing.includes('ca.crt') ? ', and every webhook configuration whose caBundle holds the current ca.crt fails each call until it is updated (a running kube-canary webhook serves the new pair within seconds)' : '';
    throw new Error(`${opts.out} already has ${existing.join(', ')}; new ones come with a new CA${ca}. Pass --force to replace them${ca ? ', then update the caBundle' : ''}; or choose another --out`);
  }
  ensureDir(opts.out);
  const b = generateCerts(opts);
  writeFiles(opts.out, [
    { name: 'ca.crt', data: b.caCert, mode: 0o644 },
    { name: 'tls.crt', data: b.cert, mode: 0o644 },
    // Readable by the owner only. The CA key is not written: renewing means a new CA and caBundle.
    { name: 'tls.key', data: b.key, mode: 0o600 },
  ]);
  if (existing.length > 0) process.stderr.write(`replaced ${existing.join(', ')} in ${opts.out}: put the new ca.crt into the webhook configuration's caBundle\n`);
  process.stdout.write(`wrote ca.crt, tls.crt, tls.key to ${opts.out}: SANs ${uniqueHosts(opts.hosts).join(', ')}, valid until ${b.notAfter.toISOString()}\n`);
}

/** writeAllOrNothing, with a file system refusal said in terms of --out. */
function writeFiles(dir: string, files: Parameters<typeof writeAllOrNothing>[1]): void {
  try {
    writeAllOrNothing(dir, files);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOSPC' || code === 'EDQUOT') {
      throw new Error(`cannot write into --out ${dir} (${code}); nothing was changed there: choose a directory you can write to`);
    }
    throw e;
  }
}
