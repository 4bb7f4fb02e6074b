//! Awaiting delivery reports: one task for every message in flight.
//!
//! The send loop hands each accepted message to [`Deliveries`]; a single
//! task awaits all their reports together, records ack latency and the
//! outcome, ends each message's `send` span with the acknowledged partition
//! and offset (or the error), and sends again what librdkafka failed for a
//! reason that can pass (see [`crate::resend`]). One task, not one per
//! message: a task per message is scheduled on a worker, wakes it, and has
//! its state allocated on the send loop's thread and freed on another,
//! which at saturation costs more CPU than the rest of the send loop.
//!
//! The task also keeps the producer's settled mark (see [`crate::settled`]):
//! messages reach it in sequence order, and it publishes the mark after
//! each settlement for the send loop to stamp on the next message.
//!
//! A message waiting to be sent again is outside librdkafka's bounded
//! queue, so the task counts them: while `producer.resend_capacity` wait,
//! [`Deliveries::resend_full`] holds the send loop back, as librdkafka's
//! `QueueFull` does. What the process holds stays bounded by that capacity
//! plus librdkafka's own queue. The
//! messages reach the task through a vector swapped under a lock, not a
//! channel: a channel allocates a block of slots every few dozen messages
//! on the sending thread and frees it on another, which makes glibc's
//! allocator consolidate its free lists on the send loop's thread.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use meshflow_common::kafka::error_reason;
use meshflow_common::spans;
use opentelemetry::global::BoxedSpan;
use opentelemetry::trace::Span;
use rdkafka::producer::{DeliveryFuture, FutureProducer};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::ProducerMetrics;
use crate::resend::{self, Failure};
use crate::settled::Settled;

/// A message librdkafka accepted, whose delivery report is awaited.
pub struct Sent {
    /// Its delivery report.
    pub delivery: DeliveryFuture,
    /// Its `send` span, ended with the outcome.
    pub span: BoxedSpan,
    /// Its sequence number (for log lines).
    pub seq: u64,
    /// When librdkafka accepted it (ack latency, resend deadline).
    pub handed_at: Instant,
}

/// Messages acknowledged so far (the rest of those handed over failed),
/// those waiting to be sent again now, and the settled mark.
#[derive(Debug, Default)]
struct Outcomes {
    acked: AtomicU64,
    resend_waiting: AtomicUsize,
    /// Every sequence number below it is settled ([`Settled::mark`]).
    settled: AtomicU64,
}

/// Messages handed over and not yet taken by the delivery task.
#[derive(Default)]
struct Inbox {
    queue: Mutex<Queue>,
    /// Told when the queue stops being empty, or is closed.
    arrived: Notify,
}

#[derive(Default)]
struct Queue {
    sent: Vec<Sent>,
    /// No more messages will come.
    closed: bool,
}

impl Inbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves a consistent vector.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, sent: Sent) {
        let mut queue = self.lock();
        let was_empty = queue.sent.is_empty();
        queue.sent.push(sent);
        drop(queue);
        if was_empty {
            self.arrived.notify_one();
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.arrived.notify_one();
    }

    /// Moves what arrived into `into` (empty, its capacity reused); whether
    /// the inbox is closed.
    fn take(&self, into: &mut Vec<Sent>) -> bool {
        let mut queue = self.lock();
        std::mem::swap(&mut queue.sent, into);
        queue.closed
    }
}

/// What the delivery task needs besides the messages.
struct Shared {
    producer: FutureProducer,
    metrics: ProducerMetrics,
    message_timeout: Duration,
    give_up: CancellationToken,
    outcomes: Arc<Outcomes>,
}

/// The delivery task and the way to hand it messages.
pub struct Deliveries {
    inbox: Arc<Inbox>,
    task: JoinHandle<()>,
    outcomes: Arc<Outcomes>,
    give_up: CancellationToken,
    resend_capacity: usize,
}

impl Deliveries {
    /// Starts the task. A failed message is sent again through `producer`
    /// until `message_timeout` after it was handed over, or until
    /// [`Deliveries::finish`] gives up; `resend_capacity` bounds the
    /// messages waiting for that (see [`Deliveries::resend_full`]).
    pub fn start(
        producer: FutureProducer,
        metrics: ProducerMetrics,
        message_timeout: Duration,
        resend_capacity: usize,
    ) -> Deliveries {
        let inbox = Arc::new(Inbox::default());
        let outcomes = Arc::new(Outcomes::default());
        let give_up = CancellationToken::new();
        let shared = Shared {
            producer,
            metrics,
            message_timeout,
            give_up: give_up.clone(),
            outcomes: outcomes.clone(),
        };
        let task = tokio::spawn(await_all(shared, inbox.clone()));
        Deliveries {
            inbox,
            task,
            outcomes,
            give_up,
            resend_capacity,
        }
    }

