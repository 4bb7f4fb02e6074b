//! What the exporter asks Kafka besides reading the topics: cluster
//! metadata, watermarks, the watched groups' committed offsets, and the
//! timestamps of the records those offsets point at.
//!
//! Every call here blocks (librdkafka's admin-style requests do), so a
//! [`ClusterPoller`] runs on a blocking thread once per
//! `exporter.poll_interval` and hands back a [`Snapshot`]; nothing in it
//! touches metrics.
//!
//! - Committed offsets: one client for every group, asking each group's
//!   coordinator by the group's name (librdkafka's admin OffsetFetch, see
//!   `admin.rs`); it never joins a group and never commits.
//! - Lag in seconds needs the timestamp of the record at the group's
//!   position. It is read, not interpolated: a client kept for the purpose
//!   assigns the partitions at those offsets and polls one record from each. The first
//!   record at or after the offset counts (the offset itself may hold a
//!   transaction marker or have been compacted away). A record never
//!   changes, so timestamps are cached by (partition, offset) for as long
//!   as some group still sits at that offset.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use meshflow_common::config::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;
use rdkafka::ClientConfig;

use crate::config::DiscoveryConfig;
use crate::groups::{Groups, PerGroup};
use crate::lag::{LagSample, PartitionOffsets};
use crate::Error;

pub use others::{Discovery, OtherGroup, Others, TopicLag};

/// A record by (topic, partition, offset).
pub type RecordAt = (String, i32, i64);

/// Upper bound of every single request to Kafka.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one round of record-timestamp reads may take.
pub const TIMESTAMP_TIMEOUT: Duration = Duration::from_secs(3);

/// One partition as the cluster metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionHealth {
    /// Topic name.
    pub topic: String,
    /// Partition id.
    pub partition: i32,
    /// Leader broker id; negative when there is none.
    pub leader: i32,
    /// Number of replicas.
    pub replicas: usize,
    /// Number of in-sync replicas.
    pub isr: usize,
}

impl PartitionHealth {
    /// Fewer in-sync replicas than replicas.
    pub fn under_replicated(&self) -> bool {
        self.isr < self.replicas
    }

    /// No leader.
    pub fn leaderless(&self) -> bool {
        self.leader < 0
    }
}

/// The cluster's health as one metadata answer tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterHealth {
    /// Brokers listed.
    pub brokers: usize,
    /// Partitions of the data and receipts topics.
    pub partitions: Vec<PartitionHealth>,
}

/// One partition's lag for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// Partition id.
    pub partition: i32,
    /// Watermarks and committed offset, or why they are unknown.
    pub offsets: Result<PartitionOffsets, Error>,
    /// The lag sample, or why it could not be computed.
    pub sample: Result<LagSample, Error>,
}

/// One poll's findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// When the poll started, unix ns.
    pub at_ns: u64,
    /// Cluster health, or why metadata could not be read.
    pub health: Result<ClusterHealth, Error>,
    /// Per watched group: its partitions' lag, or why its offsets could not
    /// be read at all.
    pub groups: PerGroup<Result<Vec<PartitionLag>, Error>>,
    /// High watermarks of the data topic's partitions that answered, asked
    /// for after `at_ns`.
    pub log_highs: Vec<(i32, i64)>,
    /// High watermarks of the receipts topic's partitions that answered.
    pub receipt_highs: Vec<(i32, i64)>,
    /// Why the timestamps for lag in seconds could not be read, if so.
    pub timestamp_error: Option<Error>,
    /// The cluster's other groups (empty when discovery is off), or why
    /// they could not be listed.
    pub others: Result<Others, Error>,
}

/// What can fail in a poll: the `kind` label of
/// `meshflow_exporter_poll_errors_total`.
pub const POLL_ERROR_KINDS: [&str; 5] = [
    "metadata",
    "watermarks",
    "group_offsets",
    "timestamps",
    "list_groups",
];

impl Snapshot {
    /// What failed in this poll, each kind once, in [`POLL_ERROR_KINDS`]'s
    /// order.
    pub fn error_kinds(&self) -> Vec<&'static str> {
        let lags = || self.groups.values().flatten().flatten();
        let others = || self.others.iter().flat_map(|o| &o.groups);
        let failed = [
            self.health.is_err(),
            lags().any(|lag| lag.offsets.is_err()),
            self.groups.values().any(Result::is_err) || others().any(|g| g.partitions.is_err()),
            self.timestamp_error.is_some(),
            self.others.is_err(),
        ];
        POLL_ERROR_KINDS
            .into_iter()
            .zip(failed)
            .filter_map(|(kind, failed)| failed.then_some(kind))
            .collect()
    }

    /// Partitions with a lag figure, summed over the groups.
    pub fn partitions_watched(&self) -> usize {
        let others: usize = self
            .others
            .iter()
            .flat_map(|o| &o.groups)
            .filter_map(|g| g.partitions.as_ref().ok())
            .map(Vec::len)
            .sum();
        self.groups.values().flatten().map(Vec::len).sum::<usize>() + others
    }

    /// Per watched group, the committed offsets read (partition → the next
    /// offset the group consumes); `None` when the group's offsets could not
    /// be read.
    pub fn committed(&self) -> PerGroup<Option<BTreeMap<i32, i64>>> {
        self.groups.map(|_, group| {
            let partitions = group.as_ref().ok()?;
            Some(
                partitions
                    .iter()
                    .filter_map(|lag| {
                        let offsets = lag.offsets.as_ref().ok()?;
                        Some((lag.partition, offsets.committed.filter(|&c| c >= 0)?))
                    })
                    .collect(),
            )
        })
    }
}

