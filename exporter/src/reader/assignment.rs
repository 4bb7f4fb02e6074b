//! Which partitions the reader reads, and from where: the judged topics
//! and their partitions, and the receipts topic's, are found by metadata
//! and assigned by the reader itself.

use std::collections::{BTreeMap, BTreeSet};

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use super::{Reader, ReaderConsumer, METADATA_TIMEOUT, READY_LOG, READY_RECEIPTS};
use crate::config::{JudgedTopics, TopicMatcher};

/// What one partition check found.
#[derive(Debug, Default)]
pub(super) struct Discovered {
    /// The judged topics, when the metadata could be read.
    judged: Option<JudgedTopics>,
    /// The start offset of each partition not assigned yet.
    starts: BTreeMap<(String, i32), i64>,
}

#[cfg(test)]
impl Discovered {
    /// A check that found `topics` judged and no new partition.
    pub(super) fn judging(topics: &[&str]) -> Self {
        Discovered {
            judged: Some(JudgedTopics {
                topics: topics.iter().map(|t| t.to_string()).collect(),
                left_out: 0,
            }),
            starts: BTreeMap::new(),
        }
    }
}

impl Reader {
    /// The receipts topic and at least one judged topic have partitions
    /// assigned.
    pub(super) fn both_assigned(&self) -> bool {
        self.has(&self.receipts_topic) && self.judging()
    }

    /// Some judged topic has partitions assigned.
    fn judging(&self) -> bool {
        self.assigned
            .iter()
            .any(|(t, _)| self.books.contains_key(t))
    }

    /// Assigns every partition of the judged topics and of the receipts
    /// topic not assigned yet: at the committed offset (or the end) at
    /// first, from the beginning when a partition or a judged topic appears
    /// later. Partitions already assigned continue where they are. Start
    /// offsets are resolved here, not left to librdkafka, so the reading
    /// progress knows where each partition's reading began.
    pub(super) async fn assign_partitions(&mut self) {
        let discovered = self.discover().await.unwrap_or_default();
        self.assign(discovered);
    }

    /// Resolves the judged topics, finds the partitions not assigned yet
    /// and where each starts, on a blocking thread: a broker that does not
    /// answer holds this for a few request timeouts, so the reading loop
    /// runs it beside its other work instead of waiting for it.
    pub(super) fn discover(&self) -> tokio::task::JoinHandle<Discovered> {
        let consumer = self.consumer.clone();
        let matcher = self.matcher.clone();
        let receipts = self.receipts_topic.clone();
        let assigned = self.assigned.clone();
        let later = self.resolved_once;
        tokio::task::spawn_blocking(move || {
            let Some(listed) = list_partitions(&consumer, &matcher, &receipts) else {
                return Discovered::default();
            };
            let judged = matcher.select(listed.keys().map(String::as_str));
            let read: BTreeSet<&str> = judged
                .topics
                .iter()
                .map(String::as_str)
                .chain([receipts.as_str()])
                .collect();
            let new: Vec<(String, i32)> = listed
                .iter()
                .filter(|(topic, _)| read.contains(topic.as_str()))
                .flat_map(|(topic, ids)| ids.iter().map(|&p| (topic.clone(), p)))
                .filter(|key| !assigned.contains(key))
                .collect();
            let from_start = |topic: &str| later && topic != receipts;
            let starts = resolve_starts(&consumer, &assigned, new, from_start);
            Discovered {
                judged: Some(judged),
                starts,
            }
        })
    }

