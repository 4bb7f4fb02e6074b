//! Reading the exporter's own series back in unit tests.

use meshflow_common::exposition::prometheus_text;
use prometheus_client::registry::Registry;

use crate::observation::{LogRecord, ReceiptEntry};

/// The value of one series as the text format writes it, if present.
pub(crate) fn sample(registry: &Registry, series: &str) -> Option<f64> {
    prometheus_text(registry)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The value of one series; a missing series fails the test, naming it.
pub(crate) fn value(registry: &Registry, series: &str) -> f64 {
    sample(registry, series)
        .unwrap_or_else(|| panic!("no series {series} in\n{}", prometheus_text(registry)))
}

/// A per-stage series of topic `events`: `name{topic,stage,group}`.
pub(crate) fn stage(registry: &Registry, name: &str, stage: &str, group: &str) -> f64 {
    let labels =
        format!("kafka_cluster=\"default\",topic=\"events\",stage=\"{stage}\",group=\"{group}\"");
    value(registry, &format!("{name}{{{labels}}}"))
}

/// A per-group series of topic `events`: `name{topic,group}`.
pub(crate) fn of_group(registry: &Registry, name: &str, group: &str) -> f64 {
    value(
        registry,
        &format!("{name}{{kafka_cluster=\"default\",topic=\"events\",group=\"{group}\"}}"),
    )
}

/// A record of producer "p" on partition 0, created and read at `now`.
pub(crate) fn log_at(seq: u64, now: u64) -> LogRecord<'static> {
    LogRecord {
        producer: "p",
        seq,
        partition: 0,
        created_ns: now,
        read_ns: now,
        settled: None,
    }
}

/// A receipt of group "g" for producer "p" on partition 0, created and
/// processed at `now`.
pub(crate) fn receipt_at(seq: u64, now: u64) -> ReceiptEntry<'static> {
    ReceiptEntry {
        group: "g",
        producer: "p",
        seq,
        partition: 0,
        created_ns: now,
        processed_ns: now,
    }
}