/// One group's offsets per partition, or why they could not be read.
type GroupOffsets = Result<Vec<(i32, Result<PartitionOffsets, Error>)>, Error>;

/// The Kafka clients of the polling, and the timestamp cache.
pub struct ClusterPoller {
    topic: String,
    receipts_topic: String,
    cluster: BaseConsumer,
    timestamp_client: BaseConsumer,
    groups: Groups,
    discovery: Option<Discovery>,
    timestamps: HashMap<RecordAt, i64>,
}

impl ClusterPoller {
    /// Creates the clients. `own_group` is the exporter's group id; the
    /// clients derive theirs from it and never join or commit.
    pub fn new(
        kafka: &KafkaConfig,
        topic: &str,
        receipts_topic: &str,
        groups: &Groups,
        own_group: &str,
        discovery: &DiscoveryConfig,
    ) -> Result<Self, Error> {
        let probe_group = format!("{own_group}-probe");
        let cluster = passive_client(kafka, &probe_group)?;
        let judged = groups.names().map(str::to_string);
        let discovery = Discovery::new(discovery, judged, own_group)?;
        let groups = groups.clone();
        Ok(ClusterPoller {
            topic: topic.to_string(),
            receipts_topic: receipts_topic.to_string(),
            timestamp_client: timestamps::timestamp_client(kafka, &probe_group)?,
            cluster,
            groups,
            discovery,
            timestamps: HashMap::new(),
        })
    }

    /// Polls everything once. Blocks for up to a few request timeouts.
    pub fn poll(&mut self, at_ns: u64) -> Snapshot {
        let others = self.other_offsets();
        // One request per topic: a cluster may hold many other topics.
        let metadata = [&self.topic, &self.receipts_topic].map(|topic| {
            self.cluster
                .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
                .map_err(kafka("metadata"))
        });
        let [data, receipts] = metadata;
        let health = match (&data, &receipts) {
            (Ok(data), Ok(receipts)) => Ok(health(data, receipts)),
            (Err(e), _) | (_, Err(e)) => Err(e.clone()),
        };
        let receipt_highs = receipts
            .and_then(|metadata| partition_ids(&metadata, &self.receipts_topic))
            .map(|ids| self.highs(&self.receipts_topic, &ids))
            .unwrap_or_default();
        let partitions = data.and_then(|metadata| partition_ids(&metadata, &self.topic));
        let partitions = match partitions {
            Ok(partitions) => partitions,
            Err(e) => {
                let wanted = others.iter().flatten().flat_map(|o| o.wanted()).collect();
                let timestamp_error = self.refresh_timestamps(wanted);
                return Snapshot {
                    at_ns,
                    health,
                    groups: PerGroup::from_fn(&self.groups, |_| Err(e.clone())),
                    log_highs: Vec::new(),
                    receipt_highs,
                    timestamp_error,
                    others: self.samples_of(others, at_ns),
                };
            }
        };
        let watermarks: BTreeMap<i32, Result<(i64, i64), Error>> = partitions
            .iter()
            .map(|&p| {
                let marks = self
                    .cluster
                    .fetch_watermarks(&self.topic, p, REQUEST_TIMEOUT)
                    .map_err(kafka("watermarks"));
                (p, marks)
            })
            .collect();
        let log_highs = watermarks
            .iter()
            .filter_map(|(&p, marks)| Some((p, marks.as_ref().ok()?.1)))
            .collect();
        let names: Vec<&str> = self.groups.names().collect();
        let mut answers =
            admin::committed_offsets(&self.cluster, &names, REQUEST_TIMEOUT).into_iter();
        let offsets: PerGroup<GroupOffsets> = PerGroup::from_fn(&self.groups, |_| {
            let committed: HashMap<i32, i64> = answers
                .next()
                .unwrap_or_else(|| Err(admin::no_answer()))?
                .into_iter()
                .filter(|c| c.topic == self.topic)
                .map(|c| (c.partition, c.offset))
                .collect();
            Ok(watermarks
                .iter()
                .map(|(&p, marks)| {
                    let offsets = marks.clone().map(|(low, high)| PartitionOffsets {
                        low,
                        high,
                        committed: committed.get(&p).copied(),
                    });
                    (p, offsets)
                })
                .collect())
        });
        let wanted: HashSet<RecordAt> = offsets
            .values()
            .flatten()
            .flatten()
            .filter_map(|(p, offsets)| {
                let offset = offsets.as_ref().ok()?.lag_record_offset().ok()??;
                Some((self.topic.clone(), *p, offset))
            })
            .chain(others.iter().flatten().flat_map(|o| o.wanted()))
            .collect();
        let timestamp_error = self.refresh_timestamps(wanted);
        let groups = offsets.into_map(|_, group| {
            group.map(|partitions| {
                partitions
                    .into_iter()
                    .map(|(partition, offsets)| {
                        let sample = offsets.clone().and_then(|o| {
                            let timestamp = o
                                .lag_record_offset()?
                                .and_then(|offset| self.timestamp(&self.topic, partition, offset));
                            LagSample::new(at_ns, o, timestamp)
                        });
                        PartitionLag {
                            partition,
                            offsets,
                            sample,
                        }
                    })
                    .collect()
            })
        });
        Snapshot {
            at_ns,
            health,
            groups,
            log_highs,
            receipt_highs,
            timestamp_error,
            others: self.samples_of(others, at_ns),
        }
    }

