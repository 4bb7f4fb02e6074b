//! Families whose every series carries the `kafka_cluster` label.
//!
//! One exporter may watch several Kafka clusters (`exporter.clusters`), and
//! each cluster's poll publishes the same families. A [`Scoped`] family is
//! one registered family plus the name of the cluster its handle writes
//! for: `get_or_create` and `remove` take the family's own labels and add
//! `kafka_cluster` in front, so the code that sets a series does not change
//! with the number of clusters, and two clusters' handles never touch each
//! other's series. The names are bounded by `exporter.max_clusters`.
//!
//! The label is `kafka_cluster`, not `cluster`: `cluster` is the label a
//! multi-cluster Prometheus puts on every target (or adds as an external
//! label) to say where the exporter runs, which the dashboards' `cluster`
//! variable reads. A `cluster` label of the exporter's own would be renamed
//! `exported_cluster` at the scrape or would hide that one, and two Kafka
//! clusters' series would merge under one name.

use std::hash::Hash;
use std::ops::Deref;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::{Family, MetricConstructor};

/// The `kafka_cluster` label: the name of a watched Kafka cluster.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ClusterLabel {
    pub(crate) kafka_cluster: String,
}

/// No labels besides `kafka_cluster`, for a family that had a single series
/// before clusters were several.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct Unlabelled {}

/// The labels of a scoped family's series: `kafka_cluster` first, then its
/// own.
pub type InCluster<L> = (ClusterLabel, L);

/// A family whose handle writes the series of one cluster.
#[derive(Debug)]
pub struct Scoped<L, M, C = fn() -> M> {
    cluster: ClusterLabel,
    family: Family<InCluster<L>, M, C>,
}

impl<L, M, C: Clone> Clone for Scoped<L, M, C> {
    fn clone(&self) -> Self {
        Scoped {
            cluster: self.cluster.clone(),
            family: self.family.clone(),
        }
    }
}

impl<L: Clone + Hash + Eq, M: Default> Scoped<L, M> {
    /// A new, empty family writing for `cluster`.
    pub fn new(cluster: &str) -> Self {
        Scoped {
            cluster: ClusterLabel {
                kafka_cluster: cluster.to_string(),
            },
            family: Family::default(),
        }
    }
}

impl<L: Clone + Hash + Eq, M, C: MetricConstructor<M> + Clone> Scoped<L, M, C> {
    /// A new, empty family writing for `cluster`, whose metrics `constructor`
    /// makes (histograms with their buckets).
    pub fn with_constructor(cluster: &str, constructor: C) -> Self {
        Scoped {
            cluster: ClusterLabel {
                kafka_cluster: cluster.to_string(),
            },
            family: Family::new_with_constructor(constructor),
        }
    }

    /// The same family, writing for `cluster`.
    pub fn in_cluster(&self, cluster: &str) -> Self {
        Scoped {
            cluster: ClusterLabel {
                kafka_cluster: cluster.to_string(),
            },
            family: self.family.clone(),
        }
    }

    /// This cluster's series of `labels`, created when missing.
    pub fn get_or_create(&self, labels: &L) -> impl Deref<Target = M> + '_ {
        self.family
            .get_or_create(&(self.cluster.clone(), labels.clone()))
    }

    /// Removes this cluster's series of `labels`; true if there was one.
    pub fn remove(&self, labels: &L) -> bool {
        self.family.remove(&(self.cluster.clone(), labels.clone()))
    }

    /// The registered family, every cluster's series.
    pub fn family(&self) -> Family<InCluster<L>, M, C> {
        self.family.clone()
    }
}

impl<M, C: MetricConstructor<M> + Clone> Scoped<Unlabelled, M, C> {
    /// This cluster's one series, for a family without labels of its own.
    pub fn get(&self) -> impl Deref<Target = M> + '_ {
        self.get_or_create(&Unlabelled {})
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;

    use super::*;
    use crate::metrics::TopicLabels;
    use crate::testing::sample;

    #[test]
    fn each_cluster_writes_and_removes_only_its_own_series() {
        let mut registry = Registry::with_prefix("meshflow");
        let a = Scoped::<TopicLabels, Gauge>::new("a");
        let b = a.in_cluster("b");
        registry.register("topic_partitions", "help", a.family());
        let events = TopicLabels {
            topic: "events".to_string(),
        };
        a.get_or_create(&events).set(6);
        b.get_or_create(&events).set(3);
        let of = |cluster: &str| {
            sample(
                &registry,
                &format!(
                    "meshflow_topic_partitions{{kafka_cluster=\"{cluster}\",topic=\"events\"}}"
                ),
            )
        };
        assert_eq!((of("a"), of("b")), (Some(6.0), Some(3.0)));
        assert!(b.remove(&events));
        assert_eq!((of("a"), of("b")), (Some(6.0), None));
        let unlabelled = Scoped::<Unlabelled, Gauge>::new("a");
        registry.register("brokers", "help", unlabelled.family());
        unlabelled.in_cluster("b").get().set(1);
        assert_eq!(
            sample(&registry, "meshflow_brokers{kafka_cluster=\"b\"}"),
            Some(1.0)
        );
    }
}
