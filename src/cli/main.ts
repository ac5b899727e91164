#!/usr/bin/env node
/**
 * `kube-canary`: one CLI for every component. Each subcommand lives in its own module and
 * registers itself here; flags have environment-variable equivalents (see --help).
 */
import { Command } from 'commander';
import { registerCerts } from './certs.js';
import { registerWebhook } from './webhook.js';
import { registerProgressor } from './progressor.js';
import { VERSION } from '../version.js';

const program = new Command()
  .name('kube-canary')
  .description('Automated canary releases for plain Kubernetes Deployments (no CRD, no rename).')
  .version(VERSION)
  .showHelpAfterError('(add --help for the usage)');

registerCerts(program);
registerWebhook(program);
registerProgressor(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`kube-canary: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
