//! How far this producer instance's deliveries have got: the lowest
//! sequence number not yet settled.
//!
//! Every message carries it in `mf-settled` (see
//! [`meshflow_common::envelope::SETTLED`]). A message is settled when its
//! fate is known: Kafka acknowledged it, or the producer gave up on it and
//! counted it as failed. Messages settle out of order (each partition has
//! its own queue, and one partition may refuse writes for a minute while
//! the others take them), so the exporter cannot tell from the log alone
//! whether a gap is lost or still being retried. With this mark it can: a
//! gap at or above the producer's mark is still in the producer's hands.
//!
//! The mark only rises. The sequence numbers between it and the newest
//! message handed over are kept one flag each, so the memory is bounded by
//! the messages in flight (librdkafka's queue plus those waiting to be sent
//! again, both bounded).

use std::collections::VecDeque;

/// The settled mark and the in-flight messages above it.
#[derive(Debug, Default)]
pub struct Settled {
    /// Every sequence number below it is settled.
    mark: u64,
    /// Whether `mark + i` is settled, for every handed-over message at or
    /// above the mark. Its front is always unsettled.
    flags: VecDeque<bool>,
}

impl Settled {
    /// Every sequence number below this one is settled.
    pub fn mark(&self) -> u64 {
        self.mark
    }

    /// Messages handed over and not settled, or settled above an unsettled one.
    pub fn tracked(&self) -> usize {
        self.flags.len()
    }

    /// `seq` was handed to Kafka. Sequence numbers are handed over in order,
    /// each once; one skipped is taken as settled (it was never sent).
    pub fn handed(&mut self, seq: u64) {
        let next = self.mark + self.flags.len() as u64;
        debug_assert!(seq >= next, "seq {seq} handed over twice");
        if seq < next {
            return;
        }
        for _ in next..seq {
            self.flags.push_back(true);
        }
        self.flags.push_back(false);
        self.advance();
    }

    /// `seq`'s fate is known (acknowledged or failed for good).
    pub fn settle(&mut self, seq: u64) {
        let Some(index) = seq.checked_sub(self.mark) else {
            return;
        };
        if let Some(flag) = usize::try_from(index)
            .ok()
            .and_then(|i| self.flags.get_mut(i))
        {
            *flag = true;
        }
        self.advance();
    }

    fn advance(&mut self) {
        while self.flags.front() == Some(&true) {
            self.flags.pop_front();
            self.mark += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_mark_waits_for_the_oldest_message_in_flight() {
        let mut s = Settled::default();
        for seq in 0..5 {
            s.handed(seq);
        }
        assert_eq!(s.mark(), 0);
        // A partition that stalls holds seq 1; the others settle.
        for seq in [0, 2, 3, 4] {
            s.settle(seq);
        }
        assert_eq!(s.mark(), 1, "seq 1 is still in flight");
        assert_eq!(s.tracked(), 4);
        s.settle(1);
        assert_eq!(s.mark(), 5);
        assert_eq!(s.tracked(), 0);
    }

    #[test]
    fn settling_twice_or_unknown_numbers_changes_nothing() {
        let mut s = Settled::default();
        s.handed(0);
        s.settle(7);
        assert_eq!(s.mark(), 0);
        s.settle(0);
        s.settle(0);
        assert_eq!(s.mark(), 1);
        // Handed over again by mistake: ignored in release builds.
        s.handed(3);
        assert_eq!(s.mark(), 3, "1 and 2 were never sent");
    }

    proptest! {
        /// Whatever the order of settlement, the mark is the lowest
        /// sequence number not settled yet, and memory is only what is in
        /// flight.
        #[test]
        fn the_mark_is_the_lowest_unsettled(order in Just((0u64..200).collect::<Vec<_>>()).prop_shuffle(), cut in 0usize..200) {
            let mut s = Settled::default();
            for seq in 0..200 {
                s.handed(seq);
            }
            let mut settled = std::collections::BTreeSet::new();
            for &seq in &order[..cut] {
                s.settle(seq);
                settled.insert(seq);
                let lowest = (0..200).find(|q| !settled.contains(q)).unwrap_or(200);
                prop_assert_eq!(s.mark(), lowest);
                prop_assert_eq!(s.tracked() as u64, 200 - lowest);
            }
        }
    }
}
