import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { generateCerts } from '../certs/generate.js';
import { intOption, listOption } from './options.js';

export function registerCerts(program: Command): void {
  program
    .command('certs')
    .description('Write a CA (ca.crt) and a serving certificate signed by it (tls.crt, tls.key) for the webhook, as PEM files.')
    .requiredOption('--out <dir>', 'directory to write ca.crt, tls.crt and tls.key into (created if missing)')
    .option('--hosts <list>', 'comma-separated IPs (IP SANs) and DNS names (DNS SANs)', listOption, ['127.0.0.1', 'localhost'])
    .option('--valid-days <n>', 'validity of the serving certificate in days', intOption('--valid-days'), 365)
    .option('--ca-valid-days <n>', 'validity of the CA in days', intOption('--ca-valid-days'), 3650)
    .action((opts: { out: string; hosts: string[]; validDays: number; caValidDays: number }) => {
      const b = generateCerts({ hosts: opts.hosts, validDays: opts.validDays, caValidDays: opts.caValidDays });
      mkdirSync(opts.out, { recursive: true });
      writeFileSync(join(opts.out, 'ca.crt'), b.caCert);
      writeFileSync(join(opts.out, 'tls.crt'), b.cert);
      // Readable by the owner only. The CA key is not written: renewing means a new CA and caBundle.
      writeFileSync(join(opts.out, 'tls.key'), b.key, { mode: 0o600 });
      process.stdout.write(`wrote ca.crt, tls.crt, tls.key to ${opts.out}: SANs ${opts.hosts.join(', ')}, valid until ${b.notAfter.toISOString()}\n`);
    });
}
