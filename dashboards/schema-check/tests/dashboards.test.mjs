// Structure of the dashboards beyond what the schema types say: the
// conventions import and the issue rely on (data source variable, topic and
// group variables, the exemplar link to Jaeger) and a sane layout.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultDashboard } from '@grafana/schema';
import { parser } from '@prometheus-io/lezer-promql';
import { contractSeries } from '../lib/contracts.mjs';
import { BUILTINS, substitute, variablesUsed } from '../lib/promql.mjs';
import { loadDashboards, panelsOf, queriesOf } from '../lib/sources.mjs';

const dashboards = loadDashboards();
const byFile = Object.fromEntries(dashboards.map(({ file, dashboard }) => [file, dashboard]));
const variable = (dashboard, name) => dashboard.templating.list.find((v) => v.name === name);
const exprs = (dashboard) => queriesOf(dashboard).map(({ target }) => target.expr);
const GRAFANA_BUILTINS = new Set(Object.keys(BUILTINS));

/**
 * The vector selectors of an expression as [{ name, matchers }], matchers
 * as { label, op, value } with the dashboard's own variables left as
 * written ("$cluster") and Grafana's built-in ones replaced so it parses.
 */
function matchersOf(expr, dashboard) {
  const values = { ...BUILTINS };
  for (const v of dashboard.templating.list) values[v.name] = `$${v.name}`;
  const text = substitute(expr, values);
  const found = [];
  const cursor = parser.parse(text).cursor();
  do {
    if (cursor.name !== 'VectorSelector') continue;
    const node = cursor.node;
    const id = node.getChild('Identifier');
    const matchers = (node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []).map((m) => {
      const slice = (n) => text.slice(n.from, n.to);
      return { label: slice(m.getChild('LabelName')), op: slice(m.getChild('MatchOp')), value: JSON.parse(slice(m.getChild('StringLiteral'))) };
    });
    found.push({ name: id ? text.slice(id.from, id.to) : null, matchers });
  } while (cursor.next());
  return found;
}

/**
 * Grafana's built-in unit ids (its value formats) a dashboard may use: a
 * `suffix:` or other custom unit is not one of them.
 */
const GRAFANA_UNITS = new Set([
  // misc
  'none', 'string', 'short', 'sishort', 'percent', 'percentunit', 'humidity', 'dB', 'hex0x', 'hex', 'sci', 'locale', 'pixel',
  // data
  'bits', 'bytes', 'kbytes', 'mbytes', 'gbytes', 'tbytes', 'pbytes', 'decbits', 'decbytes', 'deckbytes', 'decmbytes', 'decgbytes', 'dectbytes', 'decpbytes',
  // data rate
  'pps', 'binBps', 'Bps', 'binbps', 'bps', 'KiBs', 'Kibits', 'KBs', 'Kbits', 'MiBs', 'Mibits', 'MBs', 'Mbits', 'GiBs', 'Gibits', 'GBs', 'Gbits',
  // throughput
  'cps', 'ops', 'reqps', 'rps', 'wps', 'iops', 'eps', 'mps', 'recps', 'rowsps', 'cpm', 'opm', 'reqpm', 'rpm', 'wpm', 'epm', 'mpm', 'recpm', 'rowspm',
  // time
  'hertz', 'ns', 'µs', 'ms', 's', 'm', 'h', 'd', 'dtdurationms', 'dtdurations', 'dthms', 'dtdhms', 'timeticks', 'clockms', 'clocks',
  // date and boolean
  'dateTimeAsIso', 'dateTimeAsUS', 'dateTimeAsLocal', 'dateTimeAsSystem', 'dateTimeFromNow', 'bool', 'bool_yes_no', 'bool_on_off',
]);

