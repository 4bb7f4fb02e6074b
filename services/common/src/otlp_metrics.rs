//! The service's metrics pushed over OTLP (gRPC), beside `/metrics`, with
//! the same names and labels: what a collector or an OTLP backend receives
//! is what Prometheus scrapes.
//!
//! Pushing starts when `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` is set (a
//! gRPC URL such as `http://collector:4317`), or when
//! `OTEL_METRICS_EXPORTER=otlp` and `OTEL_EXPORTER_OTLP_ENDPOINT` are: the
//! general endpoint alone does not start it, since it often points at a
//! trace-only backend. `OTEL_METRIC_EXPORT_INTERVAL` (milliseconds, default
//! 60000) sets the period; `OTEL_SERVICE_NAME` and
//! `OTEL_RESOURCE_ATTRIBUTES` the resource, with `service.instance.id` the
//! instance id. Only the gRPC protocol is spoken.
//!
//! Each period the registry is rendered in the Prometheus text format (the
//! one `/metrics` serves) and mapped: counters to cumulative monotonic sums
//! named with their `_total`, gauges (statesets and infos included) to
//! gauges, histograms to cumulative histograms with the same bounds. The
//! OpenTelemetry messaging metrics ([`crate::messaging_metrics`]) take back
//! their own names, units and attribute names.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::exposition::prometheus_text;
use crate::messaging_metrics::{otel_attribute, otel_name};

/// Where and how often to push, from the standard variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpMetricsSettings {
    /// The collector's gRPC URL.
    pub endpoint: String,
    /// The push period.
    pub interval: Duration,
    /// Resource attributes, `service.name` first.
    pub resource: Vec<(String, String)>,
}

impl OtlpMetricsSettings {
    /// The settings `env` (a variable lookup) asks for, or `None` when
    /// metrics are not to be pushed.
    pub fn from_env(
        env: impl Fn(&str) -> Option<String>,
        service: &str,
        instance: &str,
    ) -> Option<Self> {
        let set = |key: &str| env(key).filter(|v| !v.trim().is_empty());
        let endpoint = set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT").or_else(|| {
            (set("OTEL_METRICS_EXPORTER").as_deref() == Some("otlp"))
                .then(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"))
                .flatten()
        })?;
        if set("OTEL_METRICS_EXPORTER").as_deref() == Some("none") {
            return None;
        }
        let interval = set("OTEL_METRIC_EXPORT_INTERVAL")
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .filter(|&ms| ms > 0)
            .map_or(Duration::from_secs(60), Duration::from_millis);
        let name = set("OTEL_SERVICE_NAME").unwrap_or_else(|| service.to_string());
        let mut resource = vec![
            ("service.name".to_string(), name),
            ("service.instance.id".to_string(), instance.to_string()),
        ];
        for pair in set("OTEL_RESOURCE_ATTRIBUTES")
            .unwrap_or_default()
            .split(',')
        {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let key = key.trim();
            if !key.is_empty() && !resource.iter().any(|(k, _)| k == key) {
                resource.push((key.to_string(), value.trim().to_string()));
            }
        }
        Some(OtlpMetricsSettings {
            endpoint: endpoint.trim().to_string(),
            interval,
            resource,
        })
    }
}

/// A metric family as the text format lists it.
#[derive(Debug, Clone, PartialEq)]
struct Family {
    name: String,
    help: String,
    kind: String,
    samples: Vec<Sample>,
}

/// One sample line: its name, labels and value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// Parses the Prometheus text format as [`prometheus_text`] writes it.
fn parse(text: &str) -> Vec<Family> {
    let mut families: Vec<Family> = Vec::new();
    let mut help: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help.insert(name.to_string(), text.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.rsplit_once(' ').unwrap_or((rest, "untyped"));
            families.push(Family {
                name: name.to_string(),
                help: help.get(name).cloned().unwrap_or_default(),
                kind: kind.to_string(),
                samples: Vec::new(),
            });
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            if let (Some(sample), Some(family)) = (parse_sample(line), families.last_mut()) {
                family.samples.push(sample);
            }
        }
    }
    families
}

