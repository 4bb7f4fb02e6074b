use super::*;
use crate::groups::{Groups, PerGroup};
use crate::observation::LogRecord;
use crate::progress::{Committed, PollMarks};
use crate::testing::{log_at, of_group, sample, stage, value};
use meshflow_common::config::{load, Sources};
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, HashMap};

const SEC: u64 = 1_000_000_000;

/// A reader over a consumer that never connects (nothing here reads Kafka;
/// the consumer needs a runtime to exist).
fn reader() -> (Registry, Reader) {
    let env: HashMap<String, String> = [
        ("MESHFLOW__KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9"),
        ("MESHFLOW__EXPORTER__TOPICS", "events,orders"),
        ("MESHFLOW__EXPORTER__MEMORY_BUDGET_MIB", "1024"),
        ("MESHFLOW__EXPORTER__RECEIPTS_TOPIC", "receipts"),
        ("MESHFLOW__EXPORTER__GROUPS", "g1,g2"),
        ("MESHFLOW__EXPORTER__SLA", "5s"),
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
    let metrics = ExporterMetrics::register(&mut registry, &groups);
    let readiness = Readiness::new(&[READY_LOG, READY_RECEIPTS], &mut registry);
    let matcher = config.exporter.topic_matcher().expect("matcher");
    let consumer = Arc::new(super::consumer(&config).expect("consumer"));
    let reader = Reader::new(consumer, matcher, metrics, readiness, &config);
    (registry, reader)
}

/// The books of a judged topic.
fn book<'a>(reader: &'a mut Reader, topic: &str) -> &'a mut TopicBook {
    reader.books.get_mut(topic).expect("judged")
}

/// A reader with partition 0 of every topic assigned from offset 0.
fn reading_from_start() -> (Registry, Reader) {
    let (registry, mut reader) = reader();
    for book in reader.books.values_mut() {
        book.progress.assign(0, 0);
    }
    reader.receipts_progress.assign(0, 0);
    (registry, reader)
}

/// Reads `seqs` of producer p1 at offsets equal to their seqs, in
/// partition 0 of `topic`, created at 1 s.
fn read_log(reader: &mut Reader, topic: &str, seqs: &[u64]) {
    let book = book(reader, topic);
    for &seq in seqs {
        let observed = book.accounting.observe_log(&LogRecord {
            producer: "p1",
            ..log_at(seq, SEC)
        });
        book.series.record_log(observed);
        book.progress.record(0, seq as i64);
    }
}

/// A poll at 100 s that found every topic read to its end (the data topics
/// at 4, receipts at 1) and g1 committed at `offset` on partition 0 of
/// every data topic.
fn both_read_g1_committed(reader: &Reader, offset: i64) -> PollMarks {
    let topics = || reader.books.keys().cloned();
    PollMarks {
        at_ns: 100 * SEC,
        done_ns: 100 * SEC,
        log_highs: topics().map(|t| (t, vec![(0, 4)])).collect(),
        receipt_highs: vec![(0, 1)],
        committed: g1_committed(reader, topics().map(|t| ((t, 0), offset)).collect()),
    }
}

/// Committed offsets of g1 alone, as a poll reads them.
fn g1_committed(reader: &Reader, offsets: BTreeMap<(String, i32), i64>) -> Committed {
    let groups = reader.metrics.groups();
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
    reader.handle_receipts(None, &batch("g2", "events", &[0, 1, 2, 2]), 101 * SEC);
    reader.handle_receipts(None, &batch("unwatched", "events", &[3, 4]), 101 * SEC);
    reader.handle_receipts(None, &batch("g1", "other-topic", &[5]), 101 * SEC);
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
            "meshflow_e2e_latency_seconds_bucket{kafka_cluster=\"default\",le=\"0.02\",topic=\"events\",group=\"g2\"}"
        ),
        3.0
    );
    assert_eq!(
        book(&mut reader, "events").accounting.unwatched_receipts(),
        2
    );
    assert_eq!(
        book(&mut reader, "orders").accounting.unwatched_receipts(),
        0
    );
}

