/**
 * Types the generated checks hold each dashboard to.
 *
 * `Dashboard`, `Panel`, `RowPanel` and the per-panel option types come from
 * Grafana's published schema (@grafana/schema). Two adaptations are needed
 * to check JSON with them:
 *
 * - `Json<T>`: JSON cannot hold TypeScript enum members, so every
 *   enum-typed field is compared by the enum's values instead (a string
 *   enum `ThresholdsMode` accepts "absolute" | "percentage").
 * - Panel `options`, `fieldConfig.defaults.custom` and `targets` are open
 *   records in the dashboard schema; `PanelKinds` narrows them to the
 *   options the panel plugin publishes, and targets to Prometheus queries.
 */
import type { Dashboard, FieldConfig, FieldConfigSource, Panel, RowPanel } from '@grafana/schema';
import type * as common from '@grafana/schema';
import type * as heatmap from '@grafana/schema/dist/esm/raw/composable/heatmap/panelcfg/x/HeatmapPanelCfg_types.gen';
import type * as stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as statetimeline from '@grafana/schema/dist/esm/raw/composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen';
import type * as table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as text from '@grafana/schema/dist/esm/raw/composable/text/panelcfg/x/TextPanelCfg_types.gen';
import type * as timeseries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

/** `T` as it can be written in JSON: enum members become their values. */
export type Json<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? Array<Json<U>>
      : T extends object
        ? { [K in keyof T]: Json<T[K]> }
        : T;

/**
 * A Prometheus query target. @grafana/schema does not publish the
 * Prometheus data source's query type, so these are the fields of its
 * query editor that the dashboards use, on top of the common DataQuery.
 */
export interface PromQuery extends common.DataQuery {
  datasource: { type: 'prometheus'; uid: string };
  expr: string;
  editorMode?: 'code' | 'builder';
  legendFormat?: string;
  range?: boolean;
  instant?: boolean;
  exemplar?: boolean;
  format?: 'time_series' | 'table' | 'heatmap';
  interval?: string;
  intervalFactor?: number;
}

/** A panel whose options and custom field config are those of its plugin. */
type TypedPanel<Type extends string, Options, Custom> = Omit<Panel, 'type' | 'options' | 'fieldConfig' | 'targets'> & {
  type: Type;
  options: Options;
  fieldConfig: Omit<FieldConfigSource, 'defaults'> & {
    defaults: Omit<FieldConfig, 'custom'> & { custom?: Custom };
  };
  targets?: PromQuery[];
};

/** The panel plugins the dashboards may use, keyed by panel `type`. */
export interface PanelKinds {
  timeseries: TypedPanel<'timeseries', timeseries.Options, timeseries.FieldConfig>;
  heatmap: TypedPanel<'heatmap', heatmap.Options, heatmap.FieldConfig>;
  stat: TypedPanel<'stat', stat.Options, Record<string, never>>;
  'state-timeline': TypedPanel<'state-timeline', statetimeline.Options, statetimeline.FieldConfig>;
  table: TypedPanel<'table', table.Options, table.FieldConfig>;
  text: TypedPanel<'text', text.Options, Record<string, never>>;
}

export type DashboardJson = Json<Dashboard>;
export type RowPanelJson = Json<Omit<RowPanel, 'panels'> & { panels: unknown[] }>;
export type PanelJson<K extends keyof PanelKinds> = Json<PanelKinds[K]>;
