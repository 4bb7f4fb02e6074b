//! The send loop.
//!
//! One message per tick of the configured rate. Each message gets the next
//! sequence number of this producer instance, its creation time, and the
//! context of its own `send <topic>` span (kind PRODUCER) in the headers.
//! A sequence number is consumed only when librdkafka accepts the message,
//! so a refused send never looks like a gap to the exporter. Delivery reports
//! are awaited by one task for all messages (see [`crate::deliveries`]) that
//! records ack latency, the outcome and the acknowledged partition and
//! offset on the span; a message librdkafka failed for a reason that can
//! pass is sent again (see [`crate::resend`]).
//! A fatal librdkafka error (see [`meshflow_common::fatal`]) stops the run
//! with an error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meshflow_common::cluster::{ensure_topic, supervise_kafka_probe};
use meshflow_common::envelope::{now_ns, Envelope};
use meshflow_common::fatal;
use meshflow_common::http::Readiness;
use meshflow_common::kafka::{error_reason, millis};
use meshflow_common::propagation::message_headers;
use meshflow_common::shutdown::Supervisor;
use meshflow_common::spans::{self, Operation};
use opentelemetry::global::{BoxedSpan, BoxedTracer};
use opentelemetry::trace::{Span, Status, TraceContextExt};
use opentelemetry::{global, Context};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer, PurgeConfig};
use rdkafka::types::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::deliveries::{Deliveries, Sent};
use crate::metrics::ProducerMetrics;

/// Readiness condition: Kafka answers metadata requests.
pub const READY_KAFKA: &str = meshflow_common::contract::ready::KAFKA;

/// Errors that stop the producer.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// The librdkafka client could not be created (bad settings).
    #[error("kafka client: {0}")]
    Client(#[source] KafkaError),
    /// A background task died (the reachability probe), or librdkafka
    /// reported a fatal error (the fatal error watcher returned); the
    /// producer flushed what it could and stopped so that a fresh process
    /// with a new client takes over.
    #[error(transparent)]
    TaskEnded(#[from] meshflow_common::shutdown::TaskEnded),
    /// The run ended with messages Kafka never acknowledged: each was
    /// logged and counted in
    /// `meshflow_producer_messages_total{outcome="failed"}`; the exit
    /// code says so too, so that a batch job or a supervisor sees it.
    #[error("{failed} of {handed} messages were not delivered")]
    Undelivered {
        /// Messages that failed for good.
        failed: u64,
        /// Messages handed to Kafka.
        handed: u64,
    },
}

/// What a run did, for the final log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Messages handed to Kafka (the next sequence number).
    pub handed: u64,
    /// Messages Kafka acknowledged.
    pub acked: u64,
    /// Messages that failed for good.
    pub failed: u64,
}

impl Summary {
    /// The run as a result: an error when any message was not delivered.
    pub fn delivered_all(self) -> Result<Summary, ProducerError> {
        if self.failed == 0 {
            Ok(self)
        } else {
            Err(ProducerError::Undelivered {
                failed: self.failed,
                handed: self.handed,
            })
        }
    }
}

/// Creates the idempotent `acks=all` producer.
pub fn create_producer(config: &Config) -> Result<FutureProducer, KafkaError> {
    let p = &config.producer;
    config
        .kafka
        .client_config_with(|cfg| {
            cfg.set("acks", "all")
                .set("enable.idempotence", "true")
                .set("message.timeout.ms", millis(p.message_timeout))
                .set("linger.ms", millis(p.linger));
        })
        .create()
}

