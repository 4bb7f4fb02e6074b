//! Records lost to retention, on the real broker: a group stops, retention
//! deletes records it had not read, and the exporter counts exactly those,
//! once. Tansu deletes by retention (`cleanup.policy=delete`,
//! `retention.ms` against record timestamps) when it starts and every 10
//! minutes after, and does not implement DeleteRecords; so the test writes
//! records stamped two hours old beside fresh ones, on a topic that keeps
//! one hour, and restarts the broker to have them deleted now.

use std::collections::HashMap;
use std::time::Duration;

use meshflow_common::envelope::now_ns;
use meshflow_tests::bed::{metrics_until, Bed};
use meshflow_tests::exporter::{client, commit_group};
use meshflow_tests::process::Service;
use meshflow_tests::{scrape, unique};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::FutureRecord;
use rdkafka::ClientConfig;

/// Partitions of the topic with retention.
const PARTITIONS: i32 = 3;
/// Records per partition stamped two hours old: deleted by retention.
const OLD: i64 = 20;
/// Records per partition stamped now: kept.
const NEW: i64 = 5;
/// The group's committed offset per partition: below, below, and past the
/// old records. Expected losses: 15, 8 and 0.
const COMMITTED: [i64; 3] = [5, 12, 22];
/// The poll interval of the exporters.
const POLL: &str = "500ms";

fn expired(c: i64) -> i64 {
    (OLD - c).max(0)
}

async fn create_topic_with_retention(bootstrap: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let new = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))
        .set("cleanup.policy", "delete")
        .set("retention.ms", "3600000");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin.create_topics([&new], &opts).await.expect("create");
    for r in results {
        r.expect("topic created");
    }
}

/// Writes `OLD` records stamped two hours ago, then `NEW` stamped now, to
/// every partition.
async fn write(bootstrap: &str, topic: &str) {
    let producer = client(bootstrap);
    let now_ms = (now_ns() / 1_000_000) as i64;
    let old_ms = now_ms - 2 * 3_600_000;
    for p in 0..PARTITIONS {
        for i in 0..OLD + NEW {
            let ts = if i < OLD { old_ms + i } else { now_ms };
            let record = FutureRecord::<(), str>::to(topic)
                .partition(p)
                .payload("ledger entry")
                .timestamp(ts);
            producer
                .send(record, Duration::from_secs(10))
                .await
                .expect("delivered");
        }
    }
}

async fn commit(bootstrap: &str, group: &str, topic: &str, offsets: HashMap<i32, i64>) {
    let (b, g, t) = (bootstrap.to_string(), group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || commit_group(&b, &g, &t, &offsets))
        .await
        .expect("commit task");
}

fn labels<'a>(group: &'a str, topic: &'a str) -> [(&'a str, &'a str); 2] {
    [("group", group), ("topic", topic)]
}

fn of_partition(
    s: &HashMap<String, f64>,
    name: &str,
    group: &str,
    topic: &str,
    p: i32,
) -> Option<f64> {
    let p = p.to_string();
    scrape::value(
        s,
        name,
        &[("group", group), ("topic", topic), ("partition", &p)],
    )
}

fn polls(s: &HashMap<String, f64>) -> f64 {
    scrape::sum(s, "meshflow_exporter_poll_duration_seconds_count", &[])
}

/// Waits until the exporter on `port` has polled `more` more times.
async fn after_polls(port: u16, more: f64) -> HashMap<String, f64> {
    let start = polls(&scrape::samples(port).expect("scrape"));
    metrics_until(port, "more polls", Duration::from_secs(30), |s| {
        polls(s) >= start + more
    })
    .await
}

