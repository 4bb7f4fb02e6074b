//! `exporter.probe.*`: the built-in probe, for clusters that carry no
//! meshflow traffic. Off by default.

use std::time::Duration;

use meshflow_common::config::{in_range, millis_in, topic_name, ConfigError};
use serde::{Deserialize, Serialize};

/// The probe's topic when none is named.
pub const DEFAULT_PROBE_TOPIC: &str = "meshflow.probe";

/// The most partitions the probe writes to: each is a label value.
pub const MAX_PROBE_PARTITIONS: usize = 256;

/// The probe: what it writes to, how often, how long a send may take.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    /// Whether the exporter produces to and reads its probe topic.
    pub enabled: bool,
    /// The probe topic; created when missing. Nothing else should write it.
    pub topic: String,
    /// Time between rounds; each round sends one message to every
    /// partition of the probe topic.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Partitions the topic should have per broker, so that every broker
    /// leads one (partitions are added when brokers join).
    pub partitions_per_broker: u32,
    /// Replicas of each partition when the probe creates the topic (at most
    /// the brokers there are).
    pub replication_factor: u32,
    /// How long a send may wait for the broker's acknowledgement before it
    /// counts as failed (librdkafka's `message.timeout.ms`).
    #[serde(with = "humantime_serde")]
    pub send_timeout: Duration,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            enabled: false,
            topic: DEFAULT_PROBE_TOPIC.to_string(),
            interval: Duration::from_secs(1),
            partitions_per_broker: 1,
            replication_factor: 3,
            send_timeout: Duration::from_secs(10),
        }
    }
}

impl ProbeConfig {
    /// Checks every `exporter.probe.*` value; `data_topics` and
    /// `receipts_topic` are the topics the probe must not write to.
    pub fn validate(&self, data_topics: &[&str], receipts_topic: &str) -> Result<(), ConfigError> {
        topic_name("exporter.probe.topic", &self.topic)?;
        if self.topic == receipts_topic || data_topics.contains(&self.topic.as_str()) {
            return Err(ConfigError::invalid(
                "exporter.probe.topic",
                &self.topic,
                "a topic of its own, neither a judged data topic nor the receipts topic",
            ));
        }
        millis_in("exporter.probe.interval", self.interval, 100, 60_000)?;
        in_range(
            "exporter.probe.partitions_per_broker",
            self.partitions_per_broker,
            1,
            16,
        )?;
        in_range(
            "exporter.probe.replication_factor",
            self.replication_factor,
            1,
            7,
        )?;
        millis_in(
            "exporter.probe.send_timeout",
            self.send_timeout,
            1_000,
            300_000,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One change to the default settings.
    type Change = fn(&mut ProbeConfig);

    #[test]
    fn the_default_is_off_and_valid_and_bad_values_name_their_key() {
        let probe = ProbeConfig::default();
        assert!(!probe.enabled);
        assert!(probe
            .validate(&["meshflow.events"], "meshflow.receipts")
            .is_ok());
        let refused = |change: Change| {
            let mut probe = ProbeConfig::default();
            change(&mut probe);
            probe
                .validate(&["meshflow.events"], "meshflow.receipts")
                .expect_err("refused")
                .to_string()
        };
        let cases: [(Change, &str); 7] = [
            (
                |p| p.topic = "meshflow.events".into(),
                "exporter.probe.topic",
            ),
            (
                |p| p.topic = "meshflow.receipts".into(),
                "exporter.probe.topic",
            ),
            (|p| p.topic = "no spaces".into(), "exporter.probe.topic"),
            (
                |p| p.interval = Duration::from_millis(10),
                "exporter.probe.interval",
            ),
            (
                |p| p.partitions_per_broker = 0,
                "exporter.probe.partitions_per_broker",
            ),
            (
                |p| p.replication_factor = 9,
                "exporter.probe.replication_factor",
            ),
            (
                |p| p.send_timeout = Duration::ZERO,
                "exporter.probe.send_timeout",
            ),
        ];
        for (change, key) in cases {
            let message = refused(change);
            assert!(message.contains(key), "{message}");
        }
    }
}
