// Every PromQL expression in the dashboards and the rule files parses
// (promtool is the judge), and names only series and labels that
// docs/contracts.md defines (or up, istio_*, or a recorded series).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contractSeries, unknownLabelReason, unknownSeriesReason } from '../lib/contracts.mjs';
import { promtoolCheck, recordName, selectors, substitute, variableValues } from '../lib/promql.mjs';
import { allRules, loadDashboards, queriesOf } from '../lib/sources.mjs';

const contract = contractSeries();
const rules = allRules();
const recorded = new Set(rules.filter(({ rule }) => rule.record).map(({ rule }) => rule.record));
const dashboards = loadDashboards();

/** The selector inside a label_values(selector, label) variable query. */
function variableSelector(query) {
  const m = typeof query === 'string' && query.match(/^\s*label_values\((.+),\s*(\w+)\s*\)\s*$/s);
  return m ? m[1] : null;
}

/** Every expression of every dashboard with its variables replaced, per mode. */
function dashboardExpressions(mode) {
  return dashboards.flatMap(({ file, dashboard }) => {
    const values = variableValues(dashboard, mode);
    const panels = queriesOf(dashboard).map(({ panel, target }) => ({
      file,
      where: `${file} panel ${panel.id} "${panel.title}" query ${target.refId}`,
      record: recordName(file, panel, target),
      expr: substitute(target.expr, values),
    }));
    const variables = (dashboard.templating?.list ?? [])
      .filter((v) => v.type === 'query')
      .map((v) => ({
        file,
        where: `${file} variable ${v.name}`,
        record: `dashboard:${file.replace(/\W+/g, '_')}:variable_${v.name}`,
        expr: substitute(variableSelector(v.query) ?? v.query, values),
      }));
    return [...panels, ...variables];
  });
}

function problemsIn(expr, where) {
  const { selectors: found, errors } = selectors(expr);
  const problems = errors.map((e) => `${where}: ${e}`);
  for (const { name, labels } of found) {
    if (!name) {
      problems.push(`${where}: a selector without a metric name`);
      continue;
    }
    const series = unknownSeriesReason(name, contract, recorded);
    if (series) problems.push(`${where}: ${series}`);
    for (const label of labels) {
      const reason = unknownLabelReason(name, label, contract);
      if (reason) problems.push(`${where}: ${reason}`);
    }
  }
  return problems;
}

describe('contracts', () => {
  it('lists the metrics the dashboards are built on', () => {
    for (const name of [
      'meshflow_messages_total',
      'meshflow_e2e_latency_seconds_bucket',
      'meshflow_consumer_group_status',
      'meshflow_consumer_messages_total',
      'meshflow_service_ready',
      'meshflow_brokers',
    ]) {
      assert.ok(contract.has(name), `${name} missing from the parsed contracts`);
    }
    assert.ok(contract.get('meshflow_consumer_group_status').labels.has('meshflow_consumer_group_status'));
    assert.ok(contract.get('meshflow_e2e_latency_seconds_bucket').labels.has('le'));
    assert.ok(!contract.get('meshflow_e2e_latency_seconds_count').labels.has('le'));
  });
});

describe('dashboard expressions', () => {
  for (const mode of ['all', 'multi']) {
    it(`parse with promtool (variables as "${mode}")`, () => {
      const expressions = dashboardExpressions(mode);
      assert.ok(expressions.length > 30, `only ${expressions.length} expressions found`);
      for (const { expr, where } of expressions) {
        assert.ok(!expr.includes('$'), `${where}: unreplaced variable in ${expr}`);
      }
      const groups = {};
      for (const { file, record, expr } of expressions) {
        (groups[file] ??= []).push({ record, expr });
      }
      const { ok, output } = promtoolCheck(groups);
      assert.ok(ok, output);
    });
  }

  it('use only contract metrics and labels', () => {
    const problems = dashboardExpressions('all').flatMap(({ expr, where }) => problemsIn(expr, where));
    assert.deepEqual(problems, []);
  });
});

describe('rule expressions', () => {
  it('use only contract metrics and labels', () => {
    const problems = rules.flatMap(({ file, rule }) =>
      problemsIn(rule.expr, `${file} ${rule.alert ?? rule.record}`),
    );
    assert.deepEqual(problems, []);
  });
});

describe('the checks themselves', () => {
  it('promtool rejects an expression that does not parse', () => {
    const { ok, output } = promtoolCheck({
      broken: [
        { record: 'check:good', expr: 'sum(rate(meshflow_messages_total[5m]))' },
        { record: 'check:bad', expr: 'sum(rate(meshflow_messages_total[5m])' },
      ],
    });
    assert.equal(ok, false);
    assert.match(output, /check:bad|rule 2/);
  });

  it('a misspelt metric name is reported', () => {
    const problems = problemsIn('sum(rate(meshflow_mesages_total{topic="t"}[5m]))', 'typo');
    assert.equal(problems.length, 1);
    assert.match(problems[0], /meshflow_mesages_total/);
  });

  it('a misspelt label is reported', () => {
    const problems = problemsIn('meshflow_messages_total{stgae="log"}', 'typo');
    assert.equal(problems.length, 1);
    assert.match(problems[0], /no label stgae/);
  });

  it('le is a label of buckets only', () => {
    assert.equal(problemsIn('meshflow_e2e_latency_seconds_bucket{le="1.0"}', 'ok').length, 0);
    assert.equal(problemsIn('meshflow_e2e_latency_seconds_count{le="1.0"}', 'bad').length, 1);
  });

  it('up, istio_* and recorded series are allowed', () => {
    assert.deepEqual(problemsIn('up{job="meshflow-exporter"} + istio_tcp_sent_bytes_total', 'ok'), []);
    assert.deepEqual(problemsIn('meshflow:e2e_latency_slo_errors:ratio_rate5m', 'ok'), []);
  });

  it('an unknown Grafana variable is refused', () => {
    assert.throws(() => substitute('up{job="$jbo"}', variableValues({ templating: { list: [] } }, 'all')), /unknown variable/);
  });
});
