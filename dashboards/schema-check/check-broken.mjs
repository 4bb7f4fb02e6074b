// Proves that the schema check has teeth: each mutation below breaks one
// dashboard in one way, and `tsc` must report an error in that dashboard's
// generated module, while an unmodified copy must still pass.
//
// Usage: node check-broken.mjs   (exit 1 if any broken dashboard passed)
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from './generate.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const dashboards = join(here, '..');
const work = join(here, 'broken');

const load = (file) => JSON.parse(readFileSync(join(dashboards, file), 'utf8'));
const firstPanel = (d, type) => d.panels.find((p) => p.type === type);

/** name -> [dashboard file, how to break it] */
const mutations = {
  'gridpos-not-an-object': ['message-flow.json', (d) => { firstPanel(d, 'timeseries').gridPos = 'x'; }],
  'misspelt-panel-key': ['message-flow.json', (d) => { const p = firstPanel(d, 'stat'); p.titel = p.title; delete p.title; }],
  'unknown-panel-type': ['consumer-lag.json', (d) => { firstPanel(d, 'timeseries').type = 'timeserie'; }],
  'heatmap-color-mode': ['message-flow.json', (d) => { firstPanel(d, 'heatmap').options.color.mode = 'rainbow'; }],
  'heatmap-missing-exemplars': ['message-flow.json', (d) => { delete firstPanel(d, 'heatmap').options.exemplars; }],
  'thresholds-mode': ['cluster-mesh.json', (d) => { firstPanel(d, 'stat').fieldConfig.defaults.thresholds.mode = 'abs'; }],
  'legend-missing-show': ['consumer-lag.json', (d) => { delete firstPanel(d, 'timeseries').options.legend.showLegend; }],
  'draw-style': ['cluster-mesh.json', (d) => { firstPanel(d, 'timeseries').fieldConfig.defaults.custom.drawStyle = 'dots'; }],
  'expr-not-a-string': ['consumer-lag.json', (d) => { firstPanel(d, 'timeseries').targets[0].expr = 42; }],
  'variable-type': ['message-flow.json', (d) => { d.templating.list[1].type = 'querry'; }],
  'schema-version-string': ['cluster-mesh.json', (d) => { d.schemaVersion = '42'; }],
  'row-without-collapsed': ['consumer-lag.json', (d) => { delete d.panels.find((p) => p.type === 'row').collapsed; }],
};

rmSync(work, { recursive: true, force: true });
mkdirSync(join(work, 'input'), { recursive: true });
writeFileSync(join(work, 'input', 'control.json'), JSON.stringify(load('message-flow.json')));
for (const [name, [file, breakIt]] of Object.entries(mutations)) {
  const dashboard = load(file);
  breakIt(dashboard);
  writeFileSync(join(work, 'input', `${name}.json`), JSON.stringify(dashboard));
}
generate(join(work, 'input'), join(work, 'ts'));
writeFileSync(
  join(work, 'tsconfig.json'),
  JSON.stringify({ extends: '../tsconfig.json', include: ['../dashboard-types.ts', 'ts/*.ts'] }),
);

const tsc = spawnSync(join(here, 'node_modules', '.bin', 'tsc'), ['--noEmit', '--pretty', 'false', '-p', join(work, 'tsconfig.json')], {
  encoding: 'utf8',
});
if (tsc.error) throw tsc.error;
const output = `${tsc.stdout}${tsc.stderr}`;
const failedFiles = new Set([...output.matchAll(/ts\/([\w-]+)\.ts\(\d+,\d+\): error/g)].map((m) => m[1]));

let failures = 0;
if (failedFiles.has('control')) {
  console.log('FAIL control: the unmodified dashboard does not type-check');
  failures += 1;
}
for (const name of Object.keys(mutations)) {
  if (failedFiles.has(name)) {
    console.log(`ok   ${name}: rejected`);
  } else {
    console.log(`FAIL ${name}: the broken dashboard passed the type check`);
    failures += 1;
  }
}
if (failures > 0) {
  console.log(output);
  process.exit(1);
}
rmSync(work, { recursive: true, force: true });
console.log(`schema check rejected all ${Object.keys(mutations).length} broken dashboards`);
