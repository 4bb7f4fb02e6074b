//! The cluster's other consumer groups: listed with ListGroups every poll,
//! filtered by `exporter.discovery`, and their committed offsets on every
//! partition they committed on, read by name through the poller's one
//! client (see `admin.rs`), never a client per group.

use std::collections::HashSet;

use crate::config::{DiscoveryConfig, Filter};
use crate::lag::{FoundRecord, LagSample, PartitionOffsets};
use crate::Error;

use super::admin::{self, Committed};
use super::{ClusterPoller, RecordAt, REQUEST_TIMEOUT};

/// Which groups and topics discovery keeps, and what it never watches.
#[derive(Debug, Clone)]
pub struct Discovery {
    filter: Filter,
    max_groups: usize,
    max_partitions: usize,
    /// Groups watched end to end (`exporter.groups`): reported there.
    judged: HashSet<String>,
    /// The exporter's own group id: it and `<id>-…` are its readers.
    own: String,
}

impl Discovery {
    /// Discovery as configured, or `None` when it is off.
    pub fn new(
        config: &DiscoveryConfig,
        judged: impl IntoIterator<Item = String>,
        own_group: &str,
    ) -> Result<Option<Discovery>, Error> {
        if !config.enabled {
            return Ok(None);
        }
        Ok(Some(Discovery {
            filter: config.filter()?,
            max_groups: config.max_groups,
            max_partitions: config.max_partitions,
            judged: judged.into_iter().collect(),
            own: own_group.to_string(),
        }))
    }

    /// Whether a listed group is one to watch here.
    pub fn watches(&self, group: &str) -> bool {
        let own = group == self.own
            || group
                .strip_prefix(self.own.as_str())
                .is_some_and(|rest| rest.starts_with('-'));
        !own && !self.judged.contains(group) && self.filter.group(group)
    }

    /// The most partitions reported.
    pub fn max_partitions(&self) -> usize {
        self.max_partitions
    }

    /// Whether lag on `topic` is reported.
    pub fn reports(&self, topic: &str) -> bool {
        self.filter.topic(topic)
    }
}

/// One discovered group's lag per partition, or why its offsets could not
/// be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherGroup {
    /// The group's name.
    pub name: String,
    /// Its partitions (topic, partition order), or the error.
    pub partitions: Result<Vec<TopicLag>, Error>,
}

/// One partition's lag for a discovered group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLag {
    /// Topic name.
    pub topic: String,
    /// Partition id.
    pub partition: i32,
    /// Lag in messages, when the offsets were read.
    pub messages: Option<u64>,
    /// The watermarks and committed offset, when they were read.
    pub offsets: Option<PartitionOffsets>,
    /// The lag sample, or why it could not be computed.
    pub sample: Result<LagSample, Error>,
}

/// What discovery found in one poll.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Others {
    /// The groups watched, by name.
    pub groups: Vec<OtherGroup>,
    /// Groups the patterns selected beyond `max_groups`.
    pub groups_left_out: usize,
    /// Partitions committed on beyond `max_partitions`.
    pub partitions_left_out: usize,
}

/// A partition's (low, high) watermarks, or why they could not be read.
pub(super) type Marks = Result<(i64, i64), Error>;

/// A discovered group's offsets per partition before timestamps are read.
pub(super) type Offsets = Vec<(
    String,
    Result<Vec<(String, i32, Result<PartitionOffsets, Error>)>, Error>,
)>;

/// What [`ClusterPoller::other_offsets`] read: the groups' offsets and the
/// counts of what was left out.
pub(super) struct OtherOffsets {
    pub(super) groups: Offsets,
    pub(super) groups_left_out: usize,
    pub(super) partitions_left_out: usize,
}

impl OtherOffsets {
    /// The records whose timestamps lag in seconds needs.
    pub(super) fn wanted(&self) -> impl Iterator<Item = RecordAt> + '_ {
        self.groups
            .iter()
            .filter_map(|(_, partitions)| partitions.as_ref().ok())
            .flatten()
            .filter_map(|(topic, p, offsets)| {
                let offset = offsets.as_ref().ok()?.lag_record_offset().ok()??;
                Some((topic.clone(), *p, offset))
            })
    }

    /// The samples, with the timestamps `timestamp` knows.
    pub(super) fn into_others(
        self,
        at_ns: u64,
        record: impl Fn(&str, i32, i64) -> Option<FoundRecord>,
    ) -> Others {
        let groups = self
            .groups
            .into_iter()
            .map(|(name, partitions)| OtherGroup {
                name,
                partitions: partitions.map(|partitions| {
                    partitions
                        .into_iter()
                        .map(|(topic, partition, offsets)| {
                            let messages =
                                offsets.as_ref().ok().and_then(|o| o.lag_messages().ok());
                            let read = offsets.as_ref().ok().copied();
                            let sample = offsets.and_then(|o| {
                                let at = o.lag_record_offset()?;
                                let found = at.and_then(|offset| record(&topic, partition, offset));
                                LagSample::from_record(at_ns, o, found)
                            });
                            TopicLag {
                                topic,
                                partition,
                                messages,
                                offsets: read,
                                sample,
                            }
                        })
                        .collect()
                }),
            })
            .collect();
        Others {
            groups,
            groups_left_out: self.groups_left_out,
            partitions_left_out: self.partitions_left_out,
        }
    }
}

