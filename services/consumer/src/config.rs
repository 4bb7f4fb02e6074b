//! The consumer's configuration: the shared sections plus `consumer.*`.

use std::time::Duration;

use meshflow_common::config::{
    identifier, in_range, millis_in, topic_name, topic_retention, ConfigError, Validate,
};
use meshflow_common::receipt::Format;
use serde::{Deserialize, Serialize};

use crate::ledger::Shape;

mod keys;
pub use keys::KEYS;

/// librdkafka keys the consumer's typed settings own.
pub const OWNED_KEYS: &[&str] = &[
    "group.id",
    "client.id",
    "enable.auto.offset.store",
    "enable.auto.commit",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    // The receipts producer: idempotent, acks=all (`request.required.acks`
    // is librdkafka's other name for `acks`).
    "acks",
    "request.required.acks",
    "enable.idempotence",
];

meshflow_common::service_config! {
    /// Everything `meshflow-consumer` reads at start.
    port: meshflow_common::contract::port::CONSUMER,
    /// What to consume and how.
    consumer: ConsumerSettings,
    instance_id: |c| c.consumer.instance_id.as_deref(),
}

/// `consumer.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSettings {
    /// Topic to consume.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Consumer group id.
    #[serde(default = "default_group")]
    pub group: String,
    /// Where processing receipts go.
    #[serde(default = "default_receipts_topic")]
    pub receipts_topic: String,
    /// Dead-letter topic; default `<topic>.dlq`.
    #[serde(default)]
    pub dlq_topic: Option<String>,
    /// Consumer instance id, in receipts and as librdkafka `client.id`.
    /// Default: pod or host name plus a random suffix.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Simulated work per message.
    #[serde(default, with = "humantime_serde")]
    pub work: Duration,
    /// Receipts are flushed at least this often.
    #[serde(default = "default_flush_interval", with = "humantime_serde")]
    pub receipt_flush_interval: Duration,
    /// ... or when this many entries are waiting.
    #[serde(default = "default_batch_max")]
    pub receipt_batch_max: usize,
    /// Receipt format written: 2 (binary, the default) or 1 (JSON, what
    /// versions before format 2 read).
    #[serde(default = "default_receipt_format")]
    pub receipt_format: u8,
    /// Format 2 keeps the trace ids of each record's slowest message and of
    /// messages whose `mf-seq` is a multiple of this (1 keeps every one).
    #[serde(default = "default_trace_every")]
    pub receipt_trace_every: u64,
    /// Group session timeout: how soon a dead member's partitions move.
    #[serde(default = "default_session_timeout", with = "humantime_serde")]
    pub session_timeout: Duration,
    /// Heartbeat interval, at most a third of the session timeout.
    #[serde(default = "default_heartbeat", with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// How long a revoke or shutdown waits for outstanding receipts before
    /// committing what is acknowledged.
    #[serde(default = "default_drain_timeout", with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Create the receipts and dead-letter topics at start if missing.
    #[serde(default = "default_true")]
    pub create_topics: bool,
    /// Partitions of topics this consumer creates.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replication factor of topics this consumer creates (3 on a cluster).
    #[serde(default = "default_replication_factor")]
    pub replication_factor: i32,
    /// How long topics this consumer creates keep messages (`retention.ms`, with
    /// `cleanup.policy=delete`); unset leaves the broker's default.
    #[serde(default, with = "humantime_serde")]
    pub topic_retention: Option<Duration>,
}

