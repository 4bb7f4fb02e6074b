use super::*;
use crate::cluster::{ClusterHealth, PartitionHealth, PartitionLag};
use crate::lag::{LagSample, PartitionOffsets};
use crate::testing::sample;
use crate::Error;
use prometheus_client::registry::Registry;

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_795_813_600 * SEC;
const T0_MS: i64 = 1_795_813_600_000;

fn status_config() -> StatusConfig {
    StatusConfig {
        window: Duration::from_secs(60),
        min_samples: 2,
        stop_after: Duration::from_secs(10),
        ..StatusConfig::default()
    }
}

fn lag(
    partition: i32,
    at_ns: u64,
    offsets: PartitionOffsets,
    timestamp_ms: Option<i64>,
) -> PartitionLag {
    lag_on("events", partition, at_ns, offsets, timestamp_ms)
}

fn lag_on(
    topic: &str,
    partition: i32,
    at_ns: u64,
    offsets: PartitionOffsets,
    timestamp_ms: Option<i64>,
) -> PartitionLag {
    PartitionLag {
        topic: topic.to_string(),
        partition,
        offsets: Ok(offsets),
        sample: LagSample::new(at_ns, offsets, timestamp_ms),
    }
}

fn offsets(high: i64, committed: Option<i64>) -> PartitionOffsets {
    PartitionOffsets {
        low: 0,
        high,
        committed,
    }
}

fn health() -> ClusterHealth {
    ClusterHealth {
        brokers: 1,
        partitions: vec![PartitionHealth {
            topic: "events".into(),
            partition: 0,
            leader: 111,
            replicas: 1,
            isr: 1,
            watermarks: Some((0, 0)),
        }],
        partitions_left_out: 0,
        ..ClusterHealth::default()
    }
}

fn status_of(registry: &Registry, group: &str) -> Vec<&'static str> {
    GroupStatus::ALL
        .iter()
        .filter(|s| {
            let series = format!(
                "meshflow_consumer_group_status{{kafka_cluster=\"default\",group=\"{group}\",meshflow_consumer_group_status=\"{}\"}}",
                s.as_str()
            );
            sample(registry, &series) == Some(1.0)
        })
        .map(|s| s.as_str())
        .collect()
}

/// Metrics and a watch over `groups`.
fn watching(groups: &Groups) -> (Registry, ExporterMetrics, GroupWatch) {
    let mut registry = Registry::with_prefix("meshflow");
    let metrics = ExporterMetrics::register(&mut registry, groups);
    (registry, metrics, GroupWatch::new(groups, &status_config()))
}

/// A snapshot at `at_ns` with readable health and nothing else failing.
fn snapshot(at_ns: u64, groups: PerGroup<Result<Vec<PartitionLag>, Error>>) -> Snapshot {
    Snapshot {
        at_ns,
        log_highs: Default::default(),
        receipt_highs: Vec::new(),
        health: Ok(health()),
        judged: Some(crate::config::JudgedTopics {
            topics: vec!["events".into()],
            left_out: 0,
        }),
        groups,
        timestamp_error: None,
        others: Ok(crate::cluster::Others::default()),
        brokers: Ok(Vec::new()),
        memberships: Ok(Vec::new()),
    }
}

/// One snapshot entry per group of `groups`, given by name.
fn per_group<T>(groups: &Groups, mut values: Vec<(&str, T)>) -> PerGroup<T> {
    PerGroup::from_fn(groups, |group| {
        let at = values
            .iter()
            .position(|(name, _)| *name == groups.name(group))
            .expect("a value for every group");
        values.swap_remove(at).1
    })
}

