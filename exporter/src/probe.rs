//! The built-in probe (`exporter.probe.enabled`): for a cluster that
//! carries no meshflow traffic, the exporter writes its own and reads it
//! back, as kminion's end-to-end module does, but judged by sequence
//! numbers (see [`book`]).
//!
//! - The probe topic is created when missing, with
//!   `partitions_per_broker` partitions per broker and at most as many
//!   replicas as there are brokers; partitions are added when brokers
//!   join. Kafka spreads the leaders of a new topic's partitions over the
//!   brokers; `meshflow_probe_brokers_uncovered` counts brokers that lead
//!   none, which the probe then does not measure.
//! - Every `interval`, one message goes to every partition, with the
//!   envelope (`mf-producer` new for each exporter process, `mf-seq`,
//!   `mf-created-ns`) and the message's tag as its payload (16 hex digits,
//!   see [`book`]), through an idempotent `acks=all` producer.
//! - The probe's own consumer (no group membership, no commits) reads every
//!   partition from the end it found before the first send, so everything
//!   sent is read.
//! - Figures are per partition and per broker that led the partition when
//!   the message was sent: sent (acked or failed), acknowledgement latency,
//!   received, round trip, lost, duplicated.
//!
//! The layout (partitions and their leaders) is read again every
//! [`LAYOUT_INTERVAL`]; a broker that is down shows as failed sends and a
//! growing round trip on the partitions it led, until leadership moves.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use meshflow_common::config::KafkaConfig;
use meshflow_common::envelope::{now_ns, Envelope};
use meshflow_common::headers::MessageHeaders;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::cluster::kafka;
use crate::config::ProbeConfig;
use crate::metrics::ProbeSeries;
use crate::Error;
use book::{ProbeBook, Read};
use layout::{Found, LayoutClients};

pub mod book;
mod layout;

/// How often the probe topic's partitions and leaders are read again.
pub const LAYOUT_INTERVAL: Duration = Duration::from_secs(10);

/// Upper bound of one metadata or admin request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The most messages the probe's books remember.
const MAX_FLIGHTS: usize = 65_536;

/// One partition of the probe topic and its leader (-1: none).
type Leader = (i32, i32);

/// How one send ended: its sequence number, partition, leader, creation
/// time, and the offset it was written at (`None`: failed).
type Delivery = (u64, Leader, u64, Option<i64>);

/// The probe's clients and books.
pub struct Probe {
    /// The settings and what the layout checks use, beside the probe's loop.
    layout: LayoutClients,
    producer: FutureProducer,
    consumer: Arc<StreamConsumer>,
    book: ProbeBook,
    metrics: ProbeSeries,
    /// Partitions written, with their leaders.
    leaders: Vec<Leader>,
    /// Partitions the consumer reads.
    assigned: BTreeSet<i32>,
    unjudged_published: u64,
}

impl Probe {
    /// Creates the clients; `own_group` is the exporter's group id, from
    /// which the probe's reader derives its own (it never joins or commits).
    pub fn new(
        kafka_config: &KafkaConfig,
        config: &ProbeConfig,
        own_group: &str,
        producer_id: &str,
        metrics: ProbeSeries,
    ) -> Result<Self, Error> {
        let admin = kafka_config
            .client_config()
            .create()
            .map(Arc::new)
            .map_err(kafka("probe admin"))?;
        let producer = kafka_config
            .client_config_with(|c| {
                c.set("client.id", "meshflow-exporter-probe")
                    .set("enable.idempotence", "true")
                    .set("acks", "all")
                    .set("linger.ms", "0")
                    .set(
                        "message.timeout.ms",
                        config.send_timeout.as_millis().to_string(),
                    );
            })
            .create()
            .map_err(kafka("probe producer"))?;
        let consumer: Arc<StreamConsumer> = kafka_config
            .client_config_with(|c| {
                c.set("group.id", format!("{own_group}-probe-reader"))
                    .set("client.id", "meshflow-exporter-probe")
                    .set("enable.auto.commit", "false")
                    .set("enable.auto.offset.store", "false")
                    // Partitions are assigned at explicit offsets; should a
                    // position fall off the log (a truncation), go on from
                    // the end rather than read the past again as duplicates.
                    .set("auto.offset.reset", "latest")
                    .set("fetch.wait.max.ms", "100");
            })
            .create()
            .map(Arc::new)
            .map_err(kafka("probe consumer"))?;
        Ok(Probe {
            layout: LayoutClients {
                config: config.clone(),
                admin,
                consumer: consumer.clone(),
            },
            producer,
            consumer,
            book: ProbeBook::new(producer_id, MAX_FLIGHTS),
            metrics,
            leaders: Vec::new(),
            assigned: BTreeSet::new(),
            unjudged_published: 0,
        })
    }

