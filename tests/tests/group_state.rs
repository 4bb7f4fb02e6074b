//! The exporter publishes each watched group as its coordinator describes
//! it, on the local broker (whose DescribeGroups answers since patch 0003):
//! two members share the six partitions three and three with the range
//! assignor; a frozen member holds up a rebalance, which the exporter
//! shows as the group's state; once its session times out the group is
//! stable again with the two live members; with every member gone it is
//! empty.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use meshflow_tests::bed::{metrics_until, Bed, PARTITIONS};
use meshflow_tests::process::Service;
use meshflow_tests::scenario::{consumer_with, wait_ready};
use meshflow_tests::{scrape, unique};

/// The members' session timeout (`consumer.session_timeout`): how long a
/// frozen member holds up a rebalance.
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);
/// Their heartbeat interval: the frozen member's last heartbeat is at most
/// this long before the freeze.
const HEARTBEAT: Duration = Duration::from_secs(1);

fn member(bed: &Bed, name: &str) -> Service {
    let session = format!("{}ms", SESSION_TIMEOUT.as_millis());
    let heartbeat = format!("{}ms", HEARTBEAT.as_millis());
    consumer_with(
        bed.dir.path(),
        &bed.broker.bootstrap,
        &bed.names,
        name,
        &[
            ("MESHFLOW__CONSUMER__SESSION_TIMEOUT", &session),
            ("MESHFLOW__CONSUMER__HEARTBEAT_INTERVAL", &heartbeat),
        ],
    )
}

/// The state whose series is 1, if exactly one is.
fn state(s: &HashMap<String, f64>, group: &str) -> Option<String> {
    let prefix = format!(
        "meshflow_consumer_group_state{{kafka_cluster=\"default\",group=\"{group}\",state=\""
    );
    let set: Vec<&str> = s
        .iter()
        .filter(|(_, v)| **v == 1.0)
        .filter_map(|(k, _)| k.strip_prefix(&prefix)?.strip_suffix("\"}"))
        .collect();
    (set.len() == 1).then(|| set[0].to_string())
}

fn of_group(s: &HashMap<String, f64>, name: &str, group: &str) -> Option<f64> {
    scrape::value(s, name, &[("group", group)])
}

fn member_partitions(s: &HashMap<String, f64>, group: &str, stat: &str) -> Option<f64> {
    scrape::value(
        s,
        "meshflow_consumer_group_member_partitions",
        &[("group", group), ("stat", stat)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_state_members_and_assignment_follow_the_coordinator() {
    let bed = Bed::new("group-state").await;
    let group = bed.names.group.clone();
    let exporter = bed
        .start_exporter(
            "exporter",
            &unique("exporter"),
            &[("MESHFLOW__EXPORTER__POLL_INTERVAL", "500ms")],
        )
        .await;
    let a = member(&bed, "consumer-a");
    let b = member(&bed, "consumer-b");
    wait_ready(&[&a, &b], Duration::from_secs(60)).await;

    let partitions = f64::from(PARTITIONS);
    let s = metrics_until(
        exporter.port,
        "a stable group of two",
        Duration::from_secs(60),
        |s| {
            state(s, &group).as_deref() == Some("Stable")
                && of_group(s, "meshflow_consumer_group_members", &group) == Some(2.0)
                && of_group(s, "meshflow_consumer_group_assigned_partitions", &group)
                    == Some(partitions)
        },
    )
    .await;
    assert_eq!(member_partitions(&s, &group, "min"), Some(partitions / 2.0));
    assert_eq!(member_partitions(&s, &group, "max"), Some(partitions / 2.0));
    let assignor = |s: &HashMap<String, f64>, name: &str| {
        scrape::value(
            s,
            "meshflow_consumer_group_assignor",
            &[("group", &group), ("assignor", name)],
        )
    };
    assert_eq!(assignor(&s, "range"), Some(1.0));
    assert_eq!(assignor(&s, "roundrobin"), Some(0.0));

    // Freeze a, then a third member joins: the coordinator waits for a to
    // rejoin, which it cannot, until its session times out.
    a.signal(19);
    let frozen = Instant::now();
    let c = member(&bed, "consumer-c");
    let rebalancing = metrics_until(
        exporter.port,
        "a rebalance held up",
        Duration::from_secs(30),
        |s| {
            matches!(
                state(s, &group).as_deref(),
                Some("PreparingRebalance" | "CompletingRebalance")
            )
        },
    )
    .await;
    println!(
        "rebalancing {:.1}s after the freeze: {:?}",
        frozen.elapsed().as_secs_f64(),
        state(&rebalancing, &group)
    );
    let s = metrics_until(
        exporter.port,
        "stable again with b and c",
        Duration::from_secs(60),
        |s| {
            state(s, &group).as_deref() == Some("Stable")
                && of_group(s, "meshflow_consumer_group_members", &group) == Some(2.0)
                && of_group(s, "meshflow_consumer_group_assigned_partitions", &group)
                    == Some(partitions)
        },
    )
    .await;
    println!(
        "stable again {:.1}s after the freeze",
        frozen.elapsed().as_secs_f64()
    );
    assert_eq!(member_partitions(&s, &group, "max"), Some(partitions / 2.0));

    // Everyone leaves: an empty group, no member, nothing assigned.
    a.signal(9);
    for member in [&b, &c] {
        member.signal(15);
    }
    let s = metrics_until(
        exporter.port,
        "an empty group",
        Duration::from_secs(60),
        |s| state(s, &group).as_deref() == Some("Empty"),
    )
    .await;
    assert_eq!(
        of_group(&s, "meshflow_consumer_group_members", &group),
        Some(0.0)
    );
    assert_eq!(
        of_group(&s, "meshflow_consumer_group_assigned_partitions", &group),
        Some(0.0)
    );
    let agreed: Vec<&String> = s
        .iter()
        .filter(|(k, v)| k.starts_with("meshflow_consumer_group_assignor{") && **v == 1.0)
        .map(|(k, _)| k)
        .collect();
    // Kafka forgets the protocol of an empty group; the local broker keeps
    // it. Either way one assignor is published, not none or several.
    println!("empty: {agreed:?}");
    assert_eq!(agreed.len(), 1, "{agreed:?}");
    drop(a);
}
