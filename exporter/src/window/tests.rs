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

#[rustfmt::skip]
const CASES: &[Case] = &[
    Case { name: "in order", bits: 128, steps: &[
        Obs(0, None, 0, New), Obs(1, None, 10, New), Obs(2, None, 20, New), Sweep(100_000, 0),
    ] },
    Case { name: "late within grace fills the gap", bits: 128, steps: &[
        Obs(0, None, 0, New), Obs(2, None, 0, New), Sweep(29_999, 0), Obs(1, None, 29_000, Late),
        Sweep(100_000, 0),
    ] },
    Case { name: "gap never filled is lost exactly once, at the grace period", bits: 128, steps: &[
        Obs(0, None, 0, New), Obs(3, None, 1_000, New), Sweep(30_999, 0), Sweep(31_000, 2),
        Sweep(100_000, 0), Obs(4, None, 100_000, New), Sweep(200_000, 0),
    ] },
    Case { name: "arrival after the loss was declared is overdue", bits: 128, steps: &[
        Obs(0, None, 0, New), Obs(2, None, 0, New), Sweep(30_000, 1),
        Obs(1, None, 40_000, Overdue), Obs(1, None, 41_000, Duplicate), Sweep(100_000, 0),
    ] },
    Case { name: "duplicates", bits: 128, steps: &[
        Obs(0, None, 0, New), Obs(1, None, 0, New), Obs(1, None, 1, Duplicate),
        Obs(0, None, 2, Duplicate), Sweep(100_000, 0),
    ] },
    Case { name: "grace restarts while the block is busy", bits: 128, steps: &[
        Obs(0, None, 0, New), Obs(2, None, 0, New), Obs(5, None, 20_000, New), Sweep(30_000, 0),
        Sweep(49_999, 0), Sweep(50_000, 3),
    ] },
    Case { name: "a gap that slides out is lost at once, then counted never again", bits: 128, steps: &[
        Obs(0, None, 0, New), Obs(200, None, 1_000, New), Sweep(1_000, 127), Sweep(30_999, 0),
        Sweep(31_000, 72), Obs(5, None, 32_000, Duplicate), Obs(150, None, 32_000, Overdue),
        Sweep(100_000, 0),
    ] },
    Case { name: "a gap already lost is not counted again when it slides out", bits: 128, steps: &[
        Obs(0, None, 0, New), Obs(2, None, 0, New), Sweep(30_000, 1), Obs(300, None, 40_000, New),
        Sweep(40_000, 189), Sweep(70_000, 108), Sweep(200_000, 0),
    ] },
    Case { name: "met mid-stream: slightly older is late and never lost", bits: 128, steps: &[
        Obs(1000, None, 0, New), Obs(998, None, 1, Late), Obs(1002, None, 2, New),
        Sweep(100_000, 1), Obs(998, None, 100_000, Duplicate), Obs(999, None, 100_000, Late),
    ] },
    Case { name: "far older than the base on first meeting is ignored", bits: 128, steps: &[
        Obs(1000, None, 0, New), Obs(10, None, 1, Ignored), Obs(900, None, 1, Late),
        Obs(800, None, 1, Ignored), Sweep(100_000, 0),
    ] },
    Case { name: "first sequence number of each lane raises the floor", bits: 1024, steps: &[
        Obs(100, L0, 0, New), Obs(105, L1, 0, New), Obs(110, L0, 0, New), Sweep(100_000, 4),
        Obs(102, L1, 100_000, Late), Obs(107, L1, 100_000, Overdue),
    ] },
    Case { name: "a lane seen again does not move the floor", bits: 1024, steps: &[
        Obs(100, L0, 0, New), Obs(105, L1, 0, New), Obs(120, L1, 0, New), Obs(130, L0, 0, New),
        Sweep(100_000, 23),
    ] },
    Case { name: "lanes beyond the limit do not move the floor", bits: 1024, steps: &[
        Obs(100, L0, 0, New), Obs(105, Some(MAX_LANES), 0, New), Sweep(100_000, 4),
    ] },
    Case { name: "u64::MAX cannot be tracked", bits: 128, steps: &[
        Obs(u64::MAX, None, 0, Ignored), Obs(7, None, 0, New), Obs(u64::MAX, None, 0, Ignored),
        Sweep(100_000, 0),
    ] },
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
                    let got = window.sweep(ms * MS, u64::MAX);
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
    assert_eq!(window.sweep(u64::MAX, u64::MAX), 0);
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
    window.sweep(u64::MAX, u64::MAX);
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
            lost += window.sweep(now, u64::MAX);
        }
    }
    for seq in pending.drain(..) {
        window.observe(seq, None, now);
        distinct += 1;
    }
    lost += window.sweep(now + 31_000 * MS, u64::MAX);
    assert_eq!(lost, dropped);
    assert_eq!(distinct + dropped, 200_000);
}