    /// Whether `producer.resend_capacity` messages wait to be sent again:
    /// the send loop then waits before handing over a new one.
    pub fn resend_full(&self) -> bool {
        self.outcomes.resend_waiting.load(Ordering::Relaxed) >= self.resend_capacity
    }

    /// Every sequence number below this one is settled: acknowledged, or
    /// failed for good. At most the sequence number of the next message
    /// handed over, so it can be stamped on it (`mf-settled`).
    pub fn settled(&self) -> u64 {
        self.outcomes.settled.load(Ordering::Relaxed)
    }

    /// Awaits `sent`'s delivery report. Messages are pushed in sequence
    /// order.
    pub fn push(&self, sent: Sent) {
        self.inbox.push(sent);
    }

    /// No more messages: waits for every delivery, re-sends included, for
    /// at most `flush_timeout`; then stops re-sending, calls `purge` (which
    /// fails what is still queued or in flight at once) and waits for the
    /// rest. Returns (acked, failed) out of `handed` messages.
    pub async fn finish(
        self,
        handed: u64,
        flush_timeout: Duration,
        purge: impl FnOnce() + Send + 'static,
    ) -> (u64, u64) {
        let Deliveries {
            inbox,
            mut task,
            outcomes,
            give_up,
            ..
        } = self;
        inbox.close();
        if tokio::time::timeout(flush_timeout, &mut task)
            .await
            .is_err()
        {
            tracing::warn!("deliveries did not complete within producer.shutdown_flush_timeout");
            give_up.cancel();
            let _ = tokio::task::spawn_blocking(purge).await;
            let _ = task.await;
        }
        let acked = outcomes.acked.load(Ordering::Relaxed);
        // A message whose outcome is unknown (the task died) failed.
        (acked, handed.saturating_sub(acked))
    }
}

/// Awaits every message that arrives in `inbox` until it is closed and
/// nothing is left in flight.
async fn await_all(shared: Shared, inbox: Arc<Inbox>) {
    let mut in_flight = FuturesUnordered::new();
    let mut arrived = Vec::new();
    let mut settled = Settled::default();
    loop {
        let closed = inbox.take(&mut arrived);
        in_flight.extend(arrived.drain(..).map(|sent| {
            settled.handed(sent.seq);
            settle(&shared, sent)
        }));
        if closed && in_flight.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            Some(seq) = in_flight.next(), if !in_flight.is_empty() => {
                settled.settle(seq);
                shared.outcomes.settled.store(settled.mark(), Ordering::Relaxed);
            }
            _ = inbox.arrived.notified() => {}
        }
    }
}

/// Awaits one message's delivery (sending it again while that can pass),
/// then records the outcome on the metrics and the span; returns its
/// sequence number.
async fn settle(shared: &Shared, sent: Sent) -> u64 {
    let Sent {
        delivery,
        mut span,
        seq,
        handed_at,
    } = sent;
    let metrics = &shared.metrics;
    let result = match delivery.await {
        Ok(Ok(d)) => Ok(d),
        // Rare: the re-send state is boxed so that every message in flight
        // does not carry its size.
        Ok(Err((error, message))) => {
            let waiting = &shared.outcomes.resend_waiting;
            metrics.set_resend_waiting(waiting.fetch_add(1, Ordering::Relaxed) + 1);
            let result = Box::pin(resend::deliver_again(
                &shared.producer,
                error,
                message,
                handed_at + shared.message_timeout,
                &shared.give_up,
                |why, e| {
                    metrics.record_error(error_reason(e));
                    metrics.record_resend(why.reason);
                    if why.may_be_written {
                        tracing::warn!(error = %e, seq, reason = why.reason,
                            "delivery failed with an unknown outcome, sending it again \
                             (the log may hold it twice)");
                    } else {
                        tracing::warn!(error = %e, seq, reason = why.reason,
                            "delivery failed, sending it again");
                    }
                },
            ))
            .await;
            metrics.set_resend_waiting(waiting.fetch_sub(1, Ordering::Relaxed) - 1);
            result
        }
        Err(_) => Err(Failure::Canceled),
    };
    match result {
        Ok(d) => {
            metrics.record_acked(handed_at.elapsed().as_secs_f64());
            span.set_attribute(spans::partition(d.partition));
            span.set_attribute(spans::offset(d.offset));
            span.end();
            shared.outcomes.acked.fetch_add(1, Ordering::Relaxed);
        }
        Err(Failure::Kafka(e)) => {
            let reason = error_reason(&e);
            metrics.record_failed(reason, handed_at.elapsed().as_secs_f64());
            spans::end_failed(&mut span, reason, &e);
            tracing::error!(error = %e, reason, seq, "delivery failed");
        }
        Err(Failure::Canceled) => {
            metrics.record_failed("canceled", handed_at.elapsed().as_secs_f64());
            span.set_attribute(spans::error_type("canceled"));
            span.end();
        }
    }
    seq
}
