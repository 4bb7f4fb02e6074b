//! Metrics over OTLP, received by a real OTLP/gRPC receiver. The exporter's:
//! pushed every `OTEL_METRIC_EXPORT_INTERVAL` when
//! `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` is set, with the resource the
//! `OTEL_*` variables describe, under the names and with the labels and
//! values `/metrics` serves: gauges as gauges, counters as monotonic
//! cumulative sums, histograms with the same bucket bounds. The producer's
//! and the consumer's OpenTelemetry messaging metrics: under their
//! OpenTelemetry names, units and attribute names.

use std::collections::HashMap;
use std::time::Duration;

use meshflow_tests::bed::{metrics_until, Bed, PARTITIONS};
use meshflow_tests::otlp::{attr, Receiver};
use meshflow_tests::scenario::{consumer_with, producer_with, wait_ready};
use meshflow_tests::{scrape, unique, wait_for};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Metric};

/// The push period asked for, in milliseconds.
const INTERVAL_MS: &str = "300";

fn find<'a>(metrics: &'a [Metric], name: &str) -> Option<&'a Metric> {
    metrics.iter().find(|m| m.name == name)
}

/// The value of the point of `metric` whose attributes include `labels`.
fn point(metric: &Metric, labels: &[(&str, &str)]) -> Option<f64> {
    let points = match metric.data.as_ref()? {
        metric::Data::Gauge(g) => &g.data_points,
        metric::Data::Sum(s) => &s.data_points,
        _ => return None,
    };
    let p = points.iter().find(|p| {
        labels
            .iter()
            .all(|(k, v)| attr(&p.attributes, k).as_deref() == Some(*v))
    })?;
    match p.value? {
        number_data_point::Value::AsDouble(v) => Some(v),
        number_data_point::Value::AsInt(v) => Some(v as f64),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exporters_metrics_arrive_over_otlp_as_on_metrics() {
    let receiver = Receiver::start().await;
    let bed = Bed::new("otlp-metrics").await;
    let topic = bed.names.topic.clone();
    let exporter = bed
        .start_exporter(
            "exporter",
            &unique("exporter"),
            &[
                ("MESHFLOW__EXPORTER__POLL_INTERVAL", "500ms"),
                ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &receiver.endpoint),
                ("OTEL_METRIC_EXPORT_INTERVAL", INTERVAL_MS),
                ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test"),
            ],
        )
        .await;
    let partitions = "meshflow_topic_partitions";
    // The cluster view is on /metrics, then in a push after it.
    let s: HashMap<String, f64> = metrics_until(
        exporter.port,
        "the cluster view",
        Duration::from_secs(30),
        |s| scrape::value(s, partitions, &[("topic", &topic)]).is_some(),
    )
    .await;
    let (resource, metrics) = wait_for(
        "a push with the cluster view",
        Duration::from_secs(30),
        || {
            let pushed = receiver.metrics_of("meshflow-exporter").filter(|(_, m)| {
                find(m, partitions)
                    .and_then(|m| point(m, &[("topic", &topic)]))
                    .is_some()
            });
            async move { pushed }
        },
    )
    .await;
    assert_eq!(
        attr(&resource, "deployment.environment").as_deref(),
        Some("test")
    );
    assert!(attr(&resource, "service.instance.id").is_some_and(|id| !id.is_empty()));

    // Gauges: the same figures under the same names and labels.
    let gauge = find(&metrics, partitions).expect("pushed");
    assert!(matches!(gauge.data, Some(metric::Data::Gauge(_))));
    assert_eq!(
        point(gauge, &[("topic", &topic)]),
        Some(f64::from(PARTITIONS))
    );
    assert_eq!(
        scrape::value(&s, partitions, &[("topic", &topic)]),
        Some(f64::from(PARTITIONS))
    );
    let brokers = find(&metrics, "meshflow_brokers").and_then(|m| point(m, &[]));
    assert_eq!(brokers, scrape::value(&s, "meshflow_brokers", &[]));
    assert_eq!(brokers, Some(1.0));

    // Counters: monotonic cumulative sums named with their _total.
    let errors = find(&metrics, "meshflow_exporter_poll_errors_total").expect("pushed");
    let Some(metric::Data::Sum(sum)) = &errors.data else {
        panic!("a counter is a sum: {:?}", errors.data)
    };
    assert!(sum.is_monotonic);
    assert_eq!(point(errors, &[("kind", "describe_groups")]), Some(0.0));

    // Histograms: the bounds /metrics lists.
    let name = "meshflow_exporter_poll_duration_seconds";
    let histogram = find(&metrics, name).expect("pushed");
    let Some(metric::Data::Histogram(h)) = &histogram.data else {
        panic!("a histogram: {:?}", histogram.data)
    };
    let mut bounds: Vec<f64> = s
        .keys()
        .filter_map(|k| {
            k.strip_prefix(&format!("{name}_bucket{{le=\""))?
                .strip_suffix("\",kafka_cluster=\"default\"}")
        })
        .filter_map(|le| le.parse::<f64>().ok())
        .filter(|b| b.is_finite())
        .collect();
    bounds.sort_by(f64::total_cmp);
    let p = &h.data_points[0];
    assert_eq!(p.explicit_bounds, bounds);
    assert_eq!(p.bucket_counts.len(), bounds.len() + 1);
    assert_eq!(p.bucket_counts.iter().sum::<u64>(), p.count);
    assert!(p.count >= 1, "{p:?}");
    println!(
        "otlp: {} metrics pushed; {partitions}={:?}; poll histogram {} bounds, count {}",
        metrics.len(),
        point(gauge, &[("topic", &topic)]),
        p.explicit_bounds.len(),
        p.count
    );
}

/// The count of the histogram point of `metric` whose attributes include
/// `labels`.
fn histogram_count(metric: &Metric, labels: &[(&str, &str)]) -> Option<u64> {
    let metric::Data::Histogram(h) = metric.data.as_ref()? else {
        return None;
    };
    h.data_points
        .iter()
        .find(|p| {
            labels
                .iter()
                .all(|(k, v)| attr(&p.attributes, k).as_deref() == Some(*v))
        })
        .map(|p| p.count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_messaging_metrics_arrive_by_their_opentelemetry_names() {
    let receiver = Receiver::start().await;
    let bed = Bed::new("otlp-messaging").await;
    let names = &bed.names;
    let otlp = [
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            receiver.endpoint.as_str(),
        ),
        ("OTEL_METRIC_EXPORT_INTERVAL", INTERVAL_MS),
    ];
    let consumer = consumer_with(
        bed.dir.path(),
        &bed.broker.bootstrap,
        names,
        "consumer-a",
        &otlp,
    );
    wait_ready(&[&consumer], Duration::from_secs(60)).await;
    let n: u64 = 200;
    let mut producer = producer_with(bed.dir.path(), &bed.broker.bootstrap, names, n, 200, &otlp);
    assert!(
        producer.wait_exit(Duration::from_secs(60)).await.success(),
        "producer exit"
    );
    let topic = names.topic.as_str();
    let n_f = n as f64;
    // The producer pushes once more as it stops.
    let (_, sent) = receiver
        .metrics_of("meshflow-producer")
        .expect("the producer pushed");
    let sent_messages = find(&sent, "messaging.client.sent.messages").expect("pushed");
    assert_eq!(sent_messages.unit, "{message}");
    let send = [
        ("messaging.system", "kafka"),
        ("messaging.operation.name", "send"),
        ("messaging.destination.name", topic),
    ];
    assert_eq!(point(sent_messages, &send), Some(n_f));
    let duration = find(&sent, "messaging.client.operation.duration").expect("pushed");
    assert_eq!(duration.unit, "s");
    assert_eq!(histogram_count(duration, &send), Some(n));

    let (_, consumed) = wait_for(
        "a consumer push with every message",
        Duration::from_secs(30),
        || {
            let pushed = receiver.metrics_of("meshflow-consumer").filter(|(_, m)| {
                find(m, "messaging.process.duration")
                    .and_then(|d| histogram_count(d, &[("messaging.destination.name", topic)]))
                    .is_some_and(|count| count >= n)
            });
            async move { pushed }
        },
    )
    .await;
    let poll = [
        ("messaging.operation.name", "poll"),
        ("messaging.destination.name", topic),
        ("messaging.consumer.group.name", names.group.as_str()),
    ];
    let consumed_messages = find(&consumed, "messaging.client.consumed.messages").expect("pushed");
    assert_eq!(point(consumed_messages, &poll), Some(n_f));
    // Receipts are sends of the consumer, to the receipts topic.
    let receipts = find(&consumed, "messaging.client.sent.messages")
        .and_then(|m| {
            point(
                m,
                &[("messaging.destination.name", names.receipts.as_str())],
            )
        })
        .expect("receipt sends");
    assert!(receipts >= 1.0, "{receipts} receipt records");
    // /metrics names them as Prometheus spells them.
    let s = scrape::samples(consumer.port).expect("consumer metrics");
    assert_eq!(
        scrape::value(
            &s,
            "messaging_client_consumed_messages_total",
            &[("messaging_destination_name", topic)]
        ),
        Some(n_f)
    );
    println!(
        "otlp messaging: producer sent {n} (pushed {:?}), consumer consumed {:?}, \
         receipt records sent {receipts}",
        point(sent_messages, &send),
        point(consumed_messages, &poll)
    );
}
