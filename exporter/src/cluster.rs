//! What the exporter asks Kafka besides reading the topics: cluster
//! metadata, watermarks, the watched groups' committed offsets, and the
//! timestamps of the records those offsets point at.
//!
//! The judged topics are resolved from each poll's own metadata answer
//! with the reader's [`TopicMatcher`], so both judge the same set (up to
//! a topic that appears between their checks).
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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use meshflow_common::config::KafkaConfig;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;
use rdkafka::ClientConfig;

use crate::config::{DiscoveryConfig, JudgedTopics, TopicMatcher};
use crate::groups::{Groups, PerGroup};
use crate::lag::{FoundRecord, LagSample, PartitionOffsets};
use crate::Error;

pub use admin::Broker;
use admin::Partition;
pub use configs::MinInsyncAnswer;
pub use others::{Discovery, OtherGroup, Others, TopicLag};
pub use snapshot::{ClusterHealth, PartitionHealth, PartitionLag, Snapshot, POLL_ERROR_KINDS};

/// A record by (topic, partition, offset).
pub type RecordAt = (String, i32, i64);

/// Upper bound of every single request to Kafka.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one round of record-timestamp reads may take.
pub const TIMESTAMP_TIMEOUT: Duration = Duration::from_secs(3);

/// One group's offsets per partition, or why they could not be read.
type GroupOffsets = Result<Vec<(Partition, Result<PartitionOffsets, Error>)>, Error>;

/// The Kafka clients of the polling, and the timestamp cache.
pub struct ClusterPoller {
    matcher: TopicMatcher,
    receipts_topic: String,
    cluster: BaseConsumer,
    timestamp_client: BaseConsumer,
    groups: Groups,
    discovery: Option<Discovery>,
    timestamps: HashMap<RecordAt, FoundRecord>,
    admin: AdminClient<DefaultClientContext>,
    min_insync: u32,
}

