//! Reading the judged data topics and the receipts topic into the
//! accounting.
//!
//! One consumer reads every partition of the judged topics and of the
//! receipts topic: a data topic tells what reached its log, the receipts
//! topic what each watched group processed. Each judged topic has its own
//! books ([`TopicBook`]: accounting, progress, commit checkpoints, group
//! horizons, series); records go to their topic's books and receipt
//! entries to the books of the topic they name (entries about a topic not
//! judged are ignored). The judged topics (`exporter.topics`: names and
//! `^` patterns, at most `exporter.max_topics`) are resolved from metadata
//! on every partition check; a topic no longer judged stops being read and
//! its books go, its counters stay. It assigns the partitions itself instead of joining a group,
//! because one exporter must see every partition (a producer's sequence
//! numbers are spread over all of them) and because a restart then resumes
//! at once, without waiting for a dead member's session to expire. Its
//! position is still kept as committed offsets of its own group
//! (`exporter.group_id`): each record is accounted, then its offset stored;
//! stored offsets are committed every second and at shutdown. With no
//! committed offset (the first start) a partition starts at its end: the
//! past is not judged. A partition or a judged topic that appears later is
//! read from its beginning, since all of it is new. The same task sweeps the accounting
//! every second, so the accounting has one owner and no lock.
//!
//! A restart re-reads at most the last second before the crash with fresh
//! windows, and the windows' per-partition floors (see [`crate::window`])
//! make sure that starting mid-stream reports no loss or duplicate.
//!
//! Loss is judged against progress (see [`crate::progress`]): the reader
//! resolves where each partition's reading starts, tracks the offsets it
//! reads, and takes from the polling loop the high watermarks of every topic
//! it reads and the watched groups' committed offsets. From those it sets the
//! accounting's [`Horizon`] before every sweep, and publishes how far behind
//! its reading is (`meshflow_exporter_read_lag_seconds`): while it is behind,
//! or the broker does not answer, nothing new is judged.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use meshflow_common::envelope::now_ns;
use meshflow_common::headers::HeaderView;
use meshflow_common::http::Readiness;
use meshflow_common::kafka::millis;
use meshflow_common::receipt::{self, FORMAT_HEADER};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use tokio_util::sync::CancellationToken;

use crate::config::{AccountingConfig, Config, TopicMatcher};
use crate::metrics::ExporterMetrics;
use crate::observation::ReceiptEntry;
use crate::progress::{PollMarks, TopicProgress};
use crate::watch::MarksReceiver;
use crate::window::duration_ns;
use crate::Error;

use book::SweepClock;
pub use book::TopicBook;

/// Readiness condition: some judged topic's partitions are assigned.
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

/// Invalid-record reason: a format-1 receipts record that is not a receipt
/// batch.
pub const RECEIPT_NOT_JSON: &str = "receipt_not_json";
/// Invalid-record reason: a format-2 receipts record that is not a receipt
/// batch.
pub const RECEIPT_MALFORMED: &str = "receipt_malformed";
/// Invalid-record reason: a receipts record whose format header names a
/// format this version does not read.
pub const RECEIPT_FORMAT_UNKNOWN: &str = "receipt_format_unknown";

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
    metrics: ExporterMetrics,
    readiness: Arc<Readiness>,
    /// Which topics are judged.
    matcher: TopicMatcher,
    /// The accounting settings each topic's books start with.
    accounting: AccountingConfig,
    receipts_topic: String,
    /// (topic, partition) currently assigned.
    assigned: BTreeSet<(String, i32)>,
    /// The books of each judged topic.
    books: BTreeMap<String, TopicBook>,
    /// How far the receipts topic has been read.
    receipts_progress: TopicProgress,
    /// The judged topics have been resolved once: a topic judged from now
    /// on is new, and read from its beginning.
    resolved_once: bool,
    /// Watermarks and committed offsets from the polling loop.
    marks: Option<MarksReceiver>,
    clock: SweepClock,
}