    /// Probes until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        tracing::info!(topic = %self.layout.config.topic, producer = %self.book.producer(), "probe starts");
        self.metrics.set_enabled();
        let mut layout = tokio::time::interval(LAYOUT_INTERVAL);
        let mut checking: Option<JoinHandle<Result<Found, Error>>> = None;
        let mut round = tokio::time::interval(self.layout.config.interval);
        round.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut deliveries: JoinSet<Delivery> = JoinSet::new();
        let mut failing: Option<String> = None;
        let consumer = self.consumer.clone();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = layout.tick(), if checking.is_none() => {
                    let check = self.layout.clone().check(self.assigned.clone());
                    checking = Some(tokio::spawn(check));
                }
                found = async { checking.as_mut()?.await.ok() }, if checking.is_some() => {
                    checking = None;
                    match found {
                        Some(Ok(found)) => {
                            if failing.take().is_some() {
                                tracing::info!("probe topic layout readable again");
                            }
                            self.apply_layout(found);
                        }
                        Some(Err(e)) => {
                            let error = e.to_string();
                            if failing.as_ref() != Some(&error) {
                                tracing::warn!(%error, "probe topic layout");
                                failing = Some(error);
                            }
                        }
                        // The check's task ended without an answer.
                        None => {}
                    }
                }
                _ = round.tick(), if !self.assigned.is_empty() => self.send_round(&mut deliveries),
                Some(done) = deliveries.join_next(), if !deliveries.is_empty() => {
                    if let Ok(delivery) = done {
                        self.delivered(delivery);
                    }
                }
                message = consumer.recv(), if !self.assigned.is_empty() => match message {
                    Ok(message) => self.read(&message),
                    Err(e) => {
                        tracing::debug!(error = %e, "probe read");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        deliveries.abort_all();
        if let Some(check) = checking {
            check.abort();
        }
        tracing::info!("probe stopped");
    }

    /// Sends one message to every partition.
    fn send_round(&mut self, deliveries: &mut JoinSet<Delivery>) {
        let now = now_ns();
        self.book.expire(now);
        self.publish_unjudged();
        for &(partition, leader) in &self.leaders {
            let seq = self.book.send(partition, leader, now);
            let mut headers = MessageHeaders::with_capacity(3);
            Envelope {
                producer: self.book.producer().to_string(),
                seq,
                created_ns: now,
                settled: None,
            }
            .add_to(&mut headers);
            let tag = format!("{:016x}", self.book.tag(seq, partition));
            let record = FutureRecord::<(), _>::to(&self.layout.config.topic)
                .partition(partition)
                .payload(tag.as_bytes())
                .headers(headers.into_owned());
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    deliveries.spawn(async move {
                        let offset = match delivery.await {
                            Ok(Ok(delivered)) => Some(delivered.offset),
                            _ => None,
                        };
                        (seq, (partition, leader), now, offset)
                    });
                }
                Err((e, _)) => {
                    tracing::debug!(partition, error = %e, "probe send refused");
                    self.book.failed(seq);
                    self.metrics.sent(partition, leader, None);
                }
            }
        }
    }

    /// Books how a send ended.
    fn delivered(&mut self, (seq, (partition, leader), created_ns, offset): Delivery) {
        match offset {
            Some(offset) => {
                self.book.acked(seq, offset);
                let seconds = now_ns().saturating_sub(created_ns) as f64 / 1e9;
                self.metrics.sent(partition, leader, Some(seconds));
            }
            None => {
                self.book.failed(seq);
                self.metrics.sent(partition, leader, None);
            }
        }
    }

    /// Judges one record read back.
    fn read(&mut self, message: &BorrowedMessage<'_>) {
        let read_ns = now_ns();
        let partition = message.partition();
        let (producer, seq) = match Envelope::from_headers(message.headers()) {
            Ok(Some(envelope)) => (envelope.producer, envelope.seq),
            _ => (String::new(), 0),
        };
        let tag = message
            .payload()
            .filter(|p| p.len() == 16)
            .and_then(|p| std::str::from_utf8(p).ok())
            .and_then(|p| u64::from_str_radix(p, 16).ok());
        let (read, lost) =
            self.book
                .read(partition, message.offset(), &producer, seq, tag, read_ns);
        match read {
            Read::Received { flight, latency_ns } => {
                self.metrics
                    .received(partition, flight.broker, latency_ns as f64 / 1e9);
            }
            Read::Duplicate => self
                .metrics
                .duplicated(partition, self.leader_of(partition)),
            Read::Unjudged => {}
            Read::NotOurs => self.metrics.foreign(),
        }
        for flight in lost {
            tracing::warn!(
                partition = flight.partition,
                broker = flight.broker,
                offset = flight.offset,
                "probe message acknowledged but not in the log"
            );
            self.metrics.lost(flight.partition, flight.broker);
        }
    }

    /// Takes a layout check's findings: the partitions to write and their
    /// leaders, and new partitions read from their end on.
    fn apply_layout(&mut self, found: Found) {
        self.metrics.set_layout(&found.leaders, found.uncovered);
        self.leaders = found.leaders;
        // One check at a time, from the partitions assigned when it began:
        // these are not read yet.
        if found.new_ends.is_empty() {
            return;
        }
        let new: Vec<i32> = found.new_ends.iter().map(|&(p, _)| p).collect();
        let mut assignment = TopicPartitionList::new();
        for &(partition, high) in &found.new_ends {
            let _ = assignment.add_partition_offset(
                &self.layout.config.topic,
                partition,
                Offset::Offset(high),
            );
        }
        match self.consumer.incremental_assign(&assignment) {
            Ok(()) => {
                tracing::info!(partitions = ?new, "probe partitions read");
                self.assigned.extend(new);
            }
            Err(e) => tracing::warn!(error = %e, "probe assign"),
        }
    }

    fn leader_of(&self, partition: i32) -> i32 {
        self.leaders
            .iter()
            .find(|(p, _)| *p == partition)
            .map_or(-1, |&(_, leader)| leader)
    }

    fn publish_unjudged(&mut self) {
        let unjudged = self.book.unjudged();
        self.metrics
            .unjudged(unjudged.saturating_sub(self.unjudged_published));
        self.unjudged_published = unjudged;
    }
}
