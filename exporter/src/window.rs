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
//!   every lane has shown up, goes unreported.
//! - **Slightly older than the base** (within the bitmap's reach, before the
//!   window ever slid) is accepted as [`Outcome::Late`] and remembered;
//!   **far older** is [`Outcome::Ignored`]: it can be neither counted nor
//!   deduplicated.
//! - **Grace.** A gap is declared lost once no activity has touched its
//!   64-sequence block for the grace period (default 30 s). Activity is a
//!   gap being noticed or a message filling one, so a gap waits at least the
//!   grace period after it was noticed; it may wait longer while its block is
//!   still busy. Each sequence number is declared lost at most once.
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
        let bits = bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS).next_power_of_two();
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
            pending_lost: 0,
            last_activity_ns: 0,
        }
    }

    /// Records `seq`, seen at `now_ns`, in `lane` (the partition, when known).
    pub fn observe(&mut self, seq: u64, lane: Option<u32>, now_ns: u64) -> Outcome {
        self.last_activity_ns = self.last_activity_ns.max(now_ns);
        if seq == u64::MAX {
            return Outcome::Ignored;
        }
        if !self.met {
            self.met = true;
            (self.origin, self.start, self.floor, self.resolved) = (seq, seq, seq, seq);
            self.next = seq + 1;
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

    /// Settles what is due at `now_ns` and returns how many sequence numbers
    /// were declared lost since the last sweep (gaps past their grace period,
    /// plus gaps that slid out of the bitmap).
    pub fn sweep(&mut self, now_ns: u64) -> u64 {
        let mut lost = std::mem::take(&mut self.pending_lost);
        if !self.judges_loss() || !self.met {
            return lost;
        }
        while self.resolved < self.next {
            let word = self.resolved / 64;
            let end = ((word + 1) * 64).min(self.next);
            let from = self.resolved.max(self.floor);
            let missing = if from < end {
                span_mask(word, from, end) & !self.ring[self.slot(word)]
            } else {
                0
            };
            if missing != 0 {
                let due = self.activity[self.slot(word)].saturating_add(self.grace_ns);
                if now_ns < due {
                    break;
                }
                lost += u64::from(missing.count_ones());
            }
            self.resolved = end;
        }
        lost
    }

    /// The sequence number the window would slide its start to if `seq` were
    /// observed now, or `None` when it would not slide. Lets an owner settle
    /// anything that depends on the bits about to be dropped.
    pub fn slide_needed(&self, seq: u64) -> Option<u64> {
        if !self.met || seq < self.next || seq == u64::MAX {
            return None;
        }
        let words = self.ring.len() as u64;
        (seq / 64 >= self.start / 64 + words).then(|| (seq / 64 + 1 - words) * 64)
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
            self.floor = self.floor.max(seq);
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
                self.pending_lost += u64::from(missing.count_ones());
                word += 1;
            }
            // Never seen at all: the new front jumped past them.
            self.pending_lost += new_start.saturating_sub(self.next.max(from));
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
mod tests {
    use super::*;
    use Outcome::*;

    const MS: u64 = 1_000_000;
    const GRACE: Duration = Duration::from_secs(30);

    /// One step of a scenario; times are milliseconds.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        /// Observe `seq` in `lane` at `ms`, expecting an outcome.
        Obs(u64, Option<u32>, u64, Outcome),
        /// Sweep at `ms`, expecting this many newly lost.
        Sweep(u64, u64),
    }
    use Step::*;

    const L0: Option<u32> = Some(0);
    const L1: Option<u32> = Some(1);

    struct Case {
        name: &'static str,
        bits: u32,
        steps: &'static [Step],
    }

    const CASES: &[Case] = &[
        Case {
            name: "in order",
            bits: 128,
            steps: &[
                Obs(0, None, 0, New),
                Obs(1, None, 10, New),
                Obs(2, None, 20, New),
                Sweep(100_000, 0),
            ],
        },
        Case {
            name: "late within grace fills the gap",
            bits: 128,
            steps: &[
                Obs(0, None, 0, New),
                Obs(2, None, 0, New),
                Sweep(29_999, 0),
                Obs(1, None, 29_000, Late),
                Sweep(100_000, 0),
            ],
        },
        Case {
            name: "gap never filled is lost exactly once, at the grace period",
            bits: 128,
            steps: &[
                Obs(0, None, 0, New),
                Obs(3, None, 1_000, New),
                Sweep(30_999, 0),
                Sweep(31_000, 2),
                Sweep(100_000, 0),
                Obs(4, None, 100_000, New),
                Sweep(200_000, 0),
            ],
        },
        Case {
            name: "arrival after the loss was declared is overdue",
            bits: 128,
            steps: &[
                Obs(0, None, 0, New),
                Obs(2, None, 0, New),
                Sweep(30_000, 1),
                Obs(1, None, 40_000, Overdue),
                Obs(1, None, 41_000, Duplicate),
                Sweep(100_000, 0),
            ],
        },
        Case {
            name: "duplicates",
            bits: 128,
            steps: &[
                Obs(0, None, 0, New),
                Obs(1, None, 0, New),
                Obs(1, None, 1, Duplicate),
                Obs(0, None, 2, Duplicate),
                Sweep(100_000, 0),
            ],
        },
        Case {
            name: "grace restarts while the block is busy",
            bits: 128,
            steps: &[
                Obs(0, None, 0, New),
                Obs(2, None, 0, New),
                Obs(5, None, 20_000, New),
                Sweep(30_000, 0),
                Sweep(49_999, 0),
                Sweep(50_000, 3),
            ],
        },
        Case {
            name: "a gap that slides out is lost at once, then counted never again",
            bits: 128,
            steps: &[
                Obs(0, None, 0, New),
                Obs(200, None, 1_000, New),
                Sweep(1_000, 127),
                Sweep(30_999, 0),
                Sweep(31_000, 72),
                Obs(5, None, 32_000, Duplicate),
                Obs(150, None, 32_000, Overdue),
                Sweep(100_000, 0),
            ],
        },
        Case {
            name: "a gap already lost is not counted again when it slides out",
            bits: 128,
            steps: &[
                Obs(0, None, 0, New),
                Obs(2, None, 0, New),
                Sweep(30_000, 1),
                Obs(300, None, 40_000, New),
                Sweep(40_000, 189),
                Sweep(70_000, 108),
                Sweep(200_000, 0),
            ],
        },
        Case {
            name: "met mid-stream: slightly older is late and never lost",
            bits: 128,
            steps: &[
                Obs(1000, None, 0, New),
                Obs(998, None, 1, Late),
                Obs(1002, None, 2, New),
                Sweep(100_000, 1),
                Obs(998, None, 100_000, Duplicate),
                Obs(999, None, 100_000, Late),
            ],
        },
        Case {
            name: "far older than the base on first meeting is ignored",
            bits: 128,
            steps: &[
                Obs(1000, None, 0, New),
                Obs(10, None, 1, Ignored),
                Obs(900, None, 1, Late),
                Obs(800, None, 1, Ignored),
                Sweep(100_000, 0),
            ],
        },
        Case {
            name: "first sequence number of each lane raises the floor",
            bits: 1024,
            steps: &[
                Obs(100, L0, 0, New),
                Obs(105, L1, 0, New),
                Obs(110, L0, 0, New),
                Sweep(100_000, 4),
                Obs(102, L1, 100_000, Late),
                Obs(107, L1, 100_000, Overdue),
            ],
        },
        Case {
            name: "a lane seen again does not move the floor",
            bits: 1024,
            steps: &[
                Obs(100, L0, 0, New),
                Obs(105, L1, 0, New),
                Obs(120, L1, 0, New),
                Obs(130, L0, 0, New),
                Sweep(100_000, 23),
            ],
        },
        Case {
            name: "lanes beyond the limit do not move the floor",
            bits: 1024,
            steps: &[
                Obs(100, L0, 0, New),
                Obs(105, Some(MAX_LANES), 0, New),
                Sweep(100_000, 4),
            ],
        },
        Case {
            name: "u64::MAX cannot be tracked",
            bits: 128,
            steps: &[
                Obs(u64::MAX, None, 0, Ignored),
                Obs(7, None, 0, New),
                Obs(u64::MAX, None, 0, Ignored),
                Sweep(100_000, 0),
            ],
        },
    ];

    #[test]
    fn scenarios() {
        for case in CASES {
            let mut window = SequenceWindow::new(case.bits, GRACE);
            for (i, step) in case.steps.iter().enumerate() {
                match *step {
                    Obs(seq, lane, ms, want) => {
                        let got = window.observe(seq, lane, ms * MS);
                        assert_eq!(got, want, "{}: step {i} {step:?}", case.name);
                    }
                    Sweep(ms, want) => {
                        let got = window.sweep(ms * MS);
                        assert_eq!(got, want, "{}: step {i} {step:?}", case.name);
                    }
                }
            }
        }
    }

    #[test]
    fn dedup_only_never_declares_loss() {
        let mut window = SequenceWindow::dedup_only(128);
        assert_eq!(window.observe(0, None, 0), New);
        assert_eq!(window.observe(10, None, 0), New);
        assert_eq!(window.observe(10, None, 0), Duplicate);
        assert_eq!(window.observe(5, None, 0), Late);
        assert_eq!(window.observe(1000, None, 0), New);
        assert_eq!(window.sweep(u64::MAX), 0);
        assert_eq!(window.observe(20, None, 0), Duplicate);
    }

    #[test]
    fn bits_are_rounded_to_a_power_of_two_within_limits() {
        let cases = [
            (0, 64),
            (64, 64),
            (100, 128),
            (65_536, 65_536),
            (u32::MAX, u64::from(MAX_WINDOW_BITS)),
        ];
        for (asked, want) in cases {
            assert_eq!(SequenceWindow::new(asked, GRACE).bits(), want, "{asked}");
        }
    }

    #[test]
    fn slide_needed_names_the_new_start() {
        let mut window = SequenceWindow::new(128, GRACE);
        assert_eq!(window.slide_needed(5), None);
        window.observe(10, None, 0);
        let cases = [(9, None), (127, None), (128, Some(64)), (200, Some(128))];
        for (seq, want) in cases {
            assert_eq!(window.slide_needed(seq), want, "{seq}");
        }
    }

    #[test]
    fn memory_is_fixed_whatever_the_traffic() {
        let mut window = SequenceWindow::new(65_536, GRACE);
        let before = window.memory_bytes();
        assert_eq!(before, std::mem::size_of::<SequenceWindow>() + 16 * 1024);
        for seq in 0..1_000_000u64 {
            if seq % 1000 != 7 {
                window.observe(seq, Some((seq % 6) as u32), seq * MS);
            }
        }
        window.sweep(u64::MAX);
        assert_eq!(window.memory_bytes(), before);
    }

    /// A deterministic stream with drops, reordering within a small distance
    /// and redeliveries: every drop is lost exactly once, nothing else is.
    #[test]
    fn lost_equals_dropped_on_a_shuffled_stream() {
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next_random = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut window = SequenceWindow::new(1024, GRACE);
        assert_eq!(window.observe(0, None, 0), New);
        let mut pending: Vec<u64> = Vec::new();
        let (mut dropped, mut lost, mut distinct) = (0u64, 0u64, 1u64);
        let mut now = 0;
        for seq in 1..200_000u64 {
            now += MS;
            if next_random() % 100 == 0 {
                dropped += 1;
            } else {
                pending.push(seq);
            }
            // Emit the oldest pending ones; reordering stays within a few.
            while pending.len() > 3 {
                let seq = pending.remove(next_random() as usize % pending.len());
                let outcome = window.observe(seq, None, now);
                assert!(outcome.is_distinct(), "{seq}: {outcome:?}");
                distinct += 1;
                if next_random() % 50 == 0 {
                    assert_eq!(window.observe(seq, None, now), Duplicate);
                }
            }
            if seq % 1000 == 0 {
                lost += window.sweep(now);
            }
        }
        for seq in pending.drain(..) {
            window.observe(seq, None, now);
            distinct += 1;
        }
        lost += window.sweep(now + 31_000 * MS);
        assert_eq!(lost, dropped);
        assert_eq!(distinct + dropped, 200_000);
    }
}
