//! Judging loss at stage `processed`: which log-seen messages of one
//! producer a group has no receipt for, as far as the horizon allows.

use super::{GroupBook, ProducerBook};
use crate::groups::PerGroup;
use crate::observation::Horizon;
use crate::window::{span_mask, SequenceWindow};

/// When processed loss is judged: up to the horizon, or before a slide.
#[derive(Debug, Clone, Copy)]
pub(super) enum Until {
    /// Blocks whose last read is at or before this time (unix ns).
    Horizon(u64),
    /// Everything below this sequence number, before the window drops it:
    /// blocks within the horizon (if any) are judged, the rest unjudged.
    SlideTo(u64, Option<u64>),
}

/// What judging one group found.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Judged {
    pub(super) lost: u64,
    pub(super) unjudged: u64,
    pub(super) unmatched: u64,
}

impl Judged {
    pub(super) fn add(&mut self, other: Judged) {
        self.lost = self.lost.saturating_add(other.lost);
        self.unjudged = self.unjudged.saturating_add(other.unjudged);
        self.unmatched = self.unmatched.saturating_add(other.unmatched);
    }
}

/// Sweeps one producer's windows up to `horizon`; returns log loss and adds
/// what was judged per group.
pub(super) fn settle(
    book: &mut ProducerBook,
    horizon: &Horizon,
    processed: &mut PerGroup<Judged>,
) -> u64 {
    let settled = book.judge_below();
    let lost = match horizon.log_ns {
        Some(through_ns) => book.log.sweep(through_ns, settled),
        // Nothing judged by time; what slid out is still reported.
        None => book.log.sweep(0, settled),
    };
    for (id, group) in book.groups.iter_mut() {
        if let (Some(group), Some(Some(through_ns))) = (group, horizon.processed_ns.get(id)) {
            processed[id].add(judge_processed(
                &book.log,
                group,
                Until::Horizon(*through_ns),
            ));
        }
    }
    lost
}

/// Counts log-seen messages without a receipt from `group`, moving its
/// `judged` cursor as far as `until` allows.
pub(super) fn judge_processed(log: &SequenceWindow, group: &mut GroupBook, until: Until) -> Judged {
    let receipts = &group.receipts;
    let mut judged = Judged::default();
    if !log.is_met() || !receipts.is_met() {
        return judged;
    }
    let mut cursor = group.judged.max(log.start()).max(receipts.floor());
    let limit = match until {
        Until::Horizon(_) => log.resolved(),
        Until::SlideTo(start, _) => start.min(log.next()),
    };
    while cursor < limit {
        let word = cursor / 64;
        let end = ((word + 1) * 64).min(limit);
        let span = span_mask(word, cursor, end);
        let seen = log.seen_bits(word) & span;
        let receipted = receipts.seen_bits(word) | receipts.below_start_bits(word);
        let activity = log.block_activity_ns(word);
        let within = match until {
            Until::Horizon(through_ns) | Until::SlideTo(_, Some(through_ns)) => {
                activity <= through_ns
            }
            Until::SlideTo(_, None) => false,
        };
        match until {
            Until::Horizon(_) if !within => break,
            Until::SlideTo(..) if !within => {
                judged.unjudged += u64::from((seen & !receipted).count_ones());
            }
            _ => judged.lost += u64::from((seen & !receipted).count_ones()),
        }
        let above_floor = span_mask(word, cursor.max(log.floor()), end);
        let unmatched = receipts.seen_bits(word) & above_floor & !log.seen_bits(word);
        judged.unmatched += u64::from(unmatched.count_ones());
        cursor = end;
    }
    group.judged = group.judged.max(cursor);
    judged
}
