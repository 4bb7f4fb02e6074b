//! The exporter's metrics about itself: what it is, and how its polling of
//! the cluster goes.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::help;
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
    duration: Histogram,
    errors: Family<KindLabels, Counter>,
    last_success: Gauge<f64, AtomicU64>,
    groups: Gauge,
    partitions: Gauge,
}

impl PollSeries {
    /// Registers the build info and the poll series; every error kind
    /// exists at 0 from the start.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: meshflow_common::build::VERSION,
                commit: meshflow_common::build::COMMIT,
            })
            .set(1);
        let series = PollSeries {
            duration: Histogram::new(POLL_BUCKETS),
            errors: Family::default(),
            last_success: Gauge::default(),
            groups: Gauge::default(),
            partitions: Gauge::default(),
        };
        for kind in POLL_ERROR_KINDS {
            let _ = series.errors.get_or_create(&KindLabels { kind });
        }
        register!(registry;
            "exporter_build_info"                             => build,
            "exporter_poll_duration_seconds"                  => series.duration.clone(),
            "exporter_poll_errors"                            => series.errors.clone(),
            "exporter_last_successful_poll_timestamp_seconds" => series.last_success.clone(),
            "exporter_groups_watched"                         => series.groups.clone(),
            "exporter_partitions_watched"                     => series.partitions.clone(),
        );
        series
    }

    /// Records one poll.
    pub(super) fn record(&self, report: &PollReport) {
        self.duration.observe(report.seconds);
        for &kind in &report.errors {
            self.errors.get_or_create(&KindLabels { kind }).inc();
        }
        if report.errors.is_empty() {
            self.last_success.set(report.ended_unix_s);
        }
        self.groups.set(clamp(report.groups));
        self.partitions.set(clamp(report.partitions));
    }
}

fn clamp(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
