use super::series::valid_trace_id;
use super::*;
use crate::cluster::PartitionHealth;
use crate::config::Granularity;
use crate::groups::{GroupId, PerGroup};
use crate::observation::Latency;
use crate::observation::Observed;
use crate::testing::{of_group, sample, stage, value};
use crate::window::Outcome;
use meshflow_common::exposition::{open_metrics, prometheus_text};
use std::time::Duration;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn setup() -> (Registry, ExporterMetrics) {
    let mut registry = Registry::with_prefix("meshflow");
    let groups = Groups::new(["g1", "g2"]);
    let metrics = ExporterMetrics::register(&mut registry, &groups);
    let _ = metrics.for_topic("events");
    (registry, metrics)
}

/// The id of a group registered by [`setup`].
fn id(metrics: &ExporterMetrics, name: &str) -> GroupId {
    metrics.groups().id(name).expect("registered")
}

/// A value per group, by name; 0 for the groups not named.
fn by_name(metrics: &ExporterMetrics, values: &[(&str, u64)]) -> PerGroup<u64> {
    let groups = metrics.groups();
    PerGroup::from_fn(groups, |group| {
        values
            .iter()
            .find(|(name, _)| *name == groups.name(group))
            .map_or(0, |(_, value)| *value)
    })
}

/// Sample lines of the text format: series as written → value.
fn observed(outcome: Outcome, latency: Latency) -> Observed {
    Observed {
        outcome,
        latency,
        rejected: None,
    }
}

#[test]
fn every_stage_series_exists_at_zero_from_the_start() {
    let (registry, _) = setup();
    for (stage, group) in [("log", ""), ("processed", "g1"), ("processed", "g2")] {
        for name in [
            "meshflow_messages_total",
            "meshflow_messages_lost_total",
            "meshflow_messages_duplicated_total",
        ] {
            let series = format!("{name}{{kafka_cluster=\"default\",topic=\"events\",stage=\"{stage}\",group=\"{group}\"}}");
            assert_eq!(value(&registry, &series), 0.0, "{series}");
        }
        let skew = format!("meshflow_clock_skew_total{{kafka_cluster=\"default\",topic=\"events\",group=\"{group}\"}}");
        assert_eq!(value(&registry, &skew), 0.0);
    }
    assert_eq!(
        value(
            &registry,
            "meshflow_delivery_latency_seconds_count{kafka_cluster=\"default\",topic=\"events\"}"
        ),
        0.0
    );
    assert_eq!(
        of_group(&registry, "meshflow_e2e_latency_seconds_count", "g2"),
        0.0
    );
}

#[test]
fn each_judged_topic_has_its_own_series_at_zero() {
    let (registry, metrics) = setup();
    let orders = metrics.for_topic("orders");
    for topic in ["events", "orders"] {
        for (stage, group) in [("log", ""), ("processed", "g1"), ("processed", "g2")] {
            for name in [
                "meshflow_messages_total",
                "meshflow_messages_lost_total",
                "meshflow_messages_duplicated_total",
            ] {
                let series =
                    format!("{name}{{kafka_cluster=\"default\",topic=\"{topic}\",stage=\"{stage}\",group=\"{group}\"}}");
                assert_eq!(value(&registry, &series), 0.0, "{series}");
            }
        }
        let delivery = format!("meshflow_delivery_latency_seconds_count{{kafka_cluster=\"default\",topic=\"{topic}\"}}");
        assert_eq!(value(&registry, &delivery), 0.0);
    }
    orders.record_sweep(&SweepReport {
        log_lost: 2,
        ..SweepReport::default()
    });
    let lost = |topic: &str| {
        let series =
            format!("meshflow_messages_lost_total{{kafka_cluster=\"default\",topic=\"{topic}\",stage=\"log\",group=\"\"}}");
        value(&registry, &series)
    };
    assert_eq!((lost("orders"), lost("events")), (2.0, 0.0));
    // Asking again gives the same series, not new ones at 0.
    metrics.for_topic("orders").record_sweep(&SweepReport {
        log_lost: 1,
        ..SweepReport::default()
    });
    assert_eq!(lost("orders"), 3.0);
    assert_eq!(
        value(
            &registry,
            "meshflow_exporter_discovery_left_out{kafka_cluster=\"default\",what=\"judged_topics\"}"
        ),
        0.0
    );
}

