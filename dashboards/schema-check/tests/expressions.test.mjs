// Every PromQL expression in the dashboards and the rule files parses
// (promtool is the judge), and names only series and labels that
// docs/contracts.md defines (or up, istio_*, haproxy_*, or a recorded series).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contractSeries, unknownLabelReason, unknownSeriesReason } from '../lib/contracts.mjs';
import { promtoolCheck, promtoolEvaluate, recordName, selectors, substitute, variableValues } from '../lib/promql.mjs';
import { allRules, loadDashboards, queriesOf } from '../lib/sources.mjs';

const contract = contractSeries();
const rules = allRules();
const recorded = new Set(rules.filter(({ rule }) => rule.record).map(({ rule }) => rule.record));
const dashboards = loadDashboards();

/**
 * Labels a Prometheus adds to every series of a target, beyond job and
 * instance: an external label `cluster` (or one relabelled onto targets) and
 * the Kubernetes target label `namespace`. The dashboards' cluster and
 * namespace variables filter on them; the services never write them.
 */
const TARGET_LABELS = ['cluster', 'namespace'];

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

function problemsIn(expr, where, targetLabels = []) {
  const { selectors: found, errors } = selectors(expr);
  const problems = errors.map((e) => `${where}: ${e}`);
  for (const { name, labels } of found) {
    if (!name) {
      problems.push(`${where}: a selector without a metric name`);
      continue;
    }
    const series = unknownSeriesReason(name, contract, recorded);
    if (series) problems.push(`${where}: ${series}`);
    for (const label of labels.filter((l) => !targetLabels.includes(l))) {
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
    const problems = dashboardExpressions('all').flatMap(({ expr, where }) => problemsIn(expr, where, TARGET_LABELS));
    assert.deepEqual(problems, []);
  });
});

