//! The probe's books: every message it sent, where the broker said it was
//! written, and whether it came back.
//!
//! The probe is the only writer of its topic that it trusts: its messages
//! carry the envelope with a producer id new for every exporter process and
//! a sequence number it hands out itself. A message read back settles its
//! flight (one round trip, timed by one clock, so no skew). Loss is judged
//! against the reading's progress, never the wall clock: a message the
//! broker acknowledged at offset `x` of partition `p` is lost once a record
//! at an offset at or after `x` of `p` has been read without it (the
//! partition is read in order, so it can no longer come back). A stalled
//! reading or a slow broker makes messages late, never lost.
//!
//! What the books refuse: a record of another producer id (an earlier
//! exporter, or anybody else writing the topic), a sequence number the
//! probe never handed out or a partition it did not send that number to
//! (forged or misrouted), and a record without the message's tag: a keyed
//! hash (SipHash with a random key of this process) of its sequence number
//! and partition, which the probe writes as the payload. The producer id
//! is readable by anyone who reads the topic; the tag of a message cannot
//! be made without the key, so a message that never reached the log cannot
//! be stood in for. Refused records count only as [`Read::NotOurs`];
//! their offsets, which the broker assigns, still show how far the reading
//! has got.
//!
//! Bounded: at most `max_flights` messages are remembered; the oldest goes
//! first and is counted as unjudged. A send that failed may still have been
//! written, so it stays until it is read or is the oldest failed one past
//! [`FAILED_KEPT_NS`].

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// How long a failed send is waited for before it is forgotten.
pub const FAILED_KEPT_NS: u64 = 60_000_000_000;

/// One message sent and not read back yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flight {
    /// The partition it was sent to.
    pub partition: i32,
    /// The broker leading that partition when it was sent (-1: unknown).
    pub broker: i32,
    /// When it was created, unix ns.
    pub created_ns: u64,
    /// Where the broker wrote it, once acknowledged.
    pub offset: Option<i64>,
    /// The send failed (timed out or refused); it may still be written.
    pub failed: bool,
}

/// What reading one record of the probe topic tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// A message of this probe, read back for the first time.
    Received {
        /// Its flight.
        flight: Flight,
        /// Read time minus created time.
        latency_ns: u64,
    },
    /// A message of this probe read back again.
    Duplicate,
    /// Too old to judge: dropped from the books before it came back.
    Unjudged,
    /// Not a message this probe sent.
    NotOurs,
}

/// Every message in flight, by sequence number.
#[derive(Debug)]
pub struct ProbeBook {
    producer: String,
    next_seq: u64,
    flights: BTreeMap<u64, Flight>,
    /// Acknowledged flights by partition, then offset.
    acked: HashMap<i32, BTreeMap<i64, u64>>,
    /// Every sequence number below this not in flight was settled or
    /// dropped.
    dropped_below: u64,
    max_flights: usize,
    unjudged: u64,
    /// The key of the messages' tags.
    key: RandomState,
}

impl ProbeBook {
    /// Books for `producer`, remembering at most `max_flights` messages.
    pub fn new(producer: impl Into<String>, max_flights: usize) -> Self {
        ProbeBook {
            producer: producer.into(),
            next_seq: 0,
            flights: BTreeMap::new(),
            acked: HashMap::new(),
            dropped_below: 0,
            max_flights: max_flights.max(1),
            unjudged: 0,
            key: RandomState::new(),
        }
    }

    /// The producer id the probe's messages carry.
    pub fn producer(&self) -> &str {
        &self.producer
    }

    /// The tag of message `seq` sent to `partition`.
    pub fn tag(&self, seq: u64, partition: i32) -> u64 {
        self.key.hash_one((seq, partition))
    }

    /// Books a message about to be sent to `partition`, led by `broker`;
    /// returns its sequence number.
    pub fn send(&mut self, partition: i32, broker: i32, created_ns: u64) -> u64 {
        while self.flights.len() >= self.max_flights {
            self.drop_oldest();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.flights.insert(
            seq,
            Flight {
                partition,
                broker,
                created_ns,
                offset: None,
                failed: false,
            },
        );
        seq
    }

    /// The broker acknowledged `seq` at `offset`.
    pub fn acked(&mut self, seq: u64, offset: i64) {
        if let Some(flight) = self.flights.get_mut(&seq) {
            flight.offset = Some(offset);
            self.acked
                .entry(flight.partition)
                .or_default()
                .insert(offset, seq);
        }
    }

    /// Sending `seq` failed: never judged lost, still received if read.
    pub fn failed(&mut self, seq: u64) {
        if let Some(flight) = self.flights.get_mut(&seq) {
            flight.failed = true;
        }
    }

    /// Reads one record of the probe topic at (`partition`, `offset`)
    /// carrying `producer`, `seq` and `tag`, at `read_ns`; returns what it is and
    /// the flights it proves lost. Any record proves the reading's progress
    /// (offsets come from the broker), whoever wrote it.
    pub fn read(
        &mut self,
        partition: i32,
        offset: i64,
        producer: &str,
        seq: u64,
        tag: Option<u64>,
        read_ns: u64,
    ) -> (Read, Vec<Flight>) {
        let ours = producer == self.producer
            && seq < self.next_seq
            && tag == Some(self.tag(seq, partition));
        let read = match self.flights.get(&seq) {
            _ if !ours => Read::NotOurs,
            Some(flight) if flight.partition != partition => Read::NotOurs,
            Some(&flight) => {
                self.settle(seq);
                Read::Received {
                    flight,
                    latency_ns: read_ns.saturating_sub(flight.created_ns),
                }
            }
            None if seq < self.dropped_below => Read::Unjudged,
            None => Read::Duplicate,
        };
        (read, self.passed(partition, offset))
    }

    /// Forgets the oldest failed sends older than [`FAILED_KEPT_NS`] at
    /// `now_ns`, while they are the oldest flights.
    pub fn expire(&mut self, now_ns: u64) {
        while let Some((_, flight)) = self.flights.first_key_value() {
            if !flight.failed || now_ns.saturating_sub(flight.created_ns) < FAILED_KEPT_NS {
                break;
            }
            self.drop_oldest();
        }
    }

    /// Messages in flight.
    pub fn in_flight(&self) -> usize {
        self.flights.len()
    }

    /// Messages dropped from the books before they could be judged.
    pub fn unjudged(&self) -> u64 {
        self.unjudged
    }

    /// The acknowledged flights of `partition` at or before `offset`: the
    /// reading has passed them.
    fn passed(&mut self, partition: i32, offset: i64) -> Vec<Flight> {
        let Some(acked) = self.acked.get_mut(&partition) else {
            return Vec::new();
        };
        let later = acked.split_off(&(offset.saturating_add(1)));
        let passed = std::mem::replace(acked, later);
        passed
            .into_values()
            .filter_map(|seq| self.flights.remove(&seq))
            .collect()
    }

    /// Removes a flight that came back.
    fn settle(&mut self, seq: u64) {
        if let Some(flight) = self.flights.remove(&seq) {
            if let (Some(offset), Some(acked)) =
                (flight.offset, self.acked.get_mut(&flight.partition))
            {
                acked.remove(&offset);
            }
        }
    }

    /// Drops the oldest flight, unjudged.
    fn drop_oldest(&mut self) {
        if let Some((seq, _)) = self.flights.first_key_value() {
            let seq = *seq;
            self.settle(seq);
            self.dropped_below = seq + 1;
            self.unjudged += 1;
        }
    }
}

#[cfg(test)]
mod tests;
