//! The consumer pair: a plain rdkafka loop storing offsets against
//! meshflow's consume loop.
//!
//! Both read the same enveloped messages from the start of a topic in a new
//! group, with the same client settings (meshflow's: offsets stored by the
//! application, auto-commit of stored offsets, `fetch.wait.max.ms=100`).
//! The plain loop stores each message's offset as it gets it; meshflow's is
//! `meshflow_consumer::run` itself: header view, trace extraction, `process`
//! span, envelope parse, receipts published and acknowledged before their
//! offsets are stored. Rates are taken between the 10th and the 100th
//! percent of the messages, so that joining the group and the first fetches
//! do not count.

use std::sync::Arc;
use std::time::Duration;

use meshflow_common::fatal::READY_CLIENT;
use meshflow_common::http::Readiness;
use meshflow_common::messaging_metrics::MessagingMetrics;
use meshflow_consumer::config::ConsumerSettings;
use meshflow_consumer::context::READY_ASSIGNED;
use meshflow_consumer::metrics::ConsumerMetrics;
use meshflow_consumer::service::READY_KAFKA;
use prometheus_client::registry::Registry;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::ClientConfig;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cpu::{Run, Stopwatch};

/// How long either consumer may go without a new message before the run
/// fails (instead of waiting for messages that will not come).
const STALL: Duration = Duration::from_secs(15);

/// meshflow's default `fetch.wait.max.ms`.
pub const FETCH_WAIT_MS: u32 = 100;

/// meshflow's consumer client settings, for the plain loop.
pub fn plain_client(
    bootstrap: &str,
    group: &str,
    fetch_wait_ms: u32,
) -> anyhow::Result<StreamConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.offset.store", "false")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "3000")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        .create()?)
}

/// Messages `topic` still holds (high - low watermark, over `partitions`).
pub fn messages_kept(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<u64> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let mut kept = 0;
    for p in 0..partitions {
        let (low, high) = client.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        kept += (high - low).max(0) as u64;
    }
    Ok(kept)
}

/// The window a rate is measured over: from the `from`-th message to the last.
fn window_start(messages: u64) -> u64 {
    messages / 10
}

/// Plain rdkafka: `recv`, then `store_offset_from_message`.
pub async fn plain(
    bootstrap: &str,
    topic: &str,
    group: &str,
    messages: u64,
) -> anyhow::Result<Run> {
    let consumer = plain_client(bootstrap, group, FETCH_WAIT_MS)?;
    consumer.subscribe(&[topic])?;
    let from = window_start(messages);
    let mut watch = None;
    let mut seen = 0;
    while seen < messages {
        let m = tokio::time::timeout(STALL, consumer.recv())
            .await
            .map_err(|_| {
                anyhow::anyhow!("plain consumer: {seen} of {messages}, none for {STALL:?}")
            })??;
        consumer.store_offset_from_message(&m)?;
        seen += 1;
        if seen == from {
            watch = Some(Stopwatch::start());
        }
    }
    let watch = watch.unwrap_or_else(Stopwatch::start);
    Ok(watch.run(messages - from))
}

/// A running `meshflow_consumer::run` and a way to read its counters.
pub struct MeshflowConsumer {
    registry: Registry,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), meshflow_consumer::service::ConsumerError>>,
}

/// meshflow's consumer settings for `topic` in `group`.
pub fn meshflow_config(
    bootstrap: &str,
    topic: &str,
    group: &str,
    receipts: &str,
    instance: &str,
) -> meshflow_consumer::Config {
    let (kafka, http) = crate::target::service_sections(bootstrap);
    meshflow_consumer::Config {
        kafka,
        http,
        log: Default::default(),
        trace: Default::default(),
        consumer: ConsumerSettings {
            topic: topic.to_string(),
            group: group.to_string(),
            receipts_topic: receipts.to_string(),
            instance_id: Some(instance.to_string()),
            create_topics: false,
            ..ConsumerSettings::default()
        },
    }
}

impl MeshflowConsumer {
    /// Starts the consume loop as the binary runs it.
    pub fn start(config: meshflow_consumer::Config) -> Self {
        let instance = config.consumer.instance_id.clone().unwrap_or_default();
        // As the binary registers them: meshflow's under its prefix, the
        // OpenTelemetry messaging metrics at the root.
        let mut root = Registry::default();
        let messaging = MessagingMetrics::register(&mut root);
        let registry = root.sub_registry_with_prefix("meshflow");
        let s = &config.consumer;
        let metrics = ConsumerMetrics::register(registry, &s.topic, &s.group).with_messaging(
            messaging.receiver(&s.topic, &s.group),
            messaging.sender(&s.receipts_topic),
        );
        let readiness = Readiness::new(&[READY_KAFKA, READY_ASSIGNED, READY_CLIENT], registry);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(meshflow_consumer::run(
            config,
            instance,
            metrics,
            readiness.clone(),
            shutdown.clone(),
        ));
        MeshflowConsumer {
            registry: root,
            readiness,
            shutdown,
            task,
        }
    }

    /// Enveloped messages processed so far, read from its own metrics.
    pub fn processed(&self) -> u64 {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            return 0;
        }
        text.lines()
            .filter(|l| {
                l.starts_with("meshflow_consumer_messages_total{")
                    && l.contains("kind=\"enveloped\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// Waits until it owns partitions.
    pub async fn assigned(&self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.readiness.failing().contains(&READY_ASSIGNED) {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "consumer never assigned"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Waits until `n` messages are processed, calling `at(count)` as they go.
    pub async fn wait_processed(&self, n: u64, mut at: impl FnMut(u64)) -> anyhow::Result<()> {
        let (mut last, mut moved) = (0, tokio::time::Instant::now());
        loop {
            let done = self.processed();
            at(done);
            if done >= n {
                return Ok(());
            }
            if done > last {
                (last, moved) = (done, tokio::time::Instant::now());
            }
            anyhow::ensure!(
                moved.elapsed() < STALL,
                "meshflow consumer: {done} of {n}, none for {STALL:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Stops it as SIGTERM does: drain, commit, leave the group.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await??;
        Ok(())
    }
}

/// meshflow's consume loop over `messages` enveloped messages.
pub async fn meshflow(config: meshflow_consumer::Config, messages: u64) -> anyhow::Result<Run> {
    let consumer = MeshflowConsumer::start(config);
    let from = window_start(messages).max(1);
    let mut watch = None;
    consumer
        .wait_processed(messages, |done| {
            if done >= from && watch.is_none() {
                watch = Some((Stopwatch::start(), done));
            }
        })
        .await?;
    let (watch, started_at) = watch.unwrap_or((Stopwatch::start(), messages));
    let run = watch.run(messages - started_at);
    consumer.stop().await?;
    Ok(run)
}