impl ClusterPoller {
    /// Creates the clients. `own_group` is the exporter's group id; the
    /// clients derive theirs from it and never join or commit.
    pub fn new(
        kafka: &KafkaConfig,
        matcher: TopicMatcher,
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
            matcher,
            receipts_topic: receipts_topic.to_string(),
            timestamp_client: timestamps::timestamp_client(kafka, &probe_group)?,
            cluster,
            groups,
            discovery,
            timestamps: HashMap::new(),
            admin: configs::admin_client(kafka)?,
            min_insync: 0,
        })
    }

    /// Creates the clients of a cluster polled without end-to-end
    /// accounting (an entry of `exporter.clusters`): no judged topic, no
    /// receipts topic, no judged group; only what `discovery` selects, and
    /// the cluster view.
    pub fn watch_only(
        kafka: &KafkaConfig,
        own_group: &str,
        discovery: &DiscoveryConfig,
    ) -> Result<Self, Error> {
        let none = Groups::new(std::iter::empty::<String>());
        Self::new(kafka, TopicMatcher::none(), "", &none, own_group, discovery)
    }

    /// Uses `min_insync` (`exporter.cluster.min_insync_replicas`) for the
    /// topics whose own and broker value DescribeConfigs does not tell.
    pub fn with_min_insync(mut self, min_insync: u32) -> Self {
        self.min_insync = min_insync;
        self
    }

    /// Polls everything once. Blocks for up to a few request timeouts.
    pub fn poll(&mut self, at_ns: u64) -> Snapshot {
        let committed = self.other_committed();
        let memberships = self.describe_groups(&self.described(&committed));
        let brokers = admin::brokers(&self.cluster, REQUEST_TIMEOUT);
        // One metadata request for every topic, and one batch of watermarks
        // for every partition this poll looks at.
        let metadata = self
            .cluster
            .fetch_metadata(None, REQUEST_TIMEOUT)
            .map_err(kafka("metadata"));
        let judged: Option<JudgedTopics> = metadata.as_ref().ok().map(|m| {
            let listed = m.topics().iter();
            let listed = listed.filter(|t| t.error().is_none() && !t.partitions().is_empty());
            self.matcher.select(listed.map(|t| t.name()))
        });
        let mut health = metadata.as_ref().map_err(Clone::clone).map(|m| {
            let judged = judged.iter().flat_map(|j| &j.topics);
            let always: Vec<&str> = judged
                .map(String::as_str)
                .chain([self.receipts_topic.as_str()])
                .filter(|t| !t.is_empty())
                .collect();
            match &self.discovery {
                Some(d) => view::health(m, &always, |t| d.reports(t), d.max_partitions()),
                None => view::health(m, &always, |_| false, 0),
            }
        });
        let mut needed: BTreeSet<Partition> = BTreeSet::new();
        if let Ok(health) = &health {
            needed.extend(
                health
                    .partitions
                    .iter()
                    .map(|p| (p.topic.clone(), p.partition)),
            );
        }
        if let Some(Ok(committed)) = &committed {
            needed.extend(committed.partitions());
        }
        let needed: Vec<Partition> = needed.into_iter().collect();
        let marks = admin::watermarks(&self.cluster, &needed, REQUEST_TIMEOUT);
        let mark = |topic: &str, p: i32| -> Result<(i64, i64), Error> {
            let marks = marks.as_ref().map_err(Clone::clone)?;
            marks
                .get(&(topic.to_string(), p))
                .copied()
                .ok_or_else(|| Error::NoWatermarks {
                    topic: topic.to_string(),
                    partition: p,
                })
        };
        if let Ok(health) = &mut health {
            for p in &mut health.partitions {
                p.watermarks = mark(&p.topic, p.partition).ok();
            }
            let broker = metadata
                .as_ref()
                .ok()
                .and_then(|m| m.brokers().first().map(|b| b.id()));
            self.resolve_min_insync(health, broker);
        }
        let others = committed.map(|c| c.map(|c| c.with_marks(mark)));
        let ids = |topic: &str| {
            metadata
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|metadata| partition_ids(metadata, topic))
        };
        let highs = |topic: &str| -> Vec<(i32, i64)> {
            ids(topic)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| Some((p, mark(topic, p).ok()?.1)))
                .collect()
        };
        let receipt_highs = highs(&self.receipts_topic);
        let topics = match (&metadata, &judged) {
            (Err(e), _) => Err(e.clone()),
            (Ok(_), Some(judged)) if !judged.topics.is_empty() => Ok(judged.topics.clone()),
            (Ok(_), _) => Err(Error::UnknownTopic {
                topic: self.matcher.entries().to_string(),
            }),
        };
        let topics = match topics {
            Ok(topics) => topics,
            Err(e) => {
                let wanted = others.iter().flatten().flat_map(|o| o.wanted()).collect();
                let timestamp_error = self.refresh_timestamps(wanted);
                return Snapshot {
                    at_ns,
                    health,
                    judged,
                    groups: PerGroup::from_fn(&self.groups, |_| Err(e.clone())),
                    log_highs: BTreeMap::new(),
                    receipt_highs,
                    timestamp_error,
                    others: self.samples_of(others, at_ns),
                    brokers,
                    memberships,
                };
            }
        };
        let watermarks: BTreeMap<Partition, Result<(i64, i64), Error>> = topics
            .iter()
            .flat_map(|t| {
                let ids = ids(t).unwrap_or_default();
                ids.into_iter().map(move |p| (t.clone(), p))
            })
            .map(|(t, p)| {
                let marks = mark(&t, p);
                ((t, p), marks)
            })
            .collect();
        let log_highs: BTreeMap<String, Vec<(i32, i64)>> =
            topics.iter().map(|t| (t.clone(), highs(t))).collect();
        let names: Vec<&str> = self.groups.names().collect();
        let mut answers =
            admin::committed_offsets(&self.cluster, &names, REQUEST_TIMEOUT).into_iter();
        let offsets: PerGroup<GroupOffsets> = PerGroup::from_fn(&self.groups, |_| {
            let committed: HashMap<Partition, i64> = answers
                .next()
                .unwrap_or_else(|| Err(admin::no_answer()))?
                .into_iter()
                .filter(|c| topics.contains(&c.topic))
                .map(|c| ((c.topic, c.partition), c.offset))
                .collect();
            // The judged topics the group consumes: those it has committed
            // on; all of them while it has committed on none (a group that
            // never ran is behind on everything).
            let consumed: HashSet<&String> = committed.keys().map(|(t, _)| t).collect();
            Ok(watermarks
                .iter()
                .filter(|((topic, _), _)| consumed.is_empty() || consumed.contains(topic))
                .map(|(key, marks)| {
                    let offsets = marks.clone().map(|(low, high)| PartitionOffsets {
                        low,
                        high,
                        committed: committed.get(key).copied(),
                    });
                    (key.clone(), offsets)
                })
                .collect())
        });
        let wanted: HashSet<RecordAt> = offsets
            .values()
            .flatten()
            .flatten()
            .filter_map(|((topic, p), offsets)| {
                let offset = offsets.as_ref().ok()?.lag_record_offset().ok()??;
                Some((topic.clone(), *p, offset))
            })
            .chain(others.iter().flatten().flat_map(|o| o.wanted()))
            .collect();
        let timestamp_error = self.refresh_timestamps(wanted);
        let groups = offsets.into_map(|_, group| {
            group.map(|partitions| {
                partitions
                    .into_iter()
                    .map(|((topic, partition), offsets)| {
                        let sample = offsets.clone().and_then(|o| {
                            let record = o
                                .lag_record_offset()?
                                .and_then(|offset| self.record(&topic, partition, offset));
                            LagSample::from_record(at_ns, o, record)
                        });
                        PartitionLag {
                            topic,
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
            judged,
            groups,
            log_highs,
            receipt_highs,
            timestamp_error,
            others: self.samples_of(others, at_ns),
            brokers,
            memberships,
        }
    }

    /// Sets each topic's `min.insync.replicas` in force.
    fn resolve_min_insync(&self, health: &mut ClusterHealth, broker: Option<i32>) {
        let topics: BTreeSet<String> = health.partitions.iter().map(|p| p.topic.clone()).collect();
        let answer = configs::min_insync(&self.admin, &topics, broker).unwrap_or_else(|e| {
            tracing::debug!(error = %e, "describe configs");
            health.configs_error = Some(e);
            MinInsyncAnswer::default()
        });
        health.min_insync = topics
            .into_iter()
            .map(|t| {
                let value = answer.resolve(&t, self.min_insync);
                (t, value)
            })
            .collect();
    }

    /// The groups to describe: the judged ones and those discovery watches.
    fn described(
        &self,
        committed: &Option<Result<others::OtherCommitted, Error>>,
    ) -> BTreeSet<String> {
        let discovered = committed.iter().flatten().flat_map(|c| c.names());
        self.groups
            .names()
            .chain(discovered)
            .map(str::to_string)
            .collect()
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

    /// The cached record found at or after (topic, partition, offset).
    fn record(&self, topic: &str, partition: i32, offset: i64) -> Option<FoundRecord> {
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
        Ok(others.into_others(at_ns, |topic, p, offset| self.record(topic, p, offset)))
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
pub(crate) fn kafka(operation: &'static str) -> impl Fn(KafkaError) -> Error {
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

mod admin;
mod configs;
mod describe;
mod others;
mod snapshot;
mod timestamps;
mod view;
