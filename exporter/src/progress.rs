//! How far the exporter's reading has got, and how far each watched group
//! has committed: the horizons loss is judged against.
//!
//! A late message is not a lost one. Declaring a gap lost because the wall
//! clock moved on turns every broker stall, and every moment the exporter
//! falls behind, into permanent false loss. So loss is judged against
//! progress:
//!
//! - [`TopicProgress`] tracks, per partition of a topic the exporter reads,
//!   the offset it will read next and the time up to which it has read
//!   everything: the time a high watermark was asked for, once the reading
//!   has reached that watermark (everything written before has been read,
//!   even in a partition nobody writes to). Record timestamps are not used:
//!   they come from producers' clocks and may be forged. A topic is read
//!   through the earliest of its partitions. A broker that does not answer
//!   gives no watermark, so the time stops.
//! - [`CommitHorizon`] keeps checkpoints of the reading position over time.
//!   A group whose committed offsets have passed a checkpoint in every
//!   partition has committed every message read before that checkpoint;
//!   that time is the group's committed-through time.
//! - [`GroupHorizon`] holds each committed-through time back until the
//!   receipts written before the commit was seen have been read and the
//!   grace (`exporter.sla`) has passed: only then may a message without a
//!   receipt be called lost. Before that it is lag, which the lag metrics
//!   show.
//!
//! Everything is pure: offsets and times in, times out. Memory is bounded
//! by the number of partitions and by fixed caps on checkpoints and pending
//! commits (older checkpoints are thinned out, which only delays judging).

use std::collections::{BTreeMap, VecDeque};

use crate::groups::PerGroup;

/// Checkpoints kept; past this the older half is thinned out.
pub const MAX_CHECKPOINTS: usize = 4096;
/// Commit observations waiting for their grace, per group.
pub const MAX_PENDING_COMMITS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Partition {
    /// First offset read in this assignment.
    start: i64,
    /// Next offset to read.
    next: i64,
    /// Everything written before this was read (unix ns).
    through_ns: u64,
    /// A high watermark not reached yet, and when it was asked for.
    pending: Option<(i64, u64)>,
}

/// The reading progress of one topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicProgress {
    partitions: BTreeMap<i32, Partition>,
}

impl TopicProgress {
    /// Starts tracking `partition`, whose reading starts at offset `start`.
    /// Nothing is known to be read through until a record or a watermark
    /// says so.
    pub fn assign(&mut self, partition: i32, start: i64) {
        self.partitions.insert(
            partition,
            Partition {
                start,
                next: start,
                through_ns: 0,
                pending: None,
            },
        );
    }

    /// The record at `offset` was read.
    pub fn record(&mut self, partition: i32, offset: i64) {
        let Some(p) = self.partitions.get_mut(&partition) else {
            return;
        };
        p.next = p.next.max(offset.saturating_add(1));
        if let Some((high, at_ns)) = p.pending {
            if p.next >= high {
                p.through_ns = p.through_ns.max(at_ns);
                p.pending = None;
            }
        }
    }

    /// The broker said at `at_ns` that `partition` ends before `high`.
    pub fn watermark(&mut self, partition: i32, high: i64, at_ns: u64) {
        let Some(p) = self.partitions.get_mut(&partition) else {
            return;
        };
        if p.next >= high {
            p.through_ns = p.through_ns.max(at_ns);
            p.pending = None;
        } else if p.pending.is_none() {
            // The oldest unreached watermark is kept: it is reached first.
            p.pending = Some((high, at_ns));
        }
    }

    /// Every record written before this time has been read, in every
    /// partition; `None` before anything is known.
    pub fn through_ns(&self) -> Option<u64> {
        let earliest = self.partitions.values().map(|p| p.through_ns).min()?;
        (earliest > 0).then_some(earliest)
    }

    /// Per partition: (first offset read, next offset to read).
    pub fn positions(&self) -> Positions {
        self.partitions
            .iter()
            .map(|(&id, p)| (id, (p.start, p.next)))
            .collect()
    }
}

/// Per partition: (first offset read, next offset to read).
pub type Positions = BTreeMap<i32, (i64, i64)>;

/// Checkpoints of the reading position, to tell how far a group's commits
/// have got in time.
#[derive(Debug, Clone, Default)]
pub struct CommitHorizon {
    /// (time, per partition the next offset to read), oldest first.
    checkpoints: VecDeque<(u64, Positions)>,
}