#[test]
fn snapshots_become_lag_gauges_statuses_and_health() {
    let groups = Groups::new(["g1", "g2"]);
    let (g1, g2) = (groups.id("g1").unwrap(), groups.id("g2").unwrap());
    let (registry, metrics, mut watch) = watching(&groups);

    // g1: partition 0 behind by 60, its oldest unconsumed record written 7 s
    // ago; partition 1's record timestamp could not be read. g2: no offsets.
    let first = snapshot(
        T0,
        per_group(
            &groups,
            vec![
                (
                    "g1",
                    Ok(vec![
                        lag(0, T0, offsets(100, Some(40)), Some(T0_MS - 7_000)),
                        lag(1, T0, offsets(50, Some(20)), None),
                    ]),
                ),
                (
                    "g2",
                    Err(Error::UnknownTopic {
                        topic: "events".into(),
                    }),
                ),
            ],
        ),
    );
    let evaluations = watch.apply(&first, &metrics, T0);
    let lag_of = |name: &str, partition: i32| {
        sample(
            &registry,
            &format!("{name}{{kafka_cluster=\"default\",group=\"g1\",topic=\"events\",partition=\"{partition}\"}}"),
        )
    };
    assert_eq!(lag_of("meshflow_consumer_lag_messages", 0), Some(60.0));
    assert_eq!(lag_of("meshflow_consumer_lag_seconds", 0), Some(7.0));
    // Messages are known without the timestamp; seconds are not.
    assert_eq!(lag_of("meshflow_consumer_lag_messages", 1), Some(30.0));
    assert_eq!(lag_of("meshflow_consumer_lag_seconds", 1), None);
    assert_eq!(evaluations[g1].status, GroupStatus::Err);
    assert_eq!(evaluations[g1].partition, Some(1));
    assert_eq!(evaluations[g2].status, GroupStatus::Err);
    assert_eq!(status_of(&registry, "g1"), ["ERR"]);
    assert_eq!(status_of(&registry, "g2"), ["ERR"]);
    assert_eq!(
        sample(&registry, "meshflow_brokers{kafka_cluster=\"default\"}"),
        Some(1.0)
    );
    let poll_errors = |kind: &str| {
        let series = format!(
            "meshflow_exporter_poll_errors_total{{kafka_cluster=\"default\",kind=\"{kind}\"}}"
        );
        sample(&registry, &series)
    };
    assert_eq!(poll_errors("group_offsets"), Some(1.0));
    assert_eq!(poll_errors("metadata"), Some(0.0));
    assert_eq!(
        sample(
            &registry,
            "meshflow_exporter_groups_watched{kafka_cluster=\"default\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &registry,
            "meshflow_exporter_partitions_watched{kafka_cluster=\"default\"}"
        ),
        Some(2.0)
    );
    let last_success =
        "meshflow_exporter_last_successful_poll_timestamp_seconds{kafka_cluster=\"default\"}";
    assert_eq!(
        sample(&registry, last_success),
        Some(0.0),
        "no poll without failure yet"
    );

    // 15 s later: g1 has not committed on partition 0 (STOP after 10 s);
    // g2 is readable and caught up.
    let at = T0 + 15 * SEC;
    let second = Snapshot {
        health: Err(Error::UnknownTopic {
            topic: "events".into(),
        }),
        timestamp_error: Some(Error::MissingTimestamp { offset: 40 }),
        ..snapshot(
            at,
            per_group(
                &groups,
                vec![
                    (
                        "g1",
                        Ok(vec![
                            lag(0, at, offsets(110, Some(40)), Some(T0_MS - 7_000)),
                            lag(1, at, offsets(50, Some(50)), None),
                        ]),
                    ),
                    ("g2", Ok(vec![lag(0, at, offsets(110, Some(110)), None)])),
                ],
            ),
        )
    };
    let evaluations = watch.apply(&second, &metrics, at + SEC / 2);
    assert_eq!(evaluations[g1].status, GroupStatus::Stop, "{evaluations:?}");
    assert_eq!(evaluations[g1].partition, Some(0));
    assert_eq!(evaluations[g2].status, GroupStatus::Ok);
    assert_eq!(status_of(&registry, "g1"), ["STOP"]);
    assert_eq!(status_of(&registry, "g2"), ["OK"]);
    assert_eq!(lag_of("meshflow_consumer_lag_messages", 0), Some(70.0));
    assert_eq!(lag_of("meshflow_consumer_lag_seconds", 0), Some(22.0));
    assert_eq!(lag_of("meshflow_consumer_lag_messages", 1), Some(0.0));
    assert_eq!(lag_of("meshflow_consumer_lag_seconds", 1), Some(0.0));
    // Health unreadable this time: the last known value stays.
    assert_eq!(
        sample(&registry, "meshflow_brokers{kafka_cluster=\"default\"}"),
        Some(1.0)
    );
    assert_eq!(poll_errors("metadata"), Some(1.0));
    assert_eq!(poll_errors("timestamps"), Some(1.0));
    assert_eq!(
        poll_errors("group_offsets"),
        Some(1.0),
        "this poll read them"
    );
    assert_eq!(
        sample(
            &registry,
            "meshflow_exporter_partitions_watched{kafka_cluster=\"default\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &registry,
            "meshflow_exporter_poll_duration_seconds_sum{kafka_cluster=\"default\"}"
        ),
        Some(0.5)
    );

    // Then a poll with nothing failing.
    let third = Snapshot {
        health: Ok(health()),
        timestamp_error: None,
        at_ns: at + 20 * SEC,
        ..second
    };
    watch.apply(&third, &metrics, at + 21 * SEC);
    let ended = (at + 21 * SEC) as f64 / 1e9;
    assert_eq!(sample(&registry, last_success), Some(ended));
    assert_eq!(poll_errors("metadata"), Some(1.0));
}

#[test]
fn a_group_missing_from_the_snapshot_is_an_error() {
    let groups = Groups::new(["g1"]);
    let g1 = groups.id("g1").unwrap();
    let (_registry, metrics, mut watch) = watching(&groups);
    let snapshot = snapshot(T0, PerGroup::default());
    let evaluations = watch.apply(&snapshot, &metrics, T0);
    assert_eq!(evaluations[g1].status, GroupStatus::Err);
    assert!(evaluations[g1].reason.contains("not polled"));
}

