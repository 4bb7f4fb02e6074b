//! The consumer's Kafka clients: the group consumer (offsets stored by the
//! ledger's decisions, auto-committed from the store) and the idempotent
//! producer for receipts and dead letters.

use meshflow_common::kafka::millis;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;

use crate::config::Config;

/// The group consumer's librdkafka settings.
pub(crate) fn consumer_config(config: &Config, instance: &str) -> rdkafka::ClientConfig {
    let s = &config.consumer;
    config.kafka.client_config_with(|cfg| {
        cfg.set("group.id", &s.group)
            .set("client.id", instance)
            .set("enable.auto.offset.store", "false")
            // Auto-commit commits only stored offsets, i.e. acknowledged receipts.
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("session.timeout.ms", millis(s.session_timeout))
            .set("heartbeat.interval.ms", millis(s.heartbeat_interval))
            .set("auto.offset.reset", "earliest")
            // librdkafka waits up to 500 ms for a fetch to fill; some brokers
            // (Tansu) always wait that long, which would count as end-to-end
            // latency. A default: `kafka.librdkafka` may override it.
            .set("fetch.wait.max.ms", "100");
    })
}

/// The producer for receipts and dead letters: idempotent, `acks=all`.
pub(crate) fn create_producer(config: &Config) -> Result<FutureProducer, KafkaError> {
    config
        .kafka
        .client_config_with(|cfg| {
            cfg.set("acks", "all")
                .set("enable.idempotence", "true")
                .set("linger.ms", "5")
                .set("message.timeout.ms", "30000");
        })
        .create()
}