async fn exporter(bed: &Bed, name: &str) -> Service {
    bed.start_exporter(
        name,
        &unique(name),
        &[("MESHFLOW__EXPORTER__POLL_INTERVAL", POLL)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_deleted_before_the_group_read_them_are_counted_once() {
    let mut bed = Bed::new("retention").await;
    let boot = bed.broker.bootstrap.clone();
    let (ledger, billing) = (unique("ledger"), unique("billing"));
    create_topic_with_retention(&boot, &ledger).await;
    write(&boot, &ledger).await;
    let committed: HashMap<i32, i64> = (0..PARTITIONS)
        .map(|p| (p, COMMITTED[p as usize]))
        .collect();
    commit(&boot, &billing, &ledger, committed.clone()).await;

    // Before retention runs: the counter exists at 0, lag is exact.
    let first = exporter(&bed, "exporter-1").await;
    let expired_total = "meshflow_consumer_group_messages_expired_total";
    let s = metrics_until(
        first.port,
        "billing watched",
        Duration::from_secs(30),
        |s| {
            scrape::value(s, expired_total, &labels(&billing, &ledger)).is_some()
                && (0..PARTITIONS).all(|p| {
                    of_partition(s, "meshflow_consumer_lag_seconds", &billing, &ledger, p).is_some()
                })
        },
    )
    .await;
    assert_eq!(
        scrape::value(&s, expired_total, &labels(&billing, &ledger)),
        Some(0.0)
    );
    for p in 0..PARTITIONS {
        let lag = of_partition(&s, "meshflow_consumer_lag_messages", &billing, &ledger, p);
        assert_eq!(
            lag,
            Some((OLD + NEW - COMMITTED[p as usize]) as f64),
            "lag on {p}"
        );
        let bound = of_partition(
            &s,
            "meshflow_consumer_lag_seconds_lower_bound",
            &billing,
            &ledger,
            p,
        );
        assert_eq!(bound, Some(0.0), "lag seconds exact on {p}");
    }

    // Retention deletes the old records when the broker starts again.
    bed.broker.kill().await;
    bed.broker.restart().await;
    let want: i64 = COMMITTED.iter().map(|&c| expired(c)).sum();
    let counted = metrics_until(
        first.port,
        "the expired records counted",
        Duration::from_secs(60),
        |s| scrape::value(s, expired_total, &labels(&billing, &ledger)) >= Some(want as f64),
    )
    .await;
    // Polls go on; nothing is counted twice.
    let s = after_polls(first.port, 4.0).await;
    let total = scrape::value(&s, expired_total, &labels(&billing, &ledger));
    println!(
        "expired: counted {:?} when first reaching the figure, {total:?} four polls later; want {want}",
        scrape::value(&counted, expired_total, &labels(&billing, &ledger))
    );
    assert_eq!(total, Some(want as f64));
    // Burrow's roll-up of a group not committing, with lag: ERR.
    let burrow = "meshflow_consumer_group_burrow_status_code";
    assert_eq!(scrape::value(&s, burrow, &[("group", &billing)]), Some(3.0));
    for p in 0..PARTITIONS {
        let c = COMMITTED[p as usize];
        let gap = of_partition(
            &s,
            "meshflow_consumer_lag_expired_messages",
            &billing,
            &ledger,
            p,
        );
        assert_eq!(gap, Some(expired(c) as f64), "gap on {p}");
        // Lag counts what the group can still read.
        let lag = of_partition(&s, "meshflow_consumer_lag_messages", &billing, &ledger, p);
        assert_eq!(lag, Some((OLD + NEW - c.max(OLD)) as f64), "lag on {p}");
        let bound = of_partition(
            &s,
            "meshflow_consumer_lag_seconds_lower_bound",
            &billing,
            &ledger,
            p,
        );
        assert_eq!(
            bound,
            Some(if c < OLD { 1.0 } else { 0.0 }),
            "lower bound on {p}"
        );
    }
    // The record the seconds are read from is a fresh one (the two-hour-old
    // record at the committed offset is gone): a lower bound, well under
    // the two hours the group has really waited.
    let seconds =
        of_partition(&s, "meshflow_consumer_lag_seconds", &billing, &ledger, 0).expect("seconds");
    assert!(seconds < 600.0, "lag seconds {seconds} from a fresh record");

    // A second exporter, as after a restart, with the group still behind:
    // the gap is shown, not counted again.
    let second = exporter(&bed, "exporter-2").await;
    metrics_until(
        second.port,
        "billing watched by the second",
        Duration::from_secs(30),
        |s| scrape::value(s, expired_total, &labels(&billing, &ledger)).is_some(),
    )
    .await;
    let s2 = after_polls(second.port, 4.0).await;
    assert_eq!(
        scrape::value(&s2, expired_total, &labels(&billing, &ledger)),
        Some(0.0)
    );
    let gap = scrape::value(
        &s2,
        "meshflow_consumer_lag_expired_messages",
        &labels(&billing, &ledger),
    );
    assert_eq!(gap, Some(want as f64));

    // The group resumes where the log now starts and catches up: nothing
    // more is counted by either, and the gap and the lower bound clear.
    let end: HashMap<i32, i64> = (0..PARTITIONS).map(|p| (p, OLD + NEW)).collect();
    commit(&boot, &billing, &ledger, end).await;
    for (port, counted) in [(first.port, want), (second.port, 0)] {
        metrics_until(port, "billing caught up", Duration::from_secs(30), |s| {
            scrape::value(
                s,
                "meshflow_consumer_lag_messages",
                &labels(&billing, &ledger),
            ) == Some(0.0)
        })
        .await;
        let s = after_polls(port, 2.0).await;
        assert_eq!(scrape::value(&s, burrow, &[("group", &billing)]), Some(1.0));
        assert_eq!(
            scrape::value(&s, expired_total, &labels(&billing, &ledger)),
            Some(counted as f64)
        );
        for name in [
            "meshflow_consumer_lag_expired_messages",
            "meshflow_consumer_lag_seconds_lower_bound",
        ] {
            assert_eq!(
                scrape::value(&s, name, &labels(&billing, &ledger)),
                Some(0.0),
                "{name}"
            );
        }
    }
}
