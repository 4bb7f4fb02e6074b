//! One exporter watches two clusters: the home cluster `a` (`kafka.*`,
//! where meshflow's topics are judged) and a second broker `b` listed in
//! `exporter.clusters`. The same group name commits on the same topic
//! name on both, at different offsets, and a group exists on `b` only:
//! each cluster's lag figures are exactly what was written and committed
//! there, every series carries its `cluster`, and nothing of one cluster
//! shows under the other's name.

use std::collections::HashMap;
use std::time::Duration;

use meshflow_tests::bed::{metrics_until, Bed, PARTITIONS};
use meshflow_tests::broker::{create_topics, Tansu};
use meshflow_tests::exporter::{commit_group, start_with_file, TestProducer};
use meshflow_tests::process::Service;
use meshflow_tests::scenario::wait_ready;
use meshflow_tests::{scrape, unique, WorkDir};

/// Messages per partition on each cluster's topic.
const PER_PARTITION: i64 = 10;

/// `meshflow_consumer_lag_messages` of `group` on `topic`/`p` in `cluster`.
fn lag(s: &HashMap<String, f64>, cluster: &str, group: &str, topic: &str, p: i32) -> Option<f64> {
    let p = p.to_string();
    let labels = [
        ("kafka_cluster", cluster),
        ("group", group),
        ("topic", topic),
        ("partition", &p),
    ];
    scrape::value(s, "meshflow_consumer_lag_messages", &labels)
}

