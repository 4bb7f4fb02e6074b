//! The cluster view's series: brokers (with their racks), and every
//! reported topic and partition (watermarks, leader, replicas, in-sync
//! replicas, under-replicated and leaderless). Per-topic series always
//! exist; per-partition ones only at `exporter.cluster.granularity =
//! "partition"`, which bounds the label set to topics on large clusters.
//! Series of a topic, partition or broker no longer present are removed.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{help, PartitionLabels, Scoped, TopicLabels, Unlabelled};
use crate::cluster::{Broker, ClusterHealth};
use crate::config::Granularity;

/// Labels of the broker info: id, advertised address, rack (empty when
/// none).
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct BrokerLabels {
    broker_id: String,
    address: String,
    rack: String,
}

/// What was published last, to remove what is gone.
#[derive(Debug, Default)]
struct Published {
    topics: BTreeSet<String>,
    partitions: BTreeSet<(String, i32)>,
    brokers: BTreeSet<BrokerLabels>,
}

/// Handles on the cluster view's series.
#[derive(Clone, Debug)]
pub(super) struct ClusterSeries {
    brokers: Scoped<Unlabelled, Gauge>,
    broker_info: Scoped<BrokerLabels, Gauge>,
    topic_partitions: Scoped<TopicLabels, Gauge>,
    topic_under_replicated: Scoped<TopicLabels, Gauge>,
    topic_leaderless: Scoped<TopicLabels, Gauge>,
    topic_high: Scoped<TopicLabels, Gauge>,
    topic_low: Scoped<TopicLabels, Gauge>,
    topic_min_insync: Scoped<TopicLabels, Gauge>,
    topic_under_min_isr: Scoped<TopicLabels, Gauge>,
    under_replicated: Scoped<PartitionLabels, Gauge>,
    leaderless: Scoped<PartitionLabels, Gauge>,
    high: Scoped<PartitionLabels, Gauge>,
    low: Scoped<PartitionLabels, Gauge>,
    leader: Scoped<PartitionLabels, Gauge>,
    replicas: Scoped<PartitionLabels, Gauge>,
    in_sync: Scoped<PartitionLabels, Gauge>,
    under_min_isr: Scoped<PartitionLabels, Gauge>,
    published: Arc<Mutex<Published>>,
}

impl ClusterSeries {
    /// Registers the cluster view's families; the handle writes for
    /// `cluster`.
    pub(super) fn register(registry: &mut Registry, cluster: &str) -> Self {
        let series = ClusterSeries {
            brokers: Scoped::new(cluster),
            broker_info: Scoped::new(cluster),
            topic_partitions: Scoped::new(cluster),
            topic_under_replicated: Scoped::new(cluster),
            topic_leaderless: Scoped::new(cluster),
            topic_high: Scoped::new(cluster),
            topic_low: Scoped::new(cluster),
            topic_min_insync: Scoped::new(cluster),
            topic_under_min_isr: Scoped::new(cluster),
            under_replicated: Scoped::new(cluster),
            leaderless: Scoped::new(cluster),
            high: Scoped::new(cluster),
            low: Scoped::new(cluster),
            leader: Scoped::new(cluster),
            replicas: Scoped::new(cluster),
            in_sync: Scoped::new(cluster),
            under_min_isr: Scoped::new(cluster),
            published: Arc::default(),
        };
        register!(registry;
            "brokers"                           => series.brokers.family(),
            "broker_info"                       => series.broker_info.family(),
            "topic_partitions"                  => series.topic_partitions.family(),
            "topic_partitions_under_replicated" => series.topic_under_replicated.family(),
            "topic_partitions_leaderless"       => series.topic_leaderless.family(),
            "topic_high_watermarks"             => series.topic_high.family(),
            "topic_low_watermarks"              => series.topic_low.family(),
            "topic_min_insync_replicas"         => series.topic_min_insync.family(),
            "topic_partitions_under_min_isr"    => series.topic_under_min_isr.family(),
            "partition_under_replicated"        => series.under_replicated.family(),
            "partition_leaderless"              => series.leaderless.family(),
            "partition_high_watermark"          => series.high.family(),
            "partition_low_watermark"           => series.low.family(),
            "partition_leader"                  => series.leader.family(),
            "partition_replicas"                => series.replicas.family(),
            "partition_in_sync_replicas"        => series.in_sync.family(),
            "partition_under_min_isr"           => series.under_min_isr.family(),
        );
        series
    }

