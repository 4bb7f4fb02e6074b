//! The accounting's scenarios: steps in, outcomes and counts expected.

use crate::window::Outcome::{self, *};

pub(super) const MS: u64 = 1_000_000;
pub(super) const T0: u64 = 1_795_813_600_000 * MS;

/// One step of a scenario; times are milliseconds after `T0`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Step {
    /// A message read from the log: producer, seq, partition, read at.
    Log(&'static str, u64, i32, u64, Outcome),
    /// A receipt entry read: group, producer, seq, partition, read at.
    Rcpt(&'static str, &'static str, u64, i32, u64, Outcome),
    /// Sweep at: log lost, processed lost for group "g", idle evictions.
    Sweep(u64, u64, u64, u64),
    /// Cumulative (messages, lost, duplicated) at log and for group "g".
    Totals((u64, u64, u64), (u64, u64, u64)),
    /// Set the horizon: log read through, group "g" judged through (ms).
    Judge(u64, u64),
    /// Cumulative messages of group "g" dropped unjudged.
    Unjudged(u64),
}
use Step::*;

pub(super) struct Case {
    pub(super) name: &'static str,
    pub(super) window_bits: u32,
    pub(super) max_producers: usize,
    pub(super) steps: Vec<Step>,
}

fn case(name: &'static str, steps: Vec<Step>) -> Case {
    Case {
        name,
        window_bits: 1024,
        max_producers: 100,
        steps,
    }
}