describe('dashboard queries compute what their panels say', () => {
  // The query of the panel titled `title`, variables as "All" and with
  // $__range / $__rate_interval as in variableValues.
  // `selected` overrides variables, as a selection in Grafana would.
  function query(file, title, refId = 'A', selected = {}) {
    const { dashboard } = dashboards.find((d) => d.file === file);
    const hit = queriesOf(dashboard).find(({ panel, target }) => panel.title === title && target.refId === refId);
    assert.ok(hit, `${file}: no panel "${title}" query ${refId}`);
    return substitute(hit.target.expr, { ...variableValues(dashboard, 'all'), ...selected });
  }
  const states = ['OK', 'WARN', 'STALL', 'STOP', 'ERR', 'REWIND'];
  const stateset = (group, active) =>
    states.map((s) => ({
      series: `meshflow_consumer_group_status{job="meshflow-exporter",group="${group}",meshflow_consumer_group_status="${s}"}`,
      values: `${s === active ? 1 : 0}x90`,
    }));

  it('All clusters and namespaces include series without those labels; a selection filters', () => {
    const lag = (labels, value) => ({
      series: `meshflow_consumer_lag_messages{job="meshflow-exporter",group="g",topic="t",partition="0"${labels}}`,
      values: `${value}x90`,
    });
    const series = [lag('', 10), lag(',cluster="east",namespace="kafka"', 5), lag(',cluster="west",namespace="kafka"', 2)];
    const { ok, output } = promtoolEvaluate(series, [
      { expr: query('consumer-lag.json', 'Total lag'), eval_time: '5m', exp_samples: [{ labels: '{}', value: 17 }] },
      { expr: query('consumer-lag.json', 'Total lag', 'A', { cluster: 'east' }), eval_time: '5m', exp_samples: [{ labels: '{}', value: 5 }] },
      { expr: query('consumer-lag.json', 'Total lag', 'A', { namespace: 'kafka' }), eval_time: '5m', exp_samples: [{ labels: '{}', value: 7 }] },
    ]);
    assert.ok(ok, output);
  });

  it('group status over time encodes each state as its mapped number', () => {
    const expr = query('consumer-lag.json', 'Group status over time');
    const { ok, output } = promtoolEvaluate(
      ['a', 'b', 'c', 'd', 'e', 'f'].flatMap((group, i) => stateset(group, states[i])),
      [{
        expr,
        eval_time: '5m',
        exp_samples: ['a', 'b', 'c', 'd', 'e', 'f'].map((group, value) => ({ labels: `{group="${group}"}`, value })),
      }],
    );
    assert.ok(ok, output);
  });

  it('the consumer groups table: status code, max lag in seconds, total lag and partitions per group', () => {
    const exporter = 'job="meshflow-exporter"';
    const partition = (group, p, messages, seconds) => [
      { series: `meshflow_consumer_lag_messages{${exporter},group="${group}",topic="t",partition="${p}"}`, values: `${messages}x10` },
      { series: `meshflow_consumer_lag_seconds{${exporter},group="${group}",topic="t",partition="${p}"}`, values: `${seconds}x10` },
    ];
    const series = [
      { series: `meshflow_consumer_group_status_code{${exporter},group="billing"}`, values: '5x10' },
      { series: `meshflow_consumer_group_status_code{${exporter},group="meshflow"}`, values: '1x10' },
      ...partition('billing', 0, 300, 40), ...partition('billing', 1, 200, 90),
      ...partition('meshflow', 0, 2, 0.5),
    ];
    const table = (refId) => query('consumer-lag.json', 'Consumer groups', refId);
    const perGroup = (billing, meshflow) => [{ labels: '{group="billing"}', value: billing }, { labels: '{group="meshflow"}', value: meshflow }];
    const { ok, output } = promtoolEvaluate(series, [
      { expr: table('A'), eval_time: '5m', exp_samples: perGroup(5, 1) },
      { expr: table('B'), eval_time: '5m', exp_samples: perGroup(90, 0.5) },
      { expr: table('C'), eval_time: '5m', exp_samples: perGroup(500, 2) },
      { expr: table('D'), eval_time: '5m', exp_samples: perGroup(2, 1) },
      {
        expr: query('consumer-lag.json', 'Lag per group and topic', 'B'),
        eval_time: '5m',
        exp_samples: [{ labels: '{group="billing",topic="t"}', value: 500 }, { labels: '{group="meshflow",topic="t"}', value: 2 }],
      },
      {
        expr: query('consumer-lag.json', 'Partitions of the selected groups', 'B', { group: 'billing' }),
        eval_time: '5m',
        exp_samples: [{ labels: '{group="billing",topic="t",partition="0"}', value: 40 }, { labels: '{group="billing",topic="t",partition="1"}', value: 90 }],
      },
    ]);
    assert.ok(ok, output);
  });

  it('the topics table: write rate from the high watermarks in messages per second, retained messages', () => {
    const exporter = 'job="meshflow-exporter"';
    const series = [
      // 600 messages a minute: 10 per second; the low watermark moves by retention.
      { series: `meshflow_topic_high_watermarks{${exporter},topic="t"}`, values: '1000+600x90' },
      { series: `meshflow_topic_low_watermarks{${exporter},topic="t"}`, values: '0+100x90' },
      { series: `meshflow_topic_partitions{${exporter},topic="t"}`, values: '6x90' },
    ];
    const topics = (refId) => query('cluster-mesh.json', 'Topics', refId);
    const { ok, output } = promtoolEvaluate(series, [
      { expr: topics('A'), eval_time: '80m', exp_samples: [{ labels: '{topic="t"}', value: 6 }] },
      { expr: topics('D'), eval_time: '80m', exp_samples: [{ labels: '{topic="t"}', value: 10 }] },
      { expr: topics('E'), eval_time: '80m', exp_samples: [{ labels: '{topic="t"}', value: 1000 + 80 * 500 }] },
    ]);
    assert.ok(ok, output);
  });

  it('mTLS shares: 3 of 4 connections, 60% of bytes', () => {
    const ns = 'destination_workload_namespace="meshflow"';
    const series = [
      { series: `istio_tcp_connections_opened_total{${ns},destination_workload="kafka",connection_security_policy="mutual_tls"}`, values: '0+3x90' },
      { series: `istio_tcp_connections_opened_total{${ns},destination_workload="kafka",connection_security_policy="unknown"}`, values: '0+1x90' },
      { series: `istio_tcp_sent_bytes_total{${ns},connection_security_policy="mutual_tls"}`, values: '0+300x90' },
      { series: `istio_tcp_received_bytes_total{${ns},connection_security_policy="mutual_tls"}`, values: '0+300x90' },
      { series: `istio_tcp_sent_bytes_total{${ns},connection_security_policy="unknown"}`, values: '0+200x90' },
      { series: `istio_tcp_received_bytes_total{${ns},connection_security_policy="unknown"}`, values: '0+200x90' },
      // Another namespace does not count.
      { series: 'istio_tcp_connections_opened_total{destination_workload_namespace="other",connection_security_policy="none"}', values: '0+50x90' },
    ];
    const rounded = (expr) => `round(${expr}, 0.001)`;
    const { ok, output } = promtoolEvaluate(series, [
      { expr: rounded(query('cluster-mesh.json', 'mTLS share of connections')), eval_time: '80m', exp_samples: [{ labels: '{}', value: 0.75 }] },
      { expr: rounded(query('cluster-mesh.json', 'mTLS share over time', 'A')), eval_time: '80m', exp_samples: [{ labels: '{}', value: 0.75 }] },
      { expr: rounded(query('cluster-mesh.json', 'mTLS share over time', 'B')), eval_time: '80m', exp_samples: [{ labels: '{}', value: 0.6 }] },
      { expr: query('cluster-mesh.json', 'Connections without mTLS'), eval_time: '80m', exp_samples: [{ labels: '{}', value: 60 }] },
    ]);
    assert.ok(ok, output);
  });

  it('the SLO stat is the share of messages within 1 s', () => {
    const bucket = (le, perMinute) => ({
      series: `meshflow_e2e_latency_seconds_bucket{job="meshflow-exporter",topic="meshflow.events",group="meshflow",le="${le}"}`,
      values: `0+${perMinute}x90`,
    });
    const { ok, output } = promtoolEvaluate(
      [
        bucket('0.5', 500), bucket('1.0', 594), bucket('10.0', 599), bucket('+Inf', 600),
        { series: 'meshflow_e2e_latency_seconds_count{job="meshflow-exporter",topic="meshflow.events",group="meshflow"}', values: '0+600x90' },
      ],
      [{ expr: `round(${query('message-flow.json', 'Within 1 s (SLO 99%)')}, 0.0001)`, eval_time: '80m', exp_samples: [{ labels: '{}', value: 0.99 }] }],
    );
    assert.ok(ok, output);
  });

  it('throughput per stage has one series per stage, the log stage included', () => {
    const { ok, output } = promtoolEvaluate(
      [
        { series: 'meshflow_messages_total{job="meshflow-exporter",topic="meshflow.events",stage="log"}', values: '0+600x90' },
        { series: 'meshflow_messages_total{job="meshflow-exporter",topic="meshflow.events",stage="processed",group="meshflow"}', values: '0+540x90' },
      ],
      [{
        expr: query('message-flow.json', 'Throughput per stage'),
        eval_time: '80m',
        exp_samples: [{ labels: '{stage="log"}', value: 10 }, { labels: '{stage="processed"}', value: 9 }],
      }],
    );
    assert.ok(ok, output);
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

  it('cluster and namespace are allowed on dashboard selectors as target labels, a misspelt one is not', () => {
    const expr = 'meshflow_consumer_lag_seconds{group="g", cluster=~".*", namespace=~".*"}';
    assert.deepEqual(problemsIn(expr, 'ok', TARGET_LABELS), []);
    assert.equal(problemsIn(expr, 'rule').length, 2);
    const typo = problemsIn('meshflow_consumer_lag_seconds{clsuter=~".*"}', 'typo', TARGET_LABELS);
    assert.equal(typo.length, 1);
    assert.match(typo[0], /no label clsuter/);
  });

  it('le is a label of buckets only', () => {
    assert.equal(problemsIn('meshflow_e2e_latency_seconds_bucket{le="1.0"}', 'ok').length, 0);
    assert.equal(problemsIn('meshflow_e2e_latency_seconds_count{le="1.0"}', 'bad').length, 1);
  });

  it('up, istio_*, haproxy_* and recorded series are allowed', () => {
    assert.deepEqual(problemsIn('up{job="meshflow-exporter"} + istio_tcp_sent_bytes_total', 'ok'), []);
    assert.deepEqual(problemsIn('haproxy_frontend_denied_sessions_total{proxy="kafka"}', 'ok'), []);
    assert.deepEqual(problemsIn('meshflow:e2e_latency_slo_errors:ratio_rate5m', 'ok'), []);
  });

  it('an unknown Grafana variable is refused', () => {
    assert.throws(() => substitute('up{job="$jbo"}', variableValues({ templating: { list: [] } }, 'all')), /unknown variable/);
  });
});
