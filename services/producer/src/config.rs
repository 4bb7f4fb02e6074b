//! The producer's configuration: the shared sections plus `producer.*`.

use std::time::Duration;

use meshflow_common::config::{
    identifier, in_range, millis_in, topic_name, topic_retention, ConfigError, Validate,
};
use meshflow_common::envelope::MAX_PRODUCER_ID_BYTES;
use serde::{Deserialize, Serialize};

mod keys;
pub use keys::KEYS;

/// librdkafka keys the producer's typed settings own.
pub const OWNED_KEYS: &[&str] = &[
    "acks",
    "request.required.acks",
    "enable.idempotence",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "linger.ms",
    "queue.buffering.max.ms",
];

meshflow_common::service_config! {
    /// Everything `meshflow-producer` reads at start.
    port: meshflow_common::contract::port::PRODUCER,
    /// What to send and how fast.
    producer: ProducerSettings,
    instance_id: |c| c.producer.instance_id.as_deref(),
}

/// `producer.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerSettings {
    /// Topic to send to.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Messages per second.
    #[serde(default = "default_rate")]
    pub rate_per_sec: f64,
    /// Payload size in bytes.
    #[serde(default = "default_payload_bytes")]
    pub payload_bytes: usize,
    /// Stop after this many messages have been handed to Kafka and flush;
    /// 0 sends until shut down.
    #[serde(default)]
    pub max_messages: u64,
    /// Producer instance id (`mf-producer`). Default: pod or host name plus a
    /// random suffix, new for every start. Set it only for tests: two
    /// processes with one id make the exporter see duplicates.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Create the topic at start if it is missing.
    #[serde(default = "default_true")]
    pub create_topic: bool,
    /// Partitions of a topic this producer creates.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replication factor of a topic this producer creates (3 on a cluster).
    #[serde(default = "default_replication_factor")]
    pub replication_factor: i32,
    /// How long a topic this producer creates keeps messages (`retention.ms`, with
    /// `cleanup.policy=delete`); unset leaves the broker's default.
    #[serde(default, with = "humantime_serde")]
    pub topic_retention: Option<Duration>,
    /// How long librdkafka keeps retrying a message before reporting it
    /// failed (`message.timeout.ms`). Long enough to ride out a broker restart.
    #[serde(default = "default_message_timeout", with = "humantime_serde")]
    pub message_timeout: Duration,
    /// How long librdkafka waits to fill a batch (`linger.ms`).
    #[serde(default = "default_linger", with = "humantime_serde")]
    pub linger: Duration,
    /// On shutdown, how long to wait for outstanding messages to be
    /// acknowledged before giving up on them (they are then reported failed
    /// and never acknowledged). Keep it below the time the supervisor allows
    /// between SIGTERM and SIGKILL (Kubernetes
    /// `terminationGracePeriodSeconds`).
    #[serde(default = "default_shutdown_flush_timeout", with = "humantime_serde")]
    pub shutdown_flush_timeout: Duration,
    /// The most messages waiting to be sent again after an error that can
    /// pass (see the producer's re-send); while this many wait, no new
    /// message is sent, so memory stays bounded through a long outage.
    #[serde(default = "default_resend_capacity")]
    pub resend_capacity: usize,
}