/** Every unit a panel sets: field defaults, overrides and a heatmap's y axis. */
function unitsOf(panel) {
  const units = [];
  if (panel.fieldConfig?.defaults?.unit !== undefined) units.push(panel.fieldConfig.defaults.unit);
  for (const o of panel.fieldConfig?.overrides ?? []) {
    for (const p of o.properties.filter((p) => p.id === 'unit')) units.push(p.value);
  }
  if (panel.options?.yAxis?.unit !== undefined) units.push(panel.options.yAxis.unit);
  return units;
}

/** The selector of a label_values(selector, label) variable query. */
const variableSelector = (query) => query.match(/^label_values\((.+), \w+\)$/s)?.[1];

it('the three dashboards exist', () => {
  for (const file of ['message-flow.json', 'consumer-lag.json', 'cluster-mesh.json']) {
    assert.ok(byFile[file], `dashboards/${file} is missing`);
  }
});

it('dashboard uids are unique', () => {
  const uids = dashboards.map(({ dashboard }) => dashboard.uid);
  assert.equal(new Set(uids).size, uids.length);
});

for (const { file, dashboard } of dashboards) {
  describe(file, () => {
    it('uses the schema version of the pinned @grafana/schema', () => {
      assert.equal(dashboard.schemaVersion, defaultDashboard.schemaVersion);
    });

    it('is import-ready: no numeric id, a uid and a title', () => {
      assert.equal(dashboard.id, null);
      assert.match(dashboard.uid, /^[A-Za-z0-9_-]{8,40}$/);
      assert.ok(dashboard.title);
    });

    it('has a Prometheus data source variable named datasource, used everywhere', () => {
      const ds = variable(dashboard, 'datasource');
      assert.ok(ds, 'no datasource variable');
      assert.equal(ds.type, 'datasource');
      assert.equal(ds.query, 'prometheus');
      for (const panel of panelsOf(dashboard).filter((p) => p.type !== 'row')) {
        assert.deepEqual(panel.datasource, { type: 'prometheus', uid: '${datasource}' }, `panel ${panel.id}`);
        for (const target of panel.targets ?? []) {
          assert.deepEqual(target.datasource, { type: 'prometheus', uid: '${datasource}' }, `panel ${panel.id} ${target.refId}`);
        }
      }
      for (const v of dashboard.templating.list.filter((v) => v.type === 'query')) {
        assert.deepEqual(v.datasource, { type: 'prometheus', uid: '${datasource}' }, `variable ${v.name}`);
      }
    });

    it('has topic and group variables from label_values', () => {
      for (const name of ['topic', 'group']) {
        const v = variable(dashboard, name);
        assert.ok(v, `no ${name} variable`);
        assert.equal(v.type, 'query');
        assert.match(v.query, new RegExp(`^label_values\\(meshflow_\\w+(\\{[^}]*\\})?, ${name}\\)$`));
        assert.equal(v.includeAll, true);
        assert.equal(v.allValue, '.*');
      }
    });

    it('has cluster and namespace variables whose All value also matches series without the label', () => {
      const names = dashboard.templating.list.map((v) => v.name);
      const queries = {
        cluster: 'label_values(meshflow_exporter_build_info, cluster)',
        namespace: 'label_values(meshflow_exporter_build_info{cluster=~"$cluster"}, namespace)',
      };
      for (const [name, query] of Object.entries(queries)) {
        const v = variable(dashboard, name);
        assert.ok(v, `no ${name} variable`);
        assert.equal(v.type, 'query');
        assert.equal(v.query, query);
        assert.equal(v.includeAll, true);
        assert.equal(v.multi, true);
        // `=~".*"` matches an absent label: a Prometheus without external or
        // Kubernetes target labels (the local stack) still shows everything.
        assert.equal(v.allValue, '.*');
        assert.deepEqual(v.current, { text: ['All'], value: ['$__all'] });
      }
      // Grafana refreshes chained variables in order: cluster and namespace
      // come before every variable whose query depends on them.
      assert.ok(names.indexOf('cluster') < names.indexOf('namespace'));
      for (const v of dashboard.templating.list.filter((v) => v.type === 'query' && !(v.name in queries))) {
        assert.ok(names.indexOf(v.name) > names.indexOf('namespace'), `variable ${v.name} before namespace`);
      }
    });

    it('scopes every meshflow_* and up selector to $cluster and $namespace', () => {
      const scoped = (m) => ['cluster', 'namespace'].every((label) =>
        m.some((x) => x.label === label && x.op === '=~' && x.value === `$${label}`));
      const queries = [
        ...queriesOf(dashboard).map(({ panel, target }) => [`panel ${panel.id} ${target.refId}`, target.expr]),
        ...dashboard.templating.list
          .filter((v) => v.type === 'query' && v.name !== 'cluster' && variableSelector(v.query)?.startsWith('meshflow_'))
          .map((v) => [`variable ${v.name}`, variableSelector(v.query)]),
      ];
      let checked = 0;
      for (const [where, expr] of queries) {
        for (const { name, matchers } of matchersOf(expr, dashboard)) {
          if (!(name?.startsWith('meshflow_') || name === 'up')) continue;
          checked += 1;
          if (where === 'variable namespace') {
            assert.ok(matchers.some((x) => x.label === 'cluster' && x.value === '$cluster'), where);
          } else {
            assert.ok(scoped(matchers), `${where}: ${name} is not scoped to $cluster and $namespace in ${expr}`);
          }
        }
      }
      assert.ok(checked > 5, `only ${checked} selectors checked`);
    });

    it('has a kafka_cluster variable and scopes every exporter selector to it', () => {
      // The exporter's series carry kafka_cluster (docs/contracts.md); the
      // producers' and consumers' do not, and All (`.*`) matches those.
      const v = variable(dashboard, 'kafka_cluster');
      assert.ok(v, 'no kafka_cluster variable');
      assert.equal(v.type, 'query');
      assert.match(v.query, /^label_values\(meshflow_\w+\{cluster=~"\$cluster", namespace=~"\$namespace"\}, kafka_cluster\)$/);
      assert.equal(v.includeAll, true);
      assert.equal(v.multi, true);
      assert.equal(v.allValue, '.*');
      const names = dashboard.templating.list.map((x) => x.name);
      assert.ok(names.indexOf('namespace') < names.indexOf('kafka_cluster'));
      const contract = contractSeries();
      const queries = [
        ...queriesOf(dashboard).map(({ panel, target }) => [`panel ${panel.id} ${target.refId}`, target.expr]),
        ...dashboard.templating.list
          .filter((x) => x.type === 'query' && !['cluster', 'namespace', 'kafka_cluster'].includes(x.name))
          .map((x) => [`variable ${x.name}`, variableSelector(x.query)])
          .filter(([, selector]) => selector),
      ];
      let checked = 0;
      for (const [where, expr] of queries) {
        for (const { name, matchers } of matchersOf(expr, dashboard)) {
          if (!contract.get(name)?.labels.has('kafka_cluster')) continue;
          checked += 1;
          assert.ok(
            matchers.some((x) => x.label === 'kafka_cluster' && x.op === '=~' && x.value === '$kafka_cluster'),
            `${where}: ${name} is not scoped to $kafka_cluster in ${expr}`,
          );
        }
      }
      assert.ok(checked > 5, `only ${checked} selectors checked`);
    });

    it('uses only variables it defines', () => {
      const defined = new Set(dashboard.templating.list.map((v) => v.name));
      for (const expr of [...exprs(dashboard), ...dashboard.templating.list.map((v) => (typeof v.query === 'string' ? v.query : ''))]) {
        for (const name of variablesUsed(expr)) {
          assert.ok(defined.has(name) || GRAFANA_BUILTINS.has(name), `$${name} in ${expr}`);
        }
      }
    });

    it('has unique panel ids and refIds', () => {
      const ids = panelsOf(dashboard).map((p) => p.id);
      assert.equal(new Set(ids).size, ids.length);
      for (const panel of panelsOf(dashboard)) {
        const refIds = (panel.targets ?? []).map((t) => t.refId);
        assert.equal(new Set(refIds).size, refIds.length, `panel ${panel.id}`);
      }
    });

    it('lays panels out on the 24-column grid without overlap', () => {
      const boxes = panelsOf(dashboard).map((p) => ({ id: p.id, ...p.gridPos }));
      for (const b of boxes) {
        assert.ok(b.x >= 0 && b.w > 0 && b.x + b.w <= 24 && b.h > 0 && b.y >= 0, `panel ${b.id} ${JSON.stringify(b)}`);
      }
      for (const [i, a] of boxes.entries()) {
        for (const b of boxes.slice(i + 1)) {
          const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
          assert.ok(!overlap, `panels ${a.id} and ${b.id} overlap`);
        }
      }
    });

    it('tables name the value column of each query and override only columns they have', () => {
      for (const panel of panelsOf(dashboard).filter((p) => p.type === 'table')) {
        const organize = panel.transformations?.find((t) => t.id === 'organize');
        assert.ok(panel.transformations?.[0]?.id === 'merge' && organize, `panel ${panel.id}: merge, then organize`);
        const renamed = organize.options.renameByName;
        const excluded = organize.options.excludeByName ?? {};
        for (const { refId, expr, instant, format } of panel.targets) {
          assert.ok(instant === true && format === 'table', `panel ${panel.id} ${refId}: an instant table query`);
          // Grafana names the value column "Value" for one query, "Value #<refId>" for several.
          const value = panel.targets.length === 1 ? 'Value' : `Value #${refId}`;
          assert.ok(renamed[value] || excluded[value], `panel ${panel.id}: no column name for query ${refId}`);
          assert.ok(!/\bor\s+vector\(0\)\s*$/.test(expr), `panel ${panel.id} ${refId}: a fallback row in a table`);
        }
        const columns = new Set(Object.values(renamed));
        for (const o of panel.fieldConfig.overrides) {
          assert.ok(o.matcher.id === 'byName' && columns.has(o.matcher.options), `panel ${panel.id}: override of ${o.matcher.options}`);
        }
        for (const { displayName } of panel.options.sortBy ?? []) {
          assert.ok(columns.has(displayName), `panel ${panel.id}: sorted by ${displayName}`);
        }
      }
    });

    it('uses Grafana built-in units: s for seconds, mps for message rates', () => {
      const messageRate = /^sum(?: by \([^)]*\))? ?\(rate\(meshflow_\w*messages_total\{[^}]*\}\[[^\]]+\]\)\)$/;
      const seconds = /^(histogram_quantile\([\d.]+, sum by \([^)]*\) \(rate\(meshflow_\w+_seconds_bucket\{|(max|min|avg|sum)(?: by \([^)]*\))? ?\(meshflow_\w+_seconds\{[^}]*\}\)$)/;
      for (const panel of panelsOf(dashboard).filter((p) => p.type !== 'row')) {
        const units = unitsOf(panel);
        for (const unit of units) assert.ok(GRAFANA_UNITS.has(unit), `panel ${panel.id} "${panel.title}": unit ${unit}`);
        if (['timeseries', 'stat', 'heatmap', 'table'].includes(panel.type)) {
          assert.ok(units.length > 0, `panel ${panel.id} "${panel.title}": no unit`);
        }
        if (['timeseries', 'stat'].includes(panel.type)) {
          const exprs = panel.targets.map((t) => t.expr);
          if (exprs.every((e) => messageRate.test(e))) assert.equal(panel.fieldConfig.defaults.unit, 'mps', `panel ${panel.id} "${panel.title}"`);
          if (exprs.every((e) => seconds.test(e))) assert.equal(panel.fieldConfig.defaults.unit, 's', `panel ${panel.id} "${panel.title}"`);
        }
      }
    });

    it('gives every panel a title and a description', () => {
      for (const panel of panelsOf(dashboard).filter((p) => p.type !== 'row')) {
        assert.ok(panel.title && panel.description, `panel ${panel.id}`);
      }
    });
  });
}

