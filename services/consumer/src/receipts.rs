//! Receipts and the offsets they stand for.
//!
//! Every consumed message becomes a [`Pending`] item once it is processed:
//! with a receipt entry if it was enveloped, without one otherwise (an
//! unenveloped or dead-lettered message only needs its offset to advance).
//! [`ReceiptSink::flush`] publishes the waiting entries as JSON records keyed
//! by producer instance (cut by entry count and by encoded size, so that each
//! fits the producer's `message.max.bytes`), waits until Kafka acknowledges all of them, and only
//! then stores the offsets of the items it flushed. Flushes are serialised
//! and items kept in consumption order, so a stored offset never runs ahead
//! of an unacknowledged receipt: a crash can duplicate a receipt but never
//! lose one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::future::join_all;
use meshflow_common::envelope::now_ns;
use meshflow_common::receipt::{ReceiptBatch, ReceiptEntry};
use opentelemetry::global::BoxedSpan;
use opentelemetry::trace::{Span, Status};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

use crate::metrics::ConsumerMetrics;

/// A processed message waiting for its receipt to be acknowledged.
pub struct Pending {
    /// Topic the message came from.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its receipt entry, if it was enveloped.
    pub receipt: Option<ReceiptEntry>,
    /// The `send <receipts topic>` span, a child of the message's `process`
    /// span, ended when the receipt is acknowledged.
    pub span: Option<BoxedSpan>,
}

/// How a flush ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Nothing was waiting.
    Empty,
    /// Every entry acknowledged and the offsets stored.
    Done {
        /// Items whose offsets were stored.
        items: usize,
        /// Receipt entries acknowledged.
        entries: usize,
    },
    /// Gave up (deadline or shutdown); the items are waiting again.
    GaveUp,
}

/// Collects processed messages and publishes their receipts in batches.
pub struct ReceiptSink {
    producer: FutureProducer,
    topic: String,
    group: String,
    consumer: String,
    batch_max: usize,
    batch_bytes_max: usize,
    metrics: ConsumerMetrics,
    pending: Mutex<Vec<Pending>>,
    flushing: Mutex<()>,
    stopping: AtomicBool,
}

impl ReceiptSink {
    /// A sink publishing to `topic` for `group` as `consumer`, in records
    /// of at most `batch_max` entries and `batch_bytes_max` encoded bytes.
    pub fn new(
        producer: FutureProducer,
        topic: String,
        group: String,
        consumer: String,
        batch_max: usize,
        batch_bytes_max: usize,
        metrics: ConsumerMetrics,
    ) -> Self {
        ReceiptSink {
            producer,
            topic,
            group,
            consumer,
            batch_max,
            batch_bytes_max,
            metrics,
            pending: Mutex::new(Vec::new()),
            flushing: Mutex::new(()),
            stopping: AtomicBool::new(false),
        }
    }

    /// Queues a processed message; returns how many are waiting.
    pub fn push(&self, item: Pending) -> usize {
        let mut pending = lock(&self.pending);
        pending.push(item);
        pending.len()
    }

    /// How many processed messages wait for their receipts.
    pub fn waiting(&self) -> usize {
        lock(&self.pending).len()
    }

