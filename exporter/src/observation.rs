//! What goes into the accounting core and what comes out of it.
//!
//! Inputs are plain views of what the exporter reads: a message from the data
//! topic ([`LogRecord`]) and an entry of a receipt batch ([`ReceiptEntry`]),
//! borrowed so that feeding the core allocates nothing. Outputs are plain
//! values the metrics layer maps to `meshflow_*` series with its own labels
//! (topic, stage, group): the judgement of each observation ([`Observed`],
//! with its [`Latency`]), the loss found by each sweep ([`SweepReport`]), and
//! cumulative [`StageCounters`].
//!
//! Latency is end minus start on two clocks (the producer's and the
//! exporter's or the consumer's). A negative one is reported as
//! [`Latency::ClockSkew`] and counted, never clamped to zero; only a message
//! seen for the first time is measured, so each histogram counts what
//! `messages_total` counts.

use std::time::Duration;

use crate::groups::PerGroup;
use crate::window::Outcome;

/// One enveloped message read from the data topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRecord<'a> {
    /// `mf-producer`.
    pub producer: &'a str,
    /// `mf-seq`.
    pub seq: u64,
    /// The partition it was read from.
    pub partition: i32,
    /// `mf-created-ns`, the producer's clock.
    pub created_ns: u64,
    /// When the exporter read it, unix ns (the exporter's clock).
    pub read_ns: u64,
    /// `mf-settled`, when the producer wrote it: every sequence number of
    /// the producer below it was settled when this one was handed over.
    pub settled: Option<u64>,
}

/// One entry of a receipt batch read from the receipts topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptEntry<'a> {
    /// The batch's consumer group.
    pub group: &'a str,
    /// The processed message's `mf-producer`.
    pub producer: &'a str,
    /// The processed message's `mf-seq`.
    pub seq: u64,
    /// The data-topic partition the message was consumed from.
    pub partition: i32,
    /// The message's `mf-created-ns` (the producer's clock).
    pub created_ns: u64,
    /// When the consumer processed it, unix ns (the consumer's clock).
    pub processed_ns: u64,
}

/// A latency measured for one observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// End time minus start time.
    Measured(Duration),
    /// The end time was before the start time, by this much: the clocks
    /// involved disagree. Counted, never clamped to zero.
    ClockSkew(Duration),
    /// Not measured: the observation was a duplicate or ignored.
    NotMeasured,
}

/// Why an observation was refused as implausible. Refused observations
/// are counted by reason (`meshflow_envelope_rejected_total`) and kept out
/// of every message, loss, duplicate and latency figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// `mf-seq` a whole window or more beyond the newest sequence number of
    /// its producer (or, for a receipt, beyond what the log has shown).
    SeqJump,
    /// Created later than it was read or processed, by more than
    /// `exporter.max_clock_skew`.
    CreatedInFuture,
    /// Created longer ago than `exporter.max_record_age`.
    CreatedTooOld,
    /// A receipt processed later than the exporter read it, by more than
    /// `exporter.max_clock_skew`.
    ProcessedInFuture,
}

impl Rejection {
    /// Every reason, for metrics created at start.
    pub const ALL: [Rejection; 4] = [
        Rejection::SeqJump,
        Rejection::CreatedInFuture,
        Rejection::CreatedTooOld,
        Rejection::ProcessedInFuture,
    ];

    /// The fixed `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::SeqJump => "seq_jump",
            Rejection::CreatedInFuture => "created_in_future",
            Rejection::CreatedTooOld => "created_too_old",
            Rejection::ProcessedInFuture => "processed_in_future",
        }
    }
}

/// What [`crate::Accounting`] made of one observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// How the sequence number was judged.
    pub outcome: Outcome,
    /// Delivery latency (log) or end-to-end latency (processed).
    pub latency: Latency,
    /// Why it was refused, when it was; the outcome is then `Ignored`.
    pub rejected: Option<Rejection>,
}

