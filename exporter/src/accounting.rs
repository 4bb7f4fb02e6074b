//! Per-stage book-keeping: what reached the log, what each group processed.
//!
//! One [`Accounting`] covers one judged data topic; the exporter keeps one
//! per judged topic (see [`crate::reader`]), so a producer's `mf-seq` is
//! counted per topic. The exporter feeds it with every message it reads
//! from that topic ([`LogRecord`]) and every receipt entry about it it
//! reads from the receipts topic ([`ReceiptEntry`]), and calls [`Accounting::sweep`]
//! regularly (every second or every poll). Out come, per stage:
//!
//! - stage `log`: distinct messages, duplicates, loss (a sequence gap not
//!   filled within `grace`), and a delivery latency sample per message
//!   (read time − created time);
//! - stage `processed`, per watched consumer group: distinct receipted
//!   messages, duplicates, an end-to-end latency sample per message
//!   (processed − created; the caller attaches the entry's trace id as the
//!   exemplar), and loss: a message seen in the log that the group has
//!   committed past, with no receipt within `sla` after that commit.
//!
//! Loss is judged against progress, never against the wall clock alone: the
//! owner sets a [`Horizon`] (how far the reading and each group's commits
//! have got, see [`crate::progress`]) before each sweep, and nothing beyond
//! it is judged. A broker that stalls or an exporter that falls behind makes
//! messages late, never lost.
//!
//! Implausible observations are refused before they touch a window, counted
//! by [`Rejection`] reason: a sequence number a whole window or more ahead
//! of its producer's newest (a forged `mf-seq` would otherwise declare
//! everything in between lost and every later real message a duplicate),
//! and created or processed times outside `max_clock_skew` ahead or
//! `max_record_age` behind the exporter's clock. A producer whose stream
//! truly moved on shows [`REBASE_AFTER_JUMPS`] such sequence numbers in a
//! row with nothing in between and is started afresh, judging nothing across
//! the jump.
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
//! - only once the message's log gap state is settled and the group's
//!   horizon has passed the last read in its 64-sequence block;
//! - a message the group's receipt window has slid past is taken as
//!   receipted: the bitmap no longer knows, and no false loss is preferred;
//! - receipts for sequence numbers the log never showed are counted as
//!   unmatched and close no gap.
//!
//! When the log window must slide past messages not judged yet (a producer
//! faster than `window_bits` per `sla`), those the group's horizon covers are
//! judged at once and the rest are counted as unjudged, never as lost.
//!
//! The producer table is bounded by `max_producers`; making room evicts the
//! idlest producers from a candidate list refilled by one linear pass per
//! `max_producers / 16` admissions, so a flood of new ids costs amortised
//! constant time each.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::time::Duration;

use crate::config::AccountingConfig;
use crate::groups::{GroupId, Groups, PerGroup};
use crate::id_hash::IdHashBuilder;
use crate::observation::{
    count, latency, Evictions, Horizon, LogRecord, Observed, ReceiptEntry, Rejection,
    StageCounters, SweepReport,
};
use crate::window::{duration_ns, Outcome, SequenceWindow};
use judge::{judge_processed, settle, Judged, Until};

/// Longest producer instance id accepted (the envelope's limit); longer
/// ones are [`Outcome::Ignored`](crate::Outcome::Ignored).
pub const MAX_PRODUCER_ID_BYTES: usize = 128;

/// Sequence numbers beyond the window, in a row with nothing inside it, after
/// which a producer's windows start afresh at the new position.
pub const REBASE_AFTER_JUMPS: u32 = 256;

/// One refill of the eviction candidates takes this fraction of the table.
const EVICTION_BATCH_DIVISOR: usize = 16;

#[derive(Debug)]
struct GroupBook {
    receipts: SequenceWindow,
    /// Every log-seen sequence number below this was judged for this group.
    judged: u64,
}

#[derive(Debug)]
struct ProducerBook {
    log: SequenceWindow,
    groups: PerGroup<Option<GroupBook>>,
    last_activity_ns: u64,
    /// Log observations refused as jumps since the last accepted one.
    jumps: u32,
    /// The highest `mf-settled` the producer wrote (each capped by its own
    /// message's `mf-seq`), if it writes any: log gaps at or above it are
    /// not judged yet.
    settled: Option<u64>,
}

