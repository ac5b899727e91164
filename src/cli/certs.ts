import type { Command } from 'commander';
import { DEFAULT_CA_VALID_DAYS, MAX_VALID_DAYS, checkCertOptions, generateCerts } from '../certs/generate.js';
import { uniqueHosts } from '../certs/hosts.js';
import { ensureDir, writeAllOrNothing } from '../certs/write.js';
import { intOption, listOption } from './options.js';

interface CertsFlags {
  out: string;
  hosts: string[];
  validDays: number;
  caValidDays?: number;
}

export function registerCerts(program: Command): void {
  program
    .command('certs')
    .description('Write a CA (ca.crt) and a serving certificate signed by it (tls.crt, tls.key) for the webhook, as PEM files.')
    .requiredOption('--out <dir>', 'directory to write ca.crt, tls.crt and tls.key into (created if missing)')
    .option('--hosts <list>', 'comma-separated IPs (IP SANs) and DNS names (DNS SANs; "*." may start a wildcard name)', listOption, ['127.0.0.1', 'localhost'])
    .option('--valid-days <n>', `validity of the serving certificate in days (1 to ${MAX_VALID_DAYS})`, intOption('--valid-days', 1, MAX_VALID_DAYS), 365)
    .option(
      '--ca-valid-days <n>',
      `validity of the CA in days, at least --valid-days (default: ${DEFAULT_CA_VALID_DAYS}, or --valid-days if longer)`,
      intOption('--ca-valid-days', 1, MAX_VALID_DAYS),
    )
    .action((opts: CertsFlags) => writeCerts(opts));
}

function writeCerts(opts: CertsFlags): void {
  // Everything that can be refused is refused before the disk is touched.
  if (opts.out.trim() === '') throw new Error('--out is empty: give the directory to write ca.crt, tls.crt and tls.key into, e.g. --out certs/local');
  checkCertOptions(opts);
  ensureDir(opts.out);
  const b = generateCerts(opts);
  writeAllOrNothing(opts.out, [
    { name: 'ca.crt', data: b.caCert, mode: 0o644 },
    { name: 'tls.crt', data: b.cert, mode: 0o644 },
    // Readable by the owner only. The CA key is not written: renewing means a new CA and caBundle.
    { name: 'tls.key', data: b.key, mode: 0o600 },
  ]);
  process.stdout.write(`wrote ca.crt, tls.crt, tls.key to ${opts.out}: SANs ${uniqueHosts(opts.hosts).join(', ')}, valid until ${b.notAfter.toISOString()}\n`);
}
