//! Records a consumer group lost to retention: deleted from the log before
//! the group read them.
//!
//! A group whose committed offset `c` is below a partition's low watermark
//! `low` will never read the records `c..low`: retention (or a
//! DeleteRecords call) removed them first. Lag counts from the low
//! watermark (see [`crate::lag`]), so without this module the loss would
//! only show as a drop in lag.
//!
//! Each record is counted once. Per group and partition an [`ExpiryMark`]
//! keeps the offset below which every record is settled: either the group
//! had committed past it (consumed it), or it was deleted and counted.
//! An observation counts `low − max(c, mark)` when positive and moves the
//! mark up to the highest of `low` and `c` (`c` capped at the high
//! watermark); the mark never moves down, so a group that catches up,
//! rewinds, or is observed again adds nothing twice. A group that rewinds
//! onto records it had already consumed loses nothing when they are
//! deleted.
//!
//! The marks live in memory. The first observation of a partition after
//! the exporter starts only sets the mark: a gap already there may have
//! been counted by the previous process, so it is not counted again (the
//! gap itself is published as a gauge, [`expired_gap`], which needs no
//! state). What expires while no exporter runs is therefore not counted;
//! what expires while one runs is counted exactly once, across restarts.

use crate::lag::PartitionOffsets;

/// The offset below which a group's records on one partition are settled
/// (consumed before deletion, or counted as expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryMark(i64);

impl ExpiryMark {
    /// The mark set by the first observation of a partition: everything
    /// below the low watermark or the committed offset is settled, nothing
    /// is counted.
    pub fn first(offsets: &PartitionOffsets) -> ExpiryMark {
        let mut mark = ExpiryMark(0);
        mark.settle(offsets);
        mark
    }

    /// Counts the records that expired for the group since the last
    /// observation and moves the mark. Offsets that cannot describe a
    /// partition (negative, low above high) count nothing and leave the
    /// mark where it is; so does a partition without a commit (a group
    /// that never read it has lost nothing it was reading).
    pub fn observe(&mut self, offsets: &PartitionOffsets) -> u64 {
        if offsets.low < 0 || offsets.high < offsets.low {
            return 0;
        }
        let expired = match offsets.committed.filter(|&c| c >= 0) {
            Some(committed) => u64::try_from(offsets.low - committed.max(self.0)).unwrap_or(0),
            None => 0,
        };
        self.settle(offsets);
        expired
    }

    /// Moves the mark up to the low watermark and to the committed offset
    /// (capped at the high watermark: nothing beyond it exists to consume).
    fn settle(&mut self, offsets: &PartitionOffsets) {
        if offsets.low < 0 || offsets.high < offsets.low {
            return;
        }
        let consumed = offsets.committed.filter(|&c| c >= 0).unwrap_or(0);
        self.0 = self.0.max(offsets.low).max(consumed.min(offsets.high));
    }

    /// The offset below which everything is settled.
    pub fn offset(self) -> i64 {
        self.0
    }
}

