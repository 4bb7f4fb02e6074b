// The metric names and labels fixed in docs/contracts.md, read from its
// tables, so that dashboards and rules are checked against the document
// the services are written to, not against a copy of it.
import { readRepoFile } from './sources.mjs';

const HISTOGRAM_SERIES = ['_bucket', '_count', '_sum'];

/**
 * Map from series name to { type, labels }, where labels is the set of
 * label names the contract allows (plus the scrape labels job and instance,
 * and le on histogram buckets).
 */
export function contractSeries(markdown = readRepoFile('docs/contracts.md')) {
  const metrics = new Map();
  const add = (name, type, labels) => metrics.set(name, { type, labels: new Set(['job', 'instance', ...labels]) });

  for (const line of markdown.split('\n')) {
    // | `name` | type ... | labels |
    const row = line.match(/^\|\s*`(meshflow_[a-z0-9_]+)`\s*\|\s*([a-z]+)[^|]*\|(.*)\|\s*$/);
    if (row) {
      const [, name, type, labelCell] = row;
      const labels = labelCell
        .replaceAll('\\|', '/')
        .split(',')
        .map((part) => part.replaceAll('`', '').trim().match(/^([a-z_][a-z0-9_]*)/)?.[1])
        .filter(Boolean);
      add(name, type, labels);
      continue;
    }
    // prose: `meshflow_service_ready` gauge
    for (const [, name, type] of line.matchAll(/`(meshflow_[a-z0-9_]+)`\s+(gauge|counter|histogram)\b/g)) {
      if (!metrics.has(name)) add(name, type, []);
    }
  }

  const series = new Map();
  for (const [name, metric] of metrics) {
    if (metric.type === 'histogram') {
      for (const suffix of HISTOGRAM_SERIES) {
        const labels = new Set(metric.labels);
        if (suffix === '_bucket') labels.add('le');
        series.set(name + suffix, { type: metric.type, labels });
      }
    } else {
      series.set(name, metric);
    }
  }
  return series;
}

/**
 * Why a series name is not allowed, or null when it is: a name from the
 * contracts, `up`, an Istio metric (istio_*), a metric of HAProxy's built-in
 * exporter at the local stack's broker door (haproxy_*), or a series recorded
 * by one of the rule files.
 */
export function unknownSeriesReason(name, contract, recorded) {
  if (name === 'up' || name.startsWith('istio_') || name.startsWith('haproxy_') || contract.has(name) || recorded.has(name)) return null;
  return `${name} is not in docs/contracts.md, not up, istio_* or haproxy_*, and not recorded by alerts/*.rules.yml`;
}

/** Why a label matcher on a contract series is not allowed, or null. */
export function unknownLabelReason(name, label, contract) {
  const series = contract.get(name);
  if (!series || series.labels.has(label) || label === '__name__') return null;
  return `${name} has no label ${label} (contracts: ${[...series.labels].join(', ')})`;
}
