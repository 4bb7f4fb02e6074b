//! The consumer's Kafka clients: the group consumer (offsets stored by the
//! ledger's decisions, auto-committed from the store) and the idempotent
//! producer for receipts and dead letters.

use std::sync::Arc;

use meshflow_common::http::Readiness;
use meshflow_common::kafka::millis;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;

use crate::config::Config;
use crate::context::GroupContext;
use crate::metrics::ConsumerMetrics;
use crate::receipts::ReceiptSink;
use crate::service::{ConsumerError, GroupConsumer};

/// The clients of a running consumer.
pub(crate) struct Clients {
    /// Producer of receipts and dead letters.
    pub(crate) producer: FutureProducer,
    /// Receipts waiting for Kafka, shared with the rebalance hooks.
    pub(crate) sink: Arc<ReceiptSink>,
    /// The group consumer, subscribed to the data topic.
    pub(crate) consumer: Arc<GroupConsumer>,
}

impl Clients {
    /// Creates the producer, the receipt sink and the group consumer, and
    /// subscribes.
    pub(crate) fn connect(
        config: &Config,
        instance: &str,
        metrics: &ConsumerMetrics,
        readiness: &Arc<Readiness>,
    ) -> Result<Self, ConsumerError> {
        let s = &config.consumer;
        let producer = create_producer(config).map_err(ConsumerError::Client)?;
        let sink = Arc::new(ReceiptSink::new(
            producer.clone(),
            s.receipts_topic.clone(),
            s.group.clone(),
            instance.to_string(),
            config.receipt_shape(),
            metrics.clone(),
        ));
        let context = GroupContext {
            sink: sink.clone(),
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            drain_timeout: s.drain_timeout,
        };
        let consumer: Arc<GroupConsumer> = Arc::new(
            consumer_config(config, instance)
                .create_with_context(context)
                .map_err(ConsumerError::Client)?,
        );
        consumer
            .subscribe(&[&s.topic])
            .map_err(ConsumerError::Subscribe)?;
        Ok(Clients {
            producer,
            sink,
            consumer,
        })
    }
}

/// The group consumer's librdkafka settings.
fn consumer_config(config: &Config, instance: &str) -> rdkafka::ClientConfig {
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
fn create_producer(config: &Config) -> Result<FutureProducer, KafkaError> {
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
