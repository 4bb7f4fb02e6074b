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
//!
//! Loss is judged against progress (see [`crate::progress`]): the reader
//! resolves where each partition's reading starts, tracks the offsets it
//! reads, and takes from the polling loop the high watermarks of both topics
//! and the watched groups' committed offsets. From those it sets the
//! accounting's [`Horizon`] before every sweep, and publishes how far behind
//! its reading is (`meshflow_exporter_read_lag_seconds`): while it is behind,
//! or the broker does not answer, nothing new is judged.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use meshflow_common::envelope::{now_ns, Envelope};
use meshflow_common::http::Readiness;
use meshflow_common::kafka::millis;
use meshflow_common::receipt::ReceiptBatch;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use tokio_util::sync::CancellationToken;

use crate::accounting::Accounting;
use crate::config::Config;
use crate::groups::PerGroup;
use crate::metrics::ExporterMetrics;
use crate::observation::{Evictions, Horizon, LogRecord, ReceiptEntry};
use crate::progress::{CommitHorizon, GroupHorizon, PollMarks, TopicProgress};
use crate::watch::MarksReceiver;
use crate::window::duration_ns;
use crate::Error;

/// Readiness condition: the data topic's partitions are assigned.
pub const READY_LOG: &str = meshflow_common::contract::ready::LOG_ASSIGNED;
/// Readiness condition: the receipts topic's partitions are assigned.
pub const READY_RECEIPTS: &str = meshflow_common::contract::ready::RECEIPTS_ASSIGNED;

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
    /// How far the data topic has been read.
    log_progress: TopicProgress,
    /// How far the receipts topic has been read.
    receipts_progress: TopicProgress,
    /// Checkpoints of the data topic's reading position.
    commits: CommitHorizon,
    /// Per watched group: its released horizon.
    group_horizons: PerGroup<GroupHorizon>,
    /// Watermarks and committed offsets from the polling loop.
    marks: Option<MarksReceiver>,
    /// Grace for receipts after a group's commit was seen.
    sla_ns: u64,
    /// When the reader started, unix ns.
    started_ns: u64,
    /// Evictions already published.
    published_evictions: Evictions,
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
            metrics,
            readiness,
            topic: config.exporter.topic.clone(),
            receipts_topic: config.exporter.receipts_topic.clone(),
            assigned: BTreeSet::new(),
            log_progress: TopicProgress::default(),
            receipts_progress: TopicProgress::default(),
            commits: CommitHorizon::default(),
            group_horizons: PerGroup::filled(accounting.groups(), GroupHorizon::default()),
            marks: None,
            sla_ns: duration_ns(config.exporter.sla),
            started_ns: now_ns(),
            published_evictions: Evictions::default(),
            accounting,
        }
    }

    /// Takes progress (watermarks, committed offsets) from the polling loop.
    pub fn with_marks(mut self, marks: MarksReceiver) -> Self {
        self.marks = Some(marks);
        self
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
        let mut marks = self.marks.take();
        let mut discovering: Option<tokio::task::JoinHandle<_>> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = sweep.tick() => self.sweep(),
                found = async { discovering.as_mut()?.await.ok() }, if discovering.is_some() => {
                    discovering = None;
                    if let Some(found) = found {
                        self.assign(found);
                    }
                }
                changed = async { marks.as_mut()?.changed().await.ok() }, if marks.is_some() => {
                    match changed {
                        Some(()) => {
                            let latest = marks.as_mut().and_then(|m| m.borrow_and_update().clone());
                            if let Some(latest) = latest {
                                self.apply_marks(&latest);
                            }
                        }
                        // The polling loop ended; the service notices and stops.
                        None => marks = None,
                    }
                }
                _ = report.tick() => self.log_state(),
                _ = check.tick(), if discovering.is_none() => discovering = Some(self.discover()),
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

    /// Accounts one record of either topic.
    fn handle(&mut self, message: &BorrowedMessage<'_>) {
        let read_ns = now_ns();
        if message.topic() == self.topic {
            self.handle_log(message, read_ns);
            self.log_progress
                .record(message.partition(), message.offset());
        } else if message.topic() == self.receipts_topic {
            self.handle_receipts(message.payload().unwrap_or_default(), read_ns);
            self.receipts_progress
                .record(message.partition(), message.offset());
        }
    }

    /// Takes one poll's watermarks and committed offsets.
    pub fn apply_marks(&mut self, marks: &PollMarks) {
        for &(partition, high) in &marks.log_highs {
            self.log_progress.watermark(partition, high, marks.at_ns);
        }
        for &(partition, high) in &marks.receipt_highs {
            self.receipts_progress
                .watermark(partition, high, marks.at_ns);
        }
        let mut oldest_needed = u64::MAX;
        for (group, horizon) in self.group_horizons.iter_mut() {
            let Some(committed) = marks.committed.get(group) else {
                continue;
            };
            let through = committed
                .as_ref()
                .and_then(|committed| self.commits.committed_through(committed));
            if let Some(through) = through {
                // Seen once the poll ended: the commit may be that recent.
                horizon.commit_seen(marks.done_ns, through);
            }
            oldest_needed = oldest_needed.min(through.unwrap_or(0));
        }
        self.commits.forget_before(oldest_needed);
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
        let group = self.accounting.groups().id(&batch.group);
        for entry in batch.entries.iter().filter(|e| e.topic == self.topic) {
            let receipt = ReceiptEntry {
                group: &batch.group,
                producer: &entry.producer,
                seq: entry.seq,
                partition: entry.partition,
                created_ns: entry.created_ns,
                processed_ns: entry.processed_ns,
            };
            match group {
                Some(group) => {
                    let observed = self
                        .accounting
                        .observe_group_receipt(group, &receipt, read_ns);
                    self.metrics
                        .record_receipt(group, observed, &entry.trace_id);
                }
                // Counted as unwatched, nothing else.
                None => {
                    self.accounting.observe_receipt(&receipt, read_ns);
                }
            }
        }
    }

    /// Judges what the reading's progress allows and counts the loss found.
    pub fn sweep(&mut self) {
        let now = now_ns();
        self.commits.checkpoint(now, self.log_progress.positions());
        let receipts_through = self.receipts_progress.through_ns();
        let horizon = Horizon {
            log_ns: self.log_progress.through_ns(),
            processed_ns: self
                .group_horizons
                .map_mut(|_, group| group.release(now, receipts_through, self.sla_ns)),
        };
        self.accounting.set_horizon(&horizon);
        let read_lag = |through: Option<u64>| {
            let since = through.unwrap_or(self.started_ns).max(self.started_ns);
            Duration::from_nanos(now.saturating_sub(since))
        };
        self.metrics
            .set_read_lag(&self.topic, read_lag(self.log_progress.through_ns()));
        self.metrics
            .set_read_lag(&self.receipts_topic, read_lag(receipts_through));
        let report = self.accounting.sweep();
        self.metrics.record_sweep(&report);
        let evictions = self.accounting.evictions();
        self.metrics
            .record_evictions(evictions, self.published_evictions);
        self.published_evictions = evictions;
        if report.log_lost > 0 {
            tracing::warn!(
                topic = %self.topic,
                lost = report.log_lost,
                "messages lost at stage log: sequence gaps past the grace period"
            );
        }
        for (group, lost) in report.processed_lost.iter() {
            if *lost > 0 {
                tracing::warn!(
                    topic = %self.topic,
                    group = self.accounting.groups().name(group),
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
            rebased = evictions.rebased,
            log_rejected = log.rejected,
            "accounting"
        );
    }
}

mod assignment;

#[cfg(test)]
mod tests;