    /// Keeps the cached timestamps still `wanted` and reads the missing
    /// ones; says why they could not be read, if so.
    fn refresh_timestamps(&mut self, wanted: HashSet<RecordAt>) -> Option<Error> {
        self.timestamps.retain(|key, _| wanted.contains(key));
        let missing: Vec<RecordAt> = wanted
            .into_iter()
            .filter(|key| !self.timestamps.contains_key(key))
            .collect();
        if missing.is_empty() {
            return None;
        }
        match self.read_timestamps(&missing) {
            Ok(found) => {
                self.timestamps.extend(found);
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "record timestamps");
                Some(e)
            }
        }
    }

    /// The cached timestamp of the record at (topic, partition, offset).
    fn timestamp(&self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        self.timestamps
            .get(&(topic.to_string(), partition, offset))
            .copied()
    }

    /// The discovered groups' samples (empty when discovery is off).
    fn samples_of(
        &self,
        others: Option<Result<others::OtherOffsets, Error>>,
        at_ns: u64,
    ) -> Result<Others, Error> {
        let Some(others) = others.transpose()? else {
            return Ok(Others::default());
        };
        Ok(others.into_others(at_ns, |topic, p, offset| self.timestamp(topic, p, offset)))
    }

    /// The high watermarks of `topic`'s `partitions` that answered.
    fn highs(&self, topic: &str, partitions: &[i32]) -> Vec<(i32, i64)> {
        partitions
            .iter()
            .filter_map(|&p| {
                let (_, high) = self
                    .cluster
                    .fetch_watermarks(topic, p, REQUEST_TIMEOUT)
                    .ok()?;
                Some((p, high))
            })
            .collect()
    }
}

/// librdkafka settings of a client that never joins a group or commits.
fn passive_config(kafka: &KafkaConfig, group: &str) -> ClientConfig {
    kafka.client_config_with(|config| {
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
    })
}

fn passive_client(kafka: &KafkaConfig, group: &str) -> Result<BaseConsumer, Error> {
    passive_config(kafka, group)
        .create()
        .map_err(self::kafka("client"))
}

/// Wraps a Kafka error with what was being done.
fn kafka(operation: &'static str) -> impl Fn(KafkaError) -> Error {
    move |source| Error::Kafka { operation, source }
}

/// The partition ids of `topic`, sorted.
fn partition_ids(metadata: &Metadata, topic: &str) -> Result<Vec<i32>, Error> {
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
    let Some(found) = found else {
        return Err(Error::UnknownTopic {
            topic: topic.to_string(),
        });
    };
    let mut ids: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Broker count and the partitions of both topics from their metadata.
fn health(data: &Metadata, receipts: &Metadata) -> ClusterHealth {
    let mut partitions: Vec<PartitionHealth> = [data, receipts]
        .iter()
        .flat_map(|metadata| metadata.topics())
        .flat_map(|t| {
            t.partitions().iter().map(|p| PartitionHealth {
                topic: t.name().to_string(),
                partition: p.id(),
                leader: p.leader(),
                replicas: p.replicas().len(),
                isr: p.isr().len(),
            })
        })
        .collect();
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    partitions.dedup();
    ClusterHealth {
        brokers: data.brokers().len(),
        partitions,
    }
}

mod admin;
mod others;
mod timestamps;
