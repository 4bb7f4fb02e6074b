//! `exporter.status.*`: the thresholds of the status rules, owned by the
//! rules' module so that configuration depends on status and not the other
//! way round.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Thresholds of the consumer group status rules (see [`super`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    /// How far back lag samples are kept and judged.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Samples a partition needs inside the window before STALL or WARN can
    /// be decided.
    pub min_samples: usize,
    /// STOP: the committed offset has not moved, with lag in every sample,
    /// for at least this long.
    #[serde(with = "humantime_serde")]
    pub stop_after: Duration,
    /// STALL: the smallest lag, in messages, every sample must show.
    pub stall_min_lag: u64,
    /// WARN: the least lag growth, in messages, over the window's samples
    /// (least-squares trend) that counts as growing.
    pub warn_min_growth: u64,
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            window: default_status_window(),
            min_samples: default_min_samples(),
            stop_after: default_stop_after(),
            stall_min_lag: default_stall_min_lag(),
            warn_min_growth: default_warn_min_growth(),
        }
    }
}

/// 5 min: 60 evaluations at the default 5 s poll interval.
pub fn default_status_window() -> Duration {
    Duration::from_secs(300)
}

/// 10 samples: 50 s of evidence at the default 5 s poll interval.
pub fn default_min_samples() -> usize {
    10
}

/// 5 min, the status window: one whole window without commit progress.
pub fn default_stop_after() -> Duration {
    Duration::from_secs(300)
}

/// 100 messages: 10 s of the producer's default 10 messages/s.
pub fn default_stall_min_lag() -> u64 {
    100
}

/// 100 messages over the window: 10 s of the default rate left unconsumed.
pub fn default_warn_min_growth() -> u64 {
    100
}

impl StatusConfig {
    /// Checks every value, naming the first bad key.
    pub fn validate(&self) -> Result<(), Error> {
        Error::unless_positive("exporter.status.window", self.window)?;
        Error::unless_positive("exporter.status.stop_after", self.stop_after)?;
        if !(2..=super::MAX_SAMPLES).contains(&self.min_samples) {
            return Err(Error::Config {
                key: "exporter.status.min_samples",
                value: self.min_samples.to_string(),
                allowed: "an integer from 2 to 512",
            });
        }
        Ok(())
    }
}