/// Records between the group's committed offset and the low watermark,
/// deleted before the group read them (0 when the group is at or past the
/// low watermark, or has no commit, or the watermarks are invalid).
pub fn expired_gap(offsets: &PartitionOffsets) -> u64 {
    if offsets.low < 0 || offsets.high < offsets.low {
        return 0;
    }
    match offsets.committed.filter(|&c| c >= 0) {
        Some(committed) => u64::try_from(offsets.low - committed).unwrap_or(0),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(low: i64, high: i64, committed: Option<i64>) -> PartitionOffsets {
        PartitionOffsets {
            low,
            high,
            committed,
        }
    }

    /// Runs a sequence of observations from a first one and returns the
    /// counts of each later one.
    fn counts(first: PartitionOffsets, later: &[PartitionOffsets]) -> Vec<u64> {
        let mut mark = ExpiryMark::first(&first);
        later.iter().map(|o| mark.observe(o)).collect()
    }

    #[test]
    fn a_stopped_group_loses_what_retention_deletes_once() {
        // Committed at 40; retention moves the low watermark to 50, then 70.
        let seen = counts(
            at(0, 100, Some(40)),
            &[
                at(0, 100, Some(40)),
                at(50, 100, Some(40)),
                at(50, 110, Some(40)),
                at(70, 120, Some(40)),
                at(70, 120, Some(40)),
            ],
        );
        assert_eq!(seen, [0, 10, 0, 20, 0]);
    }

    #[test]
    fn catching_up_or_rewinding_counts_nothing_again() {
        let seen = counts(
            at(0, 100, Some(40)),
            &[
                at(60, 100, Some(40)),  // 20 lost
                at(60, 100, Some(60)),  // the group resumes at the low watermark
                at(60, 100, Some(100)), // and catches up
                at(80, 120, Some(30)),  // reset to an offset long deleted
                at(90, 120, Some(30)),  // retention deletes what it had read
                at(110, 120, Some(30)), // and what it had not
            ],
        );
        // 60..100 were read before the reset; deleted under the rewound
        // group they were consumed, not lost. 100..110 were never read.
        assert_eq!(seen, [20, 0, 0, 0, 0, 10]);
    }

    #[test]
    fn a_gap_there_at_the_first_observation_is_not_counted() {
        // A previous exporter may have counted 0..50 already.
        assert_eq!(
            counts(
                at(50, 100, Some(10)),
                &[at(50, 100, Some(10)), at(55, 100, Some(10))]
            ),
            [0, 5]
        );
        assert_eq!(expired_gap(&at(50, 100, Some(10))), 40);
    }

    #[test]
    fn no_commit_and_invalid_watermarks_count_nothing() {
        let seen = counts(
            at(0, 100, None),
            &[
                at(50, 100, None),
                at(60, 50, Some(0)),
                at(-1, 50, Some(0)),
                at(50, 100, Some(-1001)),
                at(60, 100, Some(40)),
            ],
        );
        assert_eq!(seen, [0, 0, 0, 0, 10]);
        assert_eq!(expired_gap(&at(60, 50, Some(0))), 0);
        assert_eq!(expired_gap(&at(60, 100, None)), 0);
        assert_eq!(expired_gap(&at(60, 100, Some(60))), 0);
    }

    /// One step of a partition's history: retention deletes up to some
    /// offset, records are written, the group commits somewhere.
    #[derive(Debug, Clone)]
    struct Step {
        delete: i64,
        write: i64,
        commit: Option<i64>,
    }

    fn step() -> impl Strategy<Value = Step> {
        (0i64..30, 0i64..30, proptest::option::of(0i64..400)).prop_map(|(delete, write, commit)| {
            Step {
                delete,
                write,
                commit,
            }
        })
    }

    proptest! {
        /// Against a model that tracks every offset: an offset is lost when
        /// it is deleted (at an observation) while the group's committed
        /// offset is at or below it and it was never consumed. The counted
        /// total equals the model's, whatever the order of deletions,
        /// writes, commits, rewinds and catch-ups.
        #[test]
        fn counts_equal_a_model_of_every_offset(steps in proptest::collection::vec(step(), 1..40)) {
            let (mut low, mut high) = (0i64, 0i64);
            let mut committed: Option<i64> = None;
            // consumed[o]: the group committed past o while o still existed.
            let mut consumed: Vec<bool> = Vec::new();
            let mut lost = 0u64;
            let mut mark = ExpiryMark::first(&at(low, high, committed));
            let mut counted = 0u64;
            for s in steps {
                high += s.write;
                consumed.resize(high as usize, false);
                committed = s.commit.map(|c| c.min(high)).or(committed);
                if let Some(c) = committed {
                    for o in low.max(0)..c.min(high) {
                        consumed[o as usize] = true;
                    }
                }
                let new_low = (low + s.delete).min(high);
                if let Some(c) = committed {
                    for o in low..new_low {
                        if o >= c && !consumed[o as usize] {
                            lost += 1;
                        }
                    }
                }
                low = new_low;
                counted += mark.observe(&at(low, high, committed));
                prop_assert!(mark.offset() <= high);
            }
            prop_assert_eq!(counted, lost);
        }

        /// Observing the same offsets again never counts.
        #[test]
        fn repeating_an_observation_counts_nothing(low in 0i64..1000, extra in 0i64..1000, c in proptest::option::of(0i64..3000)) {
            let offsets = at(low, low + extra, c);
            let mut mark = ExpiryMark(0);
            let _ = mark.observe(&offsets);
            prop_assert_eq!(mark.observe(&offsets), 0);
        }
    }
}
