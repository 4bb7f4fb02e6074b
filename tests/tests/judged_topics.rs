//! One exporter judges several data topics, each on its own: configured
//! with a literal name and a `^` pattern, it counts every message of both
//! topics at stage `log` and reports a sequence gap on the topic it is on,
//! and only there.

use std::time::Duration;

use meshflow_tests::bed::{metrics_until, Bed, PARTITIONS};
use meshflow_tests::broker::create_topics;
use meshflow_tests::exporter::TestProducer;
use meshflow_tests::scenario::producer;
use meshflow_tests::scrape::{samples, sum};
use meshflow_tests::unique;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_topics_are_judged_apart_by_name_and_by_pattern() {
    let bed = Bed::new("judged-topics").await;
    let bootstrap = &bed.broker.bootstrap;
    let names = &bed.names;
    // The second topic, matched by a pattern only (its whole name).
    let other = unique("judged");
    create_topics(bootstrap, &[&other], PARTITIONS).await;
    let topics = format!("{},^{}", names.topic, other.replace('.', "\\."));
    let exporter = bed
        .exporter(
            "exporter",
            &unique("exporter"),
            &[
                ("MESHFLOW__EXPORTER__TOPICS", &topics),
                ("MESHFLOW__EXPORTER__MAX_TOPICS", "2"),
                ("MESHFLOW__EXPORTER__MEMORY_BUDGET_MIB", "1024"),
                ("MESHFLOW__EXPORTER__GRACE", "3s"),
                ("MESHFLOW__EXPORTER__SLA", "5s"),
            ],
        )
        .await;

    // The meshflow producer on each topic, and by hand on the second one a
    // producer whose seqs 5, 6 and 12 never reach the log.
    let n: u64 = 40;
    let mut on_first = producer(bed.dir.path(), bootstrap, names, n, 40);
    let mut second_names = names.clone();
    second_names.topic = other.clone();
    second_names.producer = unique("producer-b");
    let mut on_second = producer(bed.dir.path(), bootstrap, &second_names, n, 40);
    let gaps = [5u64, 6, 12];
    let by_hand = TestProducer::new(bootstrap, &other, &unique("by-hand"));
    by_hand
        .send_spread((0..30).filter(|s| !gaps.contains(s)), PARTITIONS)
        .await;
    for p in [&mut on_first, &mut on_second] {
        let status = p.wait_exit(Duration::from_secs(30)).await;
        assert!(status.success(), "producer: {status}");
    }

    let at = |s: &std::collections::HashMap<String, f64>, name: &str, topic: &str| {
        sum(
            s,
            name,
            &[("topic", topic), ("stage", "log"), ("group", "")],
        )
    };
    let second_seen = (n + 30 - gaps.len() as u64) as f64;
    let lost = gaps.len() as f64;
    metrics_until(
        exporter.port,
        "both topics counted and the gap judged",
        Duration::from_secs(30),
        |s| {
            at(s, "meshflow_messages_total", &names.topic) == n as f64
                && at(s, "meshflow_messages_total", &other) == second_seen
                && at(s, "meshflow_messages_lost_total", &other) >= lost
        },
    )
    .await;
    // Judged again after more than the grace: nothing else is declared.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let s = samples(exporter.port).expect("metrics");
    let figures = |topic: &str| {
        [
            "meshflow_messages_total",
            "meshflow_messages_lost_total",
            "meshflow_messages_duplicated_total",
        ]
        .map(|name| at(&s, name, topic))
    };
    println!(
        "first topic (log seen, lost, duplicated): {:?}; second: {:?}",
        figures(&names.topic),
        figures(&other)
    );
    assert_eq!(figures(&names.topic), [n as f64, 0.0, 0.0]);
    assert_eq!(figures(&other), [second_seen, lost, 0.0]);
    let left_out = "meshflow_exporter_discovery_left_out";
    assert_eq!(sum(&s, left_out, &[("what", "judged_topics")]), 0.0);

    // The judged group consumes the first topic only: its lag and status
    // are about that topic, not the other one it never committed on.
    bed.commit_group_to_end().await;
    let lag = "meshflow_consumer_lag_messages";
    let group = names.group.as_str();
    let s = metrics_until(
        exporter.port,
        "the group caught up on its topic",
        Duration::from_secs(30),
        |s| {
            s.keys()
                .any(|k| k.starts_with(lag) && k.contains(&format!("topic=\"{}\"", names.topic)))
                && sum(s, lag, &[("group", group), ("topic", &names.topic)]) == 0.0
        },
    )
    .await;
    let elsewhere: Vec<&String> = s
        .keys()
        .filter(|k| k.starts_with("meshflow_consumer") && k.contains(&format!("topic=\"{other}\"")))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "no lag or status of the judged group on a topic it does not consume: {elsewhere:?}"
    );
}
