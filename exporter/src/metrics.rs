//! The exporter's metrics, registered under the `meshflow` prefix.
//!
//! Names and labels are the contract in `docs/contracts.md`: dashboards and
//! alerts read them. Labels are bounded: topic, group (only the configured
//! ones), stage, partition, reason; never a producer id or a trace id (the
//! trace id rides as an exemplar of the end-to-end latency histogram only).
//!
//! The series of each judged topic's stages (`log`, and `processed` per
//! watched group) are created when the topic is first judged and kept as
//! handles ([`TopicSeries`]), so an observation costs a few atomic
//! operations and every counter exists at 0 before anything happens, which
//! `increase()` in alert rules needs.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::cluster::{Broker, ClusterHealth};
use crate::config::{ClusterExpectation, Granularity};
use crate::groups::Groups;
use crate::observation::{Evictions, SweepReport};
use crate::status::GroupStatus;

mod help;
/// Registers each `name => metric` as a family, with its help text.
macro_rules! register {
    ($registry:expr; $($name:literal => $metric:expr),* $(,)?) => {
        $($registry.register($name, help::help($name), $metric);)*
    };
}
mod cluster;
mod groups;
mod labels;
mod membership;
mod poll;
mod probe;
mod series;
mod topic;

use cluster::ClusterSeries;
pub use labels::*;
pub use membership::MembershipSeries;
pub use poll::PollReport;
use poll::PollSeries;
pub use probe::ProbeSeries;
pub use topic::TopicSeries;

/// Full name of the group status family, which the HTTP endpoint declares
/// as an OpenMetrics stateset.
pub const GROUP_STATUS: &str = "meshflow_consumer_group_status";