/// The design's data topic.
fn default_topic() -> String {
    meshflow_common::contract::topic::EVENTS.to_string()
}
/// The design's group name.
fn default_group() -> String {
    meshflow_common::contract::topic::GROUP.to_string()
}
/// The design's receipts topic.
fn default_receipts_topic() -> String {
    meshflow_common::contract::topic::RECEIPTS.to_string()
}
/// The design fixes 100 ms.
fn default_flush_interval() -> Duration {
    Duration::from_millis(100)
}
/// The design fixes 500 entries.
fn default_batch_max() -> usize {
    500
}
fn default_receipt_format() -> u8 {
    2
}
fn default_trace_every() -> u64 {
    64
}
/// Kafka's minimum allowed session (group.min.session.timeout.ms): fastest
/// recovery after a member dies.
fn default_session_timeout() -> Duration {
    Duration::from_secs(6)
}
/// A sixth of the session: several chances before a member is declared dead.
fn default_heartbeat() -> Duration {
    Duration::from_secs(1)
}
/// Well inside a Kubernetes termination grace of 30 s.
fn default_drain_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_true() -> bool {
    true
}
/// The design's 6 partitions.
fn default_partitions() -> i32 {
    6
}
/// One broker locally; clusters set 3.
fn default_replication_factor() -> i32 {
    1
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            topic: default_topic(),
            group: default_group(),
            receipts_topic: default_receipts_topic(),
            dlq_topic: None,
            instance_id: None,
            work: Duration::ZERO,
            receipt_flush_interval: default_flush_interval(),
            receipt_batch_max: default_batch_max(),
            receipt_format: default_receipt_format(),
            receipt_trace_every: default_trace_every(),
            session_timeout: default_session_timeout(),
            heartbeat_interval: default_heartbeat(),
            drain_timeout: default_drain_timeout(),
            create_topics: true,
            partitions: default_partitions(),
            replication_factor: default_replication_factor(),
            topic_retention: None,
        }
    }
}

impl ConsumerSettings {
    /// The dead-letter topic: configured, or `<topic>.dlq`.
    pub fn dlq_topic(&self) -> String {
        self.dlq_topic.clone().unwrap_or_else(|| {
            format!(
                "{}{}",
                self.topic,
                meshflow_common::contract::topic::DLQ_SUFFIX
            )
        })
    }
}

/// librdkafka's default `message.max.bytes`.
fn default_message_max_bytes() -> usize {
    1_000_000
}

/// What a receipt record needs besides its JSON body: the key (a producer
/// id, at most 128 bytes) and Kafka's record and batch framing.
const RECORD_OVERHEAD_BYTES: usize = 1_024;

impl Config {
    /// The receipt producer's `message.max.bytes`: `kafka.librdkafka` if
    /// set there, else librdkafka's default.
    pub fn message_max_bytes(&self) -> usize {
        self.kafka
            .librdkafka
            .get("message.max.bytes")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(default_message_max_bytes)
    }

    /// How receipt records are cut and written.
    pub fn receipt_shape(&self) -> Shape {
        let c = &self.consumer;
        Shape {
            format: Format::numbered(c.receipt_format).unwrap_or_default(),
            batch_max: c.receipt_batch_max,
            bytes_max: self.receipt_batch_bytes_max(),
            trace_every: c.receipt_trace_every,
        }
    }

    /// The largest body of one receipt record, so that the record
    /// fits `message.max.bytes`; batches are cut at this size as well as at
    /// `consumer.receipt_batch_max` entries.
    pub fn receipt_batch_bytes_max(&self) -> usize {
        self.message_max_bytes()
            .saturating_sub(RECORD_OVERHEAD_BYTES)
    }
}

/// Formats a duration for an error message.
fn show(d: Duration) -> String {
    humantime_serde::re::humantime::format_duration(d).to_string()
}

