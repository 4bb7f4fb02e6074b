//! Which partitions the reader reads, and from where: both topics'
//! partitions are found by metadata and assigned by the reader itself.

use std::collections::{BTreeMap, BTreeSet};

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use super::{Reader, ReaderConsumer, METADATA_TIMEOUT, READY_LOG, READY_RECEIPTS};

impl Reader {
    pub(super) fn both_assigned(&self) -> bool {
        self.has(&self.topic) && self.has(&self.receipts_topic)
    }

    /// Assigns every partition of both topics not assigned yet: at the
    /// committed offset (or the end) at first, from the beginning when a
    /// partition appears later. Partitions already assigned continue where
    /// they are. Start offsets are resolved here, not left to librdkafka, so
    /// the reading progress knows where each partition's reading began.
    pub(super) async fn assign_partitions(&mut self) {
        let resolved = self.discover().await.unwrap_or_default();
        self.assign(resolved);
    }

    /// Finds the partitions of both topics not assigned yet and resolves
    /// where each starts, on a blocking thread: a broker that does not
    /// answer holds this for a few request timeouts, so the reading loop
    /// runs it beside its other work instead of waiting for it.
    pub(super) fn discover(&self) -> tokio::task::JoinHandle<BTreeMap<(String, i32), i64>> {
        let consumer = self.consumer.clone();
        let topics = [self.topic.clone(), self.receipts_topic.clone()];
        let assigned = self.assigned.clone();
        tokio::task::spawn_blocking(move || {
            let mut found = BTreeSet::new();
            for topic in &topics {
                match consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT) {
                    Ok(metadata) => {
                        for t in metadata.topics().iter().filter(|t| t.error().is_none()) {
                            for p in t.partitions() {
                                found.insert((t.name().to_string(), p.id()));
                            }
                        }
                    }
                    Err(e) => tracing::warn!(topic = %topic, error = %e, "partition metadata"),
                }
            }
            let new: Vec<(String, i32)> = found.difference(&assigned).cloned().collect();
            resolve_starts(&consumer, &assigned, new)
        })
    }

    /// Adds the `resolved` partitions to the assignment at their start
    /// offsets.
    pub(super) fn assign(&mut self, resolved: BTreeMap<(String, i32), i64>) {
        // Partitions assigned since the discovery began are left alone.
        let resolved: BTreeMap<(String, i32), i64> = resolved
            .into_iter()
            .filter(|(key, _)| !self.assigned.contains(key))
            .collect();
        if resolved.is_empty() {
            return;
        }
        // Re-assigning replaces the whole assignment: the partitions already
        // read continue at the next offset the progress knows.
        let log = self.log_progress.positions();
        let receipts = self.receipts_progress.positions();
        let mut assignment = TopicPartitionList::new();
        for (topic, partition) in &self.assigned {
            let positions = if *topic == self.topic {
                &log
            } else {
                &receipts
            };
            let at = positions
                .get(partition)
                .map_or(Offset::Stored, |&(_, next)| Offset::Offset(next));
            let _ = assignment.add_partition_offset(topic, *partition, at);
        }
        let mut added = Vec::new();
        for ((topic, partition), start) in &resolved {
            let _ = assignment.add_partition_offset(topic, *partition, Offset::Offset(*start));
            added.push(format!("{topic}:{partition}@{start}"));
        }
        let data_before = self.has(&self.topic);
        match self.consumer.assign(&assignment) {
            Ok(()) => {
                tracing::info!(partitions = %added.join(","), "partitions assigned");
                self.note_history(data_before, &resolved);
                for ((topic, partition), start) in resolved {
                    if topic == self.topic {
                        self.log_progress.assign(partition, start);
                    } else {
                        self.receipts_progress.assign(partition, start);
                    }
                    self.assigned.insert((topic, partition));
                }
                self.readiness.set(READY_LOG, self.has(&self.topic));
                self.readiness
                    .set(READY_RECEIPTS, self.has(&self.receipts_topic));
            }
            Err(e) => tracing::warn!(error = %e, "assign partitions"),
        }
    }

    /// Tells the accounting whether the reading covers the data topic's
    /// whole history: at the first assignment, every partition starts at
    /// offset 0 (a later partition starting elsewhere ends that).
    fn note_history(&mut self, data_before: bool, resolved: &BTreeMap<(String, i32), i64>) {
        let starts: Vec<i64> = resolved
            .iter()
            .filter(|((topic, _), _)| *topic == self.topic)
            .map(|(_, &start)| start)
            .collect();
        let from_zero = starts.iter().all(|&start| start == 0);
        if !data_before && !starts.is_empty() {
            self.accounting.set_whole_history(from_zero);
            tracing::info!(whole_history = from_zero, "data topic reading starts");
        } else if !from_zero {
            self.accounting.set_whole_history(false);
        }
    }

    pub(super) fn has(&self, topic: &str) -> bool {
        self.assigned.iter().any(|(t, _)| t == topic)
    }
}

/// The start offset of each new partition: a topic seen for the first time
/// starts where the exporter's group left off, or at the end; a partition
/// added to a known topic holds only messages not read yet, so it starts at
/// its beginning. Partitions whose offsets cannot be resolved are left for
/// the next check.
fn resolve_starts(
    consumer: &ReaderConsumer,
    assigned: &BTreeSet<(String, i32)>,
    new: Vec<(String, i32)>,
) -> BTreeMap<(String, i32), i64> {
    let known = |topic: &str| assigned.iter().any(|(t, _)| t == topic);
    let mut wanted = TopicPartitionList::new();
    for (topic, partition) in new.iter().filter(|(t, _)| !known(t)) {
        wanted.add_partition(topic, *partition);
    }
    let committed = if wanted.count() == 0 {
        TopicPartitionList::new()
    } else {
        match consumer.committed_offsets(wanted, METADATA_TIMEOUT) {
            Ok(committed) => committed,
            Err(e) => {
                tracing::warn!(error = %e, "committed offsets of the exporter's group");
                return BTreeMap::new();
            }
        }
    };
    let mut starts = BTreeMap::new();
    for (topic, partition) in new {
        let (low, high) = match consumer.fetch_watermarks(&topic, partition, METADATA_TIMEOUT) {
            Ok(marks) => marks,
            Err(e) => {
                tracing::warn!(%topic, partition, error = %e, "watermarks");
                continue;
            }
        };
        let start = if known(&topic) {
            low
        } else {
            match committed
                .find_partition(&topic, partition)
                .map(|e| e.offset())
            {
                Some(Offset::Offset(offset)) if offset >= 0 => offset.clamp(low, high),
                _ => high,
            }
        };
        starts.insert((topic, partition), start);
    }
    starts
}
