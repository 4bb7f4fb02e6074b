//! Room for producers: admitting a new one, forgetting the idlest when the
//! table is full, and the memory the table holds.

use super::{fresh_book, judge::settle, Accounting, ProducerBook, EVICTION_BATCH_DIVISOR};
use crate::window::SequenceWindow;

impl Accounting {
    /// Bytes held for tracked producers: windows, ids and the table itself.
    pub fn memory_bytes(&self) -> usize {
        let window_heap =
            |window: &SequenceWindow| window.memory_bytes() - std::mem::size_of::<SequenceWindow>();
        let entry = std::mem::size_of::<(String, ProducerBook)>() + 1;
        let table = self.producers.capacity() * entry;
        let candidates = self.eviction_candidates.capacity() * std::mem::size_of::<(u64, String)>()
            + self
                .eviction_candidates
                .iter()
                .map(|(_, id)| id.capacity())
                .sum::<usize>();
        let books: usize = self
            .producers
            .iter()
            .map(|(id, book)| {
                let groups = book.groups.capacity_bytes();
                let receipts: usize = book
                    .groups
                    .values()
                    .flatten()
                    .map(|group| window_heap(&group.receipts))
                    .sum();
                id.capacity() + window_heap(&book.log) + groups + receipts
            })
            .sum();
        std::mem::size_of::<Self>() + table + candidates + books
    }

    /// Makes sure `producer` has a book, forgetting the idlest if full.
    pub(super) fn admit(&mut self, producer: &str, now_ns: u64) {
        if self.producers.contains_key(producer) {
            return;
        }
        if self.producers.len() >= self.max_producers {
            if let Some((id, mut book)) = self.take_idlest() {
                self.forget(&id);
                // Report what is already known before forgetting it.
                self.unreported_log_lost = self.unreported_log_lost.saturating_add(settle(
                    &mut book,
                    &self.horizon,
                    &mut self.unreported_processed,
                ));
                self.evictions.capacity += 1;
            }
        }
        let from_zero = self.whole_history && !self.was_forgotten(producer);
        let book = fresh_book(
            self.window_bits,
            self.grace,
            &self.groups,
            now_ns,
            from_zero,
        );
        self.producers.insert(producer.to_owned(), book);
    }

    /// Removes the idlest producer, from the candidate list; refills the
    /// list with the idlest sixteenth of the table when it runs dry.
    fn take_idlest(&mut self) -> Option<(String, ProducerBook)> {
        for _ in 0..2 {
            while let Some((listed_ns, id)) = self.eviction_candidates.pop() {
                let still_idle = self
                    .producers
                    .get(&id)
                    .is_some_and(|book| book.last_activity_ns == listed_ns);
                if still_idle {
                    return self.producers.remove_entry(&id);
                }
            }
            self.eviction_passes += 1;
            let batch = (self.producers.len() / EVICTION_BATCH_DIVISOR).max(1);
            let mut all: Vec<(u64, &String)> = self
                .producers
                .iter()
                .map(|(id, book)| (book.last_activity_ns, id))
                .collect();
            if all.is_empty() {
                return None;
            }
            let batch = batch.min(all.len());
            all.select_nth_unstable_by_key(batch - 1, |(at, _)| *at);
            all.truncate(batch);
            // Idlest last, so `pop` takes it first.
            all.sort_unstable_by_key(|(at, _)| std::cmp::Reverse(*at));
            self.eviction_candidates = all.into_iter().map(|(at, id)| (at, id.clone())).collect();
        }
        None
    }
}
