//! Burrow's own consumer status: its partition rules and its group
//! roll-up, for alerts written against Burrow's numbers.
//!
//! meshflow's status ([`GroupStatus`](super::GroupStatus)) has its own
//! rules and six states. Burrow's evaluator (linkedin/Burrow,
//! `core/internal/evaluator/caching.go`) judges each partition on the last
//! `intervals` (10) offsets the group committed, each with its time and the
//! lag at that time, on the partition's recent high watermarks and on the
//! current lag, first matching rule wins:
//!
//! 1. current lag ≤ allowed lag (0): OK;
//! 2. STOP: now − last commit > last commit − first commit, unless some
//!    recent high watermark is ≤ the last committed offset;
//! 3. REWIND: a committed offset below its predecessor, not made good by a
//!    later one;
//! 4. OK: some commit in the window had lag ≤ allowed lag;
//! 5. STALL: every committed offset in the window is the same;
//! 6. WARN: the lag never decreased from one commit to the next;
//! 7. OK otherwise.
//!
//! The group's status is its worst partition's, where STOP, STALL and
//! REWIND count as ERR: 1 OK, 2 WARN, 3 ERR at group level, as Burrow's
//! HTTP API and its notifiers report it.
//!
//! What the exporter sees differs from Burrow's input in one way: Burrow
//! reads every commit from `__consumer_offsets`, the exporter polls the
//! committed offsets. So a commit enters the window when the exporter
//! first sees a new offset, stamped with that poll's time (up to one poll
//! interval late), and a group that commits the same offset again and
//! again looks like one that does not commit (Burrow's STALL becomes its
//! STOP). Both are ERR at group level, so the group figure is Burrow's.

use std::collections::VecDeque;

use crate::lag::PartitionOffsets;

/// Commits and high watermarks kept per partition (Burrow's
/// `storage.intervals` default).
pub const INTERVALS: usize = 10;

/// Lag at or below which Burrow counts a partition as caught up (its
/// `evaluator.allowed-lag` default).
pub const ALLOWED_LAG: u64 = 0;

/// Burrow's status numbers (`protocol.StatusConstant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BurrowStatus {
    /// 1.
    Ok = 1,
    /// 2: committing, but the lag is not decreasing.
    Warning = 2,
    /// 3: the group level of STOP, STALL and REWIND.
    Error = 3,
    /// 4: no commit for longer than the window spans.
    Stop = 4,
    /// 5: the same offset committed throughout the window, with lag.
    Stall = 5,
    /// 6: the committed offset moved back and has not recovered.
    Rewind = 6,
}

impl BurrowStatus {
    /// The number Burrow gives it.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// The group's status from its partitions': the worst, STOP, STALL
    /// and REWIND counting as ERR; OK without partitions.
    pub fn group(partitions: impl IntoIterator<Item = BurrowStatus>) -> BurrowStatus {
        partitions
            .into_iter()
            .map(|status| status.min(BurrowStatus::Error))
            .max()
            .unwrap_or(BurrowStatus::Ok)
    }
}

/// One commit in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// The committed offset.
    pub offset: i64,
    /// When it was committed (seen), unix milliseconds.
    pub at_ms: i64,
    /// High watermark minus the offset at that time, when known.
    pub lag: Option<u64>,
}

/// Burrow's rule 1 (inverted): no commit in the window had lag ≤ allowed.
pub fn lag_always_above(commits: &[Commit], allowed: u64) -> bool {
    !commits
        .iter()
        .any(|c| c.lag.is_some_and(|lag| lag <= allowed))
}

/// Burrow's rule 2: the index of the first commit below its predecessor.
pub fn rewind_at(commits: &[Commit]) -> Option<usize> {
    (1..commits.len()).find(|&i| commits[i].offset < commits[i - 1].offset)
}

/// Burrow's rule 2, second part: a later commit reached the offset before
/// the rewind at `index`.
pub fn rewind_recovered(commits: &[Commit], index: usize) -> bool {
    let before = commits[index - 1].offset;
    commits[index..].iter().any(|c| c.offset >= before)
}

