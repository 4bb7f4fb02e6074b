// Conventions of the Prometheus rules: labels and annotations every alert
// carries, a runbook section behind every runbook_url, and promtool tests
// in which every alert both fires and stays silent.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allRules, loadRuleTests, readRepoFile } from '../lib/sources.mjs';

const RUNBOOK_BASE = 'https://github.com/meshflow/meshflow/blob/main/docs/runbooks.md#';
const alerts = allRules().filter(({ rule }) => rule.alert);
const records = allRules().filter(({ rule }) => rule.record);
const ruleTests = loadRuleTests();

/** GitHub's anchor for a Markdown heading. */
function anchor(heading) {
  return heading.trim().toLowerCase().replace(/[^\w\- ]/g, '').replaceAll(' ', '-');
}
const runbookAnchors = new Set(
  readRepoFile('docs/runbooks.md')
    .split('\n')
    .filter((l) => /^#{1,6} /.test(l))
    .map((l) => anchor(l.replace(/^#+ /, ''))),
);

it('there are alerts and recording rules', () => {
  assert.ok(alerts.length >= 15, `${alerts.length} alerts`);
  assert.ok(records.length >= 4, `${records.length} recording rules`);
});

it('alert names are unique', () => {
  const names = alerts.map(({ rule }) => rule.alert);
  assert.equal(new Set(names).size, names.length);
});

it('the SLO burn-rate windows 5m, 30m, 1h and 6h are recorded', () => {
  const names = records.map(({ rule }) => rule.record);
  for (const window of ['5m', '30m', '1h', '6h']) {
    assert.ok(names.includes(`meshflow:e2e_latency_slo_errors:ratio_rate${window}`), window);
  }
});

for (const { file, rule } of alerts) {
  describe(`${rule.alert} (${file})`, () => {
    it('has a severity of critical or warning', () => {
      assert.ok(['critical', 'warning'].includes(rule.labels?.severity), String(rule.labels?.severity));
    });

    it('has summary, description and a runbook_url into docs/runbooks.md', () => {
      assert.ok(rule.annotations?.summary);
      assert.ok(rule.annotations?.description);
      const url = rule.annotations?.runbook_url ?? '';
      assert.ok(url.startsWith(RUNBOOK_BASE), url);
      const target = url.slice(RUNBOOK_BASE.length);
      assert.equal(target, rule.alert.toLowerCase(), 'the anchor is the lower-cased alert name');
      assert.ok(runbookAnchors.has(target), `docs/runbooks.md has no section #${target}`);
    });

    it('fires in one promtool test case and stays silent in another', () => {
      const cases = ruleTests.flatMap(({ tests }) =>
        tests.flatMap((t) => (t.alert_rule_test ?? []).filter((c) => c.alertname === rule.alert)),
      );
      assert.ok(cases.some((c) => (c.exp_alerts ?? []).length > 0), 'no case where it fires');
      assert.ok(cases.some((c) => (c.exp_alerts ?? []).length === 0), 'no case where it must not fire');
    });
  });
}

it('every runbook section belongs to an alert', () => {
  const names = new Set(alerts.map(({ rule }) => rule.alert.toLowerCase()));
  const sections = readRepoFile('docs/runbooks.md')
    .split('\n')
    .filter((l) => /^## Meshflow/.test(l))
    .map((l) => anchor(l.slice(3)));
  for (const section of sections) {
    assert.ok(names.has(section), `runbook section #${section} has no alert`);
  }
});
