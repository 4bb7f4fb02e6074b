//! The books of one judged data topic: its [`Accounting`] (the producers'
//! windows, their floors, whether the reading covers the topic's whole
//! history), how far it has been read, the checkpoints of that reading and
//! each watched group's horizon on it, and its metric handles.
//!
//! Each judged topic is judged on its own: a producer's `mf-seq` is counted
//! per topic (a producer writing several topics keeps one sequence per
//! topic), so a producer's windows on one topic never see another topic's
//! messages.

use std::collections::BTreeMap;
use std::time::Duration;

use meshflow_common::envelope::Envelope;
use rdkafka::message::{BorrowedMessage, Message};

use crate::accounting::Accounting;
use crate::config::AccountingConfig;
use crate::groups::{GroupId, Groups, PerGroup};
use crate::metrics::{ExporterMetrics, TopicSeries};
use crate::observation::{Evictions, Horizon, LogRecord, ReceiptEntry};
use crate::progress::{CommitHorizon, Committed, GroupHorizon, TopicProgress};

/// Everything kept for one judged topic.
pub struct TopicBook {
    /// Loss, duplicates and latency of the topic's messages.
    pub accounting: Accounting,
    /// The topic's series.
    pub series: TopicSeries,
    /// How far the topic has been read.
    pub progress: TopicProgress,
    /// Checkpoints of the topic's reading position.
    pub commits: CommitHorizon,
    /// Per watched group: its released horizon on the topic.
    pub group_horizons: PerGroup<GroupHorizon>,
    /// Evictions already published.
    pub published_evictions: Evictions,
    /// Some partition of the topic has been assigned.
    started: bool,
}

impl TopicBook {
    /// Empty books for `topic`, whose series exist at 0 from now on.
    pub fn new(
        topic: &str,
        config: &AccountingConfig,
        groups: &Groups,
        metrics: &ExporterMetrics,
    ) -> Self {
        TopicBook {
            accounting: Accounting::new(config, groups.clone()),
            series: metrics.for_topic(topic),
            progress: TopicProgress::default(),
            commits: CommitHorizon::default(),
            group_horizons: PerGroup::filled(groups, GroupHorizon::default()),
            published_evictions: Evictions::default(),
            started: false,
        }
    }

