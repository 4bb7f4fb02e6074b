//! The cluster view: every partition of the reported topics as one
//! metadata answer and the batched watermarks describe it (leader, replicas,
//! in-sync replicas, low and high watermark), and the brokers.

use std::collections::BTreeMap;

use rdkafka::metadata::Metadata;

use super::{ClusterHealth, PartitionHealth};

/// The partitions of the topics `reported` selects, and always of
/// `always` (the judged and receipts topics), sorted; at most `max`
/// partitions of the reported topics (whole topics, by name), with how many
/// were left out.
pub(super) fn health(
    metadata: &Metadata,
    always: &[&str],
    reported: impl Fn(&str) -> bool,
    max: usize,
) -> ClusterHealth {
    let mut topics: BTreeMap<&str, Vec<PartitionHealth>> = BTreeMap::new();
    for t in metadata.topics().iter().filter(|t| t.error().is_none()) {
        let partitions = t.partitions().iter().map(|p| PartitionHealth {
            topic: t.name().to_string(),
            partition: p.id(),
            leader: p.leader(),
            replicas: p.replicas().len(),
            isr: p.isr().len(),
            watermarks: None,
        });
        let mut partitions: Vec<PartitionHealth> = partitions.collect();
        partitions.sort_by_key(|p| p.partition);
        topics.insert(t.name(), partitions);
    }
    let mut partitions = Vec::new();
    let mut left_out = 0;
    let mut budget = max;
    for (name, list) in topics {
        if always.contains(&name) {
            partitions.extend(list);
        } else if reported(name) {
            if list.len() <= budget {
                budget -= list.len();
                partitions.extend(list);
            } else {
                left_out += list.len();
            }
        }
    }
    ClusterHealth {
        brokers: metadata.brokers().len(),
        partitions,
        partitions_left_out: left_out,
        ..ClusterHealth::default()
    }
}