/// Runs until `shutdown` fires or `producer.max_messages` are handed over,
/// then flushes and waits for every delivery report.
pub async fn run(
    config: Config,
    instance: String,
    metrics: ProducerMetrics,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
) -> Result<Summary, ProducerError> {
    let settings = &config.producer;
    let producer = create_producer(&config).map_err(ProducerError::Client)?;
    let supervisor = Supervisor::new(shutdown.clone());
    let (_probe, probe_abort) =
        supervise_kafka_probe(&supervisor, &producer, &settings.topic, &readiness);
    let fatal_client = producer.clone();
    let fatal_check = move || fatal_client.client().fatal_error();
    let _fatal = fatal::supervise(&supervisor, "producer", fatal_check, readiness);
    if settings.create_topic
        && !ensure_topic(
            &config.kafka,
            &settings.topic,
            settings.partitions,
            settings.replication_factor,
            settings.topic_retention,
            &shutdown,
        )
        .await
    {
        // Stopping on purpose: the probe's end is no failure.
        shutdown.cancel();
        probe_abort.abort();
        supervisor.result()?;
        return Ok(Summary::default());
    }

    let tracer = global::tracer("meshflow-producer");
    let payload = vec![b'm'; settings.payload_bytes];
    let period = Duration::from_secs_f64(1.0 / settings.rate_per_sec);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let deliveries = Deliveries::start(
        producer.clone(),
        metrics.clone(),
        settings.message_timeout,
        settings.resend_capacity,
    );
    let mut summary = Summary::default();
    tracing::info!(topic = %settings.topic, instance, rate = settings.rate_per_sec, "producing");

    'send: while settings.max_messages == 0 || summary.handed < settings.max_messages {
        // Behind schedule (at saturation) the ticker is always ready: polled
        // first, it spares registering and dropping a shutdown waiter per
        // message, and this check still stops the loop.
        if shutdown.is_cancelled() {
            break;
        }
        tokio::select! {
            biased;
            _ = ticker.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        if deliveries.resend_full() {
            // Back-pressure: as many messages as producer.resend_capacity
            // wait to be sent again. Wait until fewer do.
            metrics.record_error("resend_full");
            while deliveries.resend_full() {
                tokio::select! {
                    _ = shutdown.cancelled() => break 'send,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
        let seq = summary.handed;
        let Outgoing {
            mut span,
            key,
            headers,
        } = prepare(
            &tracer,
            &settings.topic,
            &instance,
            (seq, deliveries.settled()),
            settings.payload_bytes,
        );
        let mut record = FutureRecord::to(&settings.topic)
            .key(&key)
            .payload(&payload)
            .headers(headers);
        let handed_at = Instant::now();
        let delivery = loop {
            match producer.send_result(record) {
                Ok(d) => break d,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Back-pressure: librdkafka's queue is full while the
                    // broker is away. Wait; the same sequence number is kept.
                    metrics.record_error("queue_full");
                    record = back;
                    tokio::select! {
                        _ = shutdown.cancelled() => {
                            span.set_status(Status::error("shutdown"));
                            span.end();
                            break 'send;
                        }
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
                Err((e, _)) => {
                    // Cannot succeed by retrying (e.g. too large): count it
                    // and move on without consuming the sequence number.
                    let reason = error_reason(&e);
                    metrics.record_error(reason);
                    spans::end_failed(&mut span, reason, &e);
                    tracing::warn!(error = %e, reason, seq, "send refused");
                    continue 'send;
                }
            }
        };
        summary.handed += 1;
        metrics.record_handed();
        deliveries.push(Sent {
            delivery,
            span,
            seq,
            handed_at,
        });
    }

    // Sending is over: wait for every delivery, re-sends included, for at
    // most producer.shutdown_flush_timeout; then stop re-sending and give up
    // on what is still queued or in flight, so that its delivery reports
    // arrive now (failed) rather than after producer.message_timeout.
    tracing::info!(handed = summary.handed, "flushing");
    let purger = producer.clone();
    (summary.acked, summary.failed) = deliveries
        .finish(summary.handed, settings.shutdown_flush_timeout, move || {
            purger.purge(PurgeConfig::default().queue().inflight());
        })
        .await;
    // Stopping on purpose (shutdown or max_messages): the probe's end is no
    // failure.
    shutdown.cancel();
    probe_abort.abort();
    supervisor.result()?;
    Ok(summary)
}

/// A message about to be sent: its `send` span, key and headers.
pub struct Outgoing {
    /// The `send <topic>` span (kind PRODUCER), ended on its delivery report.
    pub span: BoxedSpan,
    /// The record key: the sequence number in decimal.
    pub key: String,
    /// Envelope and trace context of `span`.
    pub headers: OwnedHeaders,
}

/// What the producer does to each message before handing it to Kafka:
/// stamps its creation time, starts its `send` span and writes the
/// envelope and the span's context into its headers. `(seq, settled)` are
/// its sequence number and the instance's settled mark (see
/// [`crate::settled`]).
pub fn prepare(
    tracer: &BoxedTracer,
    topic: &str,
    instance: &str,
    (seq, settled): (u64, u64),
    payload_bytes: usize,
) -> Outgoing {
    let envelope = Envelope {
        producer: instance.to_string(),
        seq,
        created_ns: now_ns(),
        settled: Some(settled.min(seq)),
    };
    let key = seq.to_string();
    let span = spans::builder(
        Operation::Send,
        topic,
        [
            spans::message_key(key.clone()),
            spans::body_size(payload_bytes),
        ],
    )
    .start(tracer);
    let cx = Context::current().with_remote_span_context(span.span_context().clone());
    let headers = message_headers(&envelope, &cx);
    Outgoing { span, key, headers }
}