/// The design's data topic.
fn default_topic() -> String {
    meshflow_common::contract::topic::EVENTS.to_string()
}
/// The design's default rate, 10 per second.
fn default_rate() -> f64 {
    10.0
}
/// A small message, like the periodic test messages meshflow grew from.
fn default_payload_bytes() -> usize {
    256
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
/// librdkafka's own default, 300 s: survives a broker restart.
fn default_message_timeout() -> Duration {
    Duration::from_secs(300)
}
/// librdkafka's default since 2.0 is 5 ms.
fn default_linger() -> Duration {
    Duration::from_millis(5)
}

/// 20 s: under Kubernetes' default 30 s grace period, with room to exit.
fn default_shutdown_flush_timeout() -> Duration {
    Duration::from_secs(20)
}

/// 10,000 messages: a few MiB with their spans; over 16 minutes of the
/// default rate.
fn default_resend_capacity() -> usize {
    10_000
}

impl Default for ProducerSettings {
    fn default() -> Self {
        ProducerSettings {
            topic: default_topic(),
            rate_per_sec: default_rate(),
            payload_bytes: default_payload_bytes(),
            max_messages: 0,
            instance_id: None,
            create_topic: true,
            partitions: default_partitions(),
            replication_factor: default_replication_factor(),
            topic_retention: None,
            message_timeout: default_message_timeout(),
            linger: default_linger(),
            shutdown_flush_timeout: default_shutdown_flush_timeout(),
            resend_capacity: default_resend_capacity(),
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate(OWNED_KEYS)?;
        self.log.validate()?;
        let p = &self.producer;
        topic_name("producer.topic", &p.topic)?;
        if !(p.rate_per_sec.is_finite() && p.rate_per_sec > 0.0 && p.rate_per_sec <= 100_000.0) {
            return Err(ConfigError::invalid(
                "producer.rate_per_sec",
                p.rate_per_sec,
                "a number of messages per second above 0 and at most 100000",
            ));
        }
        in_range("producer.payload_bytes", p.payload_bytes, 0, 900_000)?;
        if let Some(id) = &p.instance_id {
            identifier("producer.instance_id", id, MAX_PRODUCER_ID_BYTES)?;
        }
        in_range("producer.partitions", p.partitions, 1, 10_000)?;
        in_range("producer.replication_factor", p.replication_factor, 1, 16)?;
        topic_retention("producer.topic_retention", p.topic_retention)?;
        millis_in(
            "producer.message_timeout",
            p.message_timeout,
            1000,
            3_600_000,
        )?;
        millis_in(
            "producer.shutdown_flush_timeout",
            p.shutdown_flush_timeout,
            0,
            600_000,
        )?;
        millis_in("producer.linger", p.linger, 0, 1000)?;
        in_range("producer.resend_capacity", p.resend_capacity, 1, 1_000_000)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshflow_common::config::{load, Sources};
    use meshflow_common::testing::{assert_each_refused, config_from};
    use std::io::Write;

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
        assert_eq!(c.producer.topic, "meshflow.events");
        assert_eq!(c.producer.rate_per_sec, 10.0);
        assert_eq!(c.http.listen.port(), 9464);
        assert_eq!(c.kafka.bootstrap_servers, "localhost:9092");
        assert_eq!(c.producer.shutdown_flush_timeout, Duration::from_secs(20));
    }

    #[test]
    fn env_overrides_file_overrides_defaults() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "[producer]\nrate_per_sec = 50\npayload_bytes = 10\n[kafka.librdkafka]\n\"client.rack\" = \"r1\"").unwrap();
        let env = [("MESHFLOW__PRODUCER__RATE_PER_SEC", "75")];
        let c: Config = load(Sources::with_env(Some(f.path()), &env, &[])).unwrap();
        assert_eq!(c.producer.rate_per_sec, 75.0);
        assert_eq!(c.producer.topic_retention, None);
        assert_eq!(c.producer.payload_bytes, 10);
        assert_eq!(
            c.kafka.librdkafka.get("client.rack").map(String::as_str),
            Some("r1")
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, &str)] = &[
            ("PRODUCER__RATE_PER_SEC", "0", "producer.rate_per_sec"),
            ("PRODUCER__RATE_PER_SEC", "fast", "rate_per_sec"),
            ("PRODUCER__PAYLOAD_BYTES", "-1", "payload_bytes"),
            ("PRODUCER__TOPIC", "bad topic", "producer.topic"),
            ("PRODUCER__MESSAGE_TIMEOUT", "soon", "message_timeout"),
            ("PRODUCER__MESSAGE_TIMEOUT", "10ms", "producer.message_timeout"),
            ("PRODUCER__PARTITIONS", "0", "producer.partitions"),
            ("PRODUCER__TOPIC_RETENTION", "10s", "producer.topic_retention"),
            ("PRODUCER__SHUTDOWN_FLUSH_TIMEOUT", "1h", "producer.shutdown_flush_timeout"),
            ("PRODUCER__RESEND_CAPACITY", "0", "producer.resend_capacity"),
            ("HTTP__LISTEN", "nowhere", "listen"),
            ("KAFKA__SECURITY_PROTOCOL", "tls", "kafka.security_protocol"),
            ("LOG__FORMAT", "xml", "log.format"),
            ("PRODUCER__RATE", "5", "rate"),
            ("PRODUCR__RATE_PER_SEC", "5", "producr"),
        ];
        assert_each_refused::<Config>(cases, &[]);
    }

    #[test]
    fn owned_librdkafka_keys_are_refused() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "[kafka.librdkafka]\nacks = \"1\"").unwrap();
        let err = load::<Config>(Sources::with_env(Some(f.path()), &[], &[])).unwrap_err();
        assert!(err.to_string().contains("kafka.librdkafka.acks"), "{err}");
    }
}
