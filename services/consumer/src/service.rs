//! The consume loop.
//!
//! For each message: read the envelope and the trace context, open a
//! `process <topic>` span (see `spans.rs`), do the (simulated) work, log one
//! line, and settle it in the receipt sink's ledger. A malformed envelope
//! goes to the dead-letter topic first, and is settled as dead-lettered
//! only once its dead letter is acknowledged (a dead letter still failing
//! at shutdown holds its partition: the loop stops and the offset stays
//! uncommitted). A background task flushes receipts every
//! `receipt_flush_interval`, or sooner when the ledger's [`pressure`] says
//! a batch is full; offsets are stored only after that. On shutdown: stop
//! consuming, flush, commit, leave the group.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meshflow_common::cluster::{ensure_topic, supervise_kafka_probe};
use meshflow_common::envelope::{Envelope, HeaderView};
use meshflow_common::fatal;
use meshflow_common::http::Readiness;
use meshflow_common::propagation::extract;
use meshflow_common::shutdown::Supervisor;
use meshflow_common::spans;
use opentelemetry::global;
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{Status, TraceContextExt};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::TopicPartitionList;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clients::Clients;
use crate::config::Config;
use crate::context::{store_next, GroupContext, READY_FLOWING};
use crate::dead_letter::DeadLetter;
use crate::ledger::{pressure, Outcome, Pressure, Step};
use crate::metrics::ConsumerMetrics;
use crate::receipts::{self, ReceiptSink};

/// Readiness condition: Kafka answers metadata requests.
pub const READY_KAFKA: &str = meshflow_common::contract::ready::KAFKA;

