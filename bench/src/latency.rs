//! End-to-end latency, creation to processing, at a fixed rate.
//!
//! Plain: the plain producer writes its creation time into the payload and
//! a plain consumer loop takes `now - created` when it has the message.
//! meshflow: its producer and consumer loops as the binaries run them; the
//! latency of each message is `processed_ns - created_ns` from its receipt,
//! read back from the receipts topic. Both run in this process, so both
//! clocks are one.
//!
//! The first second of messages is left out (the producer is still
//! fetching its id and metadata), and both consumers fetch with
//! `fetch.wait.max.ms` = [`FETCH_WAIT_MS`]: the mock cluster answers a fetch
//! only when that wait is over, which would otherwise put up to 100 ms of
//! the broker's own waiting into every figure on both sides.

use std::time::Duration;

use meshflow_common::envelope::now_ns;
use meshflow_common::headers::HeaderView;
use meshflow_common::receipt::{decode, FORMAT_HEADER};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::ClientConfig;

use crate::consumer::{meshflow_config, plain_client, MeshflowConsumer};

/// `fetch.wait.max.ms` of both consumers here.
pub const FETCH_WAIT_MS: u32 = 5;

/// Messages left out at the start: one second at 1,000 msg/s.
pub const WARM_UP: u64 = 1_000;
use crate::producer::{self, Load};

/// Percentiles of a latency sample, in milliseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Percentiles {
    /// Messages measured.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `ns`.
    pub fn of(mut ns: Vec<u64>) -> Self {
        ns.sort_unstable();
        let at = |q: f64| {
            if ns.is_empty() {
                return 0.0;
            }
            let rank = ((q * ns.len() as f64).ceil() as usize).clamp(1, ns.len());
            ns[rank - 1] as f64 / 1e6
        };
        Percentiles {
            count: ns.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
        }
    }
}

/// Plain producer and plain consumer; `load.topic` must be new.
pub async fn plain(load: &Load, group: &str) -> anyhow::Result<Percentiles> {
    let consumer = plain_client(&load.bootstrap, group, FETCH_WAIT_MS)?;
    consumer.subscribe(&[&load.topic])?;
    // Joined once a poll returns with partitions assigned.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while consumer.assignment()?.count() == 0 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "plain consumer never assigned"
        );
        let _ = tokio::time::timeout(Duration::from_millis(50), consumer.recv()).await;
    }
    let n = load.messages;
    let reader = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(n as usize);
        let mut seen = 0u64;
        while seen < n {
            let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await??;
            let now = now_ns();
            consumer.store_offset_from_message(&m)?;
            seen += 1;
            let seq: u64 = m
                .key()
                .and_then(|k| std::str::from_utf8(k).ok()?.parse().ok())
                .unwrap_or(0);
            if seq < WARM_UP {
                continue;
            }
            if let Some(created) = m.payload().and_then(|p| p.get(..8)) {
                let created = u64::from_le_bytes(created.try_into()?);
                latencies.push(now.saturating_sub(created));
            }
        }
        anyhow::Ok(latencies)
    });
    producer::plain(load).await?;
    Ok(Percentiles::of(reader.await??))
}

/// What meshflow's run cost on the receipts topic.
#[derive(Debug, Clone, Copy)]
pub struct ReceiptCost {
    /// Bytes of receipt records (key, headers and body) per message.
    pub bytes_per_message: f64,
}

/// meshflow's producer and consumer; `load.topic` and `receipts` must be new.
pub async fn meshflow(
    load: &Load,
    group: &str,
    receipts: &str,
) -> anyhow::Result<(Percentiles, ReceiptCost)> {
    let instance = format!("bench-producer-{}", meshflow_tests::unique("e2e"));
    let mut config = meshflow_config(
        &load.bootstrap,
        &load.topic,
        group,
        receipts,
        &format!("bench-consumer-{group}"),
    );
    config
        .kafka
        .librdkafka
        .insert("fetch.wait.max.ms".into(), FETCH_WAIT_MS.to_string());
    let consumer = MeshflowConsumer::start(config);
    consumer.assigned().await?;
    producer::meshflow(load, &instance).await?;
    consumer.wait_processed(load.messages, |_| {}).await?;
    let (latencies, cost) =
        read_receipts(&load.bootstrap, receipts, &instance, load.messages).await?;
    consumer.stop().await?;
    Ok((Percentiles::of(latencies), cost))
}

/// `processed_ns - created_ns` of the first `n` receipt entries of
/// `producer`, and the receipt bytes their records took.
async fn read_receipts(
    bootstrap: &str,
    topic: &str,
    producer: &str,
    n: u64,
) -> anyhow::Result<(Vec<u64>, ReceiptCost)> {
    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", meshflow_tests::unique("bench-receipts"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    reader.subscribe(&[topic])?;
    let mut latencies = Vec::with_capacity(n as usize);
    let mut seen = 0u64;
    let mut bytes = 0usize;
    while seen < n {
        let m = tokio::time::timeout(Duration::from_secs(30), reader.recv()).await??;
        let Some(payload) = m.payload() else { continue };
        let headers = HeaderView::of(m.headers());
        bytes += payload.len() + m.key().map_or(0, <[u8]>::len);
        bytes += headers
            .iter()
            .map(|(name, value)| name.len() + value.map_or(0, <[u8]>::len))
            .sum::<usize>();
        let format = headers.get(FORMAT_HEADER);
        let batch = decode(format, payload)?;
        batch.for_each_entry(|e| {
            if e.producer != producer {
                return;
            }
            seen += 1;
            if e.seq >= WARM_UP {
                latencies.push(e.processed_ns.saturating_sub(e.created_ns));
            }
        });
    }
    let cost = ReceiptCost {
        bytes_per_message: bytes as f64 / seen.max(1) as f64,
    };
    Ok((latencies, cost))
}
