//! Publishing receipts: the I/O shell over the [`Ledger`].
//!
//! [`ReceiptSink`] keeps the ledger behind a lock. [`ReceiptSink::flush`]
//! takes a flight of records from it, sends them to the receipts topic
//! (waiting out a full queue), retries what Kafka did not acknowledge as
//! the ledger's [`Backoff`] says, and once all are acknowledged stores the
//! offsets the ledger names. Each record sent has a `send <receipts topic>`
//! span of its own, linked to the spans of the messages it reports on. The
//! rules (which
//! offset, which record, when to give up) live in [`crate::ledger`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::future::join_all;
use meshflow_common::envelope::now_ns;
use meshflow_common::kafka::error_reason;
use meshflow_common::receipt::{ReceiptEntry, FORMAT_HEADER};
use meshflow_common::spans;
use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::trace::{Span, SpanContext, Status};
use opentelemetry::Context;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

use crate::ledger::{
    gives_up, past, Backoff, Begin, Landing, Ledger, Outcome, Record, Retry, Shape, Step,
};
use crate::metrics::ConsumerMetrics;

pub use crate::ledger::Flushed;

/// Collects settled messages and publishes their receipts in batches.
pub struct ReceiptSink {
    producer: FutureProducer,
    topic: String,
    metrics: ConsumerMetrics,
    ledger: Mutex<Ledger<SpanContext>>,
    tracer: BoxedTracer,
    stopping: AtomicBool,
    /// Whether any partition is held: lets [`ReceiptSink::is_held`], asked
    /// for every message, skip the ledger's lock while none is.
    any_held: AtomicBool,
}

impl ReceiptSink {
    /// A sink publishing to `topic` for `group` as `consumer`, in records
    /// of the [`Shape`] given.
    pub fn new(
        producer: FutureProducer,
        topic: String,
        group: String,
        consumer: String,
        shape: Shape,
        metrics: ConsumerMetrics,
    ) -> Self {
        ReceiptSink {
            producer,
            topic,
            metrics,
            ledger: Mutex::new(Ledger::new(group, consumer, shape)),
            tracer: global::tracer("meshflow-consumer"),
            stopping: AtomicBool::new(false),
            any_held: AtomicBool::new(false),
        }
    }

    /// Records how a message ended (see [`Ledger::settle`]).
    pub fn settle(
        &self,
        topic: String,
        partition: i32,
        offset: i64,
        outcome: Outcome,
        span: Option<SpanContext>,
    ) -> Step {
        let mut ledger = lock(&self.ledger);
        let step = ledger.settle(topic, partition, offset, outcome, span);
        if step != Step::Continue {
            self.any_held.store(true, Ordering::SeqCst);
        }
        step
    }

    /// Whether `topic/partition/offset` comes after a held message of its
    /// partition (see [`Ledger::is_held`]).
    pub fn is_held(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.any_held.load(Ordering::SeqCst) && lock(&self.ledger).is_held(topic, partition, offset)
    }

    /// Partitions held at a message neither receipted nor dead-lettered.
    pub fn held(&self) -> usize {
        lock(&self.ledger).held()
    }

    /// Forgets the held messages of revoked `partitions`; returns how many
    /// partitions stay held.
    pub fn release(&self, partitions: &[(String, i32)]) -> usize {
        let mut ledger = lock(&self.ledger);
        let held = ledger.release(partitions);
        self.any_held.store(held > 0, Ordering::SeqCst);
        held
    }

    /// How many settled messages wait for the next flush.
    pub fn waiting(&self) -> usize {
        lock(&self.ledger).waiting()
    }