#[test]
fn log_observations_map_to_stage_log() {
    let (registry, metrics) = setup();
    let ms = Duration::from_millis;
    metrics
        .for_topic("events")
        .record_log(observed(Outcome::New, Latency::Measured(ms(4))));
    metrics
        .for_topic("events")
        .record_log(observed(Outcome::Late, Latency::Measured(ms(40))));
    metrics
        .for_topic("events")
        .record_log(observed(Outcome::Overdue, Latency::Measured(ms(2_000))));
    metrics
        .for_topic("events")
        .record_log(observed(Outcome::Duplicate, Latency::NotMeasured));
    metrics
        .for_topic("events")
        .record_log(observed(Outcome::New, Latency::ClockSkew(ms(3))));
    metrics
        .for_topic("events")
        .record_log(observed(Outcome::Ignored, Latency::NotMeasured));
    let log = |name: &str| {
        value(
            &registry,
            &format!(
                "{name}{{kafka_cluster=\"default\",topic=\"events\",stage=\"log\",group=\"\"}}"
            ),
        )
    };
    assert_eq!(log("meshflow_messages_total"), 4.0);
    assert_eq!(log("meshflow_messages_duplicated_total"), 1.0);
    assert_eq!(log("meshflow_messages_lost_total"), 0.0);
    assert_eq!(of_group(&registry, "meshflow_clock_skew_total", ""), 1.0);
    let delivery = |suffix: &str| {
        value(
            &registry,
            &format!("meshflow_delivery_latency_seconds_{suffix}"),
        )
    };
    assert_eq!(
        delivery("count{kafka_cluster=\"default\",topic=\"events\"}"),
        3.0
    );
    assert!((delivery("sum{kafka_cluster=\"default\",topic=\"events\"}") - 2.044).abs() < 1e-9);
    assert_eq!(
        delivery("bucket{kafka_cluster=\"default\",le=\"0.005\",topic=\"events\"}"),
        1.0
    );
    assert_eq!(
        delivery("bucket{kafka_cluster=\"default\",le=\"1.0\",topic=\"events\"}"),
        2.0
    );
    assert_eq!(
        delivery("bucket{kafka_cluster=\"default\",le=\"+Inf\",topic=\"events\"}"),
        3.0
    );
    // Nothing at stage processed.
    assert_eq!(
        stage(&registry, "meshflow_messages_total", "processed", "g1"),
        0.0
    );
}

#[test]
fn receipts_map_to_their_group_with_the_trace_id_as_exemplar() {
    let (registry, metrics) = setup();
    let ms = Duration::from_millis;
    metrics.for_topic("events").record_receipt(
        id(&metrics, "g2"),
        observed(Outcome::New, Latency::Measured(ms(250))),
        TRACE,
    );
    metrics.for_topic("events").record_receipt(
        id(&metrics, "g2"),
        observed(Outcome::Duplicate, Latency::NotMeasured),
        TRACE,
    );
    metrics.for_topic("events").record_receipt(
        id(&metrics, "g1"),
        observed(Outcome::New, Latency::Measured(ms(20))),
        "not-a-trace-id",
    );
    metrics.for_topic("events").record_receipt(
        id(&metrics, "g1"),
        observed(Outcome::New, Latency::ClockSkew(ms(1))),
        TRACE,
    );
    // An id of another, larger registry: ignored, not a panic.
    let foreign = Groups::new(["a", "b", "c"]).id("c").unwrap();
    metrics.for_topic("events").record_receipt(
        foreign,
        observed(Outcome::New, Latency::Measured(ms(1))),
        TRACE,
    );
    let processed = |name: &str, group: &str| stage(&registry, name, "processed", group);
    assert_eq!(processed("meshflow_messages_total", "g1"), 2.0);
    assert_eq!(processed("meshflow_messages_total", "g2"), 1.0);
    assert_eq!(processed("meshflow_messages_duplicated_total", "g2"), 1.0);
    assert_eq!(of_group(&registry, "meshflow_clock_skew_total", "g1"), 1.0);
    assert_eq!(
        of_group(&registry, "meshflow_e2e_latency_seconds_count", "g2"),
        1.0
    );
    assert_eq!(
        value(
            &registry,
            "meshflow_e2e_latency_seconds_bucket{kafka_cluster=\"default\",le=\"0.3\",topic=\"events\",group=\"g2\"}"
        ),
        1.0
    );
    let om = open_metrics(&registry, &[GROUP_STATUS.to_string()]);
    let exemplar = format!(
        "meshflow_e2e_latency_seconds_bucket{{kafka_cluster=\"default\",le=\"0.3\",topic=\"events\",group=\"g2\"}} 1 \
         # {{trace_id=\"{TRACE}\"}} 0.25"
    );
    assert!(om.lines().any(|l| l == exemplar), "{om}");
    assert!(!om.contains("not-a-trace-id"), "{om}");
    // The text format carries no exemplars.
    assert!(!prometheus_text(&registry).contains(TRACE));
}