#[rustfmt::skip]
pub(super) fn cases() -> Vec<Case> {
    vec![
        case(
            "in order through both stages",
            vec![
                Log("p", 0, 0, 0, New), Log("p", 1, 1, 1, New), Rcpt("g", "p", 0, 0, 5, New),
                Log("p", 2, 2, 6, New), Rcpt("g", "p", 1, 1, 7, New), Rcpt("g", "p", 2, 2, 8, New),
                Sweep(100_000, 0, 0, 0), Totals((3, 0, 0), (3, 0, 0)),
            ],
        ),
        case(
            "log gap: late within grace, then a gap never filled",
            vec![
                Log("p", 0, 0, 0, New), Log("p", 2, 0, 0, New), Log("p", 1, 0, 20_000, Late),
                Log("p", 4, 0, 21_000, New), Sweep(50_999, 0, 0, 0), Sweep(51_000, 1, 0, 0),
                Sweep(90_000, 0, 0, 0), Totals((4, 1, 0), (0, 0, 0)),
            ],
        ),
        case(
            "no receipt within the SLA: lost at processed exactly once",
            vec![
                Log("p", 0, 0, 0, New), Log("p", 1, 0, 0, New), Log("p", 2, 0, 0, New),
                Rcpt("g", "p", 0, 0, 1_000, New), Rcpt("g", "p", 2, 0, 1_000, New),
                Sweep(59_999, 0, 0, 0), Sweep(60_000, 0, 1, 0), Sweep(90_000, 0, 0, 0),
                Rcpt("g", "p", 1, 0, 95_000, Late), Sweep(200_000, 0, 0, 0),
                Totals((3, 0, 0), (3, 1, 0)),
            ],
        ),
        case(
            "receipts for messages the log never saw make no loss",
            vec![
                Rcpt("g", "p", 0, 0, 0, New), Rcpt("g", "p", 1, 0, 0, New),
                Rcpt("g", "p", 2, 0, 0, New), Log("p", 2, 0, 10, New), Log("p", 3, 0, 10, New),
                Rcpt("g", "p", 3, 0, 20, New), Sweep(200_000, 0, 0, 0),
                Totals((2, 0, 0), (4, 0, 0)),
            ],
        ),
        case(
            "a producer met at processed before the log",
            vec![
                Rcpt("g", "p", 10, 0, 0, New), Log("p", 10, 0, 100, New),
                Log("p", 11, 0, 100, New), Rcpt("g", "p", 11, 0, 200, New),
                Sweep(200_000, 0, 0, 0),
            ],
        ),
        case(
            "a group that never receipted the producer judges nothing",
            vec![
                Log("p", 0, 0, 0, New), Log("p", 1, 0, 0, New), Rcpt("h", "p", 0, 0, 0, Ignored),
                Sweep(200_000, 0, 0, 0), Totals((2, 0, 0), (0, 0, 0)),
            ],
        ),
        case(
            "the group's first receipt is its floor",
            vec![
                Log("p", 0, 0, 0, New), Log("p", 1, 0, 0, New), Log("p", 2, 0, 0, New),
                Log("p", 3, 0, 0, New), Log("p", 4, 0, 0, New), Rcpt("g", "p", 3, 0, 10, New),
                Sweep(200_000, 0, 1, 0),
            ],
        ),
        case(
            "receipt lanes raise the floor; loss above it still counts",
            vec![
                Log("p", 0, 0, 0, New), Log("p", 1, 1, 0, New), Log("p", 2, 0, 0, New),
                Log("p", 3, 1, 0, New), Log("p", 4, 0, 0, New), Log("p", 5, 1, 0, New),
                Log("p", 6, 0, 0, New), Rcpt("g", "p", 2, 0, 10, New),
                Rcpt("g", "p", 3, 1, 10, New), Rcpt("g", "p", 4, 0, 10, New),
                Rcpt("g", "p", 6, 0, 10, New), Sweep(200_000, 0, 1, 0),
            ],
        ),
        case(
            "duplicates at both stages",
            vec![
                Log("p", 0, 0, 0, New), Log("p", 0, 0, 1, Duplicate), Rcpt("g", "p", 0, 0, 2, New),
                Rcpt("g", "p", 0, 3, 3, Duplicate), Rcpt("g", "p", 0, 3, 4, Duplicate),
                Totals((1, 0, 1), (1, 0, 2)),
            ],
        ),
        Case {
            name: "the log window sliding: what the horizon does not cover is unjudged",
            window_bits: 128,
            max_producers: 100,
            steps: vec![
                Log("p", 0, 0, 0, New), Log("p", 1, 0, 0, New), Log("p", 2, 0, 0, New),
                Rcpt("g", "p", 0, 0, 0, New), Rcpt("g", "p", 2, 0, 0, New),
                Log("p", 130, 0, 1_000, New),
                // 3..64 slid out unseen; 1 had no receipt, but the group
                // had not committed past it: not judged.
                Sweep(1_000, 61, 0, 0), Sweep(31_000, 66, 0, 0),
                Rcpt("g", "p", 130, 0, 32_000, New), Sweep(200_000, 0, 0, 0),
                Totals((4, 127, 0), (3, 0, 0)), Unjudged(1),
            ],
        },
        Case {
            name: "the log window sliding judges what the horizon covers at once",
            window_bits: 128,
            max_producers: 100,
            steps: vec![
                Log("p", 0, 0, 0, New), Log("p", 1, 0, 0, New), Log("p", 2, 0, 0, New),
                Rcpt("g", "p", 0, 0, 0, New), Rcpt("g", "p", 2, 0, 0, New), Judge(0, 500),
                Log("p", 130, 0, 1_000, New), Sweep(1_000, 61, 1, 0),
                Totals((4, 61, 0), (2, 1, 0)), Unjudged(0),
            ],
        },
        case(
            "a sequence number beyond the window is refused, not a slide",
            vec![
                Log("p", 0, 0, 0, New), Log("p", 1 << 62, 0, 1, Ignored), Log("p", 1, 0, 2, New),
                Sweep(100_000, 0, 0, 0), Totals((2, 0, 0), (0, 0, 0)),
            ],
        ),
        case(
            "an idle producer is forgotten; its unseen tail is no loss",
            vec![
                Log("p", 0, 0, 0, New), Log("p", 2, 0, 0, New), Rcpt("g", "p", 0, 0, 0, New),
                Rcpt("g", "p", 2, 0, 0, New), Sweep(299_999, 1, 0, 0), Sweep(300_000, 0, 0, 1),
                Log("p", 9, 0, 400_000, New), Log("p", 2, 0, 400_000, Late),
                Sweep(1_000_000, 0, 0, 1), Totals((4, 1, 0), (2, 0, 0)),
            ],
        ),
        Case {
            name: "past max_producers the idlest is forgotten",
            window_bits: 1024,
            max_producers: 2,
            steps: vec![
                Log("a", 0, 0, 0, New), Log("b", 0, 0, 1, New), Log("a", 1, 0, 2, New),
                Log("c", 0, 0, 3, New), Log("b", 0, 0, 4, New), Log("c", 0, 0, 5, Duplicate),
                Log("a", 1, 0, 6, New), Totals((6, 0, 1), (0, 0, 0)),
            ],
        },
    ]
}
