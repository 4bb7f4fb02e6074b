//! When to flush, when to stop taking messages, how long to retry, and what
//! a revoke commits: small decisions over counts and instants.

use std::time::{Duration, Instant};

use super::Flushed;

/// First wait after a failed receipt delivery.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// Longest wait between receipt deliveries.
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Memory bound: the consumer pauses while this many receipt batches' worth
/// of settled messages wait.
const PAUSE_BATCHES: usize = 20;

/// What the consume loop does about the settled messages waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pressure {
    /// Keep taking messages; the periodic flush will do.
    Take,
    /// A batch is full: flush now, and keep taking messages.
    FlushNow,
    /// Too many wait: flush now, and take no message until fewer wait.
    Pause,
}

/// The pressure of `waiting` settled messages with batches of `batch_max`.
pub fn pressure(waiting: usize, batch_max: usize) -> Pressure {
    if waiting >= batch_max.saturating_mul(PAUSE_BATCHES) {
        Pressure::Pause
    } else if waiting >= batch_max {
        Pressure::FlushNow
    } else {
        Pressure::Take
    }
}

/// Whether `deadline` (none: never) has passed at `now`.
pub fn past(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|d| now >= d)
}

/// Whether a flush stops retrying at `now`: once its `deadline` has passed,
/// or, for an open-ended flush (the periodic one, with no deadline), once
/// the consumer is `stopping`. A flush with a deadline (the drain at
/// shutdown, a revoke) keeps retrying until then even while the consumer
/// stops: that is what its deadline (`consumer.drain_timeout`) is for.
pub fn gives_up(deadline: Option<Instant>, now: Instant, stopping: bool) -> bool {
    past(deadline, now) || (stopping && deadline.is_none())
}

/// After a failed delivery: wait, or give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Send the unacknowledged records again after this long.
    After(Duration),
    /// Stop: the deadline would pass first, or the consumer is stopping.
    GiveUp,
}

/// Exponential backoff between receipt deliveries, bounded by a deadline.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: BACKOFF_FIRST,
        }
    }
}

impl Backoff {
    /// The decision after a failure at `now`: give up when the wait would
    /// reach `deadline`, or when `stopping` and there is no deadline (see
    /// [`gives_up`]); otherwise wait, doubling the next wait up to 2 s.
    pub fn after_failure(
        &mut self,
        now: Instant,
        deadline: Option<Instant>,
        stopping: bool,
    ) -> Retry {
        if gives_up(deadline, now + self.next, stopping) {
            return Retry::GiveUp;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        Retry::After(wait)
    }
}

/// What a revoke does once its flush has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevokePlan {
    /// Commit the stored offsets synchronously (not when the assignment was
    /// lost: they belong to another member by now).
    pub commit: bool,
    /// Receipts were still outstanding: their messages will be processed
    /// again by the next owner.
    pub outstanding: bool,
}

/// The plan for a revoke whose flush ended as `flushed`.
pub fn on_revoke(flushed: Flushed, assignment_lost: bool) -> RevokePlan {
    RevokePlan {
        commit: !assignment_lost,
        outstanding: flushed == Flushed::GaveUp,
    }
}
