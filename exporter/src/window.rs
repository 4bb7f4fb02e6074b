// One type: its rules (the module documentation) and its bitmap arithmetic read best side by side.
//! A sliding window over one producer instance's sequence numbers.
//!
//! Every enveloped message carries `mf-seq`, counting from 0 for each
//! producer instance. A [`SequenceWindow`] remembers which sequence numbers it
//! has seen in a ring bitmap of fixed size (64Ki bits, 8 KiB, by default), so
//! its memory is the same after ten messages or ten billion. From that it
//! tells each observation apart ([`Outcome`]) and, in [`SequenceWindow::sweep`],
//! declares gaps lost once they have stayed open for the grace period.
//!
//! Rules, and why:
//!
//! - **First meeting is the base.** The first sequence number seen is where
//!   judging starts; nothing below it is ever loss. An exporter that starts
//!   mid-stream, or restarts, therefore never reports false loss.
//! - **Lanes refine the base.** Messages of one producer are spread over
//!   partitions, and the exporter's starting points in those partitions are
//!   not one cut in sequence space: the first message seen from partition 3
//!   may be seq 1005 while partition 0 already gave 1000, and 1001..1004 may
//!   sit in partition 3 before the exporter's starting point. Within one
//!   partition, order is kept. So the observer may name the lane (the
//!   partition) of each observation, and the first sequence number seen in
//!   each lane raises the judging floor to it. Gaps below the floor are never
//!   loss. The price: real loss among a producer's very first messages, before
//!   every lane has shown up, goes unreported — unless the owner knows the
//!   reading covers everything the producer ever wrote (every partition read
//!   from offset 0, and the producer never forgotten), and then calls
//!   [`SequenceWindow::judge_from_zero`]: the base is 0 and lanes raise no
//!   floor, so a gap among seq 0, 1, 2, … is loss like any other.
//! - **Slightly older than the base** (within the bitmap's reach, before the
//!   window ever slid) is accepted as [`Outcome::Late`] and remembered;
//!   **far older** is [`Outcome::Ignored`]: it can be neither counted nor
//!   deduplicated.
//! - **Grace, against progress.** A gap is declared lost once the reading
//!   has progressed the grace period (default 30 s) past the last activity
//!   in its 64-sequence block. Activity is a gap being noticed or a message
//!   filling one, stamped with the time it was read. Progress is not the
//!   wall clock: the owner passes to [`SequenceWindow::sweep`] the time up
//!   to which everything written has been read (see [`crate::progress`]),
//!   so a stalled broker or an exporter that fell behind delays the
//!   judgement instead of turning late messages into lost ones. Each
//!   sequence number is declared lost at most once.
//! - **Settled, by the producer's word.** A producer may still hold a gap:
//!   one partition refuses writes while the others take them, and the
//!   producer keeps retrying it for up to its delivery timeout. The reading
//!   progresses all the same, so grace alone would call it lost. The owner
//!   therefore passes to [`SequenceWindow::sweep`] the sequence number below
//!   which the producer said everything was settled (`mf-settled`):
//!   acknowledged, or given up. Gaps at or above it wait, whatever the
//!   grace. A producer that says nothing is judged by grace alone.
//! - **Implausible jumps** are not the window's to take: a sequence number a
//!   whole bitmap or more ahead of the newest ([`SequenceWindow::is_jump`])
//!   would declare everything in between lost at once, and a forged `mf-seq`
//!   would do exactly that. The owner refuses such observations before they
//!   reach the window.
//! - **Sliding out.** When the newest sequence number is a whole bitmap ahead
//!   of an open gap, the gap is declared lost then (reported by the next
//!   sweep), without waiting for the grace period: the window cannot hold it.
//! - **Duplicates.** A sequence number seen again is a duplicate. One that has
//!   slid out of the bitmap but was inside the window once is also counted as
//!   a duplicate: the bitmap no longer says whether it was seen or declared
//!   lost, and a redelivery is far more likely than a message that arrived a
//!   whole window late.
//! - **Overdue.** A message whose gap was already declared lost and that then
//!   arrives anyway is [`Outcome::Overdue`]: a distinct message, and still
//!   lost by the definition (not within the grace period).
//! - **Idle producers** are dropped by the owner of the windows (see
//!   [`crate::accounting`]) after an idle timeout, without counting anything:
//!   gaps inside the window have all been judged by then (the idle timeout is
//!   longer than the grace period), and a producer's unseen tail is not loss —
//!   its last messages may never have been sent, and a restarted producer has
//!   a new instance id.