#[test]
fn sweeps_add_loss_per_stage_and_group() {
    let (registry, metrics) = setup();
    metrics.for_topic("events").record_sweep(&SweepReport {
        log_lost: 3,
        processed_lost: by_name(&metrics, &[("g2", 2)]),
        evicted_idle: 0,
        ..SweepReport::default()
    });
    metrics.for_topic("events").record_sweep(&SweepReport {
        log_lost: 1,
        processed_lost: by_name(&metrics, &[("g1", 5)]),
        evicted_idle: 1,
        ..SweepReport::default()
    });
    let lost = |at: &str, group: &str| stage(&registry, "meshflow_messages_lost_total", at, group);
    assert_eq!(lost("log", ""), 4.0);
    assert_eq!(lost("processed", "g1"), 5.0);
    assert_eq!(lost("processed", "g2"), 2.0);
}

#[test]
fn invalid_records_count_by_topic_and_reason() {
    let (registry, metrics) = setup();
    metrics.record_invalid("events", "not_a_number");
    metrics.record_invalid("events", "not_a_number");
    metrics.record_invalid("receipts", "receipt_not_json");
    assert_eq!(
        value(
            &registry,
            "meshflow_messages_invalid_total{kafka_cluster=\"default\",topic=\"events\",reason=\"not_a_number\"}"
        ),
        2.0
    );
    assert_eq!(
        value(
            &registry,
            "meshflow_messages_invalid_total{kafka_cluster=\"default\",topic=\"receipts\",reason=\"receipt_not_json\"}"
        ),
        1.0
    );
}

#[test]
fn lag_gauges_per_group_and_partition() {
    let (registry, metrics) = setup();
    metrics.set_group_lag("g1", "events", 4, 120, Some(7.5));
    metrics.set_group_lag("g1", "events", 4, 130, None);
    metrics.set_group_lag("g2", "events", 0, 0, Some(0.0));
    let lag = |name: &str, group: &str, partition: i32| {
        value(
            &registry,
            &format!("{name}{{kafka_cluster=\"default\",group=\"{group}\",topic=\"events\",partition=\"{partition}\"}}"),
        )
    };
    assert_eq!(lag("meshflow_consumer_lag_messages", "g1", 4), 130.0);
    // Seconds unknown in the latest poll: the old value is not served as
    // current; the series goes and the miss is counted.
    let seconds = "meshflow_consumer_lag_seconds{kafka_cluster=\"default\",group=\"g1\",topic=\"events\",partition=\"4\"}";
    assert_eq!(sample(&registry, seconds), None);
    assert_eq!(
        value(
            &registry,
            "meshflow_exporter_lag_seconds_unknown_total{kafka_cluster=\"default\"}"
        ),
        1.0
    );
    assert_eq!(lag("meshflow_consumer_lag_messages", "g2", 0), 0.0);
    assert_eq!(lag("meshflow_consumer_lag_seconds", "g2", 0), 0.0);
}

#[test]
fn group_status_is_a_stateset_with_exactly_one_state_set() {
    let (registry, metrics) = setup();
    let state = |group: &str, s: &str| {
        value(
            &registry,
            &format!(
                "meshflow_consumer_group_status{{kafka_cluster=\"default\",group=\"{group}\",meshflow_consumer_group_status=\"{s}\"}}"
            ),
        )
    };
    // Before any evaluation: ERR.
    for group in ["g1", "g2"] {
        assert_eq!(state(group, "ERR"), 1.0);
        assert_eq!(state(group, "OK"), 0.0);
    }
    metrics.set_status(id(&metrics, "g1"), GroupStatus::Stop);
    for status in GroupStatus::ALL {
        let want = if status == GroupStatus::Stop {
            1.0
        } else {
            0.0
        };
        assert_eq!(state("g1", status.as_str()), want, "{}", status.as_str());
    }
    assert_eq!(state("g2", "ERR"), 1.0);
    let text = prometheus_text(&registry);
    assert!(text.contains("# TYPE meshflow_consumer_group_status gauge\n"));
    let om = open_metrics(&registry, &[GROUP_STATUS.to_string()]);
    assert!(om.contains("# TYPE meshflow_consumer_group_status stateset\n"));
}