    /// Makes a flush that is retrying give up at its next attempt.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Publishes everything waiting, waits for Kafka's acknowledgement and
    /// then calls `store(topic, partition, next_offset)` for each partition.
    /// Retries failed batches until acknowledged, `deadline` passes or
    /// [`ReceiptSink::stop`] was called. Blocks: call it from a blocking
    /// thread or a librdkafka callback.
    pub fn flush(&self, store: &dyn Fn(&str, i32, i64), deadline: Option<Instant>) -> Flushed {
        let _serial = loop {
            match self.flushing.try_lock() {
                Ok(g) => break g,
                Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Flushed::GaveUp;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        };
        let mut items = std::mem::take(&mut *lock(&self.pending));
        if items.is_empty() {
            return Flushed::Empty;
        }
        let records = self.records(&items);
        let entries: usize = records.iter().map(|(_, b)| b.entries.len()).sum();
        let mut unacked: Vec<(String, Vec<u8>)> = records
            .into_iter()
            .map(|(key, batch)| (key, serde_json::to_vec(&batch).unwrap_or_default()))
            .collect();
        let mut backoff = Duration::from_millis(100);
        while !unacked.is_empty() {
            let mut waits = Vec::with_capacity(unacked.len());
            for (key, body) in &unacked {
                waits.push(self.send(key, body, deadline));
            }
            let results = futures::executor::block_on(join_all(waits));
            let mut failed = Vec::new();
            for ((key, body), ok) in unacked.into_iter().zip(results) {
                if !ok {
                    failed.push((key, body));
                }
            }
            unacked = failed;
            if unacked.is_empty() {
                break;
            }
            self.metrics.record_receipt_error();
            let expired = deadline.is_some_and(|d| Instant::now() + backoff >= d);
            if expired || self.stopping.load(Ordering::SeqCst) {
                tracing::warn!(
                    waiting = items.len(),
                    "receipts not acknowledged; offsets not stored"
                );
                let mut pending = lock(&self.pending);
                items.append(&mut pending);
                *pending = items;
                return Flushed::GaveUp;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for item in &items {
            let slot = next
                .entry((item.topic.as_str(), item.partition))
                .or_insert(item.offset + 1);
            *slot = (*slot).max(item.offset + 1);
        }
        for ((topic, partition), offset) in next {
            store(topic, partition, offset);
        }
        for item in &mut items {
            if let Some(mut span) = item.span.take() {
                span.set_status(Status::Ok);
                span.end();
            }
        }
        self.metrics.record_receipts(entries as u64);
        Flushed::Done {
            items: items.len(),
            entries,
        }
    }

    /// One batch per producer instance, split at `batch_max` entries or
    /// before its JSON would exceed `batch_bytes_max` bytes, whichever comes
    /// first. A batch too large for the producer would be refused every
    /// time, and rebuilt the same after a restart. A single entry always
    /// makes a batch.
    fn records(&self, items: &[Pending]) -> Vec<(String, ReceiptBatch)> {
        let mut by_producer: BTreeMap<&str, Vec<&ReceiptEntry>> = BTreeMap::new();
        for entry in items.iter().filter_map(|i| i.receipt.as_ref()) {
            by_producer
                .entry(entry.producer.as_str())
                .or_default()
                .push(entry);
        }
        let empty = ReceiptBatch {
            group: self.group.clone(),
            consumer: self.consumer.clone(),
            entries: Vec::new(),
        };
        let frame = encoded_len(&empty);
        let mut out = Vec::new();
        for (producer, entries) in by_producer {
            let mut batch = empty.clone();
            let mut bytes = frame;
            for entry in entries {
                // One comma between entries.
                let size = encoded_len(entry) + 1;
                let full =
                    batch.entries.len() >= self.batch_max || bytes + size > self.batch_bytes_max;
                if full && !batch.entries.is_empty() {
                    out.push((
                        producer.to_string(),
                        std::mem::replace(&mut batch, empty.clone()),
                    ));
                    bytes = frame;
                }
                batch.entries.push(entry.clone());
                bytes += size;
            }
            if !batch.entries.is_empty() {
                out.push((producer.to_string(), batch));
            }
        }
        out
    }

    /// Sends one record, waiting out a full queue; resolves to whether Kafka
    /// acknowledged it.
    fn send<'a>(
        &'a self,
        key: &'a str,
        body: &'a [u8],
        deadline: Option<Instant>,
    ) -> impl std::future::Future<Output = bool> + 'a {
        let mut record = FutureRecord::to(&self.topic).key(key).payload(body);
        let handed = loop {
            match self.producer.send_result(record) {
                Ok(d) => break Some(d),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if deadline.is_some_and(|d| Instant::now() >= d)
                        || self.stopping.load(Ordering::SeqCst)
                    {
                        break None;
                    }
                    record = back;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err((e, _)) => {
                    tracing::warn!(error = %e, "receipt send refused");
                    break None;
                }
            }
        };
        async move {
            match handed {
                Some(d) => match d.await {
                    Ok(Ok(_)) => true,
                    Ok(Err((e, _))) => {
                        tracing::warn!(error = %e, "receipt delivery failed");
                        false
                    }
                    Err(_) => false,
                },
                None => false,
            }
        }
    }
}

/// Length of `value` as JSON.
fn encoded_len<T: serde::Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(0, |v| v.len())
}

/// Locks, recovering from a poisoned mutex (a panic elsewhere must not stop
/// receipts).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A receipt entry for a processed message, stamped now.
pub fn entry(
    envelope: &meshflow_common::envelope::Envelope,
    topic: &str,
    partition: i32,
    offset: i64,
    trace_id: String,
) -> ReceiptEntry {
    ReceiptEntry {
        producer: envelope.producer.clone(),
        seq: envelope.seq,
        created_ns: envelope.created_ns,
        topic: topic.to_string(),
        partition,
        offset,
        processed_ns: now_ns(),
        trace_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;
    use rdkafka::ClientConfig;

    fn sink(batch_max: usize, batch_bytes_max: usize) -> ReceiptSink {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .create()
            .expect("producer");
        let metrics = ConsumerMetrics::register(&mut Registry::default(), "events", "g");
        ReceiptSink::new(
            producer,
            "receipts".into(),
            "g".into(),
            "consumer-with-a-long-instance-name".into(),
            batch_max,
            batch_bytes_max,
            metrics,
        )
    }

    fn pending(seq: u64) -> Pending {
        Pending {
            topic: "meshflow.events".into(),
            partition: 5,
            offset: 1_000_000_000 + seq as i64,
            receipt: Some(ReceiptEntry {
                producer: "producer-7f9c2b1d-host-with-a-long-name".into(),
                seq: u64::MAX - seq,
                created_ns: u64::MAX,
                topic: "meshflow.events".into(),
                partition: 5,
                offset: 1_000_000_000 + seq as i64,
                processed_ns: u64::MAX,
                trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            }),
            span: None,
        }
    }

    #[test]
    fn a_full_batch_fits_the_producers_maximum_message_size() {
        let max = 1_000_000;
        let sink = sink(10_000, max);
        let items: Vec<Pending> = (0..10_000).map(pending).collect();
        let records = sink.records(&items);
        let entries: usize = records.iter().map(|(_, b)| b.entries.len()).sum();
        assert_eq!(entries, 10_000, "every entry is in some record");
        for (_, batch) in &records {
            let bytes = serde_json::to_vec(batch).expect("encodes").len();
            assert!(bytes <= max, "a record of {bytes} bytes exceeds {max}");
        }
    }

    #[test]
    fn one_entry_still_makes_a_record_under_a_tiny_bound() {
        let sink = sink(500, 10);
        let records = sink.records(&[pending(1), pending(2)]);
        assert_eq!(records.len(), 2);
    }
}