#[tokio::test]
async fn an_unreadable_receipt_batch_is_counted_as_invalid() {
    let (registry, mut reader) = reader();
    reader.handle_receipts(None, b"not json", SEC);
    reader.handle_receipts(None, br#"{"group":"g1"}"#, SEC);
    assert_eq!(
        value(
            &registry,
            "meshflow_messages_invalid_total{kafka_cluster=\"default\",topic=\"receipts\",reason=\"receipt_not_json\"}"
        ),
        2.0
    );
}

#[tokio::test]
async fn a_sweep_judges_only_what_progress_and_commits_allow() {
    let (registry, mut reader) = reading_from_start();
    // Seen in the log, never receipted by g1; g1's receipts for other
    // messages of the producer make it judgeable.
    read_log(&mut reader, "events", &[0, 1, 2, 3]);
    reader.handle_receipts(None, &batch("g1", "events", &[0, 3]), SEC);
    reader.receipts_progress.record(0, 0);
    let lost = |registry: &Registry, at: &str, group: &str| {
        stage(registry, "meshflow_messages_lost_total", at, group)
    };
    // No watermark and no commit seen yet: however old, nothing is judged.
    reader.sweep();
    assert_eq!(lost(&registry, "processed", "g1"), 0.0);
    let read_lag = value(
        &registry,
        "meshflow_exporter_read_lag_seconds{kafka_cluster=\"default\",topic=\"events\"}",
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
    read_log(&mut reader, "events", &[0, 1, 2, 3]);
    reader.handle_receipts(None, &batch("g1", "events", &[0]), SEC);
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

/// The lost counter of `topic` at `at` (`log`, or `processed` for `group`).
fn lost_on(registry: &Registry, topic: &str, at: &str, group: &str) -> f64 {
    value(
        registry,
        &format!(
            "meshflow_messages_lost_total{{kafka_cluster=\"default\",topic=\"{topic}\",stage=\"{at}\",group=\"{group}\"}}"
        ),
    )
}

#[tokio::test]
async fn each_judged_topic_keeps_its_own_books() {
    let (registry, mut reader) = reading_from_start();
    // The same producer on both topics: its sequence is counted per topic.
    // On events it skips 1 and 2; on orders nothing is missing.
    read_log(&mut reader, "events", &[0, 3]);
    read_log(&mut reader, "orders", &[0, 1, 2, 3]);
    let count = |topic: &str| {
        value(
            &registry,
            &format!("meshflow_messages_total{{kafka_cluster=\"default\",topic=\"{topic}\",stage=\"log\",group=\"\"}}"),
        )
    };
    assert_eq!((count("events"), count("orders")), (2.0, 4.0));
    // Receipts go to the books of the topic they name.
    reader.handle_receipts(None, &batch("g1", "orders", &[0, 1, 2, 3]), SEC);
    reader.handle_receipts(None, &batch("g1", "not-judged", &[7]), SEC);
    reader.receipts_progress.record(0, 1);
    let processed = |topic: &str| {
        value(
            &registry,
            &format!(
                "meshflow_messages_total{{kafka_cluster=\"default\",topic=\"{topic}\",stage=\"processed\",group=\"g1\"}}"
            ),
        )
    };
    assert_eq!((processed("events"), processed("orders")), (0.0, 4.0));
    // Both read to their ends long ago and past the grace: the gap on
    // events is lost, on events only.
    reader.apply_marks(&both_read_g1_committed(&reader, 4));
    reader.sweep();
    assert_eq!(lost_on(&registry, "events", "log", ""), 2.0);
    assert_eq!(lost_on(&registry, "orders", "log", ""), 0.0);
    assert_eq!(lost_on(&registry, "orders", "processed", "g1"), 0.0);
    let read_lag = |topic: &str| {
        sample(
            &registry,
            &format!(
                "meshflow_exporter_read_lag_seconds{{kafka_cluster=\"default\",topic=\"{topic}\"}}"
            ),
        )
    };
    assert!(read_lag("events").is_some() && read_lag("orders").is_some());
}

#[tokio::test]
async fn a_judged_topic_found_later_gets_books_and_one_gone_stops_being_judged() {
    let (registry, mut reader) = reader();
    assert_eq!(
        reader.books.keys().collect::<Vec<_>>(),
        ["events", "orders"],
        "the literal topics are judged from the start"
    );
    reader.assign(assignment::Discovered::judging(&["events"]));
    assert_eq!(reader.books.keys().collect::<Vec<_>>(), ["events"]);
    // Its counters stay.
    assert_eq!(lost_on(&registry, "orders", "log", ""), 0.0);
    reader.assign(assignment::Discovered::judging(&["events", "orders"]));
    assert_eq!(
        reader.books.keys().collect::<Vec<_>>(),
        ["events", "orders"]
    );
}