/// What [`ClusterPoller::other_committed`] read: each watched group's
/// committed offsets on the reported topics, before watermarks.
pub(super) struct OtherCommitted {
    groups: Vec<(String, Result<Vec<Committed>, Error>)>,
    groups_left_out: usize,
    partitions_left_out: usize,
}

impl OtherCommitted {
    /// The groups' names.
    pub(super) fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.groups.iter().map(|(name, _)| name.as_str())
    }

    /// The partitions the groups committed on.
    pub(super) fn partitions(&self) -> impl Iterator<Item = (String, i32)> + '_ {
        self.groups
            .iter()
            .filter_map(|(_, answer)| answer.as_ref().ok())
            .flatten()
            .map(|c| (c.topic.clone(), c.partition))
    }

    /// The offsets per partition, with the watermarks `marks` gives.
    pub(super) fn with_marks(self, marks: impl Fn(&str, i32) -> Marks) -> OtherOffsets {
        let groups = self
            .groups
            .into_iter()
            .map(|(name, answer)| {
                let partitions = answer.map(|committed| {
                    committed
                        .into_iter()
                        .map(|c| {
                            let offsets =
                                marks(&c.topic, c.partition).map(|(low, high)| PartitionOffsets {
                                    low,
                                    high,
                                    committed: Some(c.offset),
                                });
                            (c.topic, c.partition, offsets)
                        })
                        .collect()
                });
                (name, partitions)
            })
            .collect();
        OtherOffsets {
            groups,
            groups_left_out: self.groups_left_out,
            partitions_left_out: self.partitions_left_out,
        }
    }
}

impl ClusterPoller {
    /// Lists the groups, keeps those discovery watches (at most
    /// `max_groups`, by name), and reads their committed offsets on the
    /// reported topics (at most `max_partitions` in all). `None` when
    /// discovery is off.
    pub(super) fn other_committed(&self) -> Option<Result<OtherCommitted, Error>> {
        let discovery = self.discovery.as_ref()?;
        Some(self.read_other_committed(discovery))
    }

    fn read_other_committed(&self, discovery: &Discovery) -> Result<OtherCommitted, Error> {
        let listed = admin::list_groups(&self.cluster, REQUEST_TIMEOUT)?;
        let mut names: Vec<&str> = listed
            .iter()
            .map(String::as_str)
            .filter(|g| discovery.watches(g))
            .collect();
        let groups_left_out = names.len().saturating_sub(discovery.max_groups);
        names.truncate(discovery.max_groups);
        let committed = admin::committed_offsets(&self.cluster, &names, REQUEST_TIMEOUT);
        let mut budget = discovery.max_partitions;
        let mut partitions_left_out = 0;
        let groups = names
            .iter()
            .zip(committed)
            .map(|(name, answer)| {
                let answer = answer.map(|mut partitions| {
                    partitions.retain(|c| discovery.reports(&c.topic));
                    partitions
                        .sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
                    let keep = partitions.len().min(budget);
                    partitions_left_out += partitions.len() - keep;
                    budget -= keep;
                    partitions.truncate(keep);
                    partitions
                });
                (name.to_string(), answer)
            })
            .collect();
        Ok(OtherCommitted {
            groups,
            groups_left_out,
            partitions_left_out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exporters_own_and_judged_groups_are_never_discovered() {
        let config = DiscoveryConfig {
            deny_groups: "test-.*".to_string(),
            ..DiscoveryConfig::default()
        };
        let discovery = Discovery::new(&config, ["meshflow".to_string()], "meshflow-exporter")
            .unwrap()
            .unwrap();
        assert!(discovery.watches("billing"));
        assert!(
            discovery.watches("meshflow-exporterx"),
            "another group's name"
        );
        assert!(!discovery.watches("meshflow"), "judged end to end");
        assert!(
            !discovery.watches("meshflow-exporter"),
            "the exporter's reader"
        );
        assert!(
            !discovery.watches("meshflow-exporter-probe"),
            "the exporter's reader"
        );
        assert!(!discovery.watches("test-1"), "denied");
        let off = DiscoveryConfig {
            enabled: false,
            ..DiscoveryConfig::default()
        };
        assert!(Discovery::new(&off, [], "x").unwrap().is_none());
    }
}
