// The shape Reactor's dashboards must have: Grafana's dashboard schema
// (@grafana/schema), with each panel's options and custom field config checked
// against its own plugin's schema, and each query against its datasource's
// query model. `ReactorDashboard` is proven assignable to `Dashboard` below, so
// a file that satisfies it satisfies Grafana's type too.
import type {
  AnnotationQuery,
  Dashboard,
  DataSourceRef,
  FieldConfig,
  FieldConfigSource,
  Panel,
} from '@grafana/schema';
import type * as barchart from '@grafana/schema/dist/esm/raw/composable/barchart/panelcfg/x/BarChartPanelCfg_types.gen';
import type * as stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as timeseries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

/**
 * A type as JSON can write it. JSON cannot name a TypeScript string enum
 * member, only its value, so each string enum becomes the union of its values
 * (`ThresholdsMode` becomes `"absolute" | "percentage"`); numeric enums
 * already accept their literal values. Everything else is unchanged, so
 * excess-property checks still apply at every level.
 */
export type Json<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? Array<Json<U>>
      : T extends object
        ? { [K in keyof T]: Json<T[K]> }
        : T;

/** A datasource reference through a dashboard variable, e.g. `${clickhouse}`. */
type DatasourceVariableRef<PluginId extends string> = {
  type: PluginId;
  uid: `\${${string}}`;
};

/** grafana-clickhouse-datasource v4, SQL editor (src/types/sql.ts in the plugin). */
export type ClickHouseQuery = {
  refId: string;
  datasource: DatasourceVariableRef<'grafana-clickhouse-datasource'>;
  editorType: 'sql';
  /** 0 time series, 1 table, 2 logs, 3 traces. */
  format: 0 | 1 | 2 | 3;
  queryType: 'timeseries' | 'table' | 'logs' | 'traces';
  rawSql: string;
  pluginVersion?: string;
  hide?: boolean;
  meta?: { timezone?: string };
};

/** Grafana's Prometheus datasource query. */
export type PrometheusQuery = {
  refId: string;
  datasource: DatasourceVariableRef<'prometheus'>;
  expr: string;
  editorMode?: 'code' | 'builder';
  range?: boolean;
  instant?: boolean;
  format?: 'time_series' | 'table' | 'heatmap';
  legendFormat?: string;
  interval?: string;
  exemplar?: boolean;
  hide?: boolean;
};

export type Query = ClickHouseQuery | PrometheusQuery;

/** A panel of plugin `Type`, with that plugin's options and custom field config. */
type PanelOf<Type extends string, Options, Custom> = Omit<
  Json<Panel>,
  'type' | 'options' | 'fieldConfig' | 'targets' | 'datasource'
> & {
  type: Type;
  datasource: DatasourceVariableRef<Query['datasource']['type']>;
  options: Json<Options>;
  fieldConfig: {
    defaults: Omit<Json<FieldConfig>, 'custom'> & { custom?: Json<Custom> };
    overrides: Json<FieldConfigSource['overrides']>;
  };
  targets: Query[];
};

export type ReactorPanel =
  | PanelOf<'timeseries', timeseries.Options, timeseries.FieldConfig>
  | PanelOf<'barchart', barchart.Options, barchart.FieldConfig>
  | PanelOf<'stat', stat.Options, Record<string, never>>
  | PanelOf<'table', table.Options, table.FieldConfig>;

type RowOf<P> = { type: 'row'; id: number; title: string; collapsed: boolean; gridPos: Json<Panel>['gridPos']; panels: P[] };

/** An annotation whose target is one of our datasources' queries. */
type ReactorAnnotation = Omit<Json<AnnotationQuery>, 'target' | 'datasource'> & {
  datasource: DataSourceRef | DatasourceVariableRef<Query['datasource']['type']>;
  target?: Query;
};

export type ReactorDashboard = Omit<Json<Dashboard>, 'panels' | 'annotations' | 'uid' | 'title' | 'editable'> & {
  uid: string;
  title: string;
  editable: true;
  panels: Array<ReactorPanel | RowOf<ReactorPanel>>;
  annotations: { list: ReactorAnnotation[] };
};

// Anything that satisfies ReactorDashboard is a Grafana Dashboard.
type Assert<T extends true> = T;
export type ReactorDashboardIsADashboard = Assert<ReactorDashboard extends Json<Dashboard> ? true : false>;
