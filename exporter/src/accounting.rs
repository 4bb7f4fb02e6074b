//! Per-stage book-keeping: what reached the log, what each group processed.
//!
//! The exporter feeds [`Accounting`] with every message it reads from the
//! data topic ([`LogRecord`]) and every receipt entry it reads from the
//! receipts topic ([`ReceiptEntry`]), and calls [`Accounting::sweep`]
//! regularly (every second or every poll). Out come, per stage:
//!
//! - stage `log`: distinct messages, duplicates, loss (a sequence gap not
//!   filled within `grace`), and a delivery latency sample per message
//!   (read time − created time);
//! - stage `processed`, per watched consumer group: distinct receipted
//!   messages, duplicates, an end-to-end latency sample per message
//!   (processed − created; the caller attaches the entry's trace id as the
//!   exemplar), and loss: a message seen in the log with no receipt from the
//!   group within `sla` of being read.
//!
//! A negative latency is never clamped: it is reported as
//! [`Latency::ClockSkew`](crate::Latency::ClockSkew) and counted in
//! [`StageCounters::clock_skew`].
//!
//! Each producer instance has one [`SequenceWindow`] for the log and one
//! deduplicating window per group that receipted it, so memory grows with
//! producers × groups and never with traffic; at most `max_producers`
//! instances are kept (the idlest is forgotten first), and an instance idle
//! for `idle_timeout` is forgotten after everything due has been judged.
//!
//! Loss at `processed` is judged only where it can be judged fairly:
//!
//! - only messages seen in the log: a receipt for a message the exporter
//!   never read (it started later, or the log window moved on) creates no
//!   loss, and receipts may arrive before the log is read;
//! - only from the group's first receipt for the producer on: the receipts
//!   before the exporter's starting point in the receipts topic are unseen,
//!   so the first receipt seen (per partition, as for the log) sets the floor;
//! - only once the message's log gap state is settled (`grace`) and `sla` has
//!   passed since the last read in its 64-sequence block;
//! - a message the group's receipt window has slid past is taken as
//!   receipted: the bitmap no longer knows, and no false loss is preferred.
//!
//! When the log window must slide past messages not judged yet (a producer
//! faster than `window_bits` per `sla`), they are judged at once.

use std::collections::HashMap;
use std::time::Duration;

use crate::config::AccountingConfig;
use crate::observation::{
    count, latency, Evictions, LogRecord, Observed, ReceiptEntry, StageCounters, SweepReport,
};
use crate::window::{duration_ns, span_mask, SequenceWindow};

/// Longest producer instance id accepted (the envelope's limit); longer
/// ones are [`Outcome::Ignored`](crate::Outcome::Ignored).
pub const MAX_PRODUCER_ID_BYTES: usize = 128;

#[derive(Debug)]
struct GroupBook {
    receipts: SequenceWindow,
    /// Every log-seen sequence number below this was judged for this group.
    judged: u64,
}

#[derive(Debug)]
struct ProducerBook {
    log: SequenceWindow,
    groups: Vec<Option<GroupBook>>,
    last_activity_ns: u64,
}

/// When processed loss is judged: on time, or at once before a slide.
#[derive(Debug, Clone, Copy)]
enum Until {
    Due { now_ns: u64, sla_ns: u64 },
    SlideTo(u64),
}

/// The exporter's accounting of one data topic.
#[derive(Debug)]
pub struct Accounting {
    window_bits: u32,
    grace: Duration,
    sla_ns: u64,
    idle_ns: u64,
    max_producers: usize,
    groups: Vec<String>,
    producers: HashMap<String, ProducerBook>,
    log: StageCounters,
    processed: Vec<StageCounters>,
    unreported_log_lost: u64,
    unreported_processed_lost: Vec<u64>,
    unwatched: u64,
    evictions: Evictions,
}

