//! Reading the data topic and the receipts topic into the accounting.
//!
//! One consumer reads every partition of both topics: the data topic tells
//! what reached the log, the receipts topic what each watched group
//! processed. It assigns the partitions itself instead of joining a group,
//! because one exporter must see every partition (a producer's sequence
//! numbers are spread over all of them) and because a restart then resumes
//! at once, without waiting for a dead member's session to expire. Its
//! position is still kept as committed offsets of its own group
//! (`exporter.group_id`): each record is accounted, then its offset stored;
//! stored offsets are committed every second and at shutdown. With no
//! committed offset (the first start) a partition starts at its end: the
//! past is not judged. A partition that appears later is read from its
//! beginning, since all of it is new. The same task sweeps the accounting
//! every second, so the accounting has one owner and no lock.
//!
//! A restart re-reads at most the last second before the crash with fresh
//! windows, and the windows' per-partition floors (see [`crate::window`])
//! make sure that starting mid-stream reports no loss or duplicate.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use meshflow_common::envelope::{now_ns, Envelope};
use meshflow_common::http::Readiness;
use meshflow_common::kafka::millis;
use meshflow_common::receipt::ReceiptBatch;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::accounting::Accounting;
use crate::config::Config;
use crate::metrics::ExporterMetrics;
use crate::observation::{LogRecord, ReceiptEntry};
use crate::Error;

/// Readiness condition: the data topic's partitions are assigned.
pub const READY_LOG: &str = "log_assigned";
/// Readiness condition: the receipts topic's partitions are assigned.
pub const READY_RECEIPTS: &str = "receipts_assigned";

/// How often the accounting is swept.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// How often the topics are checked for new partitions.
const PARTITION_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// Upper bound of one metadata request.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// librdkafka's longest wait for data in one fetch.
const FETCH_WAIT: &str = "fetch.wait.max.ms";
/// 100 ms, instead of librdkafka's 500 ms: a broker that does not answer a
/// fetch as soon as data arrives would otherwise add up to that much to
/// every delivery latency measured. Overridable in `kafka.librdkafka`.
const DEFAULT_FETCH_WAIT: Duration = Duration::from_millis(100);

/// How often the accounting's size and totals are logged.
const STATE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Invalid-record reason: a receipts record that is not a receipt batch.
pub const RECEIPT_NOT_JSON: &str = "receipt_not_json";

/// The consumer of both topics.
pub type ReaderConsumer = StreamConsumer;

/// Creates the consumer; [`Reader::run`] assigns its partitions.
pub fn consumer(config: &Config) -> Result<ReaderConsumer, Error> {
    let client = config.kafka.client_config_with(|client| {
        client
            .set("group.id", &config.exporter.group_id)
            .set("client.id", "meshflow-exporter")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "latest")
            .set(FETCH_WAIT, millis(DEFAULT_FETCH_WAIT));
    });
    client.create().map_err(|source| Error::Kafka {
        operation: "consumer",
        source,
    })
}

/// Feeds the accounting from the consumer and sweeps it.
pub struct Reader {
    consumer: Arc<ReaderConsumer>,
    accounting: Accounting,
    metrics: ExporterMetrics,
    readiness: Arc<Readiness>,
    topic: String,
    receipts_topic: String,
    /// (topic, partition) currently assigned.
    assigned: BTreeSet<(String, i32)>,
}

impl Reader {
    /// A reader over a subscribed consumer.
    pub fn new(
        consumer: Arc<ReaderConsumer>,
        accounting: Accounting,
        metrics: ExporterMetrics,
        readiness: Arc<Readiness>,
        config: &Config,
    ) -> Self {
        Reader {
            consumer,
            accounting,
            metrics,
            readiness,
            topic: config.exporter.topic.clone(),
            receipts_topic: config.exporter.receipts_topic.clone(),
            assigned: BTreeSet::new(),
        }
    }

