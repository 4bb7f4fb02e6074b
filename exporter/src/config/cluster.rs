//! `exporter.cluster.*`: what the cluster is expected to look like, for the
//! brokers alerts to compare the metadata with (exported as
//! `meshflow_brokers_expected` and `meshflow_brokers_min_insync`), so the
//! same rules serve a 3-broker cluster and the one-broker local stack; and
//! how finely the cluster view is published.

use serde::{Deserialize, Serialize};

use crate::Error;

/// The most brokers a cluster may be expected to have.
pub const MAX_EXPECTED_BROKERS: u32 = 10_000;

/// The brokers a cluster should have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterExpectation {
    /// Brokers the metadata should list; 0 when unknown (the brokers
    /// alerts then never fire).
    pub brokers: u32,
    /// The topics' `min.insync.replicas`: with fewer brokers, `acks=all`
    /// writes fail. At most `brokers` (0 when unknown).
    pub min_insync_replicas: u32,
    /// Series per partition or only per topic for the reported topics.
    pub granularity: Granularity,
}

/// How finely the cluster view is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// Per-topic and per-partition series.
    #[default]
    Partition,
    /// Per-topic series only (bounded by the number of topics).
    Topic,
}

impl Default for ClusterExpectation {
    /// The design's 3-node cluster with `min.insync.replicas` 2.
    fn default() -> Self {
        ClusterExpectation {
            brokers: 3,
            min_insync_replicas: 2,
            granularity: Granularity::Partition,
        }
    }
}

impl ClusterExpectation {
    /// Checks the figures against each other.
    pub fn validate(&self) -> Result<(), Error> {
        if self.brokers > MAX_EXPECTED_BROKERS {
            return Err(Error::Config {
                key: "exporter.cluster.brokers",
                value: self.brokers.to_string(),
                allowed: "0 (unknown) to 10000",
            });
        }
        if self.min_insync_replicas > self.brokers {
            return Err(Error::Config {
                key: "exporter.cluster.min_insync_replicas",
                value: self.min_insync_replicas.to_string(),
                allowed: "at most exporter.cluster.brokers",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_design_cluster_and_figures_must_agree() {
        assert_eq!(ClusterExpectation::default().validate(), Ok(()));
        let unknown = ClusterExpectation {
            brokers: 0,
            min_insync_replicas: 0,
            ..ClusterExpectation::default()
        };
        assert_eq!(unknown.validate(), Ok(()));
        let refused = |brokers, min_insync_replicas| {
            let expectation = ClusterExpectation {
                brokers,
                min_insync_replicas,
                ..ClusterExpectation::default()
            };
            match expectation.validate() {
                Err(Error::Config { key, .. }) => key,
                other => panic!("{brokers}/{min_insync_replicas}: {other:?}"),
            }
        };
        assert_eq!(refused(1, 2), "exporter.cluster.min_insync_replicas");
        assert_eq!(refused(10_001, 1), "exporter.cluster.brokers");
    }
}