/// `name{k="v",...} value`, with `\\`, `\"` and `\n` escapes in values.
fn parse_sample(line: &str) -> Option<Sample> {
    let (head, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let Some((name, rest)) = head.split_once('{') else {
        return Some(Sample {
            name: head.to_string(),
            labels: Vec::new(),
            value,
        });
    };
    let mut labels = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        let key = key.trim_start_matches(',').trim().to_string();
        if key.is_empty() || key == "}" {
            break;
        }
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.push((key, value));
        if chars.peek() == Some(&'}') {
            break;
        }
    }
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

fn attributes(labels: &[(String, String)]) -> Vec<KeyValue> {
    labels.iter().map(|(k, v)| attribute(k, v)).collect()
}

fn number(labels: &[(String, String)], value: f64, start: u64, now: u64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attributes(labels),
        start_time_unix_nano: start,
        time_unix_nano: now,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

/// A sample's labels, in order.
type Labels = Vec<(String, String)>;

/// The histogram points of a family: one per label set (without `le`),
/// bucket counts made per bucket from the cumulative ones.
fn histogram_points(family: &Family, start: u64, now: u64) -> Vec<HistogramDataPoint> {
    let mut points: BTreeMap<Labels, HistogramDataPoint> = BTreeMap::new();
    // Per label set, (upper bound, cumulative count) of each bucket.
    let mut cumulative: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
    for s in &family.samples {
        let mut labels = s.labels.clone();
        let le = labels
            .iter()
            .position(|(k, _)| k == "le")
            .map(|i| labels.remove(i).1);
        let point = points
            .entry(labels.clone())
            .or_insert_with(|| HistogramDataPoint {
                attributes: attributes(&labels),
                start_time_unix_nano: start,
                time_unix_nano: now,
                ..Default::default()
            });
        match (s.name.strip_prefix(family.name.as_str()), le) {
            (Some("_bucket"), Some(le)) => {
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::NAN)
                };
                cumulative.entry(labels).or_default().push((bound, s.value));
            }
            (Some("_sum"), _) => point.sum = Some(s.value),
            (Some("_count"), _) => point.count = s.value as u64,
            _ => {}
        }
    }
    for (labels, mut buckets) in cumulative {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let Some(point) = points.get_mut(&labels) else {
            continue;
        };
        let mut previous = 0.0;
        for (bound, count) in buckets {
            if bound.is_finite() {
                point.explicit_bounds.push(bound);
            }
            point.bucket_counts.push((count - previous).max(0.0) as u64);
            previous = count;
        }
    }
    points.into_values().collect()
}

/// A family of the OpenTelemetry messaging metrics with its labels as the
/// attributes they stand for, empty ones left out.
fn conventional(f: &Family) -> Family {
    let samples = f
        .samples
        .iter()
        .map(|s| Sample {
            name: s.name.clone(),
            labels: s
                .labels
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (otel_attribute(k).to_string(), v.clone()))
                .collect(),
            value: s.value,
        })
        .collect();
    Family {
        samples,
        ..f.clone()
    }
}

/// The OTLP metrics of the families, at `now` for series since `start`.
/// The messaging metrics go by their OpenTelemetry names, units and
/// attribute names ([`crate::messaging_metrics`]); the rest as `/metrics`
/// names them.
fn metrics(families: &[Family], start: u64, now: u64) -> Vec<Metric> {
    families
        .iter()
        .filter(|f| !f.samples.is_empty())
        .filter_map(|f| {
            let renamed = otel_name(&f.name);
            let f = &match renamed {
                Some(_) => Cow::Owned(conventional(f)),
                None => Cow::Borrowed(f),
            };
            let points = || {
                f.samples
                    .iter()
                    .map(|s| number(&s.labels, s.value, start, now))
                    .collect()
            };
            let data = match f.kind.as_str() {
                "counter" => metric::Data::Sum(Sum {
                    data_points: points(),
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                }),
                "gauge" | "untyped" => metric::Data::Gauge(Gauge {
                    data_points: points(),
                }),
                "histogram" => metric::Data::Histogram(Histogram {
                    data_points: histogram_points(f, start, now),
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                }),
                _ => return None,
            };
            let (name, unit) = match renamed {
                Some((name, unit)) => (name.to_string(), unit.to_string()),
                None => (f.name.clone(), String::new()),
            };
            Some(Metric {
                name,
                description: f.help.clone(),
                unit,
                data: Some(data),
                ..Default::default()
            })
        })
        .collect()
}

/// The export request of the registry's text.
fn request(
    text: &str,
    resource: &[(String, String)],
    start: u64,
    now: u64,
) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: attributes(resource),
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "meshflow".to_string(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    ..Default::default()
                }),
                metrics: metrics(&parse(text), start, now),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Pushes the registry every `settings.interval` until `shutdown`, then
/// once more; a failed push is logged when the outcome changes and
/// retried at the next period.
pub async fn run(
    registry: Arc<Registry>,
    settings: OtlpMetricsSettings,
    shutdown: CancellationToken,
) {
    let start = crate::envelope::now_ns();
    let channel = match tonic::transport::Endpoint::from_shared(settings.endpoint.clone()) {
        Ok(endpoint) => endpoint.timeout(Duration::from_secs(10)).connect_lazy(),
        Err(e) => {
            tracing::warn!(endpoint = %settings.endpoint, error = %e, "OTLP metrics endpoint");
            return;
        }
    };
    let mut client = MetricsServiceClient::new(channel);
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        let last = tokio::select! {
            _ = shutdown.cancelled() => true,
            _ = tick.tick() => false,
        };
        let body = request(
            &prometheus_text(&registry),
            &settings.resource,
            start,
            crate::envelope::now_ns(),
        );
        match client.export(body).await {
            Ok(_) if failing => {
                tracing::info!(endpoint = %settings.endpoint, "OTLP metrics pushed again");
                failing = false;
            }
            Ok(_) => {}
            Err(e) if !failing => {
                tracing::warn!(endpoint = %settings.endpoint, error = %e, "OTLP metrics push failed");
                failing = true;
            }
            Err(_) => {}
        }
        if last {
            break;
        }
    }
}

#[cfg(test)]
mod tests;