impl ProducerBook {
    /// Takes the settled mark of a message with sequence number `seq`.
    /// The highest mark counts, so a forged low one changes nothing; a
    /// mark is capped by its own message's sequence number (a producer
    /// cannot have settled a message it has not sent), so a forged high one
    /// reaches no further than a forged `mf-seq` could.
    fn note_settled(&mut self, settled: Option<u64>, seq: u64) {
        if let Some(mark) = settled {
            let mark = mark.min(seq);
            self.settled = Some(self.settled.map_or(mark, |old| old.max(mark)));
        }
    }

    /// Below which sequence number log gaps may be judged.
    fn judge_below(&self) -> u64 {
        self.settled.unwrap_or(u64::MAX)
    }
}

/// The exporter's accounting of one data topic.
#[derive(Debug)]
pub struct Accounting {
    window_bits: u32,
    grace: Duration,
    max_skew_ns: u64,
    max_age_ns: u64,
    idle_ns: u64,
    max_producers: usize,
    groups: Groups,
    producers: HashMap<String, ProducerBook, IdHashBuilder>,
    /// Idlest producers first to go, idlest at the end, with the activity
    /// they had when listed (a producer active since is skipped).
    eviction_candidates: Vec<(u64, String)>,
    horizon: Horizon,
    log: StageCounters,
    processed: PerGroup<StageCounters>,
    unreported_log_lost: u64,
    unreported_processed: PerGroup<Judged>,
    unwatched: u64,
    evictions: Evictions,
    /// Passes over the whole table to find eviction candidates.
    eviction_passes: u64,
    /// The reading covers every partition's whole history: producers met
    /// for the first time are judged from seq 0.
    whole_history: bool,
    /// Keyed hashes of the producers forgotten (idle or for room): one that
    /// comes back is met mid-stream, not judged from seq 0. Bounded; when
    /// full, judging from seq 0 stops for good.
    forgotten: HashSet<u64, IdHashBuilder>,
}

/// The most forgotten producers remembered, per producer slot.
const FORGOTTEN_PER_SLOT: usize = 4;

impl Accounting {
    /// Accounting for the given consumer groups; receipts from any other
    /// group are ignored, which keeps the `group` label bounded. The config
    /// should have passed `validate`.
    pub fn new(config: &AccountingConfig, groups: impl Into<Groups>) -> Self {
        let groups = groups.into();
        Accounting {
            window_bits: config.window_bits,
            grace: config.grace,
            max_skew_ns: duration_ns(config.max_clock_skew),
            max_age_ns: duration_ns(config.max_record_age),
            idle_ns: duration_ns(config.idle_timeout),
            max_producers: config.max_producers.max(1),
            processed: PerGroup::filled(&groups, StageCounters::default()),
            unreported_processed: PerGroup::filled(&groups, Judged::default()),
            horizon: Horizon {
                log_ns: None,
                processed_ns: PerGroup::filled(&groups, None),
            },
            groups,
            producers: HashMap::default(),
            eviction_candidates: Vec::new(),
            log: StageCounters::default(),
            unreported_log_lost: 0,
            unwatched: 0,
            evictions: Evictions::default(),
            eviction_passes: 0,
            whole_history: false,
            forgotten: HashSet::default(),
        }
    }

    /// Says whether the reading covers the whole history of every partition
    /// of the data topic (each read from offset 0): producers met from now
    /// on are judged from seq 0, so loss among their very first messages is
    /// counted. Ignored once the memory of forgotten producers overflowed.
    pub fn set_whole_history(&mut self, whole: bool) {
        self.whole_history = whole && self.forgotten.len() < self.forgotten_cap();
    }

    fn forgotten_cap(&self) -> usize {
        self.max_producers.saturating_mul(FORGOTTEN_PER_SLOT)
    }

    /// Whether `producer` was forgotten before.
    fn was_forgotten(&self, producer: &str) -> bool {
        let hash = self.forgotten.hasher().hash_one(producer);
        self.forgotten.contains(&hash)
    }

    /// Remembers that `producer` was forgotten.
    fn forget(&mut self, producer: &str) {
        if !self.whole_history {
            return;
        }
        if self.forgotten.len() >= self.forgotten_cap() {
            self.whole_history = false;
            self.forgotten = HashSet::default();
            return;
        }
        let hash = self.forgotten.hasher().hash_one(producer);
        self.forgotten.insert(hash);
    }

