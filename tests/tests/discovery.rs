//! The exporter watches every consumer group of the cluster, not only
//! meshflow's: on the real broker, groups that are not meshflow's commit on
//! two topics, and the exporter, told nothing of them but a pattern to
//! leave out, reports each one's exact lag per partition and topic, lag in
//! seconds from the record at the committed offset, and a status that
//! follows what the group does; and the same poll's view of every topic
//! and broker.

use std::collections::HashMap;
use std::time::Duration;

use meshflow_common::envelope::now_ns;
use meshflow_tests::bed::{group_status, metrics_until, Bed, PARTITIONS};
use meshflow_tests::broker::create_topics;
use meshflow_tests::exporter::{commit_group, Sent, TestProducer};
use meshflow_tests::{scrape, unique};

/// Messages per partition on each topic.
const PER_PARTITION: u64 = 10;

/// The committed offset of a group on one partition, as the test set it.
type Commits = HashMap<i32, i64>;

/// `name{group,topic,partition}` from a scrape, if present.
fn lag(s: &HashMap<String, f64>, name: &str, group: &str, topic: &str, p: i32) -> Option<f64> {
    let key = format!(
        "meshflow_consumer_lag_{name}{{kafka_cluster=\"default\",group=\"{group}\",topic=\"{topic}\",partition=\"{p}\"}}"
    );
    s.get(&key).copied()
}

/// Commits `offsets` for `group` on `topic` from a blocking task.
async fn commit(bootstrap: &str, group: &str, topic: &str, offsets: &Commits) {
    let (bootstrap, group, topic, offsets) = (
        bootstrap.to_string(),
        group.to_string(),
        topic.to_string(),
        offsets.clone(),
    );
    tokio::task::spawn_blocking(move || commit_group(&bootstrap, &group, &topic, &offsets))
        .await
        .expect("commit task");
}

