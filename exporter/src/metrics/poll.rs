//! The exporter's metrics about itself: what it is, and how its polling of
//! the cluster goes.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::{help, Scoped, Unlabelled};
use crate::cluster::POLL_ERROR_KINDS;

/// Poll duration buckets, seconds: from 10 ms to the request timeouts a
/// poll is bounded by, and beyond.
const POLL_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
];

/// Labels of the build info: the exporter's version and git commit, as
/// `--version` prints them.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
}

/// Labels of the poll errors: what failed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// One poll, as the exporter's own series see it.
#[derive(Debug, Clone, PartialEq)]
pub struct PollReport {
    /// How long the poll took.
    pub seconds: f64,
    /// What failed, each kind once.
    pub errors: Vec<&'static str>,
    /// When it ended, unix seconds.
    pub ended_unix_s: f64,
    /// Groups watched.
    pub groups: usize,
    /// Partitions with a lag figure, summed over the groups.
    pub partitions: usize,
}

/// Handles on the exporter's own series.
#[derive(Clone, Debug)]
pub(super) struct PollSeries {
    duration: Scoped<Unlabelled, Histogram>,
    errors: Scoped<KindLabels, Counter>,
    last_success: Scoped<Unlabelled, Gauge<f64, AtomicU64>>,
    groups: Scoped<Unlabelled, Gauge>,
    partitions: Scoped<Unlabelled, Gauge>,
}

fn poll_histogram() -> Histogram {
    Histogram::new(POLL_BUCKETS)
}

impl PollSeries {
    /// Registers the build info and the poll series, writing for
    /// `cluster`.
    pub(super) fn register(registry: &mut Registry, cluster: &str) -> Self {
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: meshflow_common::build::VERSION,
                commit: meshflow_common::build::COMMIT,
            })
            .set(1);
        let series = PollSeries {
            duration: Scoped::with_constructor(cluster, poll_histogram as fn() -> Histogram),
            errors: Scoped::new(cluster),
            last_success: Scoped::new(cluster),
            groups: Scoped::new(cluster),
            partitions: Scoped::new(cluster),
        };
        register!(registry;
            "exporter_build_info"                             => build,
            "exporter_poll_duration_seconds"                  => series.duration.family(),
            "exporter_poll_errors"                            => series.errors.family(),
            "exporter_last_successful_poll_timestamp_seconds" => series.last_success.family(),
            "exporter_groups_watched"                         => series.groups.family(),
            "exporter_partitions_watched"                     => series.partitions.family(),
        );
        series
    }

    /// The same families, writing for `cluster`.
    pub(super) fn in_cluster(&self, cluster: &str) -> Self {
        PollSeries {
            duration: self.duration.in_cluster(cluster),
            errors: self.errors.in_cluster(cluster),
            last_success: self.last_success.in_cluster(cluster),
            groups: self.groups.in_cluster(cluster),
            partitions: self.partitions.in_cluster(cluster),
        }
    }

    /// Every series exists from the start (each error kind at 0, for
    /// `increase()`), as when the exporter watched one cluster.
    pub(super) fn start(&self) {
        let _ = self.duration.get();
        let _ = self.last_success.get();
        let _ = self.groups.get();
        let _ = self.partitions.get();
        for kind in POLL_ERROR_KINDS {
            let _ = self.errors.get_or_create(&KindLabels { kind });
        }
    }

    /// Records one poll.
    pub(super) fn record(&self, report: &PollReport) {
        self.duration.get().observe(report.seconds);
        for &kind in &report.errors {
            self.errors.get_or_create(&KindLabels { kind }).inc();
        }
        if report.errors.is_empty() {
            self.last_success.get().set(report.ended_unix_s);
        }
        self.groups.get().set(clamp(report.groups));
        self.partitions.get().set(clamp(report.partitions));
    }
}

fn clamp(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
