//! A consumer group's status from its recent lag samples.
//!
//! Each evaluation (every `exporter.poll_interval`) the exporter records one
//! [`LagSample`] per partition for each watched group, or an error. The
//! [`GroupStatusTracker`] keeps the samples of the last `window` and judges
//! every partition by the rules in [`STATUS_RULES`], in the spirit of
//! Burrow's evaluator; the group's status is its worst partition's. Only
//! committed offsets and watermarks are visible from outside the group, so
//! "the group committed" means "its committed offset moved".
//!
//! Severity, for picking the worst: OK < WARN < REWIND < ERR < STALL < STOP.
//! A rule that found a real problem outranks a partition that could not be
//! read; a rewind (an offset reset) is worth knowing of but is usually
//! deliberate.

use std::collections::{BTreeMap, VecDeque};

use crate::lag::LagSample;
use crate::window::duration_ns;
use crate::Error;

pub mod burrow;
mod thresholds;
pub use thresholds::*;

/// The most samples kept per partition; older ones are dropped first.
pub const MAX_SAMPLES: usize = 512;

/// The rules, as published in the exporter's docs.
pub const STATUS_RULES: &str = "\
Each partition is judged on its lag samples of the last `exporter.status.window` \
(default 5m), first matching rule wins; the group takes its worst partition's \
status (OK < WARN < REWIND < ERR < STALL < STOP).

| status | rule |
| --- | --- |
| ERR | the group's offsets could not be read in the latest evaluation, the partition's latest sample failed, or no sample was recorded for a whole window (for the group: ERR outright) |
| OK | caught up: the latest sample has lag 0 |
| STOP | the committed offset has not moved, with lag > 0 in every sample, for at least `exporter.status.stop_after` (default 5m); a group that never committed counts as not moving |
| REWIND | the committed offset moved back from one sample to the next within the window (an offset reset), and the group has not caught up since |
| OK | some sample in the window has lag 0 (it caught up within the window) |
| OK | fewer than `exporter.status.min_samples` (default 10) samples in the window |
| OK | the committed offset did not move within the window (not long enough for STOP yet) |
| STALL | the committed offset moved, but the lag never decreased from one sample to the next and every sample has lag >= `exporter.status.stall_min_lag` (default 100 messages) |
| WARN | the committed offset moved, and the least-squares trend of the lag grew by >= `exporter.status.warn_min_growth` (default 100 messages) over the window |
| OK | otherwise |
";

/// A consumer group's state, as the `meshflow_consumer_group_status` stateset
/// shows it. Ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupStatus {
    /// Consuming, keeping up.
    Ok,
    /// Committing, but the lag is growing.
    Warn,
    /// The committed offset moved back (reset or rewound) within the window.
    Rewind,
    /// The status could not be evaluated.
    Err,
    /// Committing, but never gaining on the lag.
    Stall,
    /// Not committing while there is lag.
    Stop,
}

impl GroupStatus {
    /// Every state, in the contract's order.
    pub const ALL: [GroupStatus; 6] = [
        GroupStatus::Ok,
        GroupStatus::Warn,
        GroupStatus::Stall,
        GroupStatus::Stop,
        GroupStatus::Err,
        GroupStatus::Rewind,
    ];

    /// The state's name in the stateset: `OK`, `WARN`, `STALL`, `STOP`,
    /// `ERR`, `REWIND`.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Ok => "OK",
            GroupStatus::Warn => "WARN",
            GroupStatus::Rewind => "REWIND",
            GroupStatus::Stall => "STALL",
            GroupStatus::Stop => "STOP",
            GroupStatus::Err => "ERR",
        }
    }

    /// The state as Burrow numbers it (OK 1, WARN 2, ERR 3, STOP 4, STALL
    /// 5, REWIND 6), for `meshflow_consumer_group_status_code`: scrapers
    /// that cannot read a stateset, and alerts written for Burrow.
    pub fn code(self) -> i64 {
        match self {
            GroupStatus::Ok => 1,
            GroupStatus::Warn => 2,
            GroupStatus::Err => 3,
            GroupStatus::Stop => 4,
            GroupStatus::Stall => 5,
            GroupStatus::Rewind => 6,
        }
    }
}

