//! The producer pair: plain rdkafka against meshflow's send loop.
//!
//! Both send `messages` payloads of the same size with the same settings
//! (`acks=all`, idempotence, the same `linger.ms` and message timeout),
//! keyed by the sequence number, as fast as they can or at a fixed rate,
//! and await every delivery report. The plain loop is what an rdkafka user
//! writes (a spawned task per delivery report; the creation time goes into
//! the payload's first 8 bytes); meshflow's is `meshflow_producer::run`
//! itself: envelope, `send` span, trace context, metrics, one task for all
//! delivery reports. The difference is what meshflow costs.

use std::time::Duration;

use meshflow_common::envelope::now_ns;
use meshflow_common::fatal::READY_CLIENT;
use meshflow_common::http::Readiness;
use meshflow_common::messaging_metrics::MessagingMetrics;
use meshflow_common::testing::envelope_sized_headers;
use meshflow_producer::config::ProducerSettings;
use meshflow_producer::metrics::ProducerMetrics;
use meshflow_producer::service::READY_KAFKA;
use prometheus_client::registry::Registry;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cpu::{Run, Stopwatch};

/// What to send.
#[derive(Debug, Clone)]
pub struct Load {
    /// `bootstrap.servers`.
    pub bootstrap: String,
    /// Topic (already created).
    pub topic: String,
    /// How many messages.
    pub messages: u64,
    /// Messages per second; `None` as fast as the client takes them.
    pub rate: Option<f64>,
    /// Payload size in bytes (at least 8).
    pub payload_bytes: usize,
    /// Plain client only: carry five headers of the envelope's sizes, for
    /// brokers whose cost is per header (Tansu stores each as a row).
    pub plain_headers: bool,
}

/// meshflow's default `linger.ms`, used by both sides.
const LINGER: Duration = Duration::from_millis(5);
/// meshflow's default message timeout, used by both sides.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(300);
/// Far above any rate either side reaches: meshflow's loop never waits.
const SATURATION_RATE: f64 = 10_000_000.0;

/// Plain rdkafka: a `FutureProducer` with meshflow's settings.
pub async fn plain(load: &Load) -> anyhow::Result<Run> {
    let watch = Stopwatch::start();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &load.bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set(
            "message.timeout.ms",
            MESSAGE_TIMEOUT.as_millis().to_string(),
        )
        .set("linger.ms", LINGER.as_millis().to_string())
        .create()?;
    let mut payload = vec![b'm'; load.payload_bytes.max(8)];
    let mut ticker = load.rate.map(|r| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / r));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    let mut deliveries: JoinSet<bool> = JoinSet::new();
    let mut acked = 0;
    for seq in 0..load.messages {
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        while let Some(done) = deliveries.try_join_next() {
            acked += u64::from(matches!(done, Ok(true)));
        }
        payload[..8].copy_from_slice(&now_ns().to_le_bytes());
        let key = seq.to_string();
        let mut record = FutureRecord::to(&load.topic).key(&key).payload(&payload);
        if load.plain_headers {
            record = record.headers(envelope_sized_headers(seq));
        }
        let delivery = loop {
            match producer.send_result(record) {
                Ok(d) => break d,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => anyhow::bail!("plain send: {e}"),
            }
        };
        deliveries.spawn(async move { matches!(delivery.await, Ok(Ok(_))) });
    }
    let flusher = producer.clone();
    tokio::task::spawn_blocking(move || flusher.flush(Duration::from_secs(60))).await??;
    while let Some(done) = deliveries.join_next().await {
        acked += u64::from(matches!(done, Ok(true)));
    }
    anyhow::ensure!(
        acked == load.messages,
        "plain: {acked} of {} acked",
        load.messages
    );
    Ok(watch.run(acked))
}

/// meshflow's producer config for `load`, with an instance id of its own.
pub fn meshflow_config(load: &Load, instance: &str) -> meshflow_producer::Config {
    let (kafka, http) = crate::target::service_sections(&load.bootstrap);
    meshflow_producer::Config {
        kafka,
        http,
        log: Default::default(),
        trace: Default::default(),
        producer: ProducerSettings {
            topic: load.topic.clone(),
            rate_per_sec: load.rate.unwrap_or(SATURATION_RATE),
            payload_bytes: load.payload_bytes,
            max_messages: load.messages,
            instance_id: Some(instance.to_string()),
            create_topic: false,
            linger: LINGER,
            message_timeout: MESSAGE_TIMEOUT,
            ..ProducerSettings::default()
        },
    }
}

/// meshflow's send loop, `meshflow_producer::run`, as the binary runs it.
pub async fn meshflow(load: &Load, instance: &str) -> anyhow::Result<Run> {
    let config = meshflow_config(load, instance);
    // As the binary registers them: meshflow's under its prefix, the
    // OpenTelemetry messaging metrics at the root.
    let mut root = Registry::default();
    let messaging = MessagingMetrics::register(&mut root);
    let registry = root.sub_registry_with_prefix("meshflow");
    let metrics = ProducerMetrics::register(registry, &load.topic)
        .with_messaging(messaging.sender(&load.topic));
    let readiness = Readiness::new(&[READY_KAFKA, READY_CLIENT], registry);
    let watch = Stopwatch::start();
    let summary = meshflow_producer::run(
        config,
        instance.to_string(),
        metrics,
        readiness,
        CancellationToken::new(),
    )
    .await?;
    anyhow::ensure!(
        summary.acked == load.messages,
        "meshflow: {} of {} acked",
        summary.acked,
        load.messages
    );
    Ok(watch.run(summary.acked))
}