impl Accounting {
    /// Accounting for the given consumer groups; receipts from any other
    /// group are ignored, which keeps the `group` label bounded. The config
    /// should have passed `validate`.
    pub fn new<G: Into<String>>(
        config: &AccountingConfig,
        groups: impl IntoIterator<Item = G>,
    ) -> Self {
        let mut names: Vec<String> = Vec::new();
        for group in groups {
            let group = group.into();
            if !names.contains(&group) {
                names.push(group);
            }
        }
        Accounting {
            window_bits: config.window_bits,
            grace: config.grace,
            sla_ns: duration_ns(config.sla),
            idle_ns: duration_ns(config.idle_timeout),
            max_producers: config.max_producers.max(1),
            processed: vec![StageCounters::default(); names.len()],
            unreported_processed_lost: vec![0; names.len()],
            groups: names,
            producers: HashMap::new(),
            log: StageCounters::default(),
            unreported_log_lost: 0,
            unwatched: 0,
            evictions: Evictions::default(),
        }
    }

    /// Accounts one message read from the data topic.
    pub fn observe_log(&mut self, record: &LogRecord<'_>) -> Observed {
        if record.producer.len() > MAX_PRODUCER_ID_BYTES {
            self.log.ignored += 1;
            return Observed::IGNORED;
        }
        let now_ns = record.read_ns;
        self.admit(record.producer, now_ns);
        let Some(book) = self.producers.get_mut(record.producer) else {
            return Observed::IGNORED;
        };
        book.last_activity_ns = book.last_activity_ns.max(now_ns);
        if let Some(new_start) = book.log.slide_needed(record.seq) {
            for (index, group) in book.groups.iter_mut().enumerate() {
                if let Some(group) = group {
                    self.unreported_processed_lost[index] +=
                        judge_processed(&book.log, group, Until::SlideTo(new_start));
                }
            }
        }
        let outcome = book.log.observe(record.seq, lane(record.partition), now_ns);
        let latency = latency(outcome, record.created_ns, now_ns);
        count(&mut self.log, outcome, latency);
        Observed { outcome, latency }
    }

    /// Accounts one receipt entry, read from the receipts topic at `now_ns`.
    pub fn observe_receipt(&mut self, entry: &ReceiptEntry<'_>, now_ns: u64) -> Observed {
        let Some(index) = self.groups.iter().position(|group| group == entry.group) else {
            self.unwatched += 1;
            return Observed::IGNORED;
        };
        if entry.producer.len() > MAX_PRODUCER_ID_BYTES {
            self.processed[index].ignored += 1;
            return Observed::IGNORED;
        }
        self.admit(entry.producer, now_ns);
        let Some(book) = self.producers.get_mut(entry.producer) else {
            return Observed::IGNORED;
        };
        book.last_activity_ns = book.last_activity_ns.max(now_ns);
        let bits = self.window_bits;
        let group = book.groups[index].get_or_insert_with(|| GroupBook {
            receipts: SequenceWindow::dedup_only(bits),
            judged: 0,
        });
        let outcome = group
            .receipts
            .observe(entry.seq, lane(entry.partition), now_ns);
        let latency = latency(outcome, entry.created_ns, entry.processed_ns);
        count(&mut self.processed[index], outcome, latency);
        Observed { outcome, latency }
    }

    /// Judges everything due at `now_ns`, forgets idle producers, and
    /// returns the loss found since the previous sweep.
    pub fn sweep(&mut self, now_ns: u64) -> SweepReport {
        let mut log_lost = std::mem::take(&mut self.unreported_log_lost);
        let mut processed_lost = std::mem::replace(
            &mut self.unreported_processed_lost,
            vec![0; self.groups.len()],
        );
        for book in self.producers.values_mut() {
            log_lost += settle(book, now_ns, self.sla_ns, &mut processed_lost);
        }
        let before = self.producers.len();
        let idle_ns = self.idle_ns;
        self.producers
            .retain(|_, book| now_ns.saturating_sub(book.last_activity_ns) < idle_ns);
        let evicted_idle = (before - self.producers.len()) as u64;
        self.evictions.idle += evicted_idle;
        self.log.lost += log_lost;
        for (counters, lost) in self.processed.iter_mut().zip(&processed_lost) {
            counters.lost += lost;
        }
        SweepReport {
            log_lost,
            processed_lost,
            evicted_idle,
        }
    }

    /// The watched groups, in the order [`SweepReport::processed_lost`] uses.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// Cumulative counts at stage `log`.
    pub fn log_counters(&self) -> StageCounters {
        self.log
    }