/// The record timestamp (ms) at `offset` of `partition`, in a fresh topic
/// written by `send_spread` (the k-th record of a partition is at offset k).
fn timestamp_at(sent: &[Sent], partition: i32, offset: i64) -> i64 {
    sent.iter()
        .filter(|s| s.partition == partition)
        .nth(offset as usize)
        .expect("a record at that offset")
        .timestamp_ms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_not_meshflows_get_exact_lag_and_status_and_denied_ones_are_left_out() {
    let bed = Bed::new("discovery").await;
    let boot = bed.broker.bootstrap.clone();
    let events = bed.names.topic.clone();
    let orders = unique("orders");
    create_topics(&boot, &[&orders], PARTITIONS).await;
    let n = PER_PARTITION * PARTITIONS as u64;
    let events_sent = TestProducer::new(&boot, &events, "p-events")
        .send_spread(0..n, PARTITIONS)
        .await;
    let orders_sent = TestProducer::new(&boot, &orders, "p-orders")
        .send_spread(0..n, PARTITIONS)
        .await;

    // Three groups that are not meshflow's: billing reads both topics,
    // audit reads orders, scratch reads orders and is to be left out.
    let (billing, audit, scratch) = (unique("billing"), unique("audit"), unique("scratch"));
    let at = |f: fn(i32) -> i64| -> Commits { (0..PARTITIONS).map(|p| (p, f(p))).collect() };
    let billing_events = at(|_| 3);
    let billing_orders = at(|p| i64::from(p) + 2);
    let audit_orders = at(|p| 9 - i64::from(p));
    commit(&boot, &billing, &events, &billing_events).await;
    commit(&boot, &billing, &orders, &billing_orders).await;
    commit(&boot, &audit, &orders, &audit_orders).await;
    commit(&boot, &scratch, &orders, &at(|_| 5)).await;
    // meshflow's own group, judged end to end, has read everything.
    bed.commit_group_to_end().await;

    let settings = [
        ("MESHFLOW__EXPORTER__POLL_INTERVAL", "500ms"),
        ("MESHFLOW__EXPORTER__STATUS__STOP_AFTER", "3s"),
        ("MESHFLOW__EXPORTER__STATUS__MIN_SAMPLES", "2"),
        ("MESHFLOW__EXPORTER__DISCOVERY__DENY_GROUPS", "scratch-.*"),
    ];
    let exporter = bed
        .start_exporter("exporter", &unique("exporter"), &settings)
        .await;
    let expected: Vec<(&str, &str, &Commits, &[Sent])> = vec![
        (&billing, &events, &billing_events, &events_sent),
        (&billing, &orders, &billing_orders, &orders_sent),
        (&audit, &orders, &audit_orders, &orders_sent),
    ];
    let s = metrics_until(
        exporter.port,
        "lag of both foreign groups",
        Duration::from_secs(30),
        |s| {
            expected.iter().all(|(g, t, commits, _)| {
                commits
                    .keys()
                    .all(|&p| lag(s, "seconds", g, t, p).is_some())
            })
        },
    )
    .await;
    let scraped_ms = (now_ns() / 1_000_000) as i64;
    let mut worst: f64 = 0.0;
    for (group, topic, commits, sent) in &expected {
        for (&p, &committed) in commits.iter() {
            let messages = lag(&s, "messages", group, topic, p).unwrap();
            assert_eq!(
                messages,
                (PER_PARTITION as i64 - committed) as f64,
                "{group} on {topic}/{p}"
            );
            let seconds = lag(&s, "seconds", group, topic, p).unwrap();
            let truth = (scraped_ms - timestamp_at(sent, p, committed)) as f64 / 1000.0;
            worst = worst.max((seconds - truth).abs());
            // The poll happened up to one interval (and the scrape) before.
            assert!(
                seconds <= truth + 0.05 && seconds >= truth - 1.0,
                "{group} on {topic}/{p}: lag {seconds:.3}s, the record waited {truth:.3}s"
            );
        }
    }
    let series_of = |group: &str| {
        s.keys()
            .filter(|k| k.contains(&format!("group=\"{group}\"")))
            .count()
    };
    println!(
        "discovered: billing series={} audit series={} scratch series={} meshflow series={} worst lag-seconds error {worst:.3}s",
        series_of(&billing),
        series_of(&audit),
        series_of(&scratch),
        series_of(&bed.names.group)
    );
    assert_eq!(series_of(&scratch), 0, "the denied group is reported");
    // meshflow's group is reported once, on its topic, by the judged path:
    // no series of it on the other topic.
    let own_lag = scrape::value(
        &s,
        "meshflow_consumer_lag_messages",
        &[("group", &bed.names.group), ("topic", &orders)],
    );
    assert_eq!(own_lag, None, "meshflow's group reported on {orders}");
    assert!(lag(&s, "messages", &bed.names.group, &events, 0).is_some());

    // The cluster view of the same poll: every topic, its partitions and
    // watermarks, and the broker.
    let topic = |name: &str, t: &str| {
        s.get(&format!(
            "{name}{{kafka_cluster=\"default\",topic=\"{t}\"}}"
        ))
        .copied()
    };
    assert_eq!(
        topic("meshflow_topic_partitions", &orders),
        Some(f64::from(PARTITIONS))
    );
    assert_eq!(
        topic("meshflow_topic_high_watermarks", &orders),
        Some(n as f64)
    );
    assert_eq!(topic("meshflow_topic_low_watermarks", &orders), Some(0.0));
    assert_eq!(
        topic("meshflow_topic_partitions_leaderless", &events),
        Some(0.0)
    );
    let high = format!("meshflow_partition_high_watermark{{kafka_cluster=\"default\",topic=\"{orders}\",partition=\"3\"}}");
    assert_eq!(s.get(&high), Some(&(PER_PARTITION as f64)));
    let brokers: Vec<&String> = s
        .keys()
        .filter(|k| k.starts_with("meshflow_broker_info{"))
        .collect();
    println!(
        "cluster view: orders has {PARTITIONS} partitions and {n} messages; brokers {brokers:?}"
    );
    assert_eq!(
        brokers.len() as f64,
        s["meshflow_brokers{kafka_cluster=\"default\"}"]
    );

    // billing does not move while behind: STOP; then it catches up: OK.
    metrics_until(
        exporter.port,
        "billing STOP",
        Duration::from_secs(30),
        |s| group_status(s, &billing, "STOP") == 1.0 && group_status(s, &audit, "STOP") == 1.0,
    )
    .await;
    let end = at(|_| PER_PARTITION as i64);
    commit(&boot, &billing, &events, &end).await;
    commit(&boot, &billing, &orders, &end).await;
    let caught_up = metrics_until(exporter.port, "billing OK", Duration::from_secs(30), |s| {
        group_status(s, &billing, "OK") == 1.0
    })
    .await;
    assert_eq!(
        scrape::sum(
            &caught_up,
            "meshflow_consumer_lag_messages",
            &[("group", &billing)]
        ),
        0.0
    );
    assert_eq!(group_status(&caught_up, &audit, "STOP"), 1.0);
    println!("billing: STOP, then OK with lag 0 once it committed to the end; audit still STOP");

    // audit's offsets are reset to an earlier point: REWIND, Burrow's code 6,
    // and the lag grows by exactly what was rewound.
    commit(&boot, &audit, &orders, &at(|_| 1)).await;
    let rewound = metrics_until(
        exporter.port,
        "audit REWIND",
        Duration::from_secs(30),
        |s| group_status(s, &audit, "REWIND") == 1.0,
    )
    .await;
    let code = format!(
        "meshflow_consumer_group_status_code{{kafka_cluster=\"default\",group=\"{audit}\"}}"
    );
    assert_eq!(rewound.get(&code), Some(&6.0));
    assert_eq!(
        scrape::sum(
            &rewound,
            "meshflow_consumer_lag_messages",
            &[("group", &audit)]
        ),
        ((PER_PARTITION as i64 - 1) * i64::from(PARTITIONS)) as f64
    );
    println!("audit: STOP, then REWIND after its offsets were reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_commits_but_never_gains_is_stall() {
    let bed = Bed::new("discovery-stall").await;
    let boot = bed.broker.bootstrap.clone();
    let topic = unique("orders");
    create_topics(&boot, &[&topic], PARTITIONS).await;
    // A short window, so that a sample caught between a step's write and
    // its commit leaves it within seconds.
    let settings = [
        ("MESHFLOW__EXPORTER__POLL_INTERVAL", "500ms"),
        ("MESHFLOW__EXPORTER__STATUS__WINDOW", "3s"),
        ("MESHFLOW__EXPORTER__STATUS__MIN_SAMPLES", "2"),
        ("MESHFLOW__EXPORTER__STATUS__STALL_MIN_LAG", "5"),
    ];
    let exporter = bed
        .start_exporter("exporter", &unique("exporter"), &settings)
        .await;
    let producer = TestProducer::new(&boot, &topic, "p-orders");
    let slow = unique("slowpoke");
    let mut seq = 0;
    let mut position = 0;
    let started = std::time::Instant::now();
    let stalled = loop {
        // Every step: two more records per partition, one more consumed.
        producer
            .send_spread(seq..seq + 2 * PARTITIONS as u64, PARTITIONS)
            .await;
        seq += 2 * PARTITIONS as u64;
        position += 1;
        commit(
            &boot,
            &slow,
            &topic,
            &(0..PARTITIONS).map(|p| (p, position)).collect(),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let s = meshflow_tests::scrape::samples(exporter.port).unwrap_or_default();
        if group_status(&s, &slow, "STALL") == 1.0 {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(45),
            "no STALL while committing slower than the writes"
        );
    };
    let code = format!(
        "meshflow_consumer_group_status_code{{kafka_cluster=\"default\",group=\"{slow}\"}}"
    );
    let lag = scrape::sum(
        &stalled,
        "meshflow_consumer_lag_messages",
        &[("group", &slow)],
    );
    println!(
        "slowpoke: STALL (code {:?}) after {:.1} s, {position} commits, lag {lag} messages",
        stalled.get(&code),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(stalled.get(&code), Some(&5.0));
    assert!(lag >= f64::from(PARTITIONS) * 5.0);
}
