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
use crate::config::{ClusterExpectation, Granularity, DEFAULT_CLUSTER_NAME};
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
mod scoped;
mod series;
mod topic;

use cluster::ClusterSeries;
pub use labels::*;
pub use membership::MembershipSeries;
pub use poll::PollReport;
use poll::PollSeries;
pub use probe::ProbeSeries;
pub use scoped::{ClusterLabel, Scoped, Unlabelled};
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

/// The part of `registry` whose series carry `kafka_cluster="<home>"` as a
/// constant label: the accounting's and the probe's, which only the home
/// cluster has (one handle writes them, so no family is registered twice).
fn at_home<'r>(registry: &'r mut Registry, home: &str) -> &'r mut Registry {
    registry.sub_registry_with_label(("kafka_cluster".into(), home.to_string().into()))
}

/// Everything the exporter publishes.
#[derive(Clone, Debug)]
pub struct ExporterMetrics {
    groups: Groups,
    families: TopicFamilies,
    invalid: Family<InvalidLabels, Counter>,
    lag_messages: Scoped<LagLabels, Gauge>,
    lag_seconds: Scoped<LagLabels, SecondsGauge>,
    lag_seconds_unknown: Scoped<Unlabelled, Counter>,
    lag_lower_bound: Scoped<LagLabels, Gauge>,
    expired: Scoped<TopicGroupLabels, Counter>,
    expired_gap: Scoped<LagLabels, Gauge>,
    left_out: Scoped<LeftOutLabels, Gauge>,
    group_status: Scoped<StatusLabels, Gauge>,
    status_code: Scoped<GroupLabels, Gauge>,
    burrow_status: Scoped<GroupLabels, Gauge>,
    partition_status: Scoped<LagLabels, Gauge>,
    cluster: ClusterSeries,
    brokers_expected: Scoped<Unlabelled, Gauge>,
    brokers_min_insync: Scoped<Unlabelled, Gauge>,
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
    /// `registry`, the cluster-scoped ones written for the cluster named
    /// [`DEFAULT_CLUSTER_NAME`]; see [`ExporterMetrics::register_for`].
    pub fn register(registry: &mut Registry, groups: &Groups) -> Self {
        Self::register_for(registry, groups, DEFAULT_CLUSTER_NAME)
    }

    /// Registers every exporter metric for the watched `groups` into
    /// `registry`; the cluster-scoped series of the handle returned carry
    /// `kafka_cluster="<home>"`, and [`ExporterMetrics::for_cluster`] gives the
    /// handle of another watched cluster. Each judged topic's series come
    /// with [`ExporterMetrics::for_topic`].
    pub fn register_for(registry: &mut Registry, groups: &Groups, home: &str) -> Self {
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
            lag_messages: Scoped::new(home),
            lag_seconds: Scoped::new(home),
            lag_seconds_unknown: Scoped::new(home),
            lag_lower_bound: Scoped::new(home),
            expired: Scoped::new(home),
            expired_gap: Scoped::new(home),
            left_out: Scoped::new(home),
            group_status: Scoped::new(home),
            status_code: Scoped::new(home),
            burrow_status: Scoped::new(home),
            partition_status: Scoped::new(home),
            cluster: ClusterSeries::register(registry, home),
            brokers_expected: Scoped::new(home),
            brokers_min_insync: Scoped::new(home),
            read_lag: Family::default(),
            evicted: Family::default(),
            poll: PollSeries::register(registry, home),
            probe: ProbeSeries::register(at_home(registry, home)),
            membership: MembershipSeries::register(registry, home),
        };
        metrics.start_cluster();
        for reason in ["idle", "capacity", "rebased"] {
            let _ = metrics.evicted.get_or_create(&EvictionLabels { reason });
        }
        let f = &metrics.families;
        let judged = at_home(registry, home);
        register!(judged;
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
        );
        register!(registry;
            "consumer_lag_messages"      => metrics.lag_messages.family(),
            "consumer_lag_seconds"       => metrics.lag_seconds.family(),
            "exporter_lag_seconds_unknown" => metrics.lag_seconds_unknown.family(),
            "consumer_lag_seconds_lower_bound" => metrics.lag_lower_bound.family(),
            "consumer_group_messages_expired" => metrics.expired.family(),
            "consumer_lag_expired_messages" => metrics.expired_gap.family(),
            "exporter_discovery_left_out" => metrics.left_out.family(),
            "consumer_group_status"      => metrics.group_status.family(),
            "consumer_group_status_code" => metrics.status_code.family(),
            "consumer_partition_status_code" => metrics.partition_status.family(),
            "consumer_group_burrow_status_code" => metrics.burrow_status.family(),
            "brokers_expected"           => metrics.brokers_expected.family(),
            "brokers_min_insync"         => metrics.brokers_min_insync.family(),
        );
        for (group, _) in groups.iter() {
            metrics.set_status(group, GroupStatus::Err);
        }
        metrics
    }

    /// The handle of another watched cluster: the same families, its
    /// cluster-scoped series labelled `kafka_cluster="<name>"` and its own record
    /// of the cluster view published. It watches no judged group (those
    /// are judged on the home cluster), so it starts with none.
    pub fn for_cluster(&self, name: &str, groups: &Groups) -> Self {
        let metrics = ExporterMetrics {
            groups: groups.clone(),
            families: self.families.clone(),
            invalid: self.invalid.clone(),
            lag_messages: self.lag_messages.in_cluster(name),
            lag_seconds: self.lag_seconds.in_cluster(name),
            lag_seconds_unknown: self.lag_seconds_unknown.in_cluster(name),
            lag_lower_bound: self.lag_lower_bound.in_cluster(name),
            expired: self.expired.in_cluster(name),
            expired_gap: self.expired_gap.in_cluster(name),
            left_out: self.left_out.in_cluster(name),
            group_status: self.group_status.in_cluster(name),
            status_code: self.status_code.in_cluster(name),
            burrow_status: self.burrow_status.in_cluster(name),
            partition_status: self.partition_status.in_cluster(name),
            cluster: self.cluster.in_cluster(name),
            brokers_expected: self.brokers_expected.in_cluster(name),
            brokers_min_insync: self.brokers_min_insync.in_cluster(name),
            read_lag: self.read_lag.clone(),
            evicted: self.evicted.clone(),
            poll: self.poll.in_cluster(name),
            probe: self.probe.clone(),
            membership: self.membership.in_cluster(name),
        };
        metrics.start_cluster();
        metrics
    }

    /// The cluster's series that exist at 0 from the start, for
    /// `increase()` and for the panels that show nothing left out.
    fn start_cluster(&self) {
        self.set_left_out(0, 0);
        self.set_topics_left_out(0);
        self.poll.start();
        self.cluster.start();
        let _ = self.lag_seconds_unknown.get();
        let _ = self.brokers_expected.get();
        let _ = self.brokers_min_insync.get();
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
        self.brokers_expected.get().set(i64::from(expected.brokers));
        self.brokers_min_insync
            .get()
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
