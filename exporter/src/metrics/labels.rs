//! The label sets of the exporter's series.

use prometheus_client::encoding::EncodeLabelSet;

/// Labels: topic.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub(crate) topic: String,
}

/// Labels: topic and group (empty at stage `log`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicGroupLabels {
    pub(crate) topic: String,
    pub(crate) group: String,
}

/// Labels: topic, stage and group.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub(crate) topic: String,
    /// `log` or `processed`.
    pub(crate) stage: &'static str,
    /// Empty at stage `log`.
    pub(crate) group: String,
}

/// Labels: topic and why a record was invalid.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InvalidLabels {
    pub(crate) topic: String,
    pub(crate) reason: &'static str,
}

/// Labels: topic, stage and why an observation was refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectedLabels {
    pub(crate) topic: String,
    /// `log` or `processed`.
    pub(crate) stage: &'static str,
    pub(crate) reason: &'static str,
}

/// Labels: why producer windows were dropped.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EvictionLabels {
    /// `idle`, `capacity` or `rebased`.
    pub(crate) reason: &'static str,
}

/// Labels: group, topic and partition.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LagLabels {
    pub(crate) group: String,
    pub(crate) topic: String,
    pub(crate) partition: i32,
}

/// Labels: group.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    pub(crate) group: String,
}

/// Labels: what discovery left out (`groups` or `partitions`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeftOutLabels {
    pub(crate) what: &'static str,
}

/// Labels: topic and partition.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub(crate) topic: String,
    pub(crate) partition: i32,
}

/// Labels of the group status stateset: the group and the state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub(crate) group: String,
    pub(crate) meshflow_consumer_group_status: &'static str,
}

/// The exemplar of an end-to-end latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceLabels {
    pub(crate) trace_id: String,
}

/// Labels: group and one of its states
/// ([`GroupState`](crate::membership::GroupState)).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupStateLabels {
    pub(crate) group: String,
    pub(crate) state: &'static str,
}

/// Labels: group and its assignor
/// ([`Assignor`](crate::membership::Assignor)).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AssignorLabels {
    pub(crate) group: String,
    pub(crate) assignor: &'static str,
}

/// Labels: group and which member's count (`min` or `max`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MemberPartitionsLabels {
    pub(crate) group: String,
    pub(crate) stat: &'static str,
}
