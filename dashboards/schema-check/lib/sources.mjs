// Loads what the checks look at: the dashboards, the Prometheus rule files
// and their promtool tests, and the runbooks, from the repository.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const dashboardsDir = join(repoRoot, 'dashboards');
export const alertsDir = join(repoRoot, 'alerts');

const read = (path) => readFileSync(path, 'utf8');

/** Every dashboard JSON in dashboards/, as { file, dashboard }. */
export function loadDashboards() {
  return readdirSync(dashboardsDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, dashboard: JSON.parse(read(join(dashboardsDir, file))) }));
}

/** Panels of a dashboard, rows flattened (a row's own panels included). */
export function panelsOf(dashboard) {
  return (dashboard.panels ?? []).flatMap((p) => (p.type === 'row' ? [p, ...(p.panels ?? [])] : [p]));
}

/** Every PromQL query target of a dashboard, as { panel, target }. */
export function queriesOf(dashboard) {
  return panelsOf(dashboard).flatMap((panel) =>
    (panel.targets ?? []).filter((t) => typeof t.expr === 'string').map((target) => ({ panel, target })),
  );
}

/** Every alerts/*.rules.yml, as { file, groups }. */
export function loadRuleFiles() {
  return readdirSync(alertsDir)
    .filter((f) => f.endsWith('.rules.yml'))
    .sort()
    .map((file) => ({ file, groups: parseYaml(read(join(alertsDir, file))).groups }));
}

/** Every rule of every rule file, as { file, group, rule }. */
export function allRules() {
  return loadRuleFiles().flatMap(({ file, groups }) =>
    groups.flatMap((group) => group.rules.map((rule) => ({ file, group: group.name, rule }))),
  );
}

/** Every promtool test file alerts/tests/*.yml, as { file, tests }. */
export function loadRuleTests() {
  const dir = join(alertsDir, 'tests');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yml'))
    .sort()
    .map((file) => ({ file, tests: parseYaml(read(join(dir, file))).tests ?? [] }));
}

export function readRepoFile(path) {
  return read(join(repoRoot, path));
}
