//! Under-min-ISR per topic, on the local broker: a topic created with
//! `min.insync.replicas=2` on the single broker has every partition under
//! it (one in-sync replica); a topic without the setting takes the
//! configured value (Tansu describes topic configs, not broker ones) and
//! has none under it.

use std::time::Duration;

use meshflow_tests::bed::{metrics_until, Bed};
use meshflow_tests::{scrape, unique};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

/// Partitions of each topic.
const PARTITIONS: i32 = 3;
/// `min.insync.replicas` of the strict topic.
const STRICT: &str = "2";
/// `exporter.cluster.min_insync_replicas` (at most the one broker).
const CONFIGURED: &str = "1";

async fn create(bootstrap: &str, topics: &[NewTopic<'_>]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for r in admin.create_topics(topics, &opts).await.expect("create") {
        r.expect("topic created");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_topic_is_judged_against_its_own_min_insync_replicas() {
    let bed = Bed::new("min-insync").await;
    let boot = bed.broker.bootstrap.clone();
    let (payments, ledger) = (unique("payments"), unique("ledger"));
    create(
        &boot,
        &[
            NewTopic::new(&payments, PARTITIONS, TopicReplication::Fixed(1))
                .set("min.insync.replicas", STRICT),
            NewTopic::new(&ledger, PARTITIONS, TopicReplication::Fixed(1)),
        ],
    )
    .await;
    let exporter = bed
        .start_exporter(
            "exporter",
            &unique("exporter"),
            &[
                ("MESHFLOW__EXPORTER__POLL_INTERVAL", "500ms"),
                ("MESHFLOW__EXPORTER__CLUSTER__BROKERS", "1"),
                (
                    "MESHFLOW__EXPORTER__CLUSTER__MIN_INSYNC_REPLICAS",
                    CONFIGURED,
                ),
                ("MESHFLOW__EXPORTER__CLUSTER__GRANULARITY", "partition"),
            ],
        )
        .await;
    let topic = |s: &std::collections::HashMap<String, f64>, name: &str, t: &str| {
        scrape::value(s, name, &[("topic", t)])
    };
    let min = "meshflow_topic_min_insync_replicas";
    let under = "meshflow_topic_partitions_under_min_isr";
    let s = metrics_until(exporter.port, "both topics", Duration::from_secs(30), |s| {
        topic(s, min, &payments).is_some() && topic(s, min, &ledger).is_some()
    })
    .await;
    println!(
        "payments: min {:?}, under {:?}; ledger: min {:?}, under {:?}",
        topic(&s, min, &payments),
        topic(&s, under, &payments),
        topic(&s, min, &ledger),
        topic(&s, under, &ledger)
    );
    assert_eq!(topic(&s, min, &payments), Some(2.0));
    assert_eq!(topic(&s, under, &payments), Some(f64::from(PARTITIONS)));
    assert_eq!(topic(&s, min, &ledger), Some(1.0));
    assert_eq!(topic(&s, under, &ledger), Some(0.0));
    for p in 0..PARTITIONS {
        let p = p.to_string();
        let of = |t: &str| {
            scrape::value(
                &s,
                "meshflow_partition_under_min_isr",
                &[("topic", t), ("partition", &p)],
            )
        };
        assert_eq!(of(&payments), Some(1.0), "payments/{p}");
        assert_eq!(of(&ledger), Some(0.0), "ledger/{p}");
    }
    // The broker resource is refused per resource; the request itself works.
    let failed = scrape::value(
        &s,
        "meshflow_exporter_poll_errors_total",
        &[("kind", "describe_configs")],
    );
    assert_eq!(failed, Some(0.0));
}