    /// Makes an open-ended flush (the periodic one) that is retrying give up
    /// at its next attempt; a flush with a deadline (the drain) goes on
    /// until its deadline.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Publishes everything waiting, waits for Kafka's acknowledgement and
    /// then calls `store(topic, partition, next_offset)` for each partition.
    /// Retries failed records until acknowledged or `deadline` passes; with
    /// no deadline, until [`ReceiptSink::stop`] is called. Blocks: call it from a blocking
    /// thread or a librdkafka callback.
    pub fn flush(&self, store: &dyn Fn(&str, i32, i64), deadline: Option<Instant>) -> Flushed {
        let mut flight = loop {
            match lock(&self.ledger).begin() {
                Begin::Flight(f) => break f,
                Begin::Empty => return Flushed::Empty,
                Begin::Busy if past(deadline, Instant::now()) => return Flushed::GaveUp,
                Begin::Busy => {}
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let _unwinding = ReturnOnPanic(&self.ledger);
        let mut backoff = Backoff::default();
        loop {
            let sends: Vec<_> = flight
                .unacked()
                .map(|(i, r)| {
                    let links = lock(&self.ledger).spans_of(r);
                    let sent = self.send(r, links, deadline);
                    async move { (i, sent.await) }
                })
                .collect();
            for (i, ok) in futures::executor::block_on(join_all(sends)) {
                if ok {
                    flight.acknowledge(i);
                }
            }
            if flight.is_acknowledged() {
                break;
            }
            self.metrics.record_receipt_error();
            match backoff.after_failure(Instant::now(), deadline, self.stopping()) {
                Retry::After(wait) => std::thread::sleep(wait),
                Retry::GiveUp => break,
            }
        }
        let landing = lock(&self.ledger).land(flight);
        match landing {
            Landing::Returned { waiting } => {
                tracing::warn!(waiting, "receipts not acknowledged; offsets not stored");
                Flushed::GaveUp
            }
            Landing::Stored {
                offsets,
                items,
                entries,
            } => {
                for o in &offsets {
                    store(&o.topic, o.partition, o.next);
                }
                self.metrics.record_receipts(entries as u64);
                Flushed::Done {
                    items: items.len(),
                    entries,
                }
            }
        }
    }

    /// Sends one record, its format named in its header, waiting out a full
    /// queue, under a `send` span linked to `links` (the spans of the
    /// messages it reports on); resolves to whether Kafka acknowledged it.
    fn send<'a>(
        &'a self,
        r: &'a Record,
        links: Vec<SpanContext>,
        deadline: Option<Instant>,
    ) -> impl std::future::Future<Output = bool> + 'a {
        // A root of its own: a batch has many parents, so it links to them.
        let mut span = spans::batch_send(&self.topic, &r.key, r.entries, links)
            .start_with_context(&self.tracer, &Context::new());
        let started = Instant::now();
        let format = OwnedHeaders::new_with_capacity(1).insert(Header {
            key: FORMAT_HEADER,
            value: Some(r.format.header_value()),
        });
        let mut record = FutureRecord::to(&self.topic)
            .key(&r.key)
            .payload(&r.body)
            .headers(format);
        let handed = loop {
            match self.producer.send_result(record) {
                Ok(d) => break Some(d),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if gives_up(deadline, Instant::now(), self.stopping()) {
                        break None;
                    }
                    record = back;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err((e, _)) => {
                    tracing::warn!(error = %e, "receipt send refused");
                    spans::end_failed(&mut span, error_reason(&e), &e);
                    break None;
                }
            }
        };
        async move {
            match handed {
                Some(d) => match d.await {
                    Ok(Ok(delivery)) => {
                        let took = started.elapsed().as_secs_f64();
                        self.metrics.record_receipt_send(took, None);
                        span.set_attribute(spans::partition(delivery.partition));
                        span.set_attribute(spans::offset(delivery.offset));
                        span.set_status(Status::Ok);
                        span.end();
                        true
                    }
                    Ok(Err((e, _))) => {
                        tracing::warn!(error = %e, "receipt delivery failed");
                        let took = started.elapsed().as_secs_f64();
                        self.metrics
                            .record_receipt_send(took, Some(error_reason(&e)));
                        spans::end_failed(&mut span, error_reason(&e), &e);
                        false
                    }
                    Err(e) => {
                        spans::end_failed(&mut span, "canceled", &e);
                        false
                    }
                },
                // Gave up waiting for room in the queue.
                None => {
                    span.end();
                    false
                }
            }
        }
    }
}

/// Returns the flight in progress to the ledger if a flush panics, so that
/// later flushes are not refused as busy and its items are sent again.
struct ReturnOnPanic<'a>(&'a Mutex<Ledger<SpanContext>>);

impl Drop for ReturnOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            lock(self.0).abandon();
        }
    }
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
