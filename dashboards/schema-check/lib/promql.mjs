// PromQL helpers: Grafana variable substitution, series names and label
// matchers (from the lezer PromQL grammar Prometheus publishes), and a
// parse check through promtool, the parser Prometheus itself uses.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';

/**
 * Concrete values for Grafana's built-in variables, from the table the
 * end-to-end test (tests/src/grafana.rs) substitutes too.
 */
export const BUILTINS = JSON.parse(
  readFileSync(new URL('../grafana-builtins.json', import.meta.url), 'utf8'),
).values;

const VARIABLE = /\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)/g;

/**
 * Values for a dashboard's template variables, the way Grafana would
 * interpolate them into a Prometheus query. `mode` "all" uses the All value
 * (or the current value), "multi" two selected values of a multi-value
 * variable (Grafana writes them as a regex alternation).
 */
export function variableValues(dashboard, mode) {
  const values = { ...BUILTINS };
  for (const v of dashboard.templating?.list ?? []) {
    const current = Array.isArray(v.current?.value) ? v.current.value[0] : v.current?.value;
    if (mode === 'multi' && v.multi) {
      values[v.name] = '(meshflow\\\\.events|audit)';
    } else if (v.includeAll && (current === undefined || current === '$__all')) {
      values[v.name] = v.allValue ?? '.*';
    } else {
      values[v.name] = current ?? (typeof v.query === 'string' ? v.query : 'meshflow');
    }
  }
  return values;
}

/** The expression with every Grafana variable replaced; throws on an unknown one. */
export function substitute(expr, values) {
  return expr.replace(VARIABLE, (match, braced, bracketed, plain) => {
    const name = braced ?? bracketed ?? plain;
    if (!(name in values)) {
      throw new Error(`unknown variable ${match} in: ${expr}`);
    }
    return values[name];
  });
}

/** Names of the variables an expression uses. */
export function variablesUsed(expr) {
  return [...expr.matchAll(VARIABLE)].map((m) => m[1] ?? m[2] ?? m[3]);
}

/**
 * The series an expression selects, as [{ name, labels }], where labels are
 * the label names of its matchers. Also returns lezer's syntax errors.
 */
export function selectors(expr) {
  const tree = parser.parse(expr);
  const found = [];
  const errors = [];
  const cursor = tree.cursor();
  do {
    if (cursor.type.isError) {
      errors.push(`syntax error at ${cursor.from}: ${JSON.stringify(expr.slice(Math.max(0, cursor.from - 20), cursor.to + 20))}`);
    }
    if (cursor.name === 'VectorSelector') {
      const node = cursor.node;
      let name = node.getChild('Identifier') ? expr.slice(node.getChild('Identifier').from, node.getChild('Identifier').to) : null;
      const labels = [];
      const matchers = node.getChild('LabelMatchers');
      for (const m of matchers ? matchers.getChildren('UnquotedLabelMatcher') : []) {
        const labelNode = m.getChild('LabelName');
        const label = expr.slice(labelNode.from, labelNode.to);
        const valueNode = m.getChild('StringLiteral');
        const op = m.getChild('MatchOp');
        if (label === '__name__' && op && expr.slice(op.from, op.to) === '=' && valueNode) {
          name = JSON.parse(expr.slice(valueNode.from, valueNode.to).replace(/^'|'$/g, '"'));
        }
        labels.push(label);
      }
      found.push({ name, labels });
    }
  } while (cursor.next());
  return { selectors: found, errors };
}

/**
 * Checks that every expression parses with `promtool check rules`, by
 * writing them as recording rules. `rules` is a list of { record, expr }
 * grouped as { groupName: [...] }. Returns { ok, output }.
 */
export function promtoolCheck(groups) {
  // JSON is valid YAML, and needs no escaping rules of its own.
  const content = {
    groups: Object.entries(groups).map(([name, rules]) => ({
      name,
      rules: rules.map(({ record, expr }) => ({ record, expr })),
    })),
  };
  return promtool('check', 'expressions.rules.yml', content);
}

/**
 * Runs `promtool <command> rules` on `content` written as JSON (valid YAML)
 * to a temporary `name`. Returns { ok, output }.
 */
function promtool(command, name, content) {
  const dir = mkdtempSync(join(tmpdir(), 'meshflow-promql-'));
  try {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify(content, null, 2));
    const run = spawnSync('promtool', [command, 'rules', file], { encoding: 'utf8' });
    if (run.error) {
      throw new Error(`cannot run promtool (is it installed?): ${run.error.message}`);
    }
    return { ok: run.status === 0, output: `${run.stdout}${run.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A valid recording-rule name for a dashboard query. */
export function recordName(file, panel, target) {
  const base = file.replace(/\.json$/, '').replace(/[^A-Za-z0-9]+/g, '_');
  return `dashboard:${base}:panel${panel.id}_${target.refId ?? 'A'}`;
}

/**
 * Evaluates expressions on synthetic series with `promtool test rules`.
 * `series` is [{ series, values }] in promtool's notation, `cases` is
 * [{ expr, eval_time, exp_samples }]. Returns { ok, output }.
 */
export function promtoolEvaluate(series, cases, interval = '1m') {
  const test = { evaluation_interval: interval, tests: [{ interval, input_series: series, promql_expr_test: cases }] };
  return promtool('test', 'evaluate.test.yml', test);
}