    /// Sets how far loss may be judged by the next sweeps. A horizon never
    /// moves back; missing groups judge nothing.
    pub fn set_horizon(&mut self, horizon: &Horizon) {
        let forward = |old: Option<u64>, new: Option<u64>| match (old, new) {
            (Some(old), Some(new)) => Some(old.max(new)),
            (old, new) => new.or(old),
        };
        self.horizon.log_ns = forward(self.horizon.log_ns, horizon.log_ns);
        for (group, current) in self.horizon.processed_ns.iter_mut() {
            *current = forward(*current, horizon.processed_ns.get(group).copied().flatten());
        }
    }

    /// Accounts one message read from the data topic.
    pub fn observe_log(&mut self, record: &LogRecord<'_>) -> Observed {
        if record.producer.len() > MAX_PRODUCER_ID_BYTES {
            self.log.ignored += 1;
            return Observed::IGNORED;
        }
        let now_ns = record.read_ns;
        if let Some(why) = self.implausible_time(record.created_ns, now_ns) {
            return reject(&mut self.log, why);
        }
        self.admit(record.producer, now_ns);
        let Some(book) = self.producers.get_mut(record.producer) else {
            return Observed::IGNORED;
        };
        if book.log.is_jump(record.seq) {
            book.jumps += 1;
            if book.jumps < REBASE_AFTER_JUMPS {
                return reject(&mut self.log, Rejection::SeqJump);
            }
            // The stream truly moved on: start afresh, judging nothing
            // across the jump.
            *book = fresh_book(self.window_bits, self.grace, &self.groups, now_ns, false);
            self.evictions.rebased += 1;
        }
        book.jumps = 0;
        book.last_activity_ns = book.last_activity_ns.max(now_ns);
        if let Some(new_start) = book.log.slide_needed(record.seq) {
            for (id, group) in book.groups.iter_mut() {
                if let Some(group) = group {
                    let until = Until::SlideTo(new_start, self.horizon.processed_ns[id]);
                    self.unreported_processed[id].add(judge_processed(&book.log, group, until));
                }
            }
        }
        let outcome = book.log.observe(record.seq, lane(record.partition), now_ns);
        if outcome != Outcome::Ignored {
            book.note_settled(record.settled, record.seq);
        }
        let latency = latency(outcome, record.created_ns, now_ns);
        count(&mut self.log, outcome, latency);
        Observed {
            outcome,
            latency,
            rejected: None,
        }
    }

    /// Accounts one receipt entry, read from the receipts topic at `now_ns`.
    pub fn observe_receipt(&mut self, entry: &ReceiptEntry<'_>, now_ns: u64) -> Observed {
        match self.groups.id(entry.group) {
            Some(group) => self.observe_group_receipt(group, entry, now_ns),
            None => {
                self.unwatched += 1;
                Observed::IGNORED
            }
        }
    }

    /// [`Accounting::observe_receipt`] for an entry of the watched `group`
    /// (from [`Accounting::groups`]), its name already looked up: a reader
    /// looks it up once per receipt batch, not once per entry.
    pub fn observe_group_receipt(
        &mut self,
        group_id: GroupId,
        entry: &ReceiptEntry<'_>,
        now_ns: u64,
    ) -> Observed {
        if entry.producer.len() > MAX_PRODUCER_ID_BYTES {
            self.processed[group_id].ignored += 1;
            return Observed::IGNORED;
        }
        if entry.processed_ns > now_ns.saturating_add(self.max_skew_ns) {
            return reject(&mut self.processed[group_id], Rejection::ProcessedInFuture);
        }
        if let Some(why) = self.implausible_time(entry.created_ns, entry.processed_ns) {
            return reject(&mut self.processed[group_id], why);
        }
        let bits = self.window_bits;
        let record = |book: &mut ProducerBook, counters: &mut StageCounters| {
            book.last_activity_ns = book.last_activity_ns.max(now_ns);
            let group = book.groups[group_id].get_or_insert_with(|| GroupBook {
                receipts: SequenceWindow::dedup_only(bits),
                judged: 0,
            });
            let outcome = group
                .receipts
                .observe(entry.seq, lane(entry.partition), now_ns);
            let latency = latency(outcome, entry.created_ns, entry.processed_ns);
            count(counters, outcome, latency);
            Observed {
                outcome,
                latency,
                rejected: None,
            }
        };
        // A producer already met: one lookup of its id per entry.
        if let Some(book) = self.producers.get_mut(entry.producer) {
            let beyond_log = book.log.is_jump(entry.seq);
            let beyond_own = book.groups[group_id]
                .as_ref()
                .is_some_and(|group| group.receipts.is_jump(entry.seq));
            if beyond_log || beyond_own {
                return reject(&mut self.processed[group_id], Rejection::SeqJump);
            }
            return record(book, &mut self.processed[group_id]);
        }
        self.admit(entry.producer, now_ns);
        let Some(book) = self.producers.get_mut(entry.producer) else {
            return Observed::IGNORED;
        };
        record(book, &mut self.processed[group_id])
    }