impl Reader {
    /// A reader over a consumer, judging the topics `matcher` selects with
    /// the accounting settings of `config`. The literal topics' books (and
    /// series) exist from the start.
    pub fn new(
        consumer: Arc<ReaderConsumer>,
        matcher: TopicMatcher,
        metrics: ExporterMetrics,
        readiness: Arc<Readiness>,
        config: &Config,
    ) -> Self {
        let mut reader = Reader {
            consumer,
            metrics,
            readiness,
            accounting: config.exporter.accounting(),
            receipts_topic: config.exporter.receipts_topic.clone(),
            assigned: BTreeSet::new(),
            books: BTreeMap::new(),
            receipts_progress: TopicProgress::default(),
            resolved_once: false,
            marks: None,
            clock: SweepClock {
                sla_ns: duration_ns(config.exporter.sla),
                started_ns: now_ns(),
            },
            matcher,
        };
        for topic in reader.matcher.literals().to_vec() {
            reader.book(&topic);
        }
        reader
    }

    /// The books of `topic`, made when it is first judged.
    fn book(&mut self, topic: &str) -> &mut TopicBook {
        let (accounting, metrics) = (&self.accounting, &self.metrics);
        self.books
            .entry(topic.to_string())
            .or_insert_with(|| TopicBook::new(topic, accounting, metrics.groups(), metrics))
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

    /// Accounts one record of a judged topic or of the receipts topic.
    fn handle(&mut self, message: &BorrowedMessage<'_>) {
        let read_ns = now_ns();
        if message.topic() == self.receipts_topic {
            let format = HeaderView::of(message.headers()).get(FORMAT_HEADER);
            self.handle_receipts(format, message.payload().unwrap_or_default(), read_ns);
            self.receipts_progress
                .record(message.partition(), message.offset());
        } else if let Some(book) = self.books.get_mut(message.topic()) {
            if let Some(reason) = book.handle_log(message, read_ns) {
                self.metrics.record_invalid(message.topic(), reason);
            }
        }
    }

    /// Takes one poll's watermarks and committed offsets.
    pub fn apply_marks(&mut self, marks: &PollMarks) {
        for &(partition, high) in &marks.receipt_highs {
            self.receipts_progress
                .watermark(partition, high, marks.at_ns);
        }
        for (topic, book) in &mut self.books {
            let highs = marks.log_highs.get(topic).map_or(&[][..], Vec::as_slice);
            book.apply_marks(highs, &marks.committed, marks.at_ns, marks.done_ns);
        }
    }

    /// Accounts the entries of one receipt record, in the format its
    /// `format` header names, each in the books of the topic it names
    /// (entries about other topics are ignored).
    pub fn handle_receipts(&mut self, format: Option<&[u8]>, payload: &[u8], read_ns: u64) {
        let batch = match receipt::decode(format, payload) {
            Ok(batch) => batch,
            Err(e) => {
                tracing::debug!(error = %e, "unreadable receipt batch");
                let reason = match e {
                    receipt::DecodeError::Json(_) => RECEIPT_NOT_JSON,
                    receipt::DecodeError::Binary(_) => RECEIPT_MALFORMED,
                    receipt::DecodeError::UnknownFormat => RECEIPT_FORMAT_UNKNOWN,
                };
                self.metrics.record_invalid(&self.receipts_topic, reason);
                return;
            }
        };
        let group_name = batch.group();
        let group = self.metrics.groups().id(group_name);
        let books = &mut self.books;
        batch.for_each_entry(|entry| {
            let Some(book) = books.get_mut(entry.topic) else {
                return;
            };
            let receipt = ReceiptEntry {
                group: group_name,
                producer: entry.producer,
                seq: entry.seq,
                partition: entry.partition,
                created_ns: entry.created_ns,
                processed_ns: entry.processed_ns,
            };
            let mut hex = [0u8; 32];
            let trace_id = entry.trace.as_text(&mut hex).unwrap_or_default();
            book.handle_receipt(group, &receipt, trace_id, read_ns);
        });
    }

    /// Judges what each topic's reading progress allows and counts the
    /// loss found.
    pub fn sweep(&mut self) {
        let now = now_ns();
        let receipts_through = self.receipts_progress.through_ns();
        for book in self.books.values_mut() {
            book.sweep(now, receipts_through, &self.clock, &self.metrics);
        }
        self.metrics.set_read_lag(
            &self.receipts_topic,
            self.clock.read_lag(now, receipts_through),
        );
    }

    fn log_state(&self) {
        for book in self.books.values() {
            book.log_state();
        }
    }
}

mod assignment;
mod book;

#[cfg(test)]
mod tests;