describe('message-flow.json', () => {
  const d = byFile['message-flow.json'];
  const all = exprs(d).join('\n');

  it('shows throughput by stage', () => {
    assert.match(all, /sum by \(stage\) \(rate\(meshflow_messages_total\{/);
  });

  it('shows e2e latency p50, p95 and p99', () => {
    for (const q of ['0.5', '0.95', '0.99']) {
      assert.ok(all.includes(`histogram_quantile(${q}, sum by (le) (rate(meshflow_e2e_latency_seconds_bucket{`), `p${q}`);
    }
  });

  it('has a latency heatmap with exemplars linking to Jaeger', () => {
    const jaeger = variable(d, 'jaeger_url');
    assert.ok(jaeger, 'no jaeger_url variable');
    assert.match(jaeger.query, /^https?:\/\//);
    const heatmap = panelsOf(d).find((p) => p.type === 'heatmap');
    assert.ok(heatmap, 'no heatmap panel');
    assert.ok(heatmap.targets.some((t) => t.exemplar === true && t.format === 'heatmap' && t.expr.includes('meshflow_e2e_latency_seconds_bucket')));
    const link = heatmap.fieldConfig.overrides
      .filter((o) => o.matcher.options === 'trace_id' && o.matcher.scope === 'exemplar')
      .flatMap((o) => o.properties.filter((p) => p.id === 'links').flatMap((p) => p.value));
    assert.ok(link.some((l) => l.url === '${jaeger_url}/trace/${__value.raw}'), 'no trace link on trace_id');
  });

  it('shows lost, duplicated, dead letters and producer send errors', () => {
    for (const metric of [
      'meshflow_messages_lost_total',
      'meshflow_messages_duplicated_total',
      'meshflow_consumer_dead_lettered_total',
      'meshflow_producer_errors_total',
    ]) {
      assert.ok(all.includes(metric), metric);
    }
  });
});

describe('consumer-lag.json', () => {
  const d = byFile['consumer-lag.json'];
  const all = exprs(d).join('\n');

  it('shows lag in messages and seconds per partition', () => {
    assert.match(all, /by \(group, topic, partition\) \(meshflow_consumer_lag_messages\{/);
    assert.match(all, /by \(group, topic, partition\) \(meshflow_consumer_lag_seconds\{/);
  });

  it('shows the group status over time for every state', () => {
    const timeline = panelsOf(d).find((p) => p.type === 'state-timeline');
    assert.ok(timeline, 'no state timeline');
    for (const state of ['OK', 'WARN', 'STALL', 'STOP', 'ERR', 'REWIND']) {
      assert.ok(timeline.targets[0].expr.includes(`meshflow_consumer_group_status="${state}"`), state);
      const texts = timeline.fieldConfig.defaults.mappings.flatMap((m) => Object.values(m.options).map((o) => o.text));
      assert.ok(texts.includes(state), `no value mapping for ${state}`);
    }
  });

  const BURROW = { 1: ['OK', 'green'], 2: ['WARN', 'yellow'], 3: ['ERR', 'purple'], 4: ['STOP', 'red'], 5: ['STALL', 'orange'], 6: ['REWIND', 'blue'] };
  const tableWith = (pattern) => {
    const panel = panelsOf(d).find((p) => p.type === 'table' && p.targets.some((t) => pattern.test(t.expr)));
    assert.ok(panel, `no table with ${pattern}`);
    return panel;
  };
  /** The column a query's value is shown in, and that column's override properties. */
  const column = (panel, pattern) => {
    const { refId } = panel.targets.find((t) => pattern.test(t.expr));
    const name = panel.transformations.find((t) => t.id === 'organize').options.renameByName[`Value #${refId}`];
    const props = panel.fieldConfig.overrides.filter((o) => o.matcher.options === name).flatMap((o) => o.properties);
    return Object.fromEntries(props.map((p) => [p.id, p.value]));
  };
  const assertStatusColumn = (panel, pattern) => {
    const props = column(panel, pattern);
    const options = Object.assign({}, ...(props.mappings ?? []).filter((m) => m.type === 'value').map((m) => m.options));
    for (const [code, [text, color]] of Object.entries(BURROW)) {
      assert.equal(options[code]?.text, text, `panel ${panel.id}: code ${code}`);
      assert.equal(options[code]?.color, color, `panel ${panel.id}: colour of ${text}`);
    }
    assert.deepEqual(Object.keys(options).sort(), Object.keys(BURROW), `panel ${panel.id}: only the six codes`);
    assert.equal(props['custom.cellOptions']?.type, 'color-background', `panel ${panel.id}: status cells coloured`);
  };

  it('lists every watched group, not only those of the selected topics', () => {
    const group = variable(d, 'group');
    assert.match(group.query, /^label_values\(meshflow_consumer_(group_status_code|group_status|lag_messages)\{/);
    assert.ok(!group.query.includes('$topic'), group.query);
    const names = d.templating.list.map((v) => v.name);
    assert.ok(names.indexOf('group') < names.indexOf('topic'), 'topic is chained on group');
  });

  it("has a table of every group's status code, mapped for all six codes", () => {
    const panel = tableWith(/^max by \(group\) \(meshflow_consumer_group_status_code\{group=~"\$group"/);
    assertStatusColumn(panel, /meshflow_consumer_group_status_code/);
    assert.equal(column(panel, /meshflow_consumer_lag_seconds/).unit, 's');
    assert.ok(panel.targets.some((t) => /^sum by \(group\) \(meshflow_consumer_lag_messages\{/.test(t.expr)));
  });

  it('shows lag in seconds and messages per group and topic', () => {
    const panel = tableWith(/^max by \(group, topic\) \(meshflow_consumer_lag_seconds\{/);
    assert.ok(panel.targets.some((t) => /^sum by \(group, topic\) \(meshflow_consumer_lag_messages\{/.test(t.expr)));
    assert.equal(column(panel, /meshflow_consumer_lag_seconds/).unit, 's');
  });

  it('shows status and lag per partition of the selected groups', () => {
    const panel = tableWith(/^max by \(group, topic, partition\) \(meshflow_consumer_partition_status_code\{group=~"\$group", topic=~"\$topic"/);
    assertStatusColumn(panel, /meshflow_consumer_partition_status_code/);
    assert.equal(column(panel, /meshflow_consumer_lag_seconds/).unit, 's');
    assert.ok(panel.targets.some((t) => /^sum by \(group, topic, partition\) \(meshflow_consumer_lag_messages\{group=~"\$group"/.test(t.expr)));
  });

  it('shows rebalances and per-consumer throughput', () => {
    assert.ok(all.includes('meshflow_consumer_rebalances_total'));
    assert.match(all, /sum by \(instance\) \(rate\(meshflow_consumer_messages_total\{/);
  });
});

describe('cluster-mesh.json', () => {
  const d = byFile['cluster-mesh.json'];
  const all = exprs(d).join('\n');

  it('shows brokers and partition health', () => {
    for (const metric of ['meshflow_brokers', 'meshflow_topic_partitions_leaderless', 'meshflow_topic_partitions_under_replicated']) {
      assert.ok(all.includes(metric), metric);
    }
  });

  const table = (pattern) => {
    const panel = panelsOf(d).find((p) => p.type === 'table' && p.targets.some((t) => pattern.test(t.expr)));
    assert.ok(panel, `no table with ${pattern}`);
    return panel;
  };
  const columnOf = (panel, refId) => {
    const options = panel.transformations.find((t) => t.id === 'organize').options;
    const name = options.renameByName[panel.targets.length === 1 ? 'Value' : `Value #${refId}`];
    const props = panel.fieldConfig.overrides.filter((o) => o.matcher.options === name).flatMap((o) => o.properties);
    return { name, ...Object.fromEntries(props.map((p) => [p.id, p.value])) };
  };

  it('has a topics table: partitions, under-replicated, leaderless, write rate in mps, retained messages', () => {
    const panel = table(/^max by \(topic\) \(meshflow_topic_partitions\{topic=~"\$topic"/);
    const find = (pattern) => {
      const t = panel.targets.find((t) => pattern.test(t.expr));
      assert.ok(t, `panel ${panel.id}: no query ${pattern}`);
      return t;
    };
    find(/^max by \(topic\) \(meshflow_topic_partitions_under_replicated\{/);
    find(/^max by \(topic\) \(meshflow_topic_partitions_leaderless\{/);
    const rate = find(/^max by \(topic\) \(rate\(meshflow_topic_high_watermarks\{[^}]*\}\[5m\]\)\)$/);
    assert.equal(columnOf(panel, rate.refId).unit, 'mps');
    find(/^max by \(topic\) \(meshflow_topic_high_watermarks\{[^}]*\} - meshflow_topic_low_watermarks\{[^}]*\}\)$/);
  });

  it('has a brokers table with id, address and rack', () => {
    const panel = table(/^max by \(broker_id, address, rack\) \(meshflow_broker_info\{/);
    const { renameByName, excludeByName } = panel.transformations.find((t) => t.id === 'organize').options;
    assert.deepEqual(renameByName, { broker_id: 'Broker', address: 'Address', rack: 'Rack' });
    assert.equal(excludeByName.Value, true, 'the always-1 value is not a column');
  });

  it('has an exporter health row: poll duration p99, poll errors by kind, groups and partitions watched, left out', () => {
    const exporterRow = panelsOf(d).find((p) => p.type === 'row' && p.title === 'Exporter');
    assert.ok(exporterRow, 'no Exporter row');
    const below = panelsOf(d).filter((p) => p.type !== 'row' && p.gridPos.y > exporterRow.gridPos.y);
    const texts = below.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, expr: t.expr })));
    const withExpr = (pattern) => {
      const hit = texts.find(({ expr }) => pattern.test(expr));
      assert.ok(hit, `no panel in the Exporter row with ${pattern}`);
      return hit.panel;
    };
    for (const panel of [withExpr(/^histogram_quantile\(0\.99, sum by \((instance, )?le\) \(rate\(meshflow_exporter_poll_duration_seconds_bucket\{/)]) {
      assert.equal(panel.fieldConfig.defaults.unit, 's');
    }
    withExpr(/^sum by \(kind\) \(increase\(meshflow_exporter_poll_errors_total\{/);
    for (const metric of ['meshflow_exporter_groups_watched', 'meshflow_exporter_partitions_watched', 'meshflow_exporter_discovery_left_out']) {
      withExpr(new RegExp(`\\b${metric}\\{`));
    }
  });

  it('puts no `or vector(0)` on the cluster view or the exporter series, which may be absent', () => {
    for (const { panel, target } of queriesOf(d)) {
      if (/meshflow_(topic|partition|broker|exporter)_/.test(target.expr)) {
        assert.ok(!/\bvector\(0\)/.test(target.expr), `panel ${panel.id} "${panel.title}" ${target.refId}`);
      }
    }
  });

  it('shows service up and ready', () => {
    assert.match(all, /up\{job=~"meshflow-\.\*"[,}]/);
    assert.ok(all.includes('meshflow_service_ready'));
  });

  it('shows Istio TCP telemetry and the mTLS share', () => {
    for (const metric of ['istio_tcp_connections_opened_total', 'istio_tcp_sent_bytes_total', 'istio_tcp_received_bytes_total']) {
      assert.ok(all.includes(metric), metric);
    }
    assert.ok(all.includes('connection_security_policy="mutual_tls"'));
  });
});