    /// Cumulative counts at stage `processed` for `group`, if it is watched.
    pub fn processed_counters(&self, group: &str) -> Option<StageCounters> {
        let index = self.groups.iter().position(|name| name == group)?;
        Some(self.processed[index])
    }

    /// Receipt entries ignored because their group is not watched.
    pub fn unwatched_receipts(&self) -> u64 {
        self.unwatched
    }

    /// Producer instances currently tracked.
    pub fn producers(&self) -> usize {
        self.producers.len()
    }

    /// Producer instances forgotten so far.
    pub fn evictions(&self) -> Evictions {
        self.evictions
    }

    /// Bytes held for tracked producers: windows, ids and the table itself.
    pub fn memory_bytes(&self) -> usize {
        let window_heap =
            |window: &SequenceWindow| window.memory_bytes() - std::mem::size_of::<SequenceWindow>();
        let entry = std::mem::size_of::<(String, ProducerBook)>() + 1;
        let table = self.producers.capacity() * entry;
        let books: usize = self
            .producers
            .iter()
            .map(|(id, book)| {
                let groups = book.groups.capacity() * std::mem::size_of::<Option<GroupBook>>();
                let receipts: usize = book
                    .groups
                    .iter()
                    .flatten()
                    .map(|group| window_heap(&group.receipts))
                    .sum();
                id.capacity() + window_heap(&book.log) + groups + receipts
            })
            .sum();
        std::mem::size_of::<Self>() + table + books
    }

    /// Makes sure `producer` has a book, forgetting the idlest if full.
    fn admit(&mut self, producer: &str, now_ns: u64) {
        if self.producers.contains_key(producer) {
            return;
        }
        if self.producers.len() >= self.max_producers {
            let idlest = self
                .producers
                .iter()
                .min_by_key(|(_, book)| book.last_activity_ns)
                .map(|(id, _)| id.clone());
            if let Some(mut book) = idlest.and_then(|id| self.producers.remove(&id)) {
                // Report what is already known before forgetting it.
                self.unreported_log_lost += settle(
                    &mut book,
                    now_ns,
                    self.sla_ns,
                    &mut self.unreported_processed_lost,
                );
                self.evictions.capacity += 1;
            }
        }
        let book = ProducerBook {
            log: SequenceWindow::new(self.window_bits, self.grace),
            groups: (0..self.groups.len()).map(|_| None).collect(),
            last_activity_ns: now_ns,
        };
        self.producers.insert(producer.to_owned(), book);
    }
}

/// Sweeps one producer's windows at `now_ns`; returns log loss and adds
/// processed loss per group.
fn settle(book: &mut ProducerBook, now_ns: u64, sla_ns: u64, processed: &mut [u64]) -> u64 {
    let lost = book.log.sweep(now_ns);
    for (index, group) in book.groups.iter_mut().enumerate() {
        if let Some(group) = group {
            processed[index] += judge_processed(&book.log, group, Until::Due { now_ns, sla_ns });
        }
    }
    lost
}

/// Counts log-seen messages without a receipt from `group`, moving its
/// `judged` cursor as far as `until` allows.
fn judge_processed(log: &SequenceWindow, group: &mut GroupBook, until: Until) -> u64 {
    let receipts = &group.receipts;
    if !log.is_met() || !receipts.is_met() {
        return 0;
    }
    let mut cursor = group.judged.max(log.start()).max(receipts.floor());
    let limit = match until {
        Until::Due { .. } => log.resolved(),
        Until::SlideTo(start) => start.min(log.next()),
    };
    let mut lost = 0;
    while cursor < limit {
        let word = cursor / 64;
        let end = ((word + 1) * 64).min(limit);
        if let Until::Due { now_ns, sla_ns } = until {
            if now_ns < log.block_activity_ns(word).saturating_add(sla_ns) {
                break;
            }
        }
        let seen = log.seen_bits(word) & span_mask(word, cursor, end);
        let receipted = receipts.seen_bits(word) | receipts.below_start_bits(word);
        lost += u64::from((seen & !receipted).count_ones());
        cursor = end;
    }
    group.judged = group.judged.max(cursor);
    lost
}

/// A partition number as a window lane.
fn lane(partition: i32) -> Option<u32> {
    u32::try_from(partition).ok()
}

#[cfg(test)]
mod tests;
