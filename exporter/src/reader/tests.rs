use super::*;
use crate::config::AccountingConfig;
use crate::groups::Groups;
use crate::progress::PollMarks;
use crate::testing::{log_at, of_group, stage, value};
use meshflow_common::config::{load, Sources};
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, HashMap};

const SEC: u64 = 1_000_000_000;

/// A reader over a consumer that never connects (nothing here reads Kafka;
/// the consumer needs a runtime to exist).
fn reader() -> (Registry, Reader) {
    let env: HashMap<String, String> = [
        ("MESHFLOW__KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9"),
        ("MESHFLOW__EXPORTER__TOPIC", "events"),
        ("MESHFLOW__EXPORTER__RECEIPTS_TOPIC", "receipts"),
        ("MESHFLOW__EXPORTER__GROUPS", "g1,g2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config: Config = load(Sources {
        file: None,
        env: Some(env),
        list_keys: crate::config::LIST_KEYS,
    })
    .expect("config");
    let mut registry = Registry::with_prefix("meshflow");
    let groups = Groups::from(config.exporter.groups.as_slice());
    let metrics = ExporterMetrics::register(&mut registry, "events", &groups);
    let readiness = Readiness::new(&[READY_LOG, READY_RECEIPTS], &mut registry);
    let accounting = Accounting::new(
        &AccountingConfig {
            sla: Duration::from_secs(5),
            ..AccountingConfig::default()
        },
        groups,
    );
    let consumer = Arc::new(super::consumer(&config).expect("consumer"));
    let reader = Reader::new(consumer, accounting, metrics, readiness, &config);
    (registry, reader)
}

/// A reader with partition 0 of both topics assigned from offset 0.
fn reading_from_start() -> (Registry, Reader) {
    let (registry, mut reader) = reader();
    reader.log_progress.assign(0, 0);
    reader.receipts_progress.assign(0, 0);
    (registry, reader)
}

/// A poll at 100 s that found both topics read to their ends (data topic
/// at 4, receipts at 1) and g1 committed at `offset` on partition 0.
fn both_read_g1_committed(reader: &Reader, offset: i64) -> PollMarks {
    PollMarks {
        at_ns: 100 * SEC,
        done_ns: 100 * SEC,
        log_highs: vec![(0, 4)],
        receipt_highs: vec![(0, 1)],
        committed: g1_committed(reader, BTreeMap::from([(0, offset)])),
    }
}

/// Committed offsets of g1 alone, as a poll reads them.
fn g1_committed(
    reader: &Reader,
    offsets: BTreeMap<i32, i64>,
) -> PerGroup<Option<BTreeMap<i32, i64>>> {
    let groups = reader.accounting.groups();
    PerGroup::from_fn(groups, |group| {
        (groups.name(group) == "g1").then(|| offsets.clone())
    })
}

fn batch(group: &str, topic: &str, seqs: &[u64]) -> Vec<u8> {
    let entries: Vec<String> = seqs
        .iter()
        .map(|seq| {
            format!(
                r#"{{"producer":"p1","seq":{seq},"created_ns":{},"topic":"{topic}","partition":{},"offset":{seq},"processed_ns":{},"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}}"#,
                100 * SEC,
                seq % 3,
                100 * SEC + 20_000_000
            )
        })
        .collect();
    format!(
        r#"{{"group":"{group}","consumer":"c1","entries":[{}]}}"#,
        entries.join(",")
    )
    .into_bytes()
}

#[tokio::test]
async fn receipts_count_for_their_watched_group_and_topic_only() {
    let (registry, mut reader) = reader();
    reader.handle_receipts(&batch("g2", "events", &[0, 1, 2, 2]), 101 * SEC);
    reader.handle_receipts(&batch("unwatched", "events", &[3, 4]), 101 * SEC);
    reader.handle_receipts(&batch("g1", "other-topic", &[5]), 101 * SEC);
    let processed = |group: &str, name: &str| stage(&registry, name, "processed", group);
    assert_eq!(processed("g2", "meshflow_messages_total"), 3.0);
    assert_eq!(processed("g2", "meshflow_messages_duplicated_total"), 1.0);
    assert_eq!(processed("g1", "meshflow_messages_total"), 0.0);
    assert_eq!(
        of_group(&registry, "meshflow_e2e_latency_seconds_count", "g2"),
        3.0
    );
    assert_eq!(
        value(
            &registry,
            "meshflow_e2e_latency_seconds_bucket{le=\"0.02\",topic=\"events\",group=\"g2\"}"
        ),
        3.0
    );
    assert_eq!(reader.accounting.unwatched_receipts(), 2);
}

#[tokio::test]
async fn an_unreadable_receipt_batch_is_counted_as_invalid() {
    let (registry, mut reader) = reader();
    reader.handle_receipts(b"not json", SEC);
    reader.handle_receipts(br#"{"group":"g1"}"#, SEC);
    assert_eq!(
        value(
            &registry,
            "meshflow_messages_invalid_total{topic=\"receipts\",reason=\"receipt_not_json\"}"
        ),
        2.0
    );
}

#[tokio::test]
async fn a_sweep_judges_only_what_progress_and_commits_allow() {
    let (registry, mut reader) = reading_from_start();
    // Seen in the log, never receipted by g1; g1's receipts for other
    // messages of the producer make it judgeable.
    for seq in 0..4 {
        let observed = reader.accounting.observe_log(&LogRecord {
            producer: "p1",
            ..log_at(seq, SEC)
        });
        reader.metrics.record_log(observed);
        reader.log_progress.record(0, seq as i64);
    }
    reader.handle_receipts(&batch("g1", "events", &[0, 3]), SEC);
    reader.receipts_progress.record(0, 0);
    let lost = |registry: &Registry, at: &str, group: &str| {
        stage(registry, "meshflow_messages_lost_total", at, group)
    };
    // No watermark and no commit seen yet: however old, nothing is judged.
    reader.sweep();
    assert_eq!(lost(&registry, "processed", "g1"), 0.0);
    let read_lag = value(
        &registry,
        "meshflow_exporter_read_lag_seconds{topic=\"events\"}",
    );
    assert!(read_lag >= 0.0);

    // The poll saw both topics read to their ends and g1 committed past
    // everything: now the two messages without a receipt are lost.
    reader.apply_marks(&both_read_g1_committed(&reader, 4));
    reader.sweep();
    assert_eq!(lost(&registry, "log", ""), 0.0);
    assert_eq!(lost(&registry, "processed", "g1"), 2.0);
    assert_eq!(lost(&registry, "processed", "g2"), 0.0);
}

#[tokio::test]
async fn a_group_that_has_not_committed_past_a_message_is_lagging_not_losing() {
    let (registry, mut reader) = reading_from_start();
    for seq in 0..4 {
        reader.accounting.observe_log(&LogRecord {
            producer: "p1",
            ..log_at(seq, SEC)
        });
        reader.log_progress.record(0, seq as i64);
    }
    reader.handle_receipts(&batch("g1", "events", &[0]), SEC);
    reader.receipts_progress.record(0, 0);
    reader.sweep();
    // g1 committed offset 1 only: messages 1..3 are lag.
    reader.apply_marks(&both_read_g1_committed(&reader, 1));
    reader.sweep();
    assert_eq!(
        stage(&registry, "meshflow_messages_lost_total", "processed", "g1"),
        0.0
    );
}