/// Latency bucket bounds in seconds, shared by both latency histograms:
/// 1, 1.5, 2, 3, 5 and 7.5 per decade from 1 ms to 10 s, then up to 60 s.
/// Neighbouring bounds differ by at most a factor of 1.67, so a p99 read
/// anywhere from 1 ms to 60 s is off by less than that step. Contains
/// exactly 1.0, the bound the latency SLO reads.
pub const LATENCY_BUCKETS: [f64; 30] = [
    0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15,
    0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

type LatencyFamily = Family<
    TopicGroupLabels,
    HistogramWithExemplars<TraceLabels>,
    fn() -> HistogramWithExemplars<TraceLabels>,
>;
type DeliveryFamily = Family<TopicLabels, Histogram, fn() -> Histogram>;
type SecondsGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> HistogramWithExemplars<TraceLabels> {
    HistogramWithExemplars::new(LATENCY_BUCKETS.into_iter())
}

fn delivery_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Everything the exporter publishes.
#[derive(Clone, Debug)]
pub struct ExporterMetrics {
    groups: Groups,
    families: TopicFamilies,
    invalid: Family<InvalidLabels, Counter>,
    lag_messages: Family<LagLabels, Gauge>,
    lag_seconds: Family<LagLabels, SecondsGauge>,
    lag_seconds_unknown: Counter,
    lag_lower_bound: Family<LagLabels, Gauge>,
    expired: Family<TopicGroupLabels, Counter>,
    expired_gap: Family<LagLabels, Gauge>,
    left_out: Family<LeftOutLabels, Gauge>,
    group_status: Family<StatusLabels, Gauge>,
    status_code: Family<GroupLabels, Gauge>,
    burrow_status: Family<GroupLabels, Gauge>,
    partition_status: Family<LagLabels, Gauge>,
    cluster: ClusterSeries,
    brokers_expected: Gauge,
    brokers_min_insync: Gauge,
    read_lag: Family<TopicLabels, SecondsGauge>,
    evicted: Family<EvictionLabels, Counter>,
    poll: PollSeries,
    probe: ProbeSeries,
    membership: MembershipSeries,
}

/// The families of the per-topic series, registered once; a topic's
/// handles come from [`ExporterMetrics::for_topic`].
#[derive(Clone, Debug)]
struct TopicFamilies {
    e2e: LatencyFamily,
    delivery: DeliveryFamily,
    messages: Family<StageLabels, Counter>,
    lost: Family<StageLabels, Counter>,
    duplicated: Family<StageLabels, Counter>,
    clock_skew: Family<TopicGroupLabels, Counter>,
    unjudged: Family<StageLabels, Counter>,
    rejected: Family<RejectedLabels, Counter>,
    unmatched: Family<TopicGroupLabels, Counter>,
}

impl ExporterMetrics {
    /// Registers every exporter metric for the watched `groups` into
    /// `registry`; each judged topic's series come with
    /// [`ExporterMetrics::for_topic`].
    pub fn register(registry: &mut Registry, groups: &Groups) -> Self {
        let families = TopicFamilies {
            e2e: Family::new_with_constructor(latency_histogram),
            delivery: Family::new_with_constructor(delivery_histogram),
            messages: Family::default(),
            lost: Family::default(),
            duplicated: Family::default(),
            clock_skew: Family::default(),
            unjudged: Family::default(),
            rejected: Family::default(),
            unmatched: Family::default(),
        };
        let metrics = ExporterMetrics {
            groups: groups.clone(),
            families,
            invalid: Family::default(),
            lag_messages: Family::default(),
            lag_seconds: Family::default(),
            lag_seconds_unknown: Counter::default(),
            lag_lower_bound: Family::default(),
            expired: Family::default(),
            expired_gap: Family::default(),
            left_out: Family::default(),
            group_status: Family::default(),
            status_code: Family::default(),
            burrow_status: Family::default(),
            partition_status: Family::default(),
            cluster: ClusterSeries::register(registry),
            brokers_expected: Gauge::default(),
            brokers_min_insync: Gauge::default(),
            read_lag: Family::default(),
            evicted: Family::default(),
            poll: PollSeries::register(registry),
            probe: ProbeSeries::register(registry),
            membership: MembershipSeries::register(registry),
        };
        metrics.set_left_out(0, 0);
        metrics.set_topics_left_out(0);
        for reason in ["idle", "capacity", "rebased"] {
            let _ = metrics.evicted.get_or_create(&EvictionLabels { reason });
        }
        let f = &metrics.families;
        register!(registry;
            "e2e_latency_seconds"        => f.e2e.clone(),
            "delivery_latency_seconds"   => f.delivery.clone(),
            "messages"                   => f.messages.clone(),
            "messages_lost"              => f.lost.clone(),
            "messages_duplicated"        => f.duplicated.clone(),
            "messages_invalid"           => metrics.invalid.clone(),
            "envelope_rejected"          => f.rejected.clone(),
            "messages_unjudged"          => f.unjudged.clone(),
            "receipts_unmatched"         => f.unmatched.clone(),
            "exporter_read_lag_seconds"  => metrics.read_lag.clone(),
            "exporter_producers_evicted" => metrics.evicted.clone(),
            "clock_skew"                 => f.clock_skew.clone(),
            "consumer_lag_messages"      => metrics.lag_messages.clone(),
            "consumer_lag_seconds"       => metrics.lag_seconds.clone(),
            "exporter_lag_seconds_unknown" => metrics.lag_seconds_unknown.clone(),
            "consumer_lag_seconds_lower_bound" => metrics.lag_lower_bound.clone(),
            "consumer_group_messages_expired" => metrics.expired.clone(),
            "consumer_lag_expired_messages" => metrics.expired_gap.clone(),
            "exporter_discovery_left_out" => metrics.left_out.clone(),
            "consumer_group_status"      => metrics.group_status.clone(),
            "consumer_group_status_code" => metrics.status_code.clone(),
            "consumer_partition_status_code" => metrics.partition_status.clone(),
            "consumer_group_burrow_status_code" => metrics.burrow_status.clone(),
            "brokers_expected"           => metrics.brokers_expected.clone(),
            "brokers_min_insync"         => metrics.brokers_min_insync.clone(),
        );
        for (group, _) in groups.iter() {
            metrics.set_status(group, GroupStatus::Err);
        }
        metrics
    }

    /// A record of `topic` could not be read, for a fixed `reason`.
    pub fn record_invalid(&self, topic: &str, reason: &'static str) {
        self.invalid
            .get_or_create(&InvalidLabels {
                topic: topic.to_string(),
                reason,
            })
            .inc();
    }

    /// Counts the producers a sweep evicted as idle (the rest of a sweep's
    /// findings go to the topic's series, see [`TopicSeries::record_sweep`]).
    pub fn record_sweep(&self, report: &SweepReport) {
        self.evicted(report.evicted_idle, "idle");
    }

    /// Sets the cumulative evictions for `capacity` and `rebased` (idle ones
    /// come with each sweep).
    pub fn record_evictions(&self, total: Evictions, before: Evictions) {
        self.evicted(total.capacity.saturating_sub(before.capacity), "capacity");
        self.evicted(total.rebased.saturating_sub(before.rebased), "rebased");
    }

    fn evicted(&self, count: u64, reason: &'static str) {
        if count > 0 {
            self.evicted
                .get_or_create(&EvictionLabels { reason })
                .inc_by(count);
        }
    }

    /// How far behind the reading of `topic` is.
    pub fn set_read_lag(&self, topic: &str, lag: std::time::Duration) {
        self.read_lag
            .get_or_create(&TopicLabels {
                topic: topic.to_string(),
            })
            .set(lag.as_secs_f64());
    }

    /// Publishes what the cluster should look like, for the brokers alerts.
    pub fn set_expected_cluster(&self, expected: &ClusterExpectation) {
        self.brokers_expected.set(i64::from(expected.brokers));
        self.brokers_min_insync
            .set(i64::from(expected.min_insync_replicas));
    }

    /// Records one poll of the cluster.
    pub fn record_poll(&self, report: &PollReport) {
        self.poll.record(report);
    }

    /// Publishes the cluster view from one metadata answer, at
    /// `granularity`.
    pub fn set_cluster(&self, health: &ClusterHealth, granularity: Granularity) {
        self.cluster.record(health, granularity);
    }

    /// Publishes the brokers with their racks.
    pub fn set_brokers(&self, brokers: &[Broker]) {
        self.cluster.record_brokers(brokers);
    }

    /// The watched groups.
    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// The probe's series.
    pub fn probe(&self) -> &ProbeSeries {
        &self.probe
    }

    /// The described groups' series.
    pub fn membership(&self) -> &MembershipSeries {
        &self.membership
    }
}

#[cfg(test)]
mod tests;
