//! What one poll found: the cluster's health, each group's lag, the
//! discovered groups, the brokers; and what failed in it.

use std::collections::BTreeMap;

use super::{Broker, Others};
use crate::config::JudgedTopics;
use crate::groups::PerGroup;
use crate::lag::{LagSample, PartitionOffsets};
use crate::membership::Membership;
use crate::progress::Committed;
use crate::Error;

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
    /// Low and high watermark, when they were read.
    pub watermarks: Option<(i64, i64)>,
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

    /// Fewer in-sync replicas than `min_insync`: `acks=all` writes to it
    /// fail.
    pub fn under_min_isr(&self, min_insync: u32) -> bool {
        u32::try_from(self.isr).unwrap_or(u32::MAX) < min_insync
    }
}

/// The cluster's health as one metadata answer tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterHealth {
    /// Brokers listed.
    pub brokers: usize,
    /// Partitions of the judged and receipts topics and of the reported
    /// topics (all of them when discovery is off: just the judged and the
    /// receipts topics), sorted.
    pub partitions: Vec<PartitionHealth>,
    /// Partitions of reported topics beyond `exporter.discovery.max_partitions`.
    pub partitions_left_out: usize,
    /// Each topic's `min.insync.replicas` in force: its own, else the
    /// broker's, else `exporter.cluster.min_insync_replicas`.
    pub min_insync: BTreeMap<String, u32>,
    /// Why DescribeConfigs failed, when it did (every topic then has the
    /// configured value).
    pub configs_error: Option<Error>,
}

/// One partition's lag for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The judged topic.
    pub topic: String,
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
    /// The judged topics this poll resolved from its metadata answer, or
    /// `None` when the metadata could not be read.
    pub judged: Option<JudgedTopics>,
    /// Per watched group: its lag on every partition of the judged topics,
    /// or why its offsets could not be read at all.
    pub groups: PerGroup<Result<Vec<PartitionLag>, Error>>,
    /// High watermarks of each judged topic's partitions that answered,
    /// asked for after `at_ns`.
    pub log_highs: BTreeMap<String, Vec<(i32, i64)>>,
    /// High watermarks of the receipts topic's partitions that answered.
    pub receipt_highs: Vec<(i32, i64)>,
    /// Why the timestamps for lag in seconds could not be read, if so.
    pub timestamp_error: Option<Error>,
    /// The cluster's other groups (empty when discovery is off), or why
    /// they could not be listed.
    pub others: Result<Others, Error>,
    /// The brokers with their racks, or why they could not be described.
    pub brokers: Result<Vec<Broker>, Error>,
    /// The watched groups (judged and discovered) as their coordinators
    /// describe them, or why they could not be described.
    pub memberships: Result<Vec<Membership>, Error>,
}

/// What can fail in a poll: the `kind` label of
/// `meshflow_exporter_poll_errors_total`.
pub const POLL_ERROR_KINDS: [&str; 8] = [
    "metadata",
    "watermarks",
    "group_offsets",
    "timestamps",
    "list_groups",
    "brokers",
    "describe_groups",
    "describe_configs",
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
            self.brokers.is_err(),
            self.memberships.is_err(),
            self.health
                .as_ref()
                .is_ok_and(|h| h.configs_error.is_some()),
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

    /// Per watched group, the committed offsets read ((topic, partition) →
    /// the next offset the group consumes); `None` when the group's offsets
    /// could not be read.
    pub fn committed(&self) -> Committed {
        self.groups.map(|_, group| {
            let partitions = group.as_ref().ok()?;
            Some(
                partitions
                    .iter()
                    .filter_map(|lag| {
                        let offsets = lag.offsets.as_ref().ok()?;
                        let committed = offsets.committed.filter(|&c| c >= 0)?;
                        Some(((lag.topic.clone(), lag.partition), committed))
                    })
                    .collect(),
            )
        })
    }
}