/// A one-broker cluster with one partition of `events`.
fn one_partition() -> ClusterHealth {
    ClusterHealth {
        brokers: 1,
        partitions: vec![PartitionHealth {
            topic: "events".into(),
            partition: 0,
            leader: 1,
            replicas: 1,
            isr: 1,
            watermarks: Some((0, 1)),
        }],
        partitions_left_out: 0,
        min_insync: [("events".to_string(), 1)].into(),
        ..ClusterHealth::default()
    }
}

#[test]
fn buckets_read_a_p99_from_1ms_to_60s_and_contain_one_second() {
    assert_eq!(LATENCY_BUCKETS[0], 0.001);
    assert_eq!(LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1], 60.0);
    assert!(LATENCY_BUCKETS.contains(&1.0));
    for pair in LATENCY_BUCKETS.windows(2) {
        assert!(pair[1] > pair[0], "{pair:?} not ascending");
        assert!(pair[1] / pair[0] <= 1.67 + 1e-9, "{pair:?} too coarse");
    }
    let (registry, _) = setup();
    let text = prometheus_text(&registry);
    assert!(text.contains(
        "meshflow_e2e_latency_seconds_bucket{kafka_cluster=\"default\",le=\"1.0\",topic=\"events\",group=\"g1\"} 0"
    ));
}

#[test]
fn every_contract_name_is_registered() {
    let (registry, metrics) = setup();
    // Families without series are not written; give each one.
    metrics.record_invalid("events", "not_a_number");
    metrics.set_group_lag("g1", "events", 0, 1, Some(1.0));
    metrics.set_cluster(&one_partition(), Granularity::Partition);
    let text = prometheus_text(&registry);
    for (name, kind) in [
        ("meshflow_e2e_latency_seconds", "histogram"),
        ("meshflow_delivery_latency_seconds", "histogram"),
        ("meshflow_messages_total", "counter"),
        ("meshflow_messages_lost_total", "counter"),
        ("meshflow_messages_duplicated_total", "counter"),
        ("meshflow_messages_invalid_total", "counter"),
        ("meshflow_clock_skew_total", "counter"),
        ("meshflow_consumer_lag_messages", "gauge"),
        ("meshflow_consumer_lag_seconds", "gauge"),
        ("meshflow_consumer_group_status", "gauge"),
        ("meshflow_partition_under_replicated", "gauge"),
        ("meshflow_partition_leaderless", "gauge"),
        ("meshflow_brokers", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} {kind} missing:\n{text}"
        );
    }
}

#[test]
fn trace_ids_are_checked_before_becoming_exemplars() {
    assert!(valid_trace_id(TRACE));
    for bad in [
        "",
        "00000000000000000000000000000000",
        "4BF92F3577B34DA6A3CE929D0E0E4736",
        "4bf92f3577b34da6a3ce929d0e0e473",
        "4bf92f3577b34da6a3ce929d0e0e4736a",
        "4bf92f3577b34da6a3ce929d0e0e473\"",
    ] {
        assert!(!valid_trace_id(bad), "{bad}");
    }
}