/// Writes `PER_PARTITION` messages to every partition of `topic` on
/// `bootstrap` and commits `group` at `offset` on each.
async fn traffic(bootstrap: &str, topic: &str, group: &str, offset: i64) {
    create_topics(bootstrap, &[topic], PARTITIONS).await;
    let n = (PER_PARTITION * i64::from(PARTITIONS)) as u64;
    TestProducer::new(bootstrap, topic, "p-orders")
        .send_spread(0..n, PARTITIONS)
        .await;
    let commits: HashMap<i32, i64> = (0..PARTITIONS).map(|p| (p, offset)).collect();
    let (bootstrap, group, topic) = (bootstrap.to_string(), group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || commit_group(&bootstrap, &group, &topic, &commits))
        .await
        .expect("commit task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_cluster_reports_its_own_exact_lag_under_its_own_name() {
    let bed = Bed::new("clusters").await;
    let b_dir = WorkDir::new("clusters-b");
    let b = Tansu::start(b_dir.path()).await;
    let (orders, billing, audit) = (unique("orders"), unique("billing"), unique("audit"));
    // billing is 7 behind on a, 2 behind on b; audit exists on b only.
    traffic(&bed.broker.bootstrap, &orders, &billing, 3).await;
    traffic(&b.bootstrap, &orders, &billing, 8).await;
    let audit_commits: HashMap<i32, i64> = (0..PARTITIONS).map(|p| (p, i64::from(p))).collect();
    let (boot, group, topic) = (b.bootstrap.clone(), audit.clone(), orders.clone());
    tokio::task::spawn_blocking(move || commit_group(&boot, &group, &topic, &audit_commits))
        .await
        .expect("commit task");
    bed.commit_group_to_end().await;

    let config = bed.dir.path().join("exporter.toml");
    std::fs::write(
        &config,
        format!(
            "[exporter]\ncluster_name = \"a\"\n\n[exporter.cluster]\nbrokers = 1\nmin_insync_replicas = 1\n\n\
             [[exporter.clusters]]\nname = \"b\"\n\
             [exporter.clusters.kafka]\nbootstrap_servers = \"{}\"\n\
             [exporter.clusters.discovery]\nallow_groups = \"billing-.*|audit-.*\"\n\
             [exporter.clusters.cluster]\nbrokers = 2\nmin_insync_replicas = 1\n",
            b.bootstrap
        ),
    )
    .expect("write the exporter's file");
    let exporter: Service = start_with_file(
        bed.dir.path(),
        &bed.broker.bootstrap,
        &bed.names,
        "exporter",
        &unique("exporter"),
        &config,
    );
    wait_ready(&[&exporter], Duration::from_secs(60)).await;

    let s = metrics_until(
        exporter.port,
        "lag of billing on both clusters and of audit on b",
        Duration::from_secs(60),
        |s| {
            (0..PARTITIONS).all(|p| {
                lag(s, "a", &billing, &orders, p).is_some()
                    && lag(s, "b", &billing, &orders, p).is_some()
                    && lag(s, "b", &audit, &orders, p).is_some()
            })
        },
    )
    .await;
    for p in 0..PARTITIONS {
        assert_eq!(
            lag(&s, "a", &billing, &orders, p),
            Some(7.0),
            "a: billing/{p}"
        );
        assert_eq!(
            lag(&s, "b", &billing, &orders, p),
            Some(2.0),
            "b: billing/{p}"
        );
        let audit_lag = (PER_PARTITION - i64::from(p)) as f64;
        assert_eq!(
            lag(&s, "b", &audit, &orders, p),
            Some(audit_lag),
            "b: audit/{p}"
        );
        assert_eq!(lag(&s, "a", &audit, &orders, p), None, "audit is not on a");
    }
    let total = |cluster: &str, group: &str| {
        scrape::value(
            &s,
            "meshflow_consumer_lag_messages",
            &[
                ("kafka_cluster", cluster),
                ("group", group),
                ("topic", &orders),
            ],
        )
    };
    let p = f64::from(PARTITIONS);
    assert_eq!(total("a", &billing), Some(7.0 * p));
    assert_eq!(total("b", &billing), Some(2.0 * p));

    // Each cluster's own view and expectation.
    let of = |name: &str, cluster: &str| scrape::value(&s, name, &[("kafka_cluster", cluster)]);
    assert_eq!(of("meshflow_brokers", "a"), Some(1.0));
    assert_eq!(of("meshflow_brokers", "b"), Some(1.0));
    assert_eq!(of("meshflow_brokers_expected", "a"), Some(1.0));
    assert_eq!(of("meshflow_brokers_expected", "b"), Some(2.0));
    let partitions = |cluster: &str| {
        scrape::value(
            &s,
            "meshflow_topic_partitions",
            &[("kafka_cluster", cluster), ("topic", &orders)],
        )
    };
    assert_eq!((partitions("a"), partitions("b")), (Some(p), Some(p)));
    let high = |cluster: &str| {
        scrape::value(
            &s,
            "meshflow_topic_high_watermarks",
            &[("kafka_cluster", cluster), ("topic", &orders)],
        )
    };
    assert_eq!(high("b"), Some((PER_PARTITION as f64) * p));
    // The judged group and the judged topics are the home cluster's only.
    let judged = &bed.names.group;
    let status = |cluster: &str| {
        scrape::value(
            &s,
            "meshflow_consumer_group_status_code",
            &[("kafka_cluster", cluster), ("group", judged)],
        )
    };
    assert!(status("a").is_some(), "the judged group is watched on a");
    assert_eq!(status("b"), None, "and not on b");
    let log = scrape::value(&s, "meshflow_messages_total", &[("stage", "log")]);
    let log_b = scrape::value(&s, "meshflow_messages_total", &[("kafka_cluster", "b")]);
    assert!(log.is_some() && log_b.is_none(), "the accounting is a's");
    // Every sample of a cluster-scoped family names its cluster, a or b.
    let unlabelled: Vec<&String> = s
        .keys()
        .filter(|k| {
            k.starts_with("meshflow_consumer_lag") || k.starts_with("meshflow_exporter_poll")
        })
        .filter(|k| !k.contains("kafka_cluster=\"a\"") && !k.contains("kafka_cluster=\"b\""))
        .collect();
    assert!(unlabelled.is_empty(), "{unlabelled:?}");
    for cluster in ["a", "b"] {
        let errors = scrape::value(
            &s,
            "meshflow_exporter_poll_errors_total",
            &[("kafka_cluster", cluster), ("kind", "metadata")],
        );
        assert_eq!(errors, Some(0.0), "{cluster} polls without metadata errors");
    }
    println!(
        "two clusters: billing lags 7/partition on a and 2/partition on b; audit on b only; \
         {} series carry kafka_cluster=\"a\", {} kafka_cluster=\"b\"",
        s.keys()
            .filter(|k| k.contains("kafka_cluster=\"a\""))
            .count(),
        s.keys()
            .filter(|k| k.contains("kafka_cluster=\"b\""))
            .count(),
    );
    drop(b);
}
