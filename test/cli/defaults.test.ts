import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { optionSource, providerOption, readAnalysisDefault } from '../../src/cli/defaults.js';
import { envOption } from '../../src/cli/options.js';
import { parseAnalysis } from '../../src/config/analysis.js';

describe('cli: --default-analysis and --default-provider', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'kube-canary-defaults-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads YAML inline or from @file, and the result drives the parser', () => {
    const file = join(dir, 'analysis.yaml');
    writeFileSync(file, 'stepWeights: [5, 10, 20]\ninterval: 30s\n');
    for (const value of ['stepWeights: [5, 10, 20]\ninterval: 30s', `@${file}`]) {
      const r = parseAnalysis('threshold: 2', readAnalysisDefault(value));
      assert.ok(r.ok);
      assert.deepEqual([r.value.steps, r.value.intervalMs], [[5, 10, 20], 30_000]);
    }
  });

  it('names the flag when the file is missing', () => {
    assert.throws(() => readAnalysisDefault(`@${join(dir, 'nope.yaml')}`), (e: Error) => {
      assert.match(e.message, /^--default-analysis @.*nope\.yaml: cannot read the file \(ENOENT: no such file or directory\)/);
      return true;
    });
  });

  it('names the flag, line and column when the YAML does not parse', () => {
    assert.throws(() => readAnalysisDefault('interval: 1m\ninterval: 2m'), {
      message: '--default-analysis: analysis is not valid YAML or JSON: line 2, column 1: key "interval" appears twice; a key may appear only once',
    });
  });

  it('names the flag when the analysis is invalid', () => {
    assert.throws(() => readAnalysisDefault('stepWeight: 60'), (e: Error) => {
      assert.match(e.message, /^--default-analysis: analysis.stepWeight 60 is larger than maxWeight 50, the built-in default, as --default-analysis sets no maxWeight/);
      return true;
    });
  });

  it('--default-provider accepts istio and refuses the planned and unknown ones like the annotation does', () => {
    const parse = providerOption('--default-provider');
    assert.equal(parse('istio'), 'istio');
    assert.throws(() => parse('gateway-api'), { message: '--default-provider "gateway-api" is planned but not available in this version; available: istio' });
    assert.throws(() => parse('linkerd'), { message: '--default-provider "linkerd" is not a traffic provider; allowed: istio (gateway-api, replicas are planned, not available in this version)' });
  });
});

describe('cli: naming how an option was given', () => {
  it('names the environment variable when the value came from it, the flag otherwise', () => {
    const make = () => {
      const cmd = new Command('x').exitOverride();
      envOption(cmd, '--default-analysis <yaml>', 'd', 'KUBE_CANARY_DEFAULT_ANALYSIS', String);
      return cmd;
    };
    const saved = process.env.KUBE_CANARY_DEFAULT_ANALYSIS;
    try {
      process.env.KUBE_CANARY_DEFAULT_ANALYSIS = 'interval: 1m';
      const fromEnv = make().parse([], { from: 'user' });
      assert.equal(optionSource(fromEnv, 'defaultAnalysis', '--default-analysis', 'KUBE_CANARY_DEFAULT_ANALYSIS'), 'KUBE_CANARY_DEFAULT_ANALYSIS');
      const fromFlag = make().parse(['--default-analysis', 'interval: 2m'], { from: 'user' });
      assert.equal(optionSource(fromFlag, 'defaultAnalysis', '--default-analysis', 'KUBE_CANARY_DEFAULT_ANALYSIS'), '--default-analysis');
    } finally {
      if (saved === undefined) delete process.env.KUBE_CANARY_DEFAULT_ANALYSIS;
      else process.env.KUBE_CANARY_DEFAULT_ANALYSIS = saved;
    }
  });
});