#[test]
fn a_producer_whose_whole_history_is_read_is_judged_from_seq_0() {
    // Seq 0 and 2 never arrive; 1 in lane 0, 3 in lane 1.
    let first = |from_zero: bool| {
        let mut window = SequenceWindow::new(128, GRACE);
        if from_zero {
            window.judge_from_zero();
        }
        assert_eq!(window.observe(1, L0, 0), New);
        assert_eq!(window.observe(3, L1, 1_000 * MS), New);
        assert_eq!(window.sweep(29_999 * MS, u64::MAX), 0, "within the grace");
        window.sweep(100_000 * MS, u64::MAX)
    };
    // Met mid-stream, the lanes raise the floor to 3: nothing is judged.
    assert_eq!(first(false), 0);
    // The whole history is read: 0 and 2 are lost.
    assert_eq!(first(true), 2);

    // A late first message is still a message, not a loss.
    let mut window = SequenceWindow::new(128, GRACE);
    window.judge_from_zero();
    assert_eq!(window.observe(2, L0, 0), New);
    assert_eq!(window.observe(0, L1, 10_000 * MS), Late);
    assert_eq!(window.sweep(100_000 * MS, u64::MAX), 1, "only 1 is missing");

    // Beyond the bitmap's reach from 0, judging starts where it is met.
    let mut window = SequenceWindow::new(128, GRACE);
    window.judge_from_zero();
    assert_eq!(window.observe(500, L0, 0), New);
    assert_eq!(window.sweep(100_000 * MS, u64::MAX), 0);

    // Once met, it is too late to judge from zero.
    let mut window = SequenceWindow::new(128, GRACE);
    assert_eq!(window.observe(5, L0, 0), New);
    window.judge_from_zero();
    assert_eq!(window.observe(7, L1, 0), New);
    assert_eq!(
        window.sweep(100_000 * MS, u64::MAX),
        0,
        "lane 1 raised the floor to 7"
    );
}

#[test]
fn a_gap_the_producer_has_not_settled_is_not_judged_whatever_the_grace() {
    // 0..=9 seen, 10 held back by a partition refusing writes, 11..=19
    // seen: the producer's mark stays at 10 while it retries.
    let mut window = SequenceWindow::new(128, GRACE);
    for seq in (0..20).filter(|&s| s != 10) {
        window.observe(seq, L0, seq * MS);
    }
    assert_eq!(window.sweep(600_000 * MS, 10), 0, "10 may still come");
    assert_eq!(window.resolved(), 10, "judged up to the mark, no further");
    // It comes: late, not lost.
    assert_eq!(window.observe(10, L0, 601_000 * MS), Late);
    assert_eq!(window.sweep(700_000 * MS, 20), 0);
    assert_eq!(window.resolved(), 20);

    // The same gap, and the producer gives up on 10 (its mark passes it):
    // lost once the grace is over, and only once.
    let mut window = SequenceWindow::new(128, GRACE);
    for seq in (0..20).filter(|&s| s != 10) {
        window.observe(seq, L0, seq * MS);
    }
    assert_eq!(window.sweep(600_000 * MS, 10), 0);
    assert_eq!(window.sweep(600_000 * MS, 15), 1);
    assert_eq!(window.sweep(900_000 * MS, 20), 0);
    // Arriving after all: overdue, still lost by definition.
    assert_eq!(window.observe(10, L0, 901_000 * MS), Overdue);
}

#[test]
fn the_mark_does_not_shorten_the_grace() {
    let mut window = SequenceWindow::new(128, GRACE);
    window.observe(0, L0, 0);
    window.observe(2, L0, 1_000 * MS);
    // Settled, but the gap was noticed 1 s ago: grace still applies.
    assert_eq!(window.sweep(30_999 * MS, 3), 0);
    assert_eq!(window.sweep(31_000 * MS, 3), 1);
}
