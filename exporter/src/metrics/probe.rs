//! The probe's series: per partition of the probe topic and per broker
//! that led it when the message was sent. Both labels are bounded: the
//! probe writes at most `MAX_PROBE_PARTITIONS` partitions, and a
//! partition's leader is one of the cluster's brokers.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::{help, LATENCY_BUCKETS};

/// Labels: the probe topic's partition and the broker leading it when the
/// message was sent (-1: unknown).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    pub(crate) partition: i32,
    pub(crate) broker: i32,
}

/// Labels: [`ProbeLabels`] and how a send ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SendLabels {
    pub(crate) partition: i32,
    pub(crate) broker: i32,
    /// `acked` or `failed`.
    pub(crate) result: &'static str,
}

type ProbeHistograms = Family<ProbeLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Handles on the probe's series.
#[derive(Clone, Debug)]
pub struct ProbeSeries {
    sent: Family<SendLabels, Counter>,
    received: Family<ProbeLabels, Counter>,
    lost: Family<ProbeLabels, Counter>,
    duplicated: Family<ProbeLabels, Counter>,
    round_trip: ProbeHistograms,
    ack: ProbeHistograms,
    unjudged: Counter,
    foreign: Counter,
    partitions: Gauge,
    uncovered: Gauge,
    enabled: Gauge,
}

impl ProbeSeries {
    /// Registers the probe's families (empty while the probe is off).
    pub(super) fn register(registry: &mut Registry) -> Self {
        let series = ProbeSeries {
            sent: Family::default(),
            received: Family::default(),
            lost: Family::default(),
            duplicated: Family::default(),
            round_trip: Family::new_with_constructor(latency_histogram),
            ack: Family::new_with_constructor(latency_histogram),
            unjudged: Counter::default(),
            foreign: Counter::default(),
            partitions: Gauge::default(),
            uncovered: Gauge::default(),
            enabled: Gauge::default(),
        };
        register!(registry;
            "probe_messages_sent"         => series.sent.clone(),
            "probe_messages_received"     => series.received.clone(),
            "probe_messages_lost"         => series.lost.clone(),
            "probe_messages_duplicated"   => series.duplicated.clone(),
            "probe_messages_unjudged"     => series.unjudged.clone(),
            "probe_records_foreign"       => series.foreign.clone(),
            "probe_round_trip_seconds"    => series.round_trip.clone(),
            "probe_ack_latency_seconds"   => series.ack.clone(),
            "probe_partitions"            => series.partitions.clone(),
            "probe_brokers_uncovered"     => series.uncovered.clone(),
            "probe_enabled"               => series.enabled.clone(),
        );
        series
    }

    /// The probe runs (`exporter.probe.enabled`).
    pub fn set_enabled(&self) {
        self.enabled.set(1);
    }

    /// The probe writes `partitions` partitions; `uncovered` brokers lead
    /// none of them. Every counter of each (partition, leader) exists at 0
    /// from now on.
    pub fn set_layout(&self, leaders: &[(i32, i32)], uncovered: usize) {
        self.partitions.set(clamp(leaders.len()));
        self.uncovered.set(clamp(uncovered));
        for &(partition, broker) in leaders {
            let labels = ProbeLabels { partition, broker };
            for result in ["acked", "failed"] {
                let _ = self.sent.get_or_create(&SendLabels {
                    partition,
                    broker,
                    result,
                });
            }
            let _ = self.received.get_or_create(&labels);
            let _ = self.lost.get_or_create(&labels);
            let _ = self.duplicated.get_or_create(&labels);
        }
    }

    /// A send to `partition`, led by `broker`, was acknowledged after
    /// `seconds`, or failed (`seconds` is then `None`).
    pub fn sent(&self, partition: i32, broker: i32, seconds: Option<f64>) {
        let result = if seconds.is_some() { "acked" } else { "failed" };
        self.sent
            .get_or_create(&SendLabels {
                partition,
                broker,
                result,
            })
            .inc();
        if let Some(seconds) = seconds {
            self.ack
                .get_or_create(&ProbeLabels { partition, broker })
                .observe(seconds);
        }
    }

    /// A message came back after `seconds`.
    pub fn received(&self, partition: i32, broker: i32, seconds: f64) {
        let labels = ProbeLabels { partition, broker };
        self.received.get_or_create(&labels).inc();
        self.round_trip.get_or_create(&labels).observe(seconds);
    }

    /// An acknowledged message the reading passed without it.
    pub fn lost(&self, partition: i32, broker: i32) {
        self.lost
            .get_or_create(&ProbeLabels { partition, broker })
            .inc();
    }

    /// A message read back again.
    pub fn duplicated(&self, partition: i32, broker: i32) {
        self.duplicated
            .get_or_create(&ProbeLabels { partition, broker })
            .inc();
    }

    /// A record of the probe topic this probe did not write.
    pub fn foreign(&self) {
        self.foreign.inc();
    }

    /// Messages dropped from the probe's books unjudged.
    pub fn unjudged(&self, count: u64) {
        self.unjudged.inc_by(count);
    }
}

fn clamp(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::value;

    #[test]
    fn the_probe_series_of_a_partition_exist_at_zero_and_count_per_broker() {
        let mut registry = Registry::with_prefix("meshflow");
        let probe = ProbeSeries::register(&mut registry);
        probe.set_layout(&[(0, 1), (1, 2), (2, 2)], 1);
        assert_eq!(value(&registry, "meshflow_probe_enabled"), 0.0);
        probe.set_enabled();
        assert_eq!(value(&registry, "meshflow_probe_enabled"), 1.0);
        assert_eq!(value(&registry, "meshflow_probe_partitions"), 3.0);
        assert_eq!(value(&registry, "meshflow_probe_brokers_uncovered"), 1.0);
        for (partition, broker) in [(0, 1), (1, 2), (2, 2)] {
            let labels = format!("{{partition=\"{partition}\",broker=\"{broker}\"}}");
            for name in ["received", "lost", "duplicated"] {
                let series = format!("meshflow_probe_messages_{name}_total{labels}");
                assert_eq!(value(&registry, &series), 0.0, "{series}");
            }
        }
        probe.sent(1, 2, Some(0.004));
        probe.sent(1, 2, None);
        probe.received(1, 2, 0.3);
        probe.lost(2, 2);
        let sent = |result: &str| {
            value(
                &registry,
                &format!("meshflow_probe_messages_sent_total{{partition=\"1\",broker=\"2\",result=\"{result}\"}}"),
            )
        };
        assert_eq!((sent("acked"), sent("failed")), (1.0, 1.0));
        assert_eq!(
            value(
                &registry,
                "meshflow_probe_round_trip_seconds_count{partition=\"1\",broker=\"2\"}"
            ),
            1.0
        );
        assert_eq!(
            value(
                &registry,
                "meshflow_probe_messages_lost_total{partition=\"2\",broker=\"2\"}"
            ),
            1.0
        );
    }
}
