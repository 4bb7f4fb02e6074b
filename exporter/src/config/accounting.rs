//! The accounting core's configuration: how messages are judged lost,
//! duplicated or late, and how much the exporter keeps. Its keys sit
//! directly under `exporter` (`exporter.grace`, `exporter.sla`, ...); the
//! defaults below are those of [`ExporterSettings`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ExporterSettings;
use crate::window::{MAX_WINDOW_BITS, MIN_WINDOW_BITS};
use crate::Error;

/// How messages are judged lost, duplicated or late, and how much is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountingConfig {
    /// How long a sequence gap may stay open before its messages count as
    /// lost at stage `log`.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// How long after a message was read from the log a consumer group may
    /// take to receipt it before it counts as lost at stage `processed`.
    #[serde(with = "humantime_serde")]
    pub sla: Duration,
    /// A producer instance with no message and no receipt for this long is
    /// forgotten, without counting its unseen tail as lost. Must exceed
    /// `grace` and `sla`, so everything due is judged before it is forgotten.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Producer instances tracked at once; past this the idlest is forgotten.
    pub max_producers: usize,
    /// Sequence numbers each per-producer bitmap holds (a power of two). The
    /// window must cover a producer's rate × `sla`, or messages slide out and
    /// are judged early; the default covers 1,000 messages/s for 65 s.
    pub window_bits: u32,
    /// How far ahead of the exporter's clock a created or processed time may
    /// be; beyond it the observation is refused as implausible.
    #[serde(with = "humantime_serde")]
    pub max_clock_skew: Duration,
    /// How old a created time may be when read; older observations are
    /// refused as implausible (a forged `mf-created-ns = 0` would otherwise
    /// put a 56-year latency in the SLO histogram).
    #[serde(with = "humantime_serde")]
    pub max_record_age: Duration,
}

/// The defaults of the `exporter.*` keys it is made of.
impl Default for AccountingConfig {
    fn default() -> Self {
        ExporterSettings::default().accounting()
    }
}

/// 5 min: far beyond the skew of NTP-synchronised hosts, far below any
/// forged absurd value.
pub fn default_max_clock_skew() -> Duration {
    Duration::from_secs(300)
}

/// 7 days: Kafka's default retention, the oldest record a topic holds.
pub fn default_max_record_age() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

/// 30 s: the design brief's grace window for sequence gaps.
pub fn default_grace() -> Duration {
    Duration::from_secs(30)
}

/// 60 s: the design brief's processing SLA.
pub fn default_sla() -> Duration {
    Duration::from_secs(60)
}

/// 5 min: five SLAs, long enough that a slow producer is not forgotten
/// between two messages at the default rate, short enough to shed restarts.
pub fn default_idle_timeout() -> Duration {
    Duration::from_secs(300)
}

/// 10,000 producer instances, about 240 MiB with one group at the default
/// window (16 KiB log window + 8 KiB per group per producer).
pub fn default_max_producers() -> usize {
    10_000
}

/// 64Ki sequence numbers: an 8 KiB bitmap per producer and stage.
pub fn default_window_bits() -> u32 {
    65_536
}

impl AccountingConfig {
    /// The most bytes the accounting can hold: `max_producers` producers,
    /// each with a log window (bitmap and activity) and a receipt window per
    /// group, plus its longest id and table overhead.
    pub fn worst_case_bytes(&self, groups: usize) -> u64 {
        let bits = u64::from(self.window_bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS));
        let bitmap = bits / 8;
        let log = 2 * bitmap;
        let per_group = bitmap + 512;
        // The table entry, the id, and the memory of forgotten producers
        // (four 8-byte hashes per slot, with the set's overhead).
        let fixed = 1024 + crate::accounting::MAX_PRODUCER_ID_BYTES as u64;
        let per_producer = log + fixed + per_group * groups as u64;
        per_producer.saturating_mul(self.max_producers as u64)
    }

    /// Checks every value, naming the first bad key.
    pub fn validate(&self) -> Result<(), Error> {
        positive("exporter.grace", self.grace)?;
        positive("exporter.sla", self.sla)?;
        if self.idle_timeout <= self.grace.max(self.sla) {
            return Err(Error::Config {
                key: "exporter.idle_timeout",
                value: format!("{:?}", self.idle_timeout),
                allowed: "a duration longer than both exporter.grace and exporter.sla",
            });
        }
        positive("exporter.max_clock_skew", self.max_clock_skew)?;
        if self.max_record_age <= self.max_clock_skew {
            return Err(Error::Config {
                key: "exporter.max_record_age",
                value: format!("{:?}", self.max_record_age),
                allowed: "a duration longer than exporter.max_clock_skew",
            });
        }
        if self.max_producers == 0 {
            return Err(Error::Config {
                key: "exporter.max_producers",
                value: self.max_producers.to_string(),
                allowed: "an integer of at least 1",
            });
        }
        let bits = self.window_bits;
        if !bits.is_power_of_two() || !(MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&bits) {
            return Err(Error::Config {
                key: "exporter.window_bits",
                value: bits.to_string(),
                allowed: "a power of two from 64 to 16777216",
            });
        }
        Ok(())
    }
}

fn positive(key: &'static str, value: Duration) -> Result<(), Error> {
    Error::unless_positive(key, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::Accounting;
    use crate::observation::{LogRecord, ReceiptEntry};

    /// Sequence number 0 of `producer` on partition 0, created and read at `now`.
    fn log_record(producer: &str, now: u64) -> LogRecord<'_> {
        LogRecord {
            producer,
            seq: 0,
            partition: 0,
            created_ns: now,
            read_ns: now,
            settled: None,
        }
    }

    /// The receipt of [`log_record`] by `group`, processed at `now`.
    fn receipt<'a>(producer: &'a str, group: &'a str, now: u64) -> ReceiptEntry<'a> {
        ReceiptEntry {
            group,
            producer,
            seq: 0,
            partition: 0,
            created_ns: now,
            processed_ns: now,
        }
    }

    #[test]
    fn the_worst_case_bounds_what_the_accounting_holds() {
        let now = 1_795_813_600_000_000_000;
        let config = ExporterSettings {
            max_producers: 200,
            window_bits: 4096,
            ..ExporterSettings::default()
        }
        .accounting();
        // Twice as many producers as slots, each with the longest id, read
        // from the log and receipted by both groups.
        let mut accounting = Accounting::new(&config, ["g", "h"]);
        for i in 0..400 {
            let id = format!("{i:0>128}");
            accounting.observe_log(&log_record(&id, now));
            for group in ["g", "h"] {
                accounting.observe_receipt(&receipt(&id, group, now), now);
            }
        }
        let held = accounting.memory_bytes() as u64;
        let worst = config.worst_case_bytes(2);
        assert!(held <= worst, "held {held} > worst case {worst}");
        assert!(
            worst < 2 * held,
            "worst case {worst} is not a loose guess over {held}"
        );
    }
}
