use super::*;

const TEXT: &str = r#"# HELP meshflow_messages_total Distinct messages.
# TYPE meshflow_messages_total counter
meshflow_messages_total{topic="events",stage="log",group=""} 42
meshflow_messages_total{topic="a \"quoted\", odd=topic\\",stage="processed",group="g"} 7
# HELP meshflow_brokers Brokers.
# TYPE meshflow_brokers gauge
meshflow_brokers 3
# HELP meshflow_poll_seconds Poll time.
# TYPE meshflow_poll_seconds histogram
meshflow_poll_seconds_sum 0.9
meshflow_poll_seconds_count 4
meshflow_poll_seconds_bucket{le="0.1"} 1
meshflow_poll_seconds_bucket{le="0.5"} 3
meshflow_poll_seconds_bucket{le="+Inf"} 4
# TYPE meshflow_empty gauge
"#;

fn settings(vars: &[(&str, &str)]) -> Option<OtlpMetricsSettings> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    OtlpMetricsSettings::from_env(
        |key| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()),
        "meshflow-exporter",
        "exporter-1",
    )
}

fn double(point: &NumberDataPoint) -> f64 {
    match point.value {
        Some(number_data_point::Value::AsDouble(v)) => v,
        _ => f64::NAN,
    }
}

fn labels(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                _ => String::new(),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

#[test]
fn families_keep_their_names_labels_and_values() {
    let metrics = metrics(&parse(TEXT), 1, 2);
    let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
    // A family without samples is left out.
    assert_eq!(
        names,
        [
            "meshflow_messages_total",
            "meshflow_brokers",
            "meshflow_poll_seconds"
        ]
    );
    let Some(metric::Data::Sum(sum)) = &metrics[0].data else {
        panic!("a counter is a sum: {:?}", metrics[0].data)
    };
    assert!(sum.is_monotonic);
    assert_eq!(
        sum.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    assert_eq!(double(&sum.data_points[0]), 42.0);
    assert_eq!(
        labels(&sum.data_points[1].attributes),
        [
            ("topic".to_string(), "a \"quoted\", odd=topic\\".to_string()),
            ("stage".to_string(), "processed".to_string()),
            ("group".to_string(), "g".to_string()),
        ]
    );
    assert_eq!(metrics[0].description, "Distinct messages.");
    let Some(metric::Data::Gauge(gauge)) = &metrics[1].data else {
        panic!("a gauge")
    };
    assert_eq!(double(&gauge.data_points[0]), 3.0);
    assert!(gauge.data_points[0].attributes.is_empty());
    let Some(metric::Data::Histogram(histogram)) = &metrics[2].data else {
        panic!("a histogram")
    };
    let point = &histogram.data_points[0];
    assert_eq!(point.explicit_bounds, [0.1, 0.5]);
    // Per bucket, not cumulative: 1 up to 0.1, 2 more up to 0.5, 1 above.
    assert_eq!(point.bucket_counts, [1, 2, 1]);
    assert_eq!((point.count, point.sum), (4, Some(0.9)));
    assert_eq!((point.start_time_unix_nano, point.time_unix_nano), (1, 2));
}

#[test]
fn a_broken_line_is_skipped_not_guessed() {
    let families =
        parse("# TYPE m gauge\nm{a=\"unterminated} 1\nm{b=\"x\"} 2\nm{c=\"y\"} notanumber\n");
    assert_eq!(families[0].samples.len(), 1);
    assert_eq!(
        families[0].samples[0].labels,
        [("b".to_string(), "x".to_string())]
    );
}

#[test]
fn pushing_starts_only_when_asked_for() {
    assert_eq!(settings(&[]), None);
    // The general endpoint alone is the traces'.
    assert_eq!(
        settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")]),
        None
    );
    let general = settings(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
        ("OTEL_METRICS_EXPORTER", "otlp"),
    ])
    .expect("asked for");
    assert_eq!(general.endpoint, "http://c:4317");
    assert_eq!(general.interval, Duration::from_secs(60));
    let own = settings(&[
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:4317"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
        ("OTEL_SERVICE_NAME", "edge-exporter"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod, service.name=ignored,bad",
        ),
    ])
    .expect("asked for");
    assert_eq!(own.endpoint, "http://m:4317");
    assert_eq!(own.interval, Duration::from_millis(500));
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(
        own.resource,
        [
            pair("service.name", "edge-exporter"),
            pair("service.instance.id", "exporter-1"),
            pair("deployment.environment", "prod"),
        ]
    );
    assert_eq!(
        settings(&[
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:4317"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ]),
        None
    );
}

#[test]
fn the_messaging_metrics_go_by_their_opentelemetry_names() {
    let mut root = Registry::default();
    let messaging = crate::messaging_metrics::MessagingMetrics::register(&mut root);
    messaging.sender("events").record(0.02, 3, None);
    messaging.receiver("events", "g").consumed();
    let metrics = metrics(&parse(&prometheus_text(&root)), 1, 2);
    let named: Vec<(&str, &str)> = metrics
        .iter()
        .map(|m| (m.name.as_str(), m.unit.as_str()))
        .collect();
    assert_eq!(
        named,
        [
            ("messaging.client.operation.duration", "s"),
            ("messaging.client.sent.messages", "{message}"),
            ("messaging.client.consumed.messages", "{message}"),
            // Created with the receiver, so its zeros are there from the start.
            ("messaging.process.duration", "s"),
        ]
    );
    let Some(metric::Data::Sum(sent)) = &metrics[1].data else {
        panic!("a counter is a sum")
    };
    assert_eq!(double(&sent.data_points[0]), 3.0);
    // Attribute names, and no empty ones (no group on a send, no error).
    assert_eq!(
        labels(&sent.data_points[0].attributes),
        [
            ("messaging.system".to_string(), "kafka".to_string()),
            ("messaging.operation.name".to_string(), "send".to_string()),
            (
                "messaging.destination.name".to_string(),
                "events".to_string()
            ),
        ]
    );
    let Some(metric::Data::Histogram(duration)) = &metrics[0].data else {
        panic!("a histogram")
    };
    assert_eq!(duration.data_points[0].count, 1);
    assert_eq!(
        duration.data_points[0].explicit_bounds,
        crate::messaging_metrics::DURATION_BUCKETS
    );
}