    /// Assigns the partitions of both topics once they exist, reads until
    /// `shutdown`, then commits what was read.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let consumer = self.consumer.clone();
        let mut check = tokio::time::interval(PARTITION_CHECK_INTERVAL);
        while !self.both_assigned() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = check.tick() => self.assign_partitions().await,
            }
        }
        let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
        let mut report = tokio::time::interval(STATE_LOG_INTERVAL);
        report.tick().await;
        // The same error repeats every poll while Kafka is away: log changes.
        let mut failing: Option<String> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = sweep.tick() => self.sweep(),
                _ = report.tick() => self.log_state(),
                _ = check.tick() => self.assign_partitions().await,
                message = consumer.recv() => match message {
                    Ok(message) => {
                        if failing.take().is_some() {
                            tracing::info!("reading again");
                        }
                        self.handle(&message);
                        if let Err(e) = consumer.store_offset_from_message(&message) {
                            tracing::debug!(error = %e, "offset not stored");
                        }
                    }
                    Err(e) => {
                        let error = e.to_string();
                        if failing.as_ref() != Some(&error) {
                            tracing::warn!(%error, "consume error");
                            failing = Some(error);
                        }
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        }
                    }
                },
            }
        }
        drop(self);
        let committed = tokio::task::spawn_blocking(move || {
            let result = consumer.commit_consumer_state(CommitMode::Sync);
            let _ = consumer.unassign();
            result
        })
        .await;
        match committed {
            Ok(Ok(())) => tracing::info!("read offsets committed"),
            Ok(Err(e)) => tracing::info!(error = %e, "nothing new to commit"),
            Err(e) => tracing::warn!(error = %e, "commit task"),
        }
    }

    fn both_assigned(&self) -> bool {
        self.has(&self.topic) && self.has(&self.receipts_topic)
    }

    /// Assigns every partition of both topics not assigned yet: at the
    /// committed offset (or the end) at first, from the beginning when a
    /// partition appears later. Partitions already assigned continue where
    /// they are.
    async fn assign_partitions(&mut self) {
        let consumer = self.consumer.clone();
        let topics = [self.topic.clone(), self.receipts_topic.clone()];
        let found = tokio::task::spawn_blocking(move || {
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
            found
        })
        .await
        .unwrap_or_default();
        let new: Vec<&(String, i32)> = found.difference(&self.assigned).collect();
        if new.is_empty() {
            return;
        }
        let positions = self.consumer.position().unwrap_or_default();
        let mut assignment = TopicPartitionList::new();
        for (topic, partition) in &self.assigned {
            let at = positions
                .find_partition(topic, *partition)
                .map(|e| e.offset())
                .filter(|o| matches!(o, Offset::Offset(_)))
                .unwrap_or(Offset::Stored);
            let _ = assignment.add_partition_offset(topic, *partition, at);
        }
        let mut added = Vec::new();
        for (topic, partition) in &new {
            // A topic seen for the first time starts where the group left
            // off (or at the end); a partition added to a known topic holds
            // only messages not read yet.
            let start = if self.has(topic) {
                Offset::Beginning
            } else {
                Offset::Stored
            };
            let _ = assignment.add_partition_offset(topic, *partition, start);
            added.push(format!("{topic}:{partition}:{start:?}"));
        }
        match self.consumer.assign(&assignment) {
            Ok(()) => {
                tracing::info!(partitions = %added.join(","), "partitions assigned");
                let added: Vec<(String, i32)> = new.into_iter().cloned().collect();
                self.assigned.extend(added);
                self.readiness.set(READY_LOG, self.has(&self.topic));
                self.readiness
                    .set(READY_RECEIPTS, self.has(&self.receipts_topic));
            }
            Err(e) => tracing::warn!(error = %e, "assign partitions"),
        }
    }

    fn has(&self, topic: &str) -> bool {
        self.assigned.iter().any(|(t, _)| t == topic)
    }

    /// Accounts one record of either topic.
    fn handle(&mut self, message: &BorrowedMessage<'_>) {
        let read_ns = now_ns();
        if message.topic() == self.topic {
            self.handle_log(message, read_ns);
        } else if message.topic() == self.receipts_topic {
            self.handle_receipts(message.payload().unwrap_or_default(), read_ns);
        }
    }

    fn handle_log(&mut self, message: &BorrowedMessage<'_>, read_ns: u64) {
        match Envelope::from_headers(message.headers()) {
            Ok(Some(envelope)) => {
                let observed = self.accounting.observe_log(&LogRecord {
                    producer: &envelope.producer,
                    seq: envelope.seq,
                    partition: message.partition(),
                    created_ns: envelope.created_ns,
                    read_ns,
                });
                self.metrics.record_log(observed);
            }
            // Unenveloped: a third-party message, nothing to judge.
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(
                    partition = message.partition(),
                    offset = message.offset(),
                    error = %e,
                    "invalid envelope"
                );
                self.metrics.record_invalid(&self.topic, e.reason());
            }
        }
    }

    /// Accounts the entries of one receipt batch about the data topic.
    pub fn handle_receipts(&mut self, payload: &[u8], read_ns: u64) {
        let batch: ReceiptBatch = match serde_json::from_slice(payload) {
            Ok(batch) => batch,
            Err(e) => {
                tracing::debug!(error = %e, "unreadable receipt batch");
                self.metrics
                    .record_invalid(&self.receipts_topic, RECEIPT_NOT_JSON);
                return;
            }
        };
        let group_index = self
            .accounting
            .groups()
            .iter()
            .position(|g| *g == batch.group);
        for entry in batch.entries.iter().filter(|e| e.topic == self.topic) {
            let observed = self.accounting.observe_receipt(
                &ReceiptEntry {
                    group: &batch.group,
                    producer: &entry.producer,
                    seq: entry.seq,
                    partition: entry.partition,
                    created_ns: entry.created_ns,
                    processed_ns: entry.processed_ns,
                },
                read_ns,
            );
            if let Some(index) = group_index {
                self.metrics
                    .record_receipt(index, observed, &entry.trace_id);
            }
        }
    }

    /// Judges what is due and counts the loss found.
    pub fn sweep(&mut self) {
        let report = self.accounting.sweep(now_ns());
        self.metrics.record_sweep(&report);
        if report.log_lost > 0 {
            tracing::warn!(
                topic = %self.topic,
                lost = report.log_lost,
                "messages lost at stage log: sequence gaps past the grace period"
            );
        }
        for (group, lost) in self.accounting.groups().iter().zip(&report.processed_lost) {
            if *lost > 0 {
                tracing::warn!(
                    topic = %self.topic,
                    %group,
                    lost,
                    "messages lost at stage processed: no receipt within the SLA"
                );
            }
        }
    }

    fn log_state(&self) {
        let log = self.accounting.log_counters();
        let evictions = self.accounting.evictions();
        tracing::info!(
            producers = self.accounting.producers(),
            memory_bytes = self.accounting.memory_bytes(),
            log_messages = log.messages,
            log_lost = log.lost,
            log_duplicated = log.duplicated,
            ignored = log.ignored,
            unwatched_receipts = self.accounting.unwatched_receipts(),
            evicted_idle = evictions.idle,
            evicted_capacity = evictions.capacity,
            "accounting"
        );
    }
}

#[cfg(test)]
mod tests;
