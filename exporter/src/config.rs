//! Typed settings for the accounting core and the group status rules.
//!
//! Both structs are meant to sit in the exporter's `exporter` config section:
//! [`AccountingConfig`]'s keys directly under it (`exporter.grace`,
//! `exporter.sla`, ...) and [`StatusConfig`] as `exporter.status.*`. Durations
//! are strings such as `30s` or `5m`. Unknown keys are refused, missing keys
//! take the defaults below, and [`AccountingConfig::validate`] /
//! [`StatusConfig::validate`] name the key, the value and what is allowed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

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
}

impl Default for AccountingConfig {
    fn default() -> Self {
        AccountingConfig {
            grace: default_grace(),
            sla: default_sla(),
            idle_timeout: default_idle_timeout(),
            max_producers: default_max_producers(),
            window_bits: default_window_bits(),
        }
    }
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

/// Thresholds of the consumer group status rules (see [`crate::status`]).
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
        positive("exporter.status.window", self.window)?;
        positive("exporter.status.stop_after", self.stop_after)?;
        if !(2..=crate::status::MAX_SAMPLES).contains(&self.min_samples) {
            return Err(Error::Config {
                key: "exporter.status.min_samples",
                value: self.min_samples.to_string(),
                allowed: "an integer from 2 to 512",
            });
        }
        Ok(())
    }
}

fn positive(key: &'static str, value: Duration) -> Result<(), Error> {
    if value.is_zero() {
        return Err(Error::Config {
            key,
            value: format!("{value:?}"),
            allowed: "a duration greater than zero, such as 30s",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(AccountingConfig::default().validate(), Ok(()));
        assert_eq!(StatusConfig::default().validate(), Ok(()));
    }

    #[test]
    fn accounting_from_text() {
        let cases: &[(&str, Result<AccountingConfig, &str>)] = &[
            ("{}", Ok(AccountingConfig::default())),
            (
                r#"{"grace":"10s","sla":"2m","idle_timeout":"10m","max_producers":5,"window_bits":1024}"#,
                Ok(AccountingConfig {
                    grace: Duration::from_secs(10),
                    sla: Duration::from_secs(120),
                    idle_timeout: Duration::from_secs(600),
                    max_producers: 5,
                    window_bits: 1024,
                }),
            ),
            (r#"{"grace":"0s"}"#, Err("exporter.grace")),
            (r#"{"sla":"0s"}"#, Err("exporter.sla")),
            (r#"{"idle_timeout":"60s"}"#, Err("exporter.idle_timeout")),
            (r#"{"max_producers":0}"#, Err("exporter.max_producers")),
            (r#"{"window_bits":1000}"#, Err("exporter.window_bits")),
            (r#"{"window_bits":32}"#, Err("exporter.window_bits")),
            (r#"{"grace":"soon"}"#, Err("parse")),
            (r#"{"graze":"30s"}"#, Err("parse")),
        ];
        for (text, want) in cases {
            let parsed = serde_json::from_str::<AccountingConfig>(text);
            match (parsed, want) {
                (Ok(config), Ok(want)) => {
                    assert_eq!(&config, want, "{text}");
                    assert_eq!(config.validate(), Ok(()), "{text}");
                }
                (Ok(config), Err(key)) => match config.validate() {
                    Err(Error::Config { key: got, .. }) => assert_eq!(got, *key, "{text}"),
                    other => panic!("{text}: {other:?}"),
                },
                (Err(_), Err(key)) => assert_eq!(*key, "parse", "{text}"),
                (Err(e), Ok(_)) => panic!("{text}: {e}"),
            }
        }
    }

    #[test]
    fn status_from_text() {
        let cases: &[(&str, Result<StatusConfig, &str>)] = &[
            ("{}", Ok(StatusConfig::default())),
            (
                r#"{"window":"1m","min_samples":3,"stop_after":"2m","stall_min_lag":5,"warn_min_growth":7}"#,
                Ok(StatusConfig {
                    window: Duration::from_secs(60),
                    min_samples: 3,
                    stop_after: Duration::from_secs(120),
                    stall_min_lag: 5,
                    warn_min_growth: 7,
                }),
            ),
            (r#"{"window":"0s"}"#, Err("exporter.status.window")),
            (r#"{"stop_after":"0s"}"#, Err("exporter.status.stop_after")),
            (r#"{"min_samples":1}"#, Err("exporter.status.min_samples")),
            (
                r#"{"min_samples":100000}"#,
                Err("exporter.status.min_samples"),
            ),
            (r#"{"windows":"1m"}"#, Err("parse")),
        ];
        for (text, want) in cases {
            let parsed = serde_json::from_str::<StatusConfig>(text);
            match (parsed, want) {
                (Ok(config), Ok(want)) => {
                    assert_eq!(&config, want, "{text}");
                    assert_eq!(config.validate(), Ok(()), "{text}");
                }
                (Ok(config), Err(key)) => match config.validate() {
                    Err(Error::Config { key: got, .. }) => assert_eq!(got, *key, "{text}"),
                    other => panic!("{text}: {other:?}"),
                },
                (Err(_), Err(key)) => assert_eq!(*key, "parse", "{text}"),
                (Err(e), Ok(_)) => panic!("{text}: {e}"),
            }
        }
    }

    #[test]
    fn errors_name_key_value_and_what_is_allowed() {
        let config = AccountingConfig {
            idle_timeout: Duration::from_secs(45),
            ..AccountingConfig::default()
        };
        let message = config.validate().unwrap_err().to_string();
        assert_eq!(
            message,
            "invalid value \"45s\" for exporter.idle_timeout: \
             a duration longer than both exporter.grace and exporter.sla"
        );
    }
}
