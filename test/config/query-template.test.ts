import assert from 'node:assert/strict';
import { queryTemplateProblem, renderQuery } from '../../src/config/query-template.js';

const vars = { namespace: 'test', target: 'review-canary', canary: 'review-canary', stable: 'review', interval: '30s' };

describe('config: custom query templates', () => {
  it('substitutes Flagger\'s variables and kube-canary\'s, with or without spaces', () => {
    const r = renderQuery('sum(rate(x{ns="{{ namespace }}",w="{{target}}",c="{{ canary }}",s="{{  stable }}"}[{{ interval }}]))', vars);
    assert.deepEqual(r, { query: 'sum(rate(x{ns="test",w="review-canary",c="review-canary",s="review"}[30s]))' });
  });

  it('refuses an unknown variable, naming it and the allowed ones; Flagger\'s templateVariables get their own hint', () => {
    const r = renderQuery('x{a="{{ variables.direction }}", b="{{ nope }}"}', vars);
    assert.deepEqual(r, {
      error:
        "query uses unknown template variables {{ variables.direction }}, {{ nope }}; allowed: {{ namespace }}, {{ target }}, {{ canary }}, {{ stable }}, {{ interval }} (Flagger's templateVariables are not supported: write the value into the query)",
    });
    assert.equal(queryTemplateProblem('x{ns="{{ ns }}"}'), 'uses unknown template variable {{ ns }}; allowed: {{ namespace }}, {{ target }}, {{ canary }}, {{ stable }}, {{ interval }}');
  });

  it('refuses a variable written wrongly instead of sending "{{" to Prometheus', () => {
    assert.match(queryTemplateProblem('x{ns="{{namespace}"}') ?? '', /^has a "\{\{" that is not a template variable; write one as \{\{ name \}\}/);
    assert.match(queryTemplateProblem('x{ns="{{ name-space }}"}') ?? '', /not a template variable/);
  });

  it('accepts PromQL without variables, and single braces of label matchers', () => {
    assert.equal(queryTemplateProblem('sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))'), undefined);
  });
});
