//! The exporter's metrics, registered under the `meshflow` prefix.
//!
//! Names and labels are the contract in `docs/contracts.md`: dashboards and
//! alerts read them. Labels are bounded: topic, group (only the configured
//! ones), stage, partition, reason; never a producer id or a trace id (the
//! trace id rides as an exemplar of the end-to-end latency histogram only).
//!
//! The series of each stage (`log`, and `processed` per watched group) are
//! created at start and kept as handles, so an observation costs a few
//! atomic operations and every counter exists at 0 before anything happens,
//! which `increase()` in alert rules needs.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::cluster::{Broker, ClusterHealth};
use crate::config::{ClusterExpectation, Granularity};
use crate::groups::{GroupId, Groups, PerGroup};
use crate::observation::{Evictions, Observed, Rejection, SweepReport};
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
mod poll;
mod probe;
mod series;

use cluster::ClusterSeries;
pub use labels::*;
pub use poll::PollReport;
use poll::PollSeries;
pub use probe::ProbeSeries;
use series::{record, valid_trace_id, GroupSeries, StageSeries};

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
    topic: String,
    groups: Groups,
    log: StageSeries,
    per_group: PerGroup<GroupSeries>,
    delivery_latency: Histogram,
    invalid: Family<InvalidLabels, Counter>,
    lag_messages: Family<LagLabels, Gauge>,
    lag_seconds: Family<LagLabels, SecondsGauge>,
    lag_seconds_unknown: Counter,
    left_out: Family<LeftOutLabels, Gauge>,
    group_status: Family<StatusLabels, Gauge>,
    status_code: Family<GroupLabels, Gauge>,
    partition_status: Family<LagLabels, Gauge>,
    cluster: ClusterSeries,
    brokers_expected: Gauge,
    brokers_min_insync: Gauge,
    read_lag: Family<TopicLabels, SecondsGauge>,
    evicted: Family<EvictionLabels, Counter>,
    poll: PollSeries,
    probe: ProbeSeries,
}