#[test]
fn a_judged_group_takes_its_worst_topics_status_and_forgets_a_topic_gone() {
    let groups = Groups::new(["g1"]);
    let g1 = groups.id("g1").unwrap();
    let (registry, metrics, mut watch) = watching(&groups);
    // Caught up on events, stuck 40 behind on orders for 15 s: STOP.
    let mut evaluations = PerGroup::default();
    for step in 0..4 {
        let at = T0 + step * 5 * SEC;
        let lags = vec![
            lag_on("events", 0, at, offsets(100, Some(100)), None),
            lag_on(
                "orders",
                0,
                at,
                offsets(100, Some(60)),
                Some(T0_MS - 60_000),
            ),
        ];
        let mut polled = snapshot(at, per_group(&groups, vec![("g1", Ok(lags))]));
        polled.judged = Some(crate::config::JudgedTopics {
            topics: vec!["events".into(), "orders".into()],
            left_out: 3,
        });
        evaluations = watch.apply(&polled, &metrics, at);
    }
    assert_eq!(evaluations[g1].status, GroupStatus::Stop, "{evaluations:?}");
    assert_eq!(status_of(&registry, "g1"), ["STOP"]);
    let series = |topic: &str| {
        format!("meshflow_consumer_lag_messages{{kafka_cluster=\"default\",group=\"g1\",topic=\"{topic}\",partition=\"0\"}}")
    };
    assert_eq!(sample(&registry, &series("orders")), Some(40.0));
    assert_eq!(sample(&registry, &series("events")), Some(0.0));
    assert_eq!(
        sample(
            &registry,
            "meshflow_exporter_discovery_left_out{kafka_cluster=\"default\",what=\"judged_topics\"}"
        ),
        Some(3.0)
    );
    // orders is no longer judged: its lag series go, the group is OK.
    let at = T0 + 20 * SEC;
    let lags = vec![lag_on("events", 0, at, offsets(100, Some(100)), None)];
    let evaluations = watch.apply(
        &snapshot(at, per_group(&groups, vec![("g1", Ok(lags))])),
        &metrics,
        at,
    );
    assert_eq!(evaluations[g1].status, GroupStatus::Ok, "{evaluations:?}");
    assert_eq!(sample(&registry, &series("orders")), None);
    assert_eq!(sample(&registry, &series("events")), Some(0.0));
}

#[test]
fn a_judged_group_loses_records_to_retention_once_and_its_description_follows_the_polls() {
    let groups = Groups::new(["g1"]);
    let (registry, metrics, mut watch) = watching(&groups);
    let at = |low: i64, committed: i64| PartitionOffsets {
        low,
        high: 100,
        committed: Some(committed),
    };
    let described = |state: &str| {
        Ok(vec![crate::membership::Membership::new(
            "g1",
            state,
            "consumer",
            "range",
            [],
        )])
    };
    let poll = |watch: &mut GroupWatch, t: u64, low: i64, memberships| {
        let at_ns = T0 + t * SEC;
        let partitions = vec![lag(0, at_ns, at(low, 40), Some(T0_MS))];
        let snapshot = Snapshot {
            memberships,
            ..snapshot(at_ns, per_group(&groups, vec![("g1", Ok(partitions))]))
        };
        watch.apply(&snapshot, &metrics, at_ns);
    };
    let expired = "meshflow_consumer_group_messages_expired_total{kafka_cluster=\"default\",topic=\"events\",group=\"g1\"}";
    let gap =
        "meshflow_consumer_lag_expired_messages{kafka_cluster=\"default\",group=\"g1\",topic=\"events\",partition=\"0\"}";
    let state = |s: &str| {
        sample(
            &registry,
            &format!("meshflow_consumer_group_state{{kafka_cluster=\"default\",group=\"g1\",state=\"{s}\"}}"),
        )
    };
    let burrow =
        "meshflow_consumer_group_burrow_status_code{kafka_cluster=\"default\",group=\"g1\"}";
    poll(&mut watch, 0, 0, described("Stable"));
    assert_eq!(sample(&registry, expired), Some(0.0));
    assert_eq!(sample(&registry, gap), Some(0.0));
    assert_eq!(state("Stable"), Some(1.0));
    // Retention deletes 40..70 under the stopped group: 30 lost, once.
    poll(&mut watch, 5, 70, described("PreparingRebalance"));
    poll(&mut watch, 10, 70, described("PreparingRebalance"));
    assert_eq!(sample(&registry, expired), Some(30.0));
    assert_eq!(sample(&registry, gap), Some(30.0));
    assert_eq!(
        [state("Stable"), state("PreparingRebalance")],
        [Some(0.0), Some(1.0)]
    );
    // Stopped with lag past the window Burrow's one commit spans: ERR.
    assert_eq!(sample(&registry, burrow), Some(3.0));
    // A failed description removes the state rather than keep an old one.
    poll(
        &mut watch,
        15,
        70,
        Err(Error::UnknownTopic {
            topic: "describe".into(),
        }),
    );
    assert_eq!(state("PreparingRebalance"), None);
    assert_eq!(
        sample(
            &registry,
            "meshflow_exporter_poll_errors_total{kafka_cluster=\"default\",kind=\"describe_groups\"}"
        ),
        Some(1.0)
    );
    assert_eq!(sample(&registry, expired), Some(30.0));
}