    /// Judges everything the horizon allows, forgets producers idle for
    /// `idle_timeout` of reading progress (the log horizon: a stalled reading
    /// forgets nobody), and returns what was found since the previous sweep.
    pub fn sweep(&mut self) -> SweepReport {
        let mut log_lost = std::mem::take(&mut self.unreported_log_lost);
        let mut processed = std::mem::replace(
            &mut self.unreported_processed,
            PerGroup::filled(&self.groups, Judged::default()),
        );
        for book in self.producers.values_mut() {
            log_lost = log_lost.saturating_add(settle(book, &self.horizon, &mut processed));
        }
        let before = self.producers.len();
        let idle_ns = self.idle_ns;
        let read_through = self.horizon.log_ns.unwrap_or(0);
        let mut gone = Vec::new();
        self.producers.retain(|id, book| {
            let keep = read_through.saturating_sub(book.last_activity_ns) < idle_ns;
            if !keep {
                gone.push(id.clone());
            }
            keep
        });
        for id in gone {
            self.forget(&id);
        }
        let evicted_idle = (before - self.producers.len()) as u64;
        self.evictions.idle += evicted_idle;
        self.log.lost = self.log.lost.saturating_add(log_lost);
        for (group, counters) in self.processed.iter_mut() {
            let judged = processed[group];
            counters.lost = counters.lost.saturating_add(judged.lost);
            counters.unjudged = counters.unjudged.saturating_add(judged.unjudged);
            counters.unmatched = counters.unmatched.saturating_add(judged.unmatched);
        }
        SweepReport {
            log_lost,
            processed_lost: processed.map(|_, j| j.lost),
            evicted_idle,
            processed_unjudged: processed.map(|_, j| j.unjudged),
            receipts_unmatched: processed.map(|_, j| j.unmatched),
        }
    }

    /// The watched groups.
    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// Cumulative counts at stage `log`.
    pub fn log_counters(&self) -> StageCounters {
        self.log
    }

    /// Cumulative counts at stage `processed` for `group`, if it is watched.
    pub fn processed_counters(&self, group: &str) -> Option<StageCounters> {
        Some(self.processed[self.groups.id(group)?])
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

    /// Why a message created at `created_ns` and seen at `seen_ns` is
    /// implausible, if it is.
    fn implausible_time(&self, created_ns: u64, seen_ns: u64) -> Option<Rejection> {
        if created_ns > seen_ns.saturating_add(self.max_skew_ns) {
            Some(Rejection::CreatedInFuture)
        } else if created_ns.saturating_add(self.max_age_ns) < seen_ns {
            Some(Rejection::CreatedTooOld)
        } else {
            None
        }
    }
}

/// A new producer's book, met at `now_ns`; its log window judges from seq
/// 0 when `from_zero`.
fn fresh_book(
    bits: u32,
    grace: Duration,
    groups: &Groups,
    now_ns: u64,
    from_zero: bool,
) -> ProducerBook {
    let mut log = SequenceWindow::new(bits, grace);
    if from_zero {
        log.judge_from_zero();
    }
    ProducerBook {
        log,
        groups: PerGroup::from_fn(groups, |_| None),
        last_activity_ns: now_ns,
        jumps: 0,
        settled: None,
    }
}

/// Counts a refused observation.
fn reject(counters: &mut StageCounters, why: Rejection) -> Observed {
    counters.rejected += 1;
    Observed::rejected(why)
}

/// A partition number as a window lane.
fn lane(partition: i32) -> Option<u32> {
    u32::try_from(partition).ok()
}

mod capacity;
mod judge;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod properties;