/// The result of one evaluation: the status, the partition that decided it
/// (if one did) and why, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The group's status.
    pub status: GroupStatus,
    /// The partition whose rule decided the status.
    pub partition: Option<i32>,
    /// A one-line explanation.
    pub reason: String,
}

#[derive(Debug, Default)]
struct PartitionTrack {
    samples: VecDeque<LagSample>,
    error: Option<(u64, String)>,
    /// Since when the committed offset (second) has not moved with lag > 0.
    stuck: Option<(u64, Option<i64>)>,
}

/// Lag history and status rules for one consumer group on one topic.
#[derive(Debug)]
pub struct GroupStatusTracker {
    config: StatusConfig,
    partitions: BTreeMap<i32, PartitionTrack>,
    failure: Option<(u64, String)>,
    last_record_ns: Option<u64>,
}

impl GroupStatusTracker {
    /// An empty tracker; the config should have passed `validate`.
    pub fn new(config: StatusConfig) -> Self {
        GroupStatusTracker {
            config,
            partitions: BTreeMap::new(),
            failure: None,
            last_record_ns: None,
        }
    }

    /// Records this evaluation's sample (or error) for one partition.
    pub fn record(&mut self, partition: i32, at_ns: u64, sample: Result<LagSample, Error>) {
        match sample {
            Ok(sample) => self.record_sample(partition, sample),
            Err(error) => self.record_error(partition, at_ns, &error),
        }
    }

    /// Records a sample. Samples older than the partition's latest are dropped.
    pub fn record_sample(&mut self, partition: i32, sample: LagSample) {
        self.note(sample.at_ns);
        if self
            .failure
            .as_ref()
            .is_some_and(|(at, _)| *at <= sample.at_ns)
        {
            self.failure = None;
        }
        let track = self.partitions.entry(partition).or_default();
        if track
            .samples
            .back()
            .is_some_and(|last| last.at_ns > sample.at_ns)
        {
            return;
        }
        if track
            .error
            .as_ref()
            .is_some_and(|(at, _)| *at <= sample.at_ns)
        {
            track.error = None;
        }
        track.stuck = match track.stuck {
            _ if sample.caught_up() => None,
            Some((since, committed)) if committed == sample.committed => Some((since, committed)),
            _ => Some((sample.at_ns, sample.committed)),
        };
        let window_ns = duration_ns(self.config.window);
        track.samples.push_back(sample);
        while track.samples.len() > MAX_SAMPLES
            || track
                .samples
                .front()
                .is_some_and(|first| first.at_ns.saturating_add(window_ns) < sample.at_ns)
        {
            track.samples.pop_front();
        }
    }

    /// Records that one partition's sample could not be computed.
    pub fn record_error(&mut self, partition: i32, at_ns: u64, error: &Error) {
        self.note(at_ns);
        let track = self.partitions.entry(partition).or_default();
        track.error = Some((at_ns, error.to_string()));
    }

    /// Records that the group's offsets could not be read at all (the group
    /// is unknown, the broker did not answer, ...).
    pub fn record_failure(&mut self, at_ns: u64, reason: impl Into<String>) {
        self.note(at_ns);
        self.failure = Some((at_ns, reason.into()));
    }

    /// Judges the group at `now_ns`.
    pub fn evaluate(&self, now_ns: u64) -> Evaluation {
        let group = |status, reason: String| Evaluation {
            status,
            partition: None,
            reason,
        };
        if let Some((_, reason)) = &self.failure {
            return group(
                GroupStatus::Err,
                format!("offsets could not be read: {reason}"),
            );
        }
        let Some(last) = self.last_record_ns else {
            return group(GroupStatus::Err, "no lag sample yet".to_owned());
        };
        let silent_ns = now_ns.saturating_sub(last);
        if silent_ns > duration_ns(self.config.window) {
            let seconds = silent_ns / 1_000_000_000;
            return group(GroupStatus::Err, format!("no lag sample for {seconds}s"));
        }
        let mut worst = group(GroupStatus::Ok, "every partition is keeping up".to_owned());
        for (&partition, track) in &self.partitions {
            let (status, reason) = self.judge(track);
            if status > worst.status {
                worst = Evaluation {
                    status,
                    partition: Some(partition),
                    reason: format!("partition {partition}: {reason}"),
                };
            }
        }
        worst
    }