    /// The same families, writing for `cluster`, with nothing published
    /// yet.
    pub(super) fn in_cluster(&self, cluster: &str) -> Self {
        ClusterSeries {
            brokers: self.brokers.in_cluster(cluster),
            broker_info: self.broker_info.in_cluster(cluster),
            topic_partitions: self.topic_partitions.in_cluster(cluster),
            topic_under_replicated: self.topic_under_replicated.in_cluster(cluster),
            topic_leaderless: self.topic_leaderless.in_cluster(cluster),
            topic_high: self.topic_high.in_cluster(cluster),
            topic_low: self.topic_low.in_cluster(cluster),
            topic_min_insync: self.topic_min_insync.in_cluster(cluster),
            topic_under_min_isr: self.topic_under_min_isr.in_cluster(cluster),
            under_replicated: self.under_replicated.in_cluster(cluster),
            leaderless: self.leaderless.in_cluster(cluster),
            high: self.high.in_cluster(cluster),
            low: self.low.in_cluster(cluster),
            leader: self.leader.in_cluster(cluster),
            replicas: self.replicas.in_cluster(cluster),
            in_sync: self.in_sync.in_cluster(cluster),
            under_min_isr: self.under_min_isr.in_cluster(cluster),
            published: Arc::default(),
        }
    }

    /// The broker count exists from the start, at 0 until a poll answers.
    pub(super) fn start(&self) {
        let _ = self.brokers.get();
    }

    /// Publishes one metadata answer at `granularity`.
    pub(super) fn record(&self, health: &ClusterHealth, granularity: Granularity) {
        self.brokers.get().set(count(health.brokers));
        let mut now = Published::default();
        let mut topics: std::collections::BTreeMap<&str, TopicSums> = Default::default();
        for p in &health.partitions {
            let sums = topics.entry(p.topic.as_str()).or_default();
            sums.partitions += 1;
            sums.under_replicated += i64::from(p.under_replicated());
            sums.leaderless += i64::from(p.leaderless());
            let min_insync = health.min_insync.get(&p.topic).copied();
            let under_min_isr = min_insync.is_some_and(|min| p.under_min_isr(min));
            sums.under_min_isr += i64::from(under_min_isr);
            sums.min_insync = min_insync;
            if let Some((low, high)) = p.watermarks {
                sums.low += low;
                sums.high += high;
            }
            if granularity != Granularity::Partition {
                continue;
            }
            let labels = PartitionLabels {
                topic: p.topic.clone(),
                partition: p.partition,
            };
            set(
                &self.under_replicated,
                &labels,
                i64::from(p.under_replicated()),
            );
            set(&self.leaderless, &labels, i64::from(p.leaderless()));
            set(&self.leader, &labels, i64::from(p.leader));
            set(&self.replicas, &labels, count(p.replicas));
            set(&self.in_sync, &labels, count(p.isr));
            set(&self.under_min_isr, &labels, i64::from(under_min_isr));
            match p.watermarks {
                Some((low, high)) => {
                    set(&self.low, &labels, low);
                    set(&self.high, &labels, high);
                }
                None => {
                    self.low.remove(&labels);
                    self.high.remove(&labels);
                }
            }
            now.partitions.insert((p.topic.clone(), p.partition));
        }
        for (topic, sums) in topics {
            let labels = TopicLabels {
                topic: topic.to_string(),
            };
            set(&self.topic_partitions, &labels, sums.partitions);
            set(&self.topic_under_replicated, &labels, sums.under_replicated);
            set(&self.topic_leaderless, &labels, sums.leaderless);
            set(&self.topic_high, &labels, sums.high);
            set(&self.topic_low, &labels, sums.low);
            set(&self.topic_under_min_isr, &labels, sums.under_min_isr);
            match sums.min_insync {
                Some(min) => set(&self.topic_min_insync, &labels, i64::from(min)),
                None => {
                    self.topic_min_insync.remove(&labels);
                }
            }
            now.topics.insert(topic.to_string());
        }
        let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        for (topic, partition) in published.partitions.difference(&now.partitions) {
            let labels = PartitionLabels {
                topic: topic.clone(),
                partition: *partition,
            };
            for family in self.partition_families() {
                family.remove(&labels);
            }
        }
        for topic in published.topics.difference(&now.topics) {
            let labels = TopicLabels {
                topic: topic.clone(),
            };
            for family in self.topic_families() {
                family.remove(&labels);
            }
        }
        published.topics = now.topics;
        published.partitions = now.partitions;
    }