/// Errors that stop the consumer.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// A librdkafka client could not be created (bad settings).
    #[error("kafka client: {0}")]
    Client(#[source] KafkaError),
    /// Subscribing failed.
    #[error("subscribe: {0}")]
    Subscribe(#[source] KafkaError),
    /// A background task died (receipt flusher, reachability probe), or
    /// librdkafka reported a fatal error (the fatal error watcher returned);
    /// the consumer drained and stopped so that a fresh process takes over.
    #[error(transparent)]
    TaskEnded(#[from] meshflow_common::shutdown::TaskEnded),
}

/// The group consumer.
pub type GroupConsumer = StreamConsumer<GroupContext>;

/// Everything the loop needs.
pub(crate) struct Worker {
    pub(crate) config: Config,
    pub(crate) instance: String,
    pub(crate) consumer: Arc<GroupConsumer>,
    pub(crate) dlq: FutureProducer,
    pub(crate) sink: Arc<ReceiptSink>,
    pub(crate) metrics: ConsumerMetrics,
    pub(crate) tracer: BoxedTracer,
    pub(crate) flush_now: Arc<Notify>,
    pub(crate) readiness: Arc<Readiness>,
}

/// Runs until `shutdown` fires, then drains and commits.
pub async fn run(
    config: Config,
    instance: String,
    metrics: ConsumerMetrics,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
) -> Result<(), ConsumerError> {
    let settings = config.consumer.clone();
    if settings.create_topics {
        for topic in [settings.receipts_topic.clone(), settings.dlq_topic()] {
            if !ensure_topic(
                &config.kafka,
                &topic,
                settings.partitions,
                settings.replication_factor,
                settings.topic_retention,
                &shutdown,
            )
            .await
            {
                return Ok(());
            }
        }
    }
    let Clients {
        producer,
        sink,
        consumer,
    } = Clients::connect(&config, &instance, &metrics, &readiness)?;
    tracing::info!(topic = %settings.topic, group = %settings.group, instance, "consuming");

    let supervisor = Supervisor::new(shutdown.clone());
    let (_probe, probe_abort) =
        supervise_kafka_probe(&supervisor, &consumer, &settings.topic, &readiness);
    // The receipt and dead-letter producer is idempotent: after a fatal
    // error it refuses every send, so nothing would be committed again.
    let (fatal_producer, fatal_consumer) = (producer.clone(), consumer.clone());
    let fatal_check = move || {
        fatal_producer
            .client()
            .fatal_error()
            .or_else(|| fatal_consumer.client().fatal_error())
    };
    readiness.set(READY_FLOWING, true);
    let _fatal = fatal::supervise(&supervisor, "consumer", fatal_check, readiness.clone());
    let flush_now = Arc::new(Notify::new());
    let stop_flusher = CancellationToken::new();
    let flusher = supervisor.spawn(
        "receipt flusher",
        flush_periodically(
            sink.clone(),
            consumer.clone(),
            settings.receipt_flush_interval,
            flush_now.clone(),
            stop_flusher.clone(),
        ),
    );

    let worker = Worker {
        tracer: global::tracer("meshflow-consumer"),
        config,
        instance,
        consumer: consumer.clone(),
        dlq: producer,
        sink: sink.clone(),
        metrics,
        flush_now,
        readiness,
    };
    worker.consume(&shutdown).await;

    // Drain: no more messages are taken; flush what was processed, store its
    // offsets and commit before leaving the group.
    stop_flusher.cancel();
    let _ = flusher.await;
    drain(&consumer, &sink, Instant::now() + settings.drain_timeout).await;
    sink.stop();
    probe_abort.abort();
    // Dropping the consumer closes it: it leaves the group so the partitions
    // move at once instead of after the session timeout.
    let closing = consumer.clone();
    drop(worker);
    drop(consumer);
    let _ = tokio::task::spawn_blocking(move || {
        closing.unsubscribe();
        drop(closing);
    })
    .await;
    Ok(supervisor.result()?)
}

impl Worker {
    /// Consumes until `shutdown`.
    async fn consume(&self, shutdown: &CancellationToken) {
        let batch_max = self.config.consumer.receipt_batch_max;
        loop {
            let message = tokio::select! {
                _ = shutdown.cancelled() => break,
                m = self.consumer.recv() => m,
            };
            match message {
                Ok(m) => {
                    // Fetched before its partition was parked: left for
                    // the partition's next owner.
                    if self.sink.is_held(m.topic(), m.partition(), m.offset()) {
                        continue;
                    }
                    match self.handle(&m, shutdown).await {
                        Step::Continue => {}
                        Step::Stop => break,
                        Step::Park => self.park(&m),
                    }
                    if pressure(self.sink.waiting(), batch_max) >= Pressure::FlushNow {
                        self.flush_now.notify_one();
                    }
                    while pressure(self.sink.waiting(), batch_max) == Pressure::Pause
                        && !shutdown.is_cancelled()
                    {
                        self.flush_now.notify_one();
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "consume error");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            }
        }
    }

    /// Stops taking messages from `m`'s partition, held at `m`, while the
    /// others flow on; says so on `/metrics` and `/readyz`.
    fn park(&self, m: &BorrowedMessage<'_>) {
        let mut tpl = TopicPartitionList::with_capacity(1);
        tpl.add_partition(m.topic(), m.partition());
        if let Err(e) = self.consumer.pause(&tpl) {
            tracing::error!(error = %e, "pause a parked partition");
        }
        let parked = self.sink.held();
        self.metrics.set_parked(parked);
        self.readiness.set(READY_FLOWING, parked == 0);
        tracing::error!(
            topic = %m.topic(), partition = m.partition(), offset = m.offset(), parked,
            "partition parked at a message whose dead letter was refused; \
             it resumes once revoked and assigned again (e.g. after a restart)"
        );
    }

    /// Processes one message and settles it in the ledger, which says
    /// whether to take the next one ([`Step::Stop`] only for a malformed
    /// message whose dead letter was not acknowledged before shutdown,
    /// [`Step::Park`] for one whose dead letter was refused for good: its
    /// offset is never stored and the next owner of the partition reads it
    /// again).
    async fn handle(&self, m: &BorrowedMessage<'_>, shutdown: &CancellationToken) -> Step {
        let started = Instant::now();
        self.metrics.record_consumed();
        let settings = &self.config.consumer;
        let topic = m.topic().to_string();
        let (partition, offset) = (m.partition(), m.offset());
        let headers = HeaderView::of(m.headers());
        let extracted = extract(&headers);
        if extracted.malformed {
            self.metrics.record_trace_invalid();
        }
        let cx = self.process_span(m, &extracted.context);
        let trace_id = cx.span().span_context().trace_id().to_string();
        let span_id = cx.span().span_context().span_id().to_string();

        let envelope = match Envelope::parse(headers.iter()) {
            Ok(e) => e,
            Err(e) => {
                let reason = e.reason();
                self.metrics.record_invalid(reason);
                cx.span().set_attribute(spans::error_type(reason));
                let outcome = match self
                    .dead_letter(m, &cx, &e.to_string(), reason, shutdown)
                    .await
                {
                    DeadLetter::Written => Outcome::DeadLettered,
                    DeadLetter::Refused(_) => Outcome::DeadLetterRefused,
                    DeadLetter::Interrupted => {
                        tracing::warn!(
                            topic = %topic, partition, offset,
                            "dead letter not written; offset left uncommitted"
                        );
                        Outcome::DeadLetterFailed
                    }
                };
                cx.span().end();
                let took = started.elapsed().as_secs_f64();
                self.metrics.record_process_time(took, Some(reason));
                return self.sink.settle(topic, partition, offset, outcome, None);
            }
        };
        if !settings.work.is_zero() {
            tokio::time::sleep(settings.work).await;
        }
        self.metrics.record_processed(envelope.is_some());
        let (receipt, process_span) = match &envelope {
            Some(env) => {
                tracing::info!(
                    topic = %topic, partition, offset, producer = %env.producer, seq = env.seq,
                    trace_id = %trace_id, span_id = %span_id, "processed"
                );
                let entry = receipts::entry(env, &topic, partition, offset, trace_id);
                (Some(entry), Some(cx.span().span_context().clone()))
            }
            None => {
                tracing::info!(
                    topic = %topic, partition, offset, trace_id = %trace_id, span_id = %span_id,
                    "processed unenveloped"
                );
                (None, None)
            }
        };
        cx.span().set_status(Status::Ok);
        cx.span().end();
        self.metrics
            .record_process_time(started.elapsed().as_secs_f64(), None);
        self.sink.settle(
            topic,
            partition,
            offset,
            Outcome::Processed(receipt),
            process_span,
        )
    }
}

/// Flushes what was processed by `deadline`, stores its offsets and commits
/// them synchronously, whatever the flush achieved.
async fn drain(consumer: &Arc<GroupConsumer>, sink: &Arc<ReceiptSink>, deadline: Instant) {
    let (c, s) = (consumer.clone(), sink.clone());
    let flushed = tokio::task::spawn_blocking(move || {
        let r = s.flush(&|t, p, o| store_next(&*c, t, p, o), Some(deadline));
        let commit = c.commit_consumer_state(CommitMode::Sync);
        (r, commit)
    })
    .await;
    match flushed {
        Ok((r, commit)) => tracing::info!(flushed = ?r, commit = ?commit.err(), "drained"),
        Err(e) => tracing::error!(error = %e, "drain task"),
    }
}

/// Flushes receipts every `interval`, or sooner when asked.
async fn flush_periodically(
    sink: Arc<ReceiptSink>,
    consumer: Arc<GroupConsumer>,
    interval: Duration,
    flush_now: Arc<Notify>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
            _ = flush_now.notified() => {}
        }
        let (s, c) = (sink.clone(), consumer.clone());
        let stopped = stop.clone();
        // A flush retries while Kafka is away; shutdown makes it give up.
        let watcher = {
            let s = sink.clone();
            let stopped = stopped.clone();
            tokio::spawn(async move {
                stopped.cancelled().await;
                s.stop();
            })
        };
        let _ =
            tokio::task::spawn_blocking(move || s.flush(&|t, p, o| store_next(&*c, t, p, o), None))
                .await;
        watcher.abort();
    }
}