use std::time::Duration;

/// The highest sequence number a window takes; above it observations are
/// [`Outcome::Ignored`]. 2^63 messages is beyond any producer's life, and
/// the headroom keeps every block and window computation far from
/// overflowing.
pub const MAX_SEQ: u64 = 1 << 63;
/// Lanes at or above this number are accepted but do not refine the floor.
pub const MAX_LANES: u32 = 1024;
/// The smallest bitmap a window uses, in bits.
pub const MIN_WINDOW_BITS: u32 = 64;
/// The largest bitmap a window uses, in bits (2 MiB).
pub const MAX_WINDOW_BITS: u32 = 1 << 24;

const LANE_WORDS: usize = (MAX_LANES / 64) as usize;

/// What one observation of a sequence number turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Higher than anything seen before.
    New,
    /// Not seen before, but below the highest seen: it filled a gap in time,
    /// or it lies below the judging floor.
    Late,
    /// Not seen before, but its gap had already been declared lost.
    Overdue,
    /// Seen before.
    Duplicate,
    /// Too old to judge: below anything this window ever tracked.
    Ignored,
}

impl Outcome {
    /// True for a message seen for the first time (`New`, `Late`, `Overdue`):
    /// what `messages_total` counts.
    pub fn is_distinct(self) -> bool {
        matches!(self, Outcome::New | Outcome::Late | Outcome::Overdue)
    }
}

/// The sliding bitmap of one producer instance's sequence numbers.
#[derive(Debug, Clone)]
pub struct SequenceWindow {
    /// Bit `seq % bits` is set when `seq` was seen; valid in `[start, next)`.
    ring: Box<[u64]>,
    /// Per 64-sequence block: last activity, unix ns. Empty when loss is not judged.
    activity: Box<[u64]>,
    grace_ns: u64,
    met: bool,
    /// Lowest sequence number ever tracked.
    origin: u64,
    /// Lowest sequence number still in the bitmap.
    start: u64,
    /// One past the highest sequence number seen.
    next: u64,
    /// Gaps below this are never loss.
    floor: u64,
    /// Every sequence number below this is settled: seen, lost or below floor.
    resolved: u64,
    lanes: [u64; LANE_WORDS],
    /// The whole history is read: judge from seq 0, lanes raise no floor.
    from_zero: bool,
    pending_lost: u64,
    last_activity_ns: u64,
}

impl SequenceWindow {
    /// A window that judges loss after `grace`. `bits` is rounded up to a
    /// power of two within [`MIN_WINDOW_BITS`]..=[`MAX_WINDOW_BITS`].
    pub fn new(bits: u32, grace: Duration) -> Self {
        let mut window = Self::dedup_only(bits);
        window.activity = vec![0; window.ring.len()].into_boxed_slice();
        window.grace_ns = duration_ns(grace);
        window
    }

