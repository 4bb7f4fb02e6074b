//! The consumer's at-least-once core: which offsets may be stored, when a
//! receipt batch is cut, what a flush, a revoke or a shutdown does with what
//! is waiting. No I/O: state in, decision out, time passed in, so every rule
//! is unit-tested here; `receipts.rs`, `context.rs` and `service.rs` carry
//! the decisions out against Kafka.
//!
//! A consumed message becomes a [`Pending`] item once it is settled
//! ([`Ledger::settle`]): processed (with a receipt entry if it was
//! enveloped) or dead-lettered. A flush takes everything waiting as one
//! [`Flight`] of records ([`batch`]); only when Kafka has acknowledged every
//! record does [`Ledger::land`] name the offsets to store, one per
//! partition: the offset after the highest settled message. A flight that
//! gives up goes back in front of what arrived meanwhile, so consumption
//! order is kept and a stored offset never runs ahead of an unacknowledged
//! receipt: a crash can duplicate a receipt but never lose one.
//!
//! A message whose dead letter could not be written is neither receipted
//! nor dead-lettered: its partition is held at its offset, which is never
//! stored. When shutdown interrupted the dead letter, the consumer stops
//! taking messages; when the dead letter was refused for good (too large
//! for the dead-letter topic, not authorized), only that partition is
//! parked and the others flow on, until the partition is revoked
//! ([`Ledger::release`]) and its next owner reads the message again.

pub mod batch;
pub mod policy;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use meshflow_common::receipt::ReceiptEntry;

pub use batch::{cut, Record, Shape};
pub use policy::{gives_up, on_revoke, past, pressure, Backoff, Pressure, Retry, RevokePlan};

/// A settled message waiting for its receipt to be acknowledged.
#[derive(Debug)]
pub struct Pending<S> {
    /// Topic the message came from.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its receipt entry, if it was enveloped.
    pub receipt: Option<ReceiptEntry>,
    /// The message's span, which the `send <receipts topic>` span of the
    /// record holding its receipt links to.
    pub span: Option<S>,
}

/// How a flush ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Nothing was waiting.
    Empty,
    /// Every entry acknowledged and the offsets stored.
    Done {
        /// Items whose offsets were stored.
        items: usize,
        /// Receipt entries acknowledged.
        entries: usize,
    },
    /// Gave up (deadline or shutdown); the items are waiting again.
    GaveUp,
}

/// How the handling of one message ended.
#[derive(Debug)]
pub enum Outcome {
    /// Processed; a receipt entry if it was enveloped.
    Processed(Option<ReceiptEntry>),
    /// Malformed, and its dead letter was acknowledged.
    DeadLettered,
    /// Malformed, and its dead letter was not acknowledged before shutdown.
    DeadLetterFailed,
    /// Malformed, and its dead letter was refused for good.
    DeadLetterRefused,
}

/// What the consume loop does after settling a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Take the next message.
    Continue,
    /// Stop taking messages: a later offset of this partition would skip
    /// one that is neither receipted nor dead-lettered.
    Stop,
    /// Take no more messages from this partition (pause it), keep taking
    /// them from the others.
    Park,
}

/// An offset to store: where `partition` resumes after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The offset after the last message whose receipt is durable.
    pub next: i64,
}

/// What [`Ledger::begin`] found.
#[derive(Debug)]
pub enum Begin {
    /// Another flight is out; flights are serialised.
    Busy,
    /// Nothing waits.
    Empty,
    /// Everything waiting, as records to publish.
    Flight(Flight),
}

/// The records of one flush, and which of them Kafka acknowledged.
#[derive(Debug)]
pub struct Flight {
    records: Vec<Record>,
    acked: Vec<bool>,
}

impl Flight {
    /// Records not yet acknowledged, with their index.
    pub fn unacked(&self) -> impl Iterator<Item = (usize, &Record)> {
        self.records
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.acked[*i])
    }

    /// Marks record `index` acknowledged, in whatever order acks arrive.
    pub fn acknowledge(&mut self, index: usize) {
        if let Some(a) = self.acked.get_mut(index) {
            *a = true;
        }
    }

    /// Whether every record is acknowledged.
    pub fn is_acknowledged(&self) -> bool {
        self.acked.iter().all(|a| *a)
    }

    /// Receipt entries in the flight.
    pub fn entries(&self) -> usize {
        self.records.iter().map(|r| r.entries).sum()
    }
}

/// How a flight ended, as [`Ledger::land`] saw it.
#[derive(Debug)]
pub enum Landing<S> {
    /// Every record acknowledged: store these offsets, finish these items.
    Stored {
        /// One offset per partition.
        offsets: Vec<StoreOffset>,
        /// The items the flight stood for, in consumption order.
        items: Vec<Pending<S>>,
        /// Receipt entries acknowledged.
        entries: usize,
    },
    /// Not every record acknowledged: nothing stored, the items wait again.
    Returned {
        /// Items waiting again.
        waiting: usize,
    },
}