/// Burrow's rule 3: the time since the last commit exceeds the time the
/// window spans.
pub fn stopped(commits: &[Commit], now_ms: i64) -> bool {
    match (commits.first(), commits.last()) {
        (Some(first), Some(last)) => now_ms - last.at_ms > last.at_ms - first.at_ms,
        _ => false,
    }
}

/// Burrow's rule 4: every commit of the window has the same offset.
pub fn stalled(commits: &[Commit]) -> bool {
    commits.windows(2).all(|w| w[0].offset == w[1].offset)
}

/// Burrow's rule 5: the known lags never decrease from one to the next.
pub fn lag_not_decreasing(commits: &[Commit]) -> bool {
    let lags: Vec<u64> = commits.iter().filter_map(|c| c.lag).collect();
    lags.windows(2).all(|w| w[1] >= w[0])
}

/// Whether some recent high watermark is at or below the last committed
/// offset: the group was caught up moments ago.
pub fn recently_caught_up(commits: &[Commit], highs: &[i64]) -> bool {
    commits
        .last()
        .is_some_and(|last| highs.iter().any(|&high| high <= last.offset))
}

/// A partition's status from its window of commits (oldest first), its
/// recent high watermarks, its current lag and the time, in Burrow's order.
pub fn partition_status(
    commits: &[Commit],
    highs: &[i64],
    current_lag: u64,
    now_ms: i64,
    allowed: u64,
) -> BurrowStatus {
    if commits.is_empty() || current_lag <= allowed {
        return BurrowStatus::Ok;
    }
    if stopped(commits, now_ms) && !recently_caught_up(commits, highs) {
        return BurrowStatus::Stop;
    }
    if let Some(index) = rewind_at(commits) {
        if !rewind_recovered(commits, index) {
            return BurrowStatus::Rewind;
        }
    }
    if lag_always_above(commits, allowed) {
        if stalled(commits) {
            return BurrowStatus::Stall;
        }
        if lag_not_decreasing(commits) {
            return BurrowStatus::Warning;
        }
    }
    BurrowStatus::Ok
}

/// What the exporter has seen of one partition, as Burrow's input: the
/// last [`INTERVALS`] distinct commits and high watermarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BurrowPartition {
    commits: VecDeque<Commit>,
    highs: VecDeque<i64>,
    current_lag: u64,
}

impl BurrowPartition {
    /// Records one poll at `at_ms`: the high watermark, and the committed
    /// offset as a new commit when it differs from the last one. Offsets
    /// that cannot describe a partition, and a partition without a commit
    /// (Burrow does not know it), change nothing.
    pub fn record(&mut self, at_ms: i64, offsets: &PartitionOffsets) {
        if offsets.low < 0 || offsets.high < offsets.low {
            return;
        }
        let Some(committed) = offsets.committed.filter(|&c| c >= 0) else {
            return;
        };
        let lag = u64::try_from(offsets.high - committed).unwrap_or(0);
        push(&mut self.highs, offsets.high);
        if self.commits.back().map(|c| c.offset) != Some(committed) {
            let commit = Commit {
                offset: committed,
                at_ms,
                lag: Some(lag),
            };
            push(&mut self.commits, commit);
        }
        self.current_lag = lag;
    }

    /// Whether a commit was ever recorded (Burrow knows the partition).
    pub fn known(&self) -> bool {
        !self.commits.is_empty()
    }

    /// The partition's status at `now_ms`.
    pub fn status(&self, now_ms: i64) -> BurrowStatus {
        let commits: Vec<Commit> = self.commits.iter().copied().collect();
        let highs: Vec<i64> = self.highs.iter().copied().collect();
        partition_status(&commits, &highs, self.current_lag, now_ms, ALLOWED_LAG)
    }
}

fn push<T>(ring: &mut VecDeque<T>, value: T) {
    if ring.len() == INTERVALS {
        ring.pop_front();
    }
    ring.push_back(value);
}

#[cfg(test)]
mod tests;