    /// Each partition's own status by the rules (without the group-level
    /// ERR cases), by partition id.
    pub fn partition_statuses(&self) -> impl Iterator<Item = (i32, GroupStatus)> + '_ {
        self.partitions
            .iter()
            .map(|(&partition, track)| (partition, self.judge(track).0))
    }

    fn note(&mut self, at_ns: u64) {
        self.last_record_ns = Some(self.last_record_ns.unwrap_or(0).max(at_ns));
    }

    fn judge(&self, track: &PartitionTrack) -> (GroupStatus, String) {
        let config = &self.config;
        if let Some((_, reason)) = &track.error {
            return (GroupStatus::Err, format!("lag sample failed: {reason}"));
        }
        let (Some(first), Some(last)) = (track.samples.front(), track.samples.back()) else {
            return (GroupStatus::Ok, "no sample".to_owned());
        };
        if last.caught_up() {
            return (GroupStatus::Ok, "caught up".to_owned());
        }
        if let Some((since, committed)) = track.stuck {
            let stuck_ns = last.at_ns - since;
            if stuck_ns >= duration_ns(config.stop_after) {
                let seconds = stuck_ns / 1_000_000_000;
                let committed = committed.map_or("none".to_owned(), |offset| offset.to_string());
                return (
                    GroupStatus::Stop,
                    format!(
                        "committed offset {committed} has not moved for {seconds}s, lag {} messages",
                        last.messages
                    ),
                );
            }
        }
        // After STOP, which outranks it; a rewind worked off is OK.
        let samples: Vec<&LagSample> = track.samples.iter().collect();
        let rewound = samples.windows(2).enumerate().rev().find_map(|(i, w)| {
            let (from, to) = (w[0].committed?, w[1].committed?);
            (to < from).then_some((i + 1, from, to))
        });
        let worked_off = |at: usize| samples[at..].iter().any(|s| s.caught_up());
        if let Some((_, from, to)) = rewound.filter(|(at, ..)| !worked_off(*at)) {
            return (
                GroupStatus::Rewind,
                format!("committed offset moved back from {from} to {to}"),
            );
        }
        if track.samples.iter().any(LagSample::caught_up) {
            return (GroupStatus::Ok, "caught up within the window".to_owned());
        }
        if track.samples.len() < config.min_samples {
            return (GroupStatus::Ok, "too few samples for a trend".to_owned());
        }
        if first.committed == last.committed {
            return (
                GroupStatus::Ok,
                "not committing, not yet long enough for STOP".to_owned(),
            );
        }
        let never_decreasing = samples.windows(2).all(|w| w[1].messages >= w[0].messages);
        let lowest = samples.iter().map(|s| s.messages).min().unwrap_or(0);
        if never_decreasing && lowest >= config.stall_min_lag {
            return (
                GroupStatus::Stall,
                format!("committing, but lag never decreased (at least {lowest} messages)"),
            );
        }
        let growth = trend_growth(&samples);
        if growth >= config.warn_min_growth as f64 {
            return (
                GroupStatus::Warn,
                format!("committing, but lag grew by {growth:.0} messages over the window"),
            );
        }
        (GroupStatus::Ok, "consuming".to_owned())
    }
}

/// Lag growth over the samples' time span along the least-squares line.
fn trend_growth(samples: &[&LagSample]) -> f64 {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return 0.0;
    };
    let n = samples.len() as f64;
    let x = |s: &LagSample| (s.at_ns - first.at_ns) as f64 / 1e9;
    let mean_x = samples.iter().map(|s| x(s)).sum::<f64>() / n;
    let mean_y = samples.iter().map(|s| s.messages as f64).sum::<f64>() / n;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for s in samples {
        let dx = x(s) - mean_x;
        covariance += dx * (s.messages as f64 - mean_y);
        variance += dx * dx;
    }
    if variance == 0.0 {
        return 0.0;
    }
    covariance / variance * x(last)
}

#[cfg(test)]
mod tests;