/// Settled messages, the flight in progress, and held partitions.
#[derive(Debug)]
pub struct Ledger<S> {
    group: String,
    consumer: String,
    shape: Shape,
    waiting: Vec<Pending<S>>,
    flying: Option<Vec<Pending<S>>>,
    held: BTreeMap<(String, i32), i64>,
}

impl<S> Ledger<S> {
    /// A ledger cutting records for `group` and `consumer` of at most
    /// the [`Shape`] given.
    pub fn new(group: String, consumer: String, shape: Shape) -> Self {
        Ledger {
            group,
            consumer,
            shape,
            waiting: Vec::new(),
            flying: None,
            held: BTreeMap::new(),
        }
    }

    /// Records how message `topic/partition/offset` ended and says whether
    /// the consumer may take the next one.
    pub fn settle(
        &mut self,
        topic: String,
        partition: i32,
        offset: i64,
        outcome: Outcome,
        span: Option<S>,
    ) -> Step {
        let receipt = match outcome {
            Outcome::Processed(receipt) => receipt,
            Outcome::DeadLettered => None,
            Outcome::DeadLetterFailed | Outcome::DeadLetterRefused => {
                let stop = matches!(outcome, Outcome::DeadLetterFailed);
                let at = self.held.entry((topic, partition)).or_insert(offset);
                *at = (*at).min(offset);
                return if stop { Step::Stop } else { Step::Park };
            }
        };
        self.waiting.push(Pending {
            topic,
            partition,
            offset,
            receipt,
            span,
        });
        Step::Continue
    }

    /// Whether message `topic/partition/offset` comes after a held one of
    /// its partition: it must not be processed while the partition is held
    /// (a message fetched before the partition was paused).
    pub fn is_held(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.held
            .get(&(topic.to_string(), partition))
            .is_some_and(|held| offset > *held)
    }

    /// Partitions held at a message neither receipted nor dead-lettered.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Forgets the held messages of `partitions` (revoked: their next owner
    /// reads them again); returns how many partitions stay held.
    pub fn release(&mut self, partitions: &[(String, i32)]) -> usize {
        for p in partitions {
            self.held.remove(p);
        }
        self.held.len()
    }

    /// Settled messages waiting for the next flight (not those flying).
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Starts a flight with everything waiting, unless one is out.
    pub fn begin(&mut self) -> Begin {
        if self.flying.is_some() {
            return Begin::Busy;
        }
        if self.waiting.is_empty() {
            return Begin::Empty;
        }
        let items = std::mem::take(&mut self.waiting);
        let records = cut(
            &self.group,
            &self.consumer,
            items
                .iter()
                .enumerate()
                .filter_map(|(k, i)| i.receipt.as_ref().map(|r| (k, r))),
            self.shape,
        );
        self.flying = Some(items);
        Begin::Flight(Flight {
            acked: vec![false; records.len()],
            records,
        })
    }

    /// Ends `flight`. Acknowledged in full: the offsets to store, never at
    /// or past a held message. Otherwise its items wait again, ahead of
    /// those settled meanwhile.
    pub fn land(&mut self, flight: Flight) -> Landing<S> {
        if !flight.is_acknowledged() {
            self.abandon();
            return Landing::Returned {
                waiting: self.waiting.len(),
            };
        }
        let items = self.flying.take().unwrap_or_default();
        Landing::Stored {
            offsets: self.offsets(&items),
            entries: flight.entries(),
            items,
        }
    }

    /// The span slots of the items `record` of the flight in progress
    /// reports on (its batch span links to them), in its order.
    pub fn spans_of(&self, record: &Record) -> Vec<S>
    where
        S: Clone,
    {
        let Some(items) = &self.flying else {
            return Vec::new();
        };
        record
            .items
            .iter()
            .filter_map(|&k| items.get(k).and_then(|i| i.span.clone()))
            .collect()
    }

    /// Gives up the flight in progress, if any, without knowing which of
    /// its records were acknowledged: its items wait again, ahead of those
    /// settled meanwhile.
    pub fn abandon(&mut self) {
        if let Some(items) = self.flying.take() {
            let later = std::mem::replace(&mut self.waiting, items);
            self.waiting.extend(later);
        }
    }

    /// Per partition, the offset after its highest settled item, capped at
    /// the partition's held message.
    fn offsets(&self, items: &[Pending<S>]) -> Vec<StoreOffset> {
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for item in items {
            let slot = next
                .entry((item.topic.as_str(), item.partition))
                .or_insert(item.offset + 1);
            *slot = (*slot).max(item.offset + 1);
        }
        next.into_iter()
            .map(|((topic, partition), next)| {
                let held = self.held.get(&(topic.to_string(), partition));
                StoreOffset {
                    topic: topic.to_string(),
                    partition,
                    next: held.map_or(next, |h| next.min(*h)),
                }
            })
            .collect()
    }
}