    /// Publishes the brokers DescribeCluster listed.
    pub(super) fn record_brokers(&self, brokers: &[Broker]) {
        let now: BTreeSet<BrokerLabels> = brokers
            .iter()
            .map(|b| BrokerLabels {
                broker_id: b.id.to_string(),
                address: b.address.clone(),
                rack: b.rack.clone().unwrap_or_default(),
            })
            .collect();
        let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        for gone in published.brokers.difference(&now) {
            self.broker_info.remove(gone);
        }
        for labels in &now {
            self.broker_info.get_or_create(labels).set(1);
        }
        published.brokers = now;
    }

    fn partition_families(&self) -> [&Scoped<PartitionLabels, Gauge>; 8] {
        [
            &self.under_min_isr,
            &self.under_replicated,
            &self.leaderless,
            &self.high,
            &self.low,
            &self.leader,
            &self.replicas,
            &self.in_sync,
        ]
    }

    fn topic_families(&self) -> [&Scoped<TopicLabels, Gauge>; 7] {
        [
            &self.topic_min_insync,
            &self.topic_under_min_isr,
            &self.topic_partitions,
            &self.topic_under_replicated,
            &self.topic_leaderless,
            &self.topic_high,
            &self.topic_low,
        ]
    }
}

/// One topic's figures summed over its partitions.
#[derive(Debug, Default)]
struct TopicSums {
    partitions: i64,
    under_replicated: i64,
    leaderless: i64,
    high: i64,
    low: i64,
    under_min_isr: i64,
    min_insync: Option<u32>,
}