    /// A window that only tells new from duplicate (receipts): gaps are
    /// never judged and [`SequenceWindow::sweep`] always returns 0.
    pub fn dedup_only(bits: u32) -> Self {
        let bits = bits
            .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS)
            .next_power_of_two();
        SequenceWindow {
            ring: vec![0; (bits / 64) as usize].into_boxed_slice(),
            activity: Box::default(),
            grace_ns: 0,
            met: false,
            origin: 0,
            start: 0,
            next: 0,
            floor: 0,
            resolved: 0,
            lanes: [0; LANE_WORDS],
            from_zero: false,
            pending_lost: 0,
            last_activity_ns: 0,
        }
    }

    /// Judges this producer from seq 0 rather than from the first sequence
    /// number met: for a producer whose every message the reading covers
    /// (see the module docs). Only before the first observation.
    pub fn judge_from_zero(&mut self) {
        if !self.met {
            self.from_zero = true;
        }
    }

    /// Records `seq`, seen at `now_ns`, in `lane` (the partition, when known).
    pub fn observe(&mut self, seq: u64, lane: Option<u32>, now_ns: u64) -> Outcome {
        self.last_activity_ns = self.last_activity_ns.max(now_ns);
        if seq > MAX_SEQ {
            return Outcome::Ignored;
        }
        if !self.met {
            self.met = true;
            // From zero only while the bitmap reaches back to 0.
            let base = if self.from_zero && seq < self.bits() {
                0
            } else {
                seq
            };
            (self.origin, self.start, self.floor, self.resolved) = (base, base, base, base);
            self.next = seq + 1;
            if self.judges_loss() {
                // The gap below, if any, is noticed now.
                for word in base / 64..seq / 64 {
                    self.touch(word, now_ns);
                }
            }
            self.mark(seq, now_ns);
            self.note_lane(seq, lane);
            return Outcome::New;
        }
        self.note_lane(seq, lane);
        if seq >= self.next {
            self.advance(seq, now_ns);
            return Outcome::New;
        }
        if seq >= self.start {
            if self.is_set(seq) {
                return Outcome::Duplicate;
            }
            self.mark(seq, now_ns);
            if self.judges_loss() && seq < self.resolved && seq >= self.floor {
                return Outcome::Overdue;
            }
            return Outcome::Late;
        }
        if seq >= self.origin {
            return Outcome::Duplicate;
        }
        let words = self.ring.len() as u64;
        if self.start == self.origin && (self.next - 1) / 64 - seq / 64 < words {
            // Never slid, and the bitmap reaches this far back: its block has
            // never been used, so it is still zero.
            self.start = seq;
            self.origin = seq;
            self.mark(seq, now_ns);
            return Outcome::Late;
        }
        Outcome::Ignored
    }

    /// Settles what is due and returns how many sequence numbers were
    /// declared lost since the last sweep: gaps below `settled` whose last
    /// activity is at least the grace period before `through_ns`, plus gaps
    /// that slid out of the bitmap. `through_ns` is how far the reading has
    /// progressed: every record written before it has been read. `settled`
    /// is the producer's settled mark (`u64::MAX` when it gives none): gaps
    /// at or above it may still be delivered.
    pub fn sweep(&mut self, through_ns: u64, settled: u64) -> u64 {
        let mut lost = std::mem::take(&mut self.pending_lost);
        if !self.judges_loss() || !self.met {
            return lost;
        }
        let until = self.next.min(settled);
        while self.resolved < until {
            let word = self.resolved / 64;
            let end = ((word + 1) * 64).min(until);
            let from = self.resolved.max(self.floor);
            let missing = if from < end {
                span_mask(word, from, end) & !self.ring[self.slot(word)]
            } else {
                0
            };
            if missing != 0 {
                let due = self.activity[self.slot(word)].saturating_add(self.grace_ns);
                if through_ns < due {
                    break;
                }
                lost = lost.saturating_add(u64::from(missing.count_ones()));
            }
            self.resolved = end;
        }
        lost
    }

    /// The sequence number the window would slide its start to if `seq` were
    /// observed now, or `None` when it would not slide. Lets an owner settle
    /// anything that depends on the bits about to be dropped.
    pub fn slide_needed(&self, seq: u64) -> Option<u64> {
        if !self.met || seq < self.next || seq > MAX_SEQ {
            return None;
        }
        let words = self.ring.len() as u64;
        (seq / 64 >= self.start / 64 + words).then(|| (seq / 64 + 1 - words) * 64)
    }

    /// True when `seq` lies a whole bitmap or more beyond the newest sequence
    /// number seen: taking it would slide every open gap out of the window
    /// at once. Never true before the first observation.
    pub fn is_jump(&self, seq: u64) -> bool {
        self.met && seq >= self.next.saturating_add(self.bits())
    }

    /// Whether anything was observed yet.
    pub fn is_met(&self) -> bool {
        self.met
    }

    /// Lowest sequence number still held in the bitmap.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// One past the highest sequence number seen.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Gaps below this sequence number are never declared lost.
    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// Every sequence number below this one is settled: seen, declared lost,
    /// or below the floor.
    pub fn resolved(&self) -> u64 {
        self.resolved
    }

    /// Latest `now_ns` passed to [`SequenceWindow::observe`].
    pub fn last_activity_ns(&self) -> u64 {
        self.last_activity_ns
    }

    /// Capacity of the bitmap, in sequence numbers.
    pub fn bits(&self) -> u64 {
        self.ring.len() as u64 * 64
    }

    /// Bytes this window occupies, heap included. Fixed at construction.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + 8 * (self.ring.len() + self.activity.len())
    }

    /// Seen bits of the 64-sequence block `word` (sequence numbers
    /// `word*64 ..`), limited to `[start, next)`.
    pub(crate) fn seen_bits(&self, word: u64) -> u64 {
        if !self.met || self.next <= word * 64 || word * 64 + 64 <= self.start {
            return 0;
        }
        self.ring[self.slot(word)] & span_mask(word, self.start, self.next)
    }

    /// Bits of block `word` whose sequence numbers are below `start`: the
    /// bitmap no longer knows them.
    pub(crate) fn below_start_bits(&self, word: u64) -> u64 {
        if !self.met || self.start <= word * 64 {
            return 0;
        }
        span_mask(word, word * 64, self.start)
    }

    /// Last activity in block `word`, unix ns (0 when loss is not judged).
    pub(crate) fn block_activity_ns(&self, word: u64) -> u64 {
        self.activity.get(self.slot(word)).copied().unwrap_or(0)
    }

    fn judges_loss(&self) -> bool {
        !self.activity.is_empty()
    }

    fn slot(&self, word: u64) -> usize {
        (word as usize) & (self.ring.len() - 1)
    }

    fn is_set(&self, seq: u64) -> bool {
        self.ring[self.slot(seq / 64)] & (1 << (seq % 64)) != 0
    }

    fn mark(&mut self, seq: u64, now_ns: u64) {
        let slot = self.slot(seq / 64);
        self.ring[slot] |= 1 << (seq % 64);
        self.touch(seq / 64, now_ns);
    }

    fn touch(&mut self, word: u64, now_ns: u64) {
        let slot = self.slot(word);
        if let Some(at) = self.activity.get_mut(slot) {
            *at = (*at).max(now_ns);
        }
    }

    fn note_lane(&mut self, seq: u64, lane: Option<u32>) {
        let Some(lane) = lane.filter(|&lane| lane < MAX_LANES) else {
            return;
        };
        let (index, bit) = ((lane / 64) as usize, 1u64 << (lane % 64));
        if self.lanes[index] & bit == 0 {
            self.lanes[index] |= bit;
            if !self.from_zero {
                self.floor = self.floor.max(seq);
            }
        }
    }

    /// Moves the front to `seq` (which is `>= next`), sliding if needed.
    fn advance(&mut self, seq: u64, now_ns: u64) {
        if let Some(new_start) = self.slide_needed(seq) {
            self.retire_below(new_start);
        }
        let words = self.ring.len() as u64;
        let target = seq / 64;
        let first_new = (self.next - 1) / 64 + 1;
        for word in first_new.max((target + 1).saturating_sub(words))..=target {
            let slot = self.slot(word);
            self.ring[slot] = 0;
            if let Some(at) = self.activity.get_mut(slot) {
                *at = 0;
            }
        }
        if seq > self.next && self.judges_loss() {
            // A gap is noticed now: every block it touches restarts its grace.
            let from = (self.next.max(self.start)) / 64;
            for word in from..target {
                self.touch(word, now_ns);
            }
        }
        self.mark(seq, now_ns);
        self.next = seq + 1;
    }

    /// Drops everything below `new_start`, declaring its open gaps lost.
    fn retire_below(&mut self, new_start: u64) {
        if self.judges_loss() {
            let from = self.resolved.max(self.floor);
            let seen_end = new_start.min(self.next);
            let mut word = from / 64;
            while word * 64 < seen_end {
                let missing = span_mask(word, from, seen_end) & !self.ring[self.slot(word)];
                self.pending_lost = self
                    .pending_lost
                    .saturating_add(u64::from(missing.count_ones()));
                word += 1;
            }
            // Never seen at all: the new front jumped past them.
            self.pending_lost = self
                .pending_lost
                .saturating_add(new_start.saturating_sub(self.next.max(from)));
        }
        self.start = new_start;
        self.resolved = self.resolved.max(new_start);
    }
}

/// Mask of the bits of block `word` whose sequence numbers are in `[from, to)`.
pub(crate) fn span_mask(word: u64, from: u64, to: u64) -> u64 {
    let base = word * 64;
    let lo = from.clamp(base, base + 64) - base;
    let hi = to.clamp(base, base + 64) - base;
    if lo >= hi {
        return 0;
    }
    let upper = if hi == 64 { u64::MAX } else { (1u64 << hi) - 1 };
    upper & !((1u64 << lo) - 1)
}

/// A `Duration` as nanoseconds, saturating.
pub(crate) fn duration_ns(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