impl ExporterMetrics {
    /// Registers every exporter metric for `topic` and the watched `groups`
    /// into `registry`.
    pub fn register(registry: &mut Registry, topic: &str, groups: &Groups) -> Self {
        let e2e: LatencyFamily = Family::new_with_constructor(latency_histogram);
        let delivery: DeliveryFamily = Family::new_with_constructor(delivery_histogram);
        let messages = Family::<StageLabels, Counter>::default();
        let lost = Family::<StageLabels, Counter>::default();
        let duplicated = Family::<StageLabels, Counter>::default();
        let clock_skew = Family::<TopicGroupLabels, Counter>::default();
        let unjudged = Family::<StageLabels, Counter>::default();
        let rejected = Family::<RejectedLabels, Counter>::default();
        let unmatched = Family::<TopicGroupLabels, Counter>::default();
        let stage = |stage: &'static str, group: &str| {
            let labels = StageLabels {
                topic: topic.to_string(),
                stage,
                group: group.to_string(),
            };
            let skew = TopicGroupLabels {
                topic: topic.to_string(),
                group: group.to_string(),
            };
            StageSeries {
                messages: messages.get_or_create(&labels).clone(),
                lost: lost.get_or_create(&labels).clone(),
                duplicated: duplicated.get_or_create(&labels).clone(),
                clock_skew: clock_skew.get_or_create(&skew).clone(),
                unjudged: unjudged.get_or_create(&labels).clone(),
                rejected: Rejection::ALL
                    .iter()
                    .map(|why| {
                        rejected
                            .get_or_create(&RejectedLabels {
                                topic: topic.to_string(),
                                stage,
                                reason: why.as_str(),
                            })
                            .clone()
                    })
                    .collect(),
            }
        };
        let log = stage("log", "");
        let per_group = PerGroup::from_fn(groups, |id| {
            let labels = TopicGroupLabels {
                topic: topic.to_string(),
                group: groups.name(id).to_string(),
            };
            GroupSeries {
                processed: stage("processed", groups.name(id)),
                e2e_latency: e2e.get_or_create(&labels).clone(),
                unmatched: unmatched.get_or_create(&labels).clone(),
            }
        });
        let delivery_latency = delivery
            .get_or_create(&TopicLabels {
                topic: topic.to_string(),
            })
            .clone();
        let metrics = ExporterMetrics {
            topic: topic.to_string(),
            groups: groups.clone(),
            log,
            per_group,
            delivery_latency,
            invalid: Family::default(),
            lag_messages: Family::default(),
            lag_seconds: Family::default(),
            lag_seconds_unknown: Counter::default(),
            left_out: Family::default(),
            group_status: Family::default(),
            status_code: Family::default(),
            partition_status: Family::default(),
            cluster: ClusterSeries::register(registry),
            brokers_expected: Gauge::default(),
            brokers_min_insync: Gauge::default(),
            read_lag: Family::default(),
            evicted: Family::default(),
            poll: PollSeries::register(registry),
            probe: ProbeSeries::register(registry),
        };
        metrics.set_left_out(0, 0);
        for reason in ["idle", "capacity", "rebased"] {
            let _ = metrics.evicted.get_or_create(&EvictionLabels { reason });
        }
        register!(registry;
            "e2e_latency_seconds"        => e2e,
            "delivery_latency_seconds"   => delivery,
            "messages"                   => messages,
            "messages_lost"              => lost,
            "messages_duplicated"        => duplicated,
            "messages_invalid"           => metrics.invalid.clone(),
            "envelope_rejected"          => rejected,
            "messages_unjudged"          => unjudged,
            "receipts_unmatched"         => unmatched,
            "exporter_read_lag_seconds"  => metrics.read_lag.clone(),
            "exporter_producers_evicted" => metrics.evicted.clone(),
            "clock_skew"                 => clock_skew,
            "consumer_lag_messages"      => metrics.lag_messages.clone(),
            "consumer_lag_seconds"       => metrics.lag_seconds.clone(),
            "exporter_lag_seconds_unknown" => metrics.lag_seconds_unknown.clone(),
            "exporter_discovery_left_out" => metrics.left_out.clone(),
            "consumer_group_status"      => metrics.group_status.clone(),
            "consumer_group_status_code" => metrics.status_code.clone(),
            "consumer_partition_status_code" => metrics.partition_status.clone(),
            "brokers_expected"           => metrics.brokers_expected.clone(),
            "brokers_min_insync"         => metrics.brokers_min_insync.clone(),
        );
        for (group, _) in groups.iter() {
            metrics.set_status(group, GroupStatus::Err);
        }
        metrics
    }

    /// Accounts a message read from the data topic.
    pub fn record_log(&self, observed: Observed) {
        record(&self.log, observed, |seconds| {
            self.delivery_latency.observe(seconds)
        });
    }

    /// Accounts a receipt entry of `group`; `trace_id` becomes the
    /// latency's exemplar when it is a valid W3C trace id.
    pub fn record_receipt(&self, group: GroupId, observed: Observed, trace_id: &str) {
        let Some(series) = self.per_group.get(group) else {
            return;
        };
        record(&series.processed, observed, |seconds| {
            let exemplar = valid_trace_id(trace_id).then(|| TraceLabels {
                trace_id: trace_id.to_string(),
            });
            series.e2e_latency.observe(seconds, exemplar, None);
        });
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

    /// Adds what a sweep found.
    pub fn record_sweep(&self, report: &SweepReport) {
        self.log.lost.inc_by(report.log_lost);
        for (group, series) in self.per_group.iter() {
            let found = |per_group: &PerGroup<u64>| per_group.get(group).copied().unwrap_or(0);
            series.processed.lost.inc_by(found(&report.processed_lost));
            series
                .processed
                .unjudged
                .inc_by(found(&report.processed_unjudged));
            series.unmatched.inc_by(found(&report.receipts_unmatched));
        }
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
}

#[cfg(test)]
mod tests;