impl CommitHorizon {
    /// Records that at `at_ns` the reading stood at `positions` (from
    /// [`TopicProgress::positions`]): every message read before `at_ns` has
    /// an offset below its partition's next offset.
    pub fn checkpoint(&mut self, at_ns: u64, positions: Positions) {
        if self.checkpoints.len() >= MAX_CHECKPOINTS {
            // Keep every other checkpoint of the older half: a group then
            // has to pass a later one, which delays judging, never hastens it.
            let half = self.checkpoints.len() / 2;
            let mut index = 0;
            self.checkpoints.retain(|_| {
                index += 1;
                index > half || index % 2 == 0
            });
        }
        self.checkpoints.push_back((at_ns, positions));
    }

    /// The latest checkpoint time whose positions the group's `committed`
    /// offsets (per partition, the next offset the group will consume) have
    /// reached in every partition the reading has read from. `None` when it
    /// has passed none.
    pub fn committed_through(&self, committed: &BTreeMap<i32, i64>) -> Option<u64> {
        self.checkpoints
            .iter()
            .rev()
            .find(|(_, positions)| {
                positions.iter().all(|(partition, &(start, next))| {
                    // Nothing read from the partition: nothing to commit.
                    next <= start || committed.get(partition).is_some_and(|&c| c >= next)
                })
            })
            .map(|(at_ns, _)| *at_ns)
    }

    /// Drops checkpoints older than `before_ns` except the newest of them,
    /// once no group needs them.
    pub fn forget_before(&mut self, before_ns: u64) {
        while self.checkpoints.len() > 1 && self.checkpoints[1].0 <= before_ns {
            self.checkpoints.pop_front();
        }
    }

    /// Checkpoints held.
    pub fn len(&self) -> usize {
        self.checkpoints.len()
    }

    /// True when no checkpoint is held.
    pub fn is_empty(&self) -> bool {
        self.checkpoints.is_empty()
    }
}

/// One group's committed-through times, released after their grace.
#[derive(Debug, Clone, Default)]
pub struct GroupHorizon {
    /// (when the commit was seen, committed-through time), oldest first.
    pending: VecDeque<(u64, u64)>,
    released_ns: Option<u64>,
}

impl GroupHorizon {
    /// At `seen_ns` the group's commits covered everything read before
    /// `through_ns`.
    pub fn commit_seen(&mut self, seen_ns: u64, through_ns: u64) {
        if self
            .pending
            .back()
            .is_some_and(|&(_, last)| last >= through_ns)
            || self
                .released_ns
                .is_some_and(|released| released >= through_ns)
        {
            return;
        }
        if self.pending.len() >= MAX_PENDING_COMMITS {
            // Replace the newest: a later sighting of a later point is
            // released later, which is never early.
            self.pending.pop_back();
        }
        self.pending.push_back((seen_ns, through_ns));
    }

    /// Releases what is due at `now_ns` given that the receipts topic has
    /// been read through `receipts_through_ns`, and returns the horizon:
    /// messages read before it, committed by the group, whose receipts had
    /// `grace_ns` to arrive.
    pub fn release(
        &mut self,
        now_ns: u64,
        receipts_through_ns: Option<u64>,
        grace_ns: u64,
    ) -> Option<u64> {
        while let Some(&(seen_ns, through_ns)) = self.pending.front() {
            let read = receipts_through_ns.is_some_and(|r| r >= seen_ns);
            if !read || now_ns < seen_ns.saturating_add(grace_ns) {
                break;
            }
            self.released_ns = Some(self.released_ns.map_or(through_ns, |r| r.max(through_ns)));
            self.pending.pop_front();
        }
        self.released_ns
    }
}

/// What one poll of the cluster tells about progress, handed from the
/// polling loop to the reader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollMarks {
    /// When the poll started: the watermarks were asked for after it.
    pub at_ns: u64,
    /// When the poll ended: the committed offsets were read before it.
    pub done_ns: u64,
    /// High watermarks of each judged topic's partitions.
    pub log_highs: BTreeMap<String, Vec<(i32, i64)>>,
    /// High watermarks of the receipts topic's partitions.
    pub receipt_highs: Vec<(i32, i64)>,
    /// Per watched group, its committed offsets on the judged topics, when
    /// they could be read.
    pub committed: Committed,
}

/// Per watched group, its committed offsets by (topic, partition) (the
/// next offset the group consumes), or `None` when they could not be read.
pub type Committed = PerGroup<Option<BTreeMap<(String, i32), i64>>>;

#[cfg(test)]
mod tests;