fn set<L: Clone + std::hash::Hash + Eq>(family: &Scoped<L, Gauge>, labels: &L, value: i64) {
    family.get_or_create(labels).set(value);
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;

    use crate::cluster::{ClusterHealth, PartitionHealth};
    use crate::config::Granularity;
    use crate::groups::Groups;
    use crate::metrics::ExporterMetrics;
    use crate::testing::{sample, value};

    fn setup() -> (Registry, ExporterMetrics) {
        let mut registry = Registry::with_prefix("meshflow");
        let metrics = ExporterMetrics::register(&mut registry, &Groups::new(["g1"]));
        (registry, metrics)
    }

    #[test]
    fn partitions_under_each_topics_own_min_insync() {
        let (registry, metrics) = setup();
        let partition = |topic: &str, partition, isr| PartitionHealth {
            topic: topic.to_string(),
            partition,
            leader: 1,
            replicas: 3,
            isr,
            watermarks: Some((0, 1)),
        };
        // payments keeps 3 in sync, events 2; audit's value is unknown.
        let health = ClusterHealth {
            brokers: 3,
            partitions: vec![
                partition("payments", 0, 2),
                partition("payments", 1, 3),
                partition("events", 0, 2),
                partition("events", 1, 1),
                partition("events", 2, 0),
                partition("audit", 0, 0),
            ],
            min_insync: [("payments", 3), ("events", 2)]
                .map(|(t, m)| (t.to_string(), m))
                .into(),
            ..ClusterHealth::default()
        };
        metrics.set_cluster(&health, Granularity::Partition);
        let topic = |name: &str, topic: &str| {
            sample(
                &registry,
                &format!("{name}{{kafka_cluster=\"default\",topic=\"{topic}\"}}"),
            )
        };
        let under = "meshflow_topic_partitions_under_min_isr";
        let min = "meshflow_topic_min_insync_replicas";
        assert_eq!(topic(under, "payments"), Some(1.0));
        assert_eq!(topic(under, "events"), Some(2.0));
        assert_eq!(topic(under, "audit"), Some(0.0));
        assert_eq!(topic(min, "payments"), Some(3.0));
        assert_eq!(topic(min, "events"), Some(2.0));
        assert_eq!(topic(min, "audit"), None);
        let p = |topic: &str, p: i32| {
            sample(
                &registry,
                &format!("meshflow_partition_under_min_isr{{kafka_cluster=\"default\",topic=\"{topic}\",partition=\"{p}\"}}"),
            )
        };
        assert_eq!([p("payments", 0), p("payments", 1)], [Some(1.0), Some(0.0)]);
        assert_eq!([p("events", 0), p("events", 1)], [Some(0.0), Some(1.0)]);
        // A topic that is gone takes its series along.
        metrics.set_cluster(
            &ClusterHealth {
                brokers: 3,
                partitions: vec![partition("events", 0, 2)],
                min_insync: [("events".to_string(), 2)].into(),
                ..ClusterHealth::default()
            },
            Granularity::Partition,
        );
        assert_eq!(topic(under, "payments"), None);
        assert_eq!(topic(min, "payments"), None);
        assert_eq!(p("payments", 0), None);
    }

    #[test]
    fn the_cluster_view_per_topic_and_partition_and_what_is_gone_goes() {
        let (registry, metrics) = setup();
        let partition = |topic: &str, partition, leader, isr, marks| PartitionHealth {
            topic: topic.to_string(),
            partition,
            leader,
            replicas: 3,
            isr,
            watermarks: marks,
        };
        let health = |partitions| ClusterHealth {
            brokers: 3,
            partitions,
            partitions_left_out: 0,
            ..ClusterHealth::default()
        };
        metrics.set_cluster(
            &health(vec![
                partition("events", 0, 1, 3, Some((0, 10))),
                partition("events", 1, 2, 2, Some((5, 25))),
                partition("events", 2, -1, 0, None),
                partition("orders", 0, 3, 3, Some((0, 7))),
            ]),
            Granularity::Partition,
        );
        let gauge = |name: &str, topic: &str, p: i32| {
            sample(
                &registry,
                &format!("{name}{{kafka_cluster=\"default\",topic=\"{topic}\",partition=\"{p}\"}}"),
            )
        };
        let topic = |name: &str, topic: &str| {
            sample(
                &registry,
                &format!("{name}{{kafka_cluster=\"default\",topic=\"{topic}\"}}"),
            )
        };
        assert_eq!(
            value(&registry, "meshflow_brokers{kafka_cluster=\"default\"}"),
            3.0
        );
        let partitions = [
            ("under_replicated", 0, Some(0.0)),
            ("under_replicated", 1, Some(1.0)),
            ("leaderless", 2, Some(1.0)),
            ("leader", 2, Some(-1.0)),
            ("in_sync_replicas", 1, Some(2.0)),
            ("high_watermark", 1, Some(25.0)),
            ("low_watermark", 1, Some(5.0)),
            // Watermarks not read: no series rather than a made-up value.
            ("high_watermark", 2, None),
        ];
        for (name, p, want) in partitions {
            let name = format!("meshflow_partition_{name}");
            assert_eq!(gauge(&name, "events", p), want, "{name} {p}");
        }
        let topics = [
            ("partitions", "events", 3.0),
            ("partitions_under_replicated", "events", 2.0),
            ("partitions_leaderless", "events", 1.0),
            ("high_watermarks", "events", 35.0),
            ("low_watermarks", "events", 5.0),
            ("high_watermarks", "orders", 7.0),
        ];
        for (name, t, want) in topics {
            let name = format!("meshflow_topic_{name}");
            assert_eq!(topic(&name, t), Some(want), "{name} {t}");
        }

        // orders is deleted and events/2 gone; at topic granularity no
        // partition series stay.
        metrics.set_cluster(
            &health(vec![
                partition("events", 0, 1, 3, Some((0, 11))),
                partition("events", 1, 2, 3, Some((5, 26))),
            ]),
            Granularity::Topic,
        );
        assert_eq!(topic("meshflow_topic_partitions", "orders"), None);
        assert_eq!(
            topic("meshflow_topic_partitions_under_replicated", "events"),
            Some(0.0)
        );
        assert_eq!(
            topic("meshflow_topic_high_watermarks", "events"),
            Some(37.0)
        );
        for name in ["under_replicated", "leaderless", "leader", "high_watermark"] {
            let name = format!("meshflow_partition_{name}");
            assert_eq!(gauge(&name, "events", 0), None, "{name}");
            assert_eq!(gauge(&name, "orders", 0), None, "{name}");
        }

        // Brokers with their racks; a broker that left is removed.
        let broker = |id, rack: Option<&str>| crate::cluster::Broker {
            id,
            address: format!("kafka-{id}:9092"),
            rack: rack.map(str::to_string),
        };
        metrics.set_brokers(&[broker(1, Some("zone-a")), broker(2, None)]);
        metrics.set_brokers(&[broker(1, Some("zone-a"))]);
        let info = |id: i32, rack: &str| {
            sample(
                &registry,
                &format!(
                    "meshflow_broker_info{{kafka_cluster=\"default\",broker_id=\"{id}\",address=\"kafka-{id}:9092\",rack=\"{rack}\"}}"
                ),
            )
        };
        assert_eq!(info(1, "zone-a"), Some(1.0));
        assert_eq!(info(2, ""), None);
    }
}