impl Validate for Config {
    fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate(OWNED_KEYS)?;
        self.log.validate()?;
        let c = &self.consumer;
        topic_name("consumer.topic", &c.topic)?;
        topic_name("consumer.receipts_topic", &c.receipts_topic)?;
        topic_name("consumer.dlq_topic", &c.dlq_topic())?;
        if c.receipts_topic == c.topic || c.dlq_topic() == c.topic {
            return Err(ConfigError::invalid(
                "consumer.receipts_topic",
                &c.receipts_topic,
                "a topic other than consumer.topic (and other than the dead-letter topic)",
            ));
        }
        identifier("consumer.group", &c.group, 255)?;
        if let Some(id) = &c.instance_id {
            identifier("consumer.instance_id", id, 128)?;
        }
        if c.work > Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                "consumer.work",
                show(c.work),
                "a duration up to 60s",
            ));
        }
        let flush = c.receipt_flush_interval;
        millis_in("consumer.receipt_flush_interval", flush, 1, 10_000)?;
        in_range("consumer.receipt_batch_max", c.receipt_batch_max, 1, 10_000)?;
        in_range("consumer.receipt_format", c.receipt_format, 1, 2)?;
        in_range(
            "consumer.receipt_trace_every",
            c.receipt_trace_every,
            1,
            1_000_000,
        )?;
        if let Some(v) = self.kafka.librdkafka.get("message.max.bytes") {
            let ok = v
                .trim()
                .parse::<usize>()
                .is_ok_and(|n| (8 * RECORD_OVERHEAD_BYTES..=1_000_000_000).contains(&n));
            if !ok {
                return Err(ConfigError::invalid(
                    "kafka.librdkafka.message.max.bytes",
                    v,
                    "a number of bytes from 8192 to 1000000000",
                ));
            }
        }
        millis_in("consumer.session_timeout", c.session_timeout, 1000, 300_000)?;
        if c.heartbeat_interval.is_zero() || c.heartbeat_interval * 3 > c.session_timeout {
            return Err(ConfigError::invalid(
                "consumer.heartbeat_interval",
                show(c.heartbeat_interval),
                "a duration above 0 and at most a third of consumer.session_timeout",
            ));
        }
        millis_in("consumer.drain_timeout", c.drain_timeout, 100, 300_000)?;
        in_range("consumer.partitions", c.partitions, 1, 10_000)?;
        in_range("consumer.replication_factor", c.replication_factor, 1, 16)?;
        topic_retention("consumer.topic_retention", c.topic_retention)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshflow_common::testing::{assert_each_refused, config_from};

    fn from_env(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        config_from(vars, &[])
    }

    #[test]
    fn every_key_is_documented_once_and_every_documented_key_exists() {
        let c = from_env(&[]).unwrap();
        meshflow_common::testing::assert_keys_documented_once(&c, KEYS, &[]);
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = from_env(&[]).unwrap();
        assert_eq!(c.consumer.group, "meshflow");
        assert_eq!(c.consumer.dlq_topic(), "meshflow.events.dlq");
        assert_eq!(
            c.consumer.receipt_flush_interval,
            Duration::from_millis(100)
        );
        assert_eq!(c.consumer.receipt_batch_max, 500);
        assert_eq!(c.message_max_bytes(), 1_000_000);
        assert!(c.receipt_batch_bytes_max() < 1_000_000);
        assert_eq!(c.http.listen.port(), 9465);
    }

    #[test]
    fn durations_parse_from_env() {
        let c = from_env(&[
            ("MESHFLOW__CONSUMER__WORK", "15ms"),
            ("MESHFLOW__CONSUMER__SESSION_TIMEOUT", "10s"),
        ])
        .unwrap();
        assert_eq!(c.consumer.work, Duration::from_millis(15));
        assert_eq!(c.consumer.session_timeout, Duration::from_secs(10));
    }

    #[test]
    fn bad_values_name_their_key() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, &str)] = &[
            ("CONSUMER__TOPIC_RETENTION", "400days", "consumer.topic_retention"),
            ("CONSUMER__RECEIPT_BATCH_MAX", "0", "consumer.receipt_batch_max"),
            ("CONSUMER__RECEIPT_FLUSH_INTERVAL", "1h", "consumer.receipt_flush_interval"),
            ("CONSUMER__HEARTBEAT_INTERVAL", "5s", "consumer.heartbeat_interval"),
            ("CONSUMER__SESSION_TIMEOUT", "100ms", "consumer.session_timeout"),
            ("CONSUMER__GROUP", "", "consumer.group"),
            ("CONSUMER__RECEIPTS_TOPIC", "meshflow.events", "consumer.receipts_topic"),
            ("CONSUMER__WORK", "often", "work"),
            ("CONSUMER__COLOUR", "blue", "colour"),
        ];
        assert_each_refused::<Config>(cases, &[]);
    }
}