#[test]
fn every_family_exposed_carries_its_help_text() {
    let (registry, metrics) = setup();
    // Families without series are not written: give the labelled ones one.
    metrics.record_invalid("events", "bad");
    metrics.set_group_lag("g1", "events", 1, 1, None);
    metrics.set_group_lag("g1", "events", 0, 1, Some(1.0));
    metrics.set_partition_status("g1", "events", 0, GroupStatus::Ok);
    metrics.set_lag_lower_bound("g1", "events", 0, Some(false));
    metrics.set_burrow_status("g1", Some(crate::status::burrow::BurrowStatus::Ok));
    metrics.record_expired("g1", "events", 0, 0, 0);
    metrics
        .membership()
        .set(&crate::membership::Membership::new(
            "g1",
            "Stable",
            "consumer",
            "range",
            [],
        ));
    metrics.set_read_lag("events", Duration::from_secs(1));
    metrics.set_cluster(&one_partition(), Granularity::Partition);
    metrics.set_brokers(&[crate::cluster::Broker {
        id: 1,
        address: "kafka:9092".into(),
        rack: None,
    }]);
    let probe = metrics.probe();
    probe.set_layout(&[(0, 1)], 0);
    probe.sent(0, 1, Some(0.01));
    probe.received(0, 1, 0.02);
    let text = prometheus_text(&registry);
    let exposed: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP meshflow_")?.split_once(' '))
        .map(|(name, help)| {
            // The text format ends help with a full stop.
            let help = help.strip_suffix('.').unwrap_or(help);
            (name.strip_suffix("_total").unwrap_or(name), help)
        })
        .collect();
    for (name, help) in &exposed {
        let want = help::help(name);
        assert!(!want.is_empty(), "{name} has no help text");
        assert_eq!(*help, want, "{name}");
    }
    let build = format!(
        "meshflow_exporter_build_info{{version=\"{}\",commit=\"{}\"}}",
        meshflow_common::build::VERSION,
        meshflow_common::build::COMMIT
    );
    assert_eq!(value(&registry, &build), 1.0);
    let names: std::collections::BTreeSet<&str> = help::HELP.iter().map(|(n, _)| *n).collect();
    assert_eq!(names.len(), help::HELP.len(), "a family named twice");
    assert_eq!(exposed.len(), help::HELP.len(), "{exposed:?}");
}

#[test]
fn the_expected_cluster_is_published_for_the_brokers_alerts() {
    let (registry, metrics) = setup();
    assert_eq!(
        value(
            &registry,
            "meshflow_brokers_expected{kafka_cluster=\"default\"}"
        ),
        0.0
    );
    metrics.set_expected_cluster(&crate::config::ClusterExpectation {
        brokers: 1,
        min_insync_replicas: 1,
        granularity: Granularity::Partition,
    });
    assert_eq!(
        value(
            &registry,
            "meshflow_brokers_expected{kafka_cluster=\"default\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &registry,
            "meshflow_brokers_min_insync{kafka_cluster=\"default\"}"
        ),
        1.0
    );
}

#[test]
fn each_cluster_has_its_own_lag_and_status_series_and_only_the_home_one_judges() {
    let mut registry = Registry::with_prefix("meshflow");
    let home = ExporterMetrics::register_for(&mut registry, &Groups::new(["g1"]), "eu");
    let us = home.for_cluster("us", &Groups::new(std::iter::empty::<String>()));
    home.set_group_lag("orders", "events", 0, 5, Some(1.0));
    us.set_group_lag("orders", "events", 0, 7, Some(2.0));
    us.set_group_status("orders", Some(GroupStatus::Ok));
    let lag = |cluster: &str| {
        sample(
            &registry,
            &format!("meshflow_consumer_lag_messages{{kafka_cluster=\"{cluster}\",group=\"orders\",topic=\"events\",partition=\"0\"}}"),
        )
    };
    assert_eq!((lag("eu"), lag("us")), (Some(5.0), Some(7.0)));
    let code = |cluster: &str, group: &str| {
        sample(
            &registry,
            &format!("meshflow_consumer_group_status_code{{kafka_cluster=\"{cluster}\",group=\"{group}\"}}"),
        )
    };
    assert_eq!(code("us", "orders"), Some(1.0));
    assert_eq!(code("eu", "orders"), None, "no cross-talk");
    assert_eq!(
        code("eu", "g1"),
        Some(3.0),
        "judged groups start ERR at home"
    );
    assert_eq!(code("us", "g1"), None, "and are not judged elsewhere");
    // Removing one cluster's series leaves the other's.
    us.remove_group_lag("orders", "events", 0);
    assert_eq!((lag("eu"), lag("us")), (Some(5.0), None));
    // Every cluster's poll series exist from the start.
    for cluster in ["eu", "us"] {
        let errors = format!(
            "meshflow_exporter_poll_errors_total{{kafka_cluster=\"{cluster}\",kind=\"metadata\"}}"
        );
        assert_eq!(sample(&registry, &errors), Some(0.0), "{cluster}");
        let brokers = format!("meshflow_brokers_expected{{kafka_cluster=\"{cluster}\"}}");
        assert_eq!(sample(&registry, &brokers), Some(0.0), "{cluster}");
    }
    // The accounting's series are the home cluster's: one exporter judges
    // one cluster's traffic.
    let _ = home.for_topic("events");
    let log =
        "meshflow_messages_total{kafka_cluster=\"eu\",topic=\"events\",stage=\"log\",group=\"\"}";
    assert_eq!(sample(&registry, log), Some(0.0));
}