    /// Accounts one record of the topic, read at `read_ns`; returns the
    /// reason when its envelope is invalid.
    pub fn handle_log(
        &mut self,
        message: &BorrowedMessage<'_>,
        read_ns: u64,
    ) -> Option<&'static str> {
        let invalid = match Envelope::from_headers(message.headers()) {
            Ok(Some(envelope)) => {
                let observed = self.accounting.observe_log(&LogRecord {
                    producer: &envelope.producer,
                    seq: envelope.seq,
                    partition: message.partition(),
                    created_ns: envelope.created_ns,
                    read_ns,
                    settled: envelope.settled,
                });
                self.series.record_log(observed);
                None
            }
            // Unenveloped: a third-party message, nothing to judge.
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(
                    topic = self.series.topic(),
                    partition = message.partition(),
                    offset = message.offset(),
                    error = %e,
                    "invalid envelope"
                );
                Some(e.reason())
            }
        };
        self.progress.record(message.partition(), message.offset());
        invalid
    }

    /// Accounts one receipt entry about the topic: for `group` when it is
    /// watched, else counted as unwatched.
    pub fn handle_receipt(
        &mut self,
        group: Option<GroupId>,
        receipt: &ReceiptEntry<'_>,
        trace_id: &str,
        read_ns: u64,
    ) {
        match group {
            Some(group) => {
                let observed = self
                    .accounting
                    .observe_group_receipt(group, receipt, read_ns);
                self.series.record_receipt(group, observed, trace_id);
            }
            None => {
                self.accounting.observe_receipt(receipt, read_ns);
            }
        }
    }

    /// Takes one poll's high watermarks of the topic and the watched
    /// groups' committed offsets (of every judged topic).
    pub fn apply_marks(
        &mut self,
        highs: &[(i32, i64)],
        committed: &Committed,
        at_ns: u64,
        done_ns: u64,
    ) {
        let topic = self.series.topic().to_string();
        for &(partition, high) in highs {
            self.progress.watermark(partition, high, at_ns);
        }
        let mut oldest_needed = u64::MAX;
        for (group, horizon) in self.group_horizons.iter_mut() {
            let Some(committed) = committed.get(group) else {
                continue;
            };
            let through = committed.as_ref().and_then(|committed| {
                // The map is sorted by topic: this topic's partitions are
                // one range of it.
                let on_topic: BTreeMap<i32, i64> = committed
                    .range((topic.clone(), i32::MIN)..=(topic.clone(), i32::MAX))
                    .map(|((_, partition), &offset)| (*partition, offset))
                    .collect();
                self.commits.committed_through(&on_topic)
            });
            if let Some(through) = through {
                // Seen once the poll ended: the commit may be that recent.
                horizon.commit_seen(done_ns, through);
            }
            oldest_needed = oldest_needed.min(through.unwrap_or(0));
        }
        self.commits.forget_before(oldest_needed);
    }

    /// The topic's partitions were assigned from `starts`: at its first
    /// assignment the reading covers the whole history when every
    /// partition starts at offset 0; a later partition starting elsewhere
    /// ends that.
    pub fn note_history(&mut self, starts: &[i64]) {
        if starts.is_empty() {
            return;
        }
        let from_zero = starts.iter().all(|&start| start == 0);
        if !self.started {
            self.started = true;
            self.accounting.set_whole_history(from_zero);
            tracing::info!(
                topic = self.series.topic(),
                whole_history = from_zero,
                "data topic reading starts"
            );
        } else if !from_zero {
            self.accounting.set_whole_history(false);
        }
    }

    /// Judges what the reading's progress allows at `now`, counts the loss
    /// found, and publishes how far behind the reading is.
    pub fn sweep(
        &mut self,
        now: u64,
        receipts_through: Option<u64>,
        sweep: &SweepClock,
        metrics: &ExporterMetrics,
    ) {
        self.commits.checkpoint(now, self.progress.positions());
        let horizon = Horizon {
            log_ns: self.progress.through_ns(),
            processed_ns: self
                .group_horizons
                .map_mut(|_, group| group.release(now, receipts_through, sweep.sla_ns)),
        };
        self.accounting.set_horizon(&horizon);
        let topic = self.series.topic();
        metrics.set_read_lag(topic, sweep.read_lag(now, self.progress.through_ns()));
        let report = self.accounting.sweep();
        self.series.record_sweep(&report);
        metrics.record_sweep(&report);
        let evictions = self.accounting.evictions();
        metrics.record_evictions(evictions, self.published_evictions);
        self.published_evictions = evictions;
        if report.log_lost > 0 {
            tracing::warn!(
                topic,
                lost = report.log_lost,
                "messages lost at stage log: sequence gaps past the grace period"
            );
        }
        for (group, lost) in report.processed_lost.iter() {
            if *lost > 0 {
                tracing::warn!(
                    topic,
                    group = self.accounting.groups().name(group),
                    lost,
                    "messages lost at stage processed: no receipt within the SLA"
                );
            }
        }
    }

    /// Logs the accounting's size and totals.
    pub fn log_state(&self) {
        let log = self.accounting.log_counters();
        let evictions = self.accounting.evictions();
        tracing::info!(
            topic = self.series.topic(),
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

/// What every topic's sweep shares: the grace for receipts and when the
/// reading started.
#[derive(Debug, Clone, Copy)]
pub struct SweepClock {
    /// Grace for receipts after a group's commit was seen.
    pub sla_ns: u64,
    /// When the reader started, unix ns.
    pub started_ns: u64,
}

impl SweepClock {
    /// How far behind a reading that has read everything written before
    /// `through` is at `now` (counted from the start while nothing is known).
    pub fn read_lag(&self, now: u64, through: Option<u64>) -> Duration {
        let since = through.unwrap_or(self.started_ns).max(self.started_ns);
        Duration::from_nanos(now.saturating_sub(since))
    }
}