impl Observed {
    /// An ignored observation: nothing measured.
    pub(crate) const IGNORED: Observed = Observed {
        outcome: Outcome::Ignored,
        latency: Latency::NotMeasured,
        rejected: None,
    };

    /// A refused observation: nothing counted but the refusal.
    pub(crate) fn rejected(why: Rejection) -> Observed {
        Observed {
            rejected: Some(why),
            ..Observed::IGNORED
        }
    }
}

/// Cumulative counts for one stage (and group).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageCounters {
    /// Distinct messages (`meshflow_messages_total`).
    pub messages: u64,
    /// Messages declared lost, as reported by sweeps
    /// (`meshflow_messages_lost_total`).
    pub lost: u64,
    /// Messages seen again (`meshflow_messages_duplicated_total`).
    pub duplicated: u64,
    /// Of `messages`, those that arrived after being declared lost.
    pub overdue: u64,
    /// Observations too old to judge, or with an over-long producer id.
    pub ignored: u64,
    /// Negative latencies seen (`meshflow_clock_skew_total`).
    pub clock_skew: u64,
    /// Observations refused as implausible (`meshflow_envelope_rejected_total`).
    pub rejected: u64,
    /// Messages that could not be judged before the window had to drop
    /// them (`meshflow_messages_unjudged_total`): neither lost nor processed.
    pub unjudged: u64,
    /// Receipts for sequence numbers the log never showed, within the range
    /// the log judges (`meshflow_receipts_unmatched_total`). Counted, never
    /// trusted to close a gap.
    pub unmatched: u64,
}

/// What one [`crate::Accounting::sweep`] found since the previous one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Messages newly declared lost at stage `log`.
    pub log_lost: u64,
    /// Per group: messages newly declared lost at stage `processed`.
    pub processed_lost: PerGroup<u64>,
    /// Producer instances forgotten for being idle.
    pub evicted_idle: u64,
    /// Per group: messages dropped from the windows before they could be
    /// judged at stage `processed`.
    pub processed_unjudged: PerGroup<u64>,
    /// Per group: receipts for sequence numbers the log never showed.
    pub receipts_unmatched: PerGroup<u64>,
}

/// How far loss may be judged: what the reading and each group's commits
/// have passed (see [`crate::progress`]). `None` judges nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Horizon {
    /// Every record of the data topic written before this time (unix ns)
    /// has been read.
    pub log_ns: Option<u64>,
    /// Per watched group: every message read before this time has been
    /// committed by the group, and its receipt had its grace.
    pub processed_ns: PerGroup<Option<u64>>,
}

/// Producer instances forgotten so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evictions {
    /// Idle for longer than `idle_timeout`.
    pub idle: u64,
    /// The idlest, to make room when `max_producers` were tracked.
    pub capacity: u64,
    /// Windows started afresh after a run of sequence numbers all beyond
    /// the window (a producer whose stream truly moved on).
    pub rebased: u64,
}

/// The latency from `from_ns` to `to_ns` of an observation judged `outcome`.
pub(crate) fn latency(outcome: Outcome, from_ns: u64, to_ns: u64) -> Latency {
    if !outcome.is_distinct() {
        Latency::NotMeasured
    } else if to_ns >= from_ns {
        Latency::Measured(Duration::from_nanos(to_ns - from_ns))
    } else {
        Latency::ClockSkew(Duration::from_nanos(from_ns - to_ns))
    }
}

/// Adds one observation to a stage's counters.
pub(crate) fn count(counters: &mut StageCounters, outcome: Outcome, latency: Latency) {
    match outcome {
        Outcome::New | Outcome::Late => counters.messages += 1,
        Outcome::Overdue => {
            counters.messages += 1;
            counters.overdue += 1;
        }
        Outcome::Duplicate => counters.duplicated += 1,
        Outcome::Ignored => counters.ignored += 1,
    }
    if let Latency::ClockSkew(_) = latency {
        counters.clock_skew += 1;
    }
}