    /// Follows the judged topics found and adds the new partitions to the
    /// assignment at their start offsets.
    pub(super) fn assign(&mut self, discovered: Discovered) {
        let mut dropped = false;
        if let Some(judged) = &discovered.judged {
            self.resolved_once = true;
            let gone: Vec<String> = self
                .books
                .keys()
                .filter(|t| !judged.topics.contains(t))
                .cloned()
                .collect();
            for topic in gone {
                // Its counters stay; its books and partitions go.
                self.books.remove(&topic);
                let before = self.assigned.len();
                self.assigned.retain(|(t, _)| *t != topic);
                if self.assigned.len() != before {
                    dropped = true;
                    tracing::info!(%topic, "topic no longer judged");
                }
            }
            for topic in &judged.topics {
                self.book(topic);
            }
        }
        // Partitions assigned since the discovery began are left alone, and
        // those of a topic no longer judged are not taken.
        let resolved: BTreeMap<(String, i32), i64> = discovered
            .starts
            .into_iter()
            .filter(|((topic, _), _)| {
                *topic == self.receipts_topic || self.books.contains_key(topic)
            })
            .filter(|(key, _)| !self.assigned.contains(key))
            .collect();
        if resolved.is_empty() && !dropped {
            return;
        }
        // Re-assigning replaces the whole assignment: the partitions already
        // read continue at the next offset the progress knows.
        let mut assignment = TopicPartitionList::new();
        for (topic, partition) in &self.assigned {
            let positions = match self.books.get(topic) {
                Some(book) => book.progress.positions(),
                None => self.receipts_progress.positions(),
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
        match self.consumer.assign(&assignment) {
            Ok(()) => {
                tracing::info!(partitions = %added.join(","), "partitions assigned");
                let mut starts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
                for ((topic, partition), start) in resolved {
                    match self.books.get_mut(&topic) {
                        Some(book) => {
                            book.progress.assign(partition, start);
                            starts.entry(topic.clone()).or_default().push(start);
                        }
                        None => self.receipts_progress.assign(partition, start),
                    }
                    self.assigned.insert((topic, partition));
                }
                for (topic, starts) in starts {
                    if let Some(book) = self.books.get_mut(&topic) {
                        book.note_history(&starts);
                    }
                }
                self.readiness.set(READY_LOG, self.judging());
                self.readiness
                    .set(READY_RECEIPTS, self.has(&self.receipts_topic));
            }
            Err(e) => tracing::warn!(error = %e, "assign partitions"),
        }
    }

    pub(super) fn has(&self, topic: &str) -> bool {
        self.assigned.iter().any(|(t, _)| t == topic)
    }
}

/// The partitions of every topic that may be read, by topic: all the
/// cluster's topics when a judged entry is a pattern, else the literal
/// ones and the receipts topic. `None` when the metadata could not be read.
fn list_partitions(
    consumer: &ReaderConsumer,
    matcher: &TopicMatcher,
    receipts: &str,
) -> Option<BTreeMap<String, Vec<i32>>> {
    let asked: Vec<Option<&str>> = if matcher.has_patterns() {
        vec![None]
    } else {
        matcher
            .literals()
            .iter()
            .map(|t| Some(t.as_str()))
            .chain([Some(receipts)])
            .collect()
    };
    let mut listed = BTreeMap::new();
    for topic in asked {
        match consumer.fetch_metadata(topic, METADATA_TIMEOUT) {
            Ok(metadata) => {
                for t in metadata.topics().iter().filter(|t| t.error().is_none()) {
                    let ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
                    if !ids.is_empty() {
                        listed.insert(t.name().to_string(), ids);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(topic = topic.unwrap_or("*"), error = %e, "partition metadata");
                return None;
            }
        }
    }
    Some(listed)
}

/// The start offset of each new partition: a topic seen for the first time
/// starts where the exporter's group left off, or else at the end, or at
/// its beginning when `from_start` says the topic appeared after the
/// reading began; a partition added to a known topic holds only messages
/// not read yet, so it starts at its beginning. Partitions whose offsets
/// cannot be resolved are left for the next check.
fn resolve_starts(
    consumer: &ReaderConsumer,
    assigned: &BTreeSet<(String, i32)>,
    new: Vec<(String, i32)>,
    from_start: impl Fn(&str) -> bool,
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
                _ if from_start(&topic) => low,
                _ => high,
            }
        };
        starts.insert((topic, partition), start);
    }
    starts
}
