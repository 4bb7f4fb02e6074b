//! The exporter under test: starting the real binary, feeding it traffic
//! whose truth the test knows (envelopes and receipt batches written
//! directly to Kafka), and reading what it reports.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use meshflow_common::envelope::{now_ns, CREATED_NS, PRODUCER, SEQ};
use meshflow_common::receipt::{ReceiptBatch, ReceiptEntry};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::process::{with, Service};
use crate::scenario::Names;

/// Starts `meshflow-exporter` as `name`, reading the test's topics and
/// watching its group, with its own consumer group `group_id` and a 1 s
/// poll; `extra` is added last and wins.
pub fn start(
    dir: &Path,
    bootstrap: &str,
    names: &Names,
    name: &str,
    group_id: &str,
    extra: &[(&str, &str)],
) -> Service {
    let env = with(
        names.env(bootstrap, "EXPORTER", "GROUPS"),
        &[
            ("MESHFLOW__EXPORTER__GROUP_ID", group_id),
            ("MESHFLOW__EXPORTER__POLL_INTERVAL", "1s"),
        ],
    );
    let env = with(env, extra);
    Service::start(name, "meshflow-exporter", &env, dir)
}

/// [`start`] with `--config config`, for the settings only a file can
/// give (`exporter.clusters`); the environment still wins over the file.
pub fn start_with_file(
    dir: &Path,
    bootstrap: &str,
    names: &Names,
    name: &str,
    group_id: &str,
    config: &Path,
) -> Service {
    let env = with(
        names.env(bootstrap, "EXPORTER", "GROUPS"),
        &[
            ("MESHFLOW__EXPORTER__GROUP_ID", group_id),
            ("MESHFLOW__EXPORTER__POLL_INTERVAL", "500ms"),
        ],
    );
    let config = config.to_str().expect("a UTF-8 path");
    Service::start_wrapped(
        name,
        &[],
        "meshflow-exporter",
        &env,
        &["--config", config],
        dir,
    )
}

/// A message the test published.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    /// `mf-seq`.
    pub seq: u64,
    /// The partition it went to.
    pub partition: i32,
    /// `mf-created-ns`.
    pub created_ns: u64,
    /// The Kafka record timestamp (milliseconds), `created_ns` rounded down.
    pub timestamp_ms: i64,
}

/// Publishes one record with `headers` to `partition` of `topic`.
pub async fn publish_raw(bootstrap: &str, topic: &str, partition: i32, headers: OwnedHeaders) {
    publish_with(bootstrap, topic, partition, headers, "hostile").await;
}

/// Publishes one record with `headers` and `payload` to `partition` of
/// `topic`.
pub async fn publish_with(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    headers: OwnedHeaders,
    payload: &str,
) {
    let producer: FutureProducer = client(bootstrap);
    let record = FutureRecord::<(), _>::to(topic)
        .payload(payload)
        .partition(partition)
        .headers(headers);
    producer
        .send(record, Duration::from_secs(10))
        .await
        .unwrap_or_else(|(e, _)| panic!("publish a raw record: {e}"));
}

/// The `mf-*` envelope headers of message `seq` of producer instance
/// `producer`, created at `created_ns`.
pub fn envelope(producer: &str, seq: u64, created_ns: u64) -> OwnedHeaders {
    let (seq, created) = (seq.to_string(), created_ns.to_string());
    [
        (PRODUCER, producer.as_bytes()),
        (SEQ, seq.as_bytes()),
        (CREATED_NS, created.as_bytes()),
    ]
    .iter()
    .fold(OwnedHeaders::new(), |h, (key, value)| {
        h.insert(Header {
            key,
            value: Some(*value),
        })
    })
}

/// Publishes envelopes as one producer instance, with sequence numbers and
/// partitions of the test's choosing.
pub struct TestProducer {
    producer: FutureProducer,
    topic: String,
    /// The `mf-producer` id.
    pub id: String,
}

impl TestProducer {
    /// A producer instance `id` writing to `topic`.
    pub fn new(bootstrap: &str, topic: &str, id: &str) -> TestProducer {
        TestProducer {
            producer: client(bootstrap),
            topic: topic.to_string(),
            id: id.to_string(),
        }
    }

    /// Publishes `seq` to `partition`, created now; waits for the ack.
    pub async fn send(&self, seq: u64, partition: i32) -> Sent {
        let created_ns = now_ns();
        let timestamp_ms = i64::try_from(created_ns / 1_000_000).unwrap_or(i64::MAX);
        self.send_as(Sent {
            seq,
            partition,
            created_ns,
            timestamp_ms,
        })
        .await
    }

    /// Publishes every sequence number of `seqs` in order, each to
    /// partition `seq % partitions`; waits for every ack.
    pub async fn send_spread(
        &self,
        seqs: impl IntoIterator<Item = u64>,
        partitions: i32,
    ) -> Vec<Sent> {
        let mut sent = Vec::new();
        for seq in seqs {
            sent.push(self.send(seq, (seq % partitions as u64) as i32).await);
        }
        sent
    }

    /// Publishes `sent` again, unchanged: a duplicate.
    pub async fn send_as(&self, sent: Sent) -> Sent {
        let headers = envelope(&self.id, sent.seq, sent.created_ns);
        let payload = format!("{}-{}", self.id, sent.seq);
        let record = FutureRecord::to(&self.topic)
            .key(&self.id)
            .payload(&payload)
            .partition(sent.partition)
            .timestamp(sent.timestamp_ms)
            .headers(headers);
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .unwrap_or_else(|(e, _)| panic!("publish seq {}: {e}", sent.seq));
        sent
    }
}

/// Writes receipt batches to the receipts topic, as a consumer would.
pub struct ReceiptWriter {
    producer: FutureProducer,
    topic: String,
}

impl ReceiptWriter {
    /// A writer to `receipts_topic`.
    pub fn new(bootstrap: &str, receipts_topic: &str) -> ReceiptWriter {
        ReceiptWriter {
            producer: client(bootstrap),
            topic: receipts_topic.to_string(),
        }
    }

    /// Writes one batch of `group`'s entries (keyed by the first entry's
    /// producer, as the consumer keys them); waits for the ack.
    pub async fn write(&self, group: &str, entries: Vec<ReceiptEntry>, partition: Option<i32>) {
        let key = entries
            .first()
            .map(|e| e.producer.clone())
            .unwrap_or_default();
        let batch = ReceiptBatch {
            group: group.to_string(),
            consumer: "test-consumer".to_string(),
            entries,
        };
        let payload = serde_json::to_vec(&batch).expect("receipt batch JSON");
        let mut record = FutureRecord::to(&self.topic).key(&key).payload(&payload);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .unwrap_or_else(|(e, _)| panic!("publish receipts: {e}"));
    }
}

/// The receipt entry for `sent`, processed `latency` after its creation.
pub fn receipt(
    sent: &Sent,
    producer: &str,
    topic: &str,
    latency: Duration,
    trace_id: &str,
) -> ReceiptEntry {
    ReceiptEntry {
        producer: producer.to_string(),
        seq: sent.seq,
        created_ns: sent.created_ns,
        topic: topic.to_string(),
        partition: sent.partition,
        offset: 0,
        processed_ns: sent.created_ns + latency.as_nanos() as u64,
        trace_id: trace_id.to_string(),
    }
}

/// A random W3C trace id.
pub fn trace_id() -> String {
    format!("{:032x}", rand::random::<u128>() | 1)
}

/// Waits until the exporter with consumer group `group_id` reads every
/// partition of both topics, by publishing records it does not account
/// (unenveloped messages, empty receipt batches of an unwatched group)
/// until its group has committed an offset on each partition. Before that
/// its starting positions ("the end of each partition") may still be
/// resolving, and a message published then might be skipped.
pub async fn warm_up(bootstrap: &str, names: &Names, group_id: &str, partitions: i32) {
    let producer: FutureProducer = client(bootstrap);
    let receipts = ReceiptWriter::new(bootstrap, &names.receipts);
    let bootstrap = bootstrap.to_string();
    let (topic, receipts_topic, group) = (
        names.topic.clone(),
        names.receipts.clone(),
        group_id.to_string(),
    );
    crate::wait_for(
        "the exporter to read every partition",
        Duration::from_secs(60),
        || {
            let (producer, receipts) = (&producer, &receipts);
            let (bootstrap, topic, receipts_topic, group) = (
                bootstrap.clone(),
                topic.clone(),
                receipts_topic.clone(),
                group.clone(),
            );
            async move {
                for p in 0..partitions {
                    let record = FutureRecord::<(), _>::to(&topic)
                        .payload("warm-up")
                        .partition(p);
                    let _ = producer.send(record, Duration::from_secs(10)).await;
                    receipts.write("warm-up", Vec::new(), Some(p)).await;
                }
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let committed = tokio::task::spawn_blocking(move || {
                    committed_partitions(&bootstrap, &group, &[&topic, &receipts_topic], partitions)
                })
                .await
                .expect("committed offsets task");
                (committed == 2 * partitions as usize).then_some(())
            }
        },
    )
    .await;
}

/// How many of the partitions of `topics` have an offset committed by `group`.
pub fn committed_partitions(
    bootstrap: &str,
    group: &str,
    topics: &[&str],
    partitions: i32,
) -> usize {
    topics
        .iter()
        .map(|topic| committed_offsets(bootstrap, group, topic, partitions).len())
        .sum()
}

/// The offsets `group` has committed on `topic`, by partition (partitions
/// without a commit left out).
pub fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> HashMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("offsets client");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .map(|answer| {
            answer
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) if o >= 0 => Some((e.partition(), o)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Commits `offsets` (partition → next offset to consume) on `topic` for
/// `group`, as a consumer of that group does once its receipts are written.
pub fn commit_group(bootstrap: &str, group: &str, topic: &str, offsets: &HashMap<i32, i64>) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("commit client");
    let mut tpl = TopicPartitionList::new();
    for (&p, &offset) in offsets {
        tpl.add_partition_offset(topic, p, Offset::Offset(offset))
            .expect("offset");
    }
    consumer
        .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
        .expect("commit the group's offsets");
}

/// The high watermark of every partition of `topic`.
pub fn high_watermarks(bootstrap: &str, topic: &str, partitions: i32) -> HashMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("watermarks client");
    (0..partitions)
        .map(|p| {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks");
            (p, high)
        })
        .collect()
}

/// A sample of the exporter's stage counters (NaN when not published, see
/// [`crate::scrape::sum`]), e.g.
/// `stage(&s, "meshflow_messages_lost_total", "log", "")`.
pub fn stage(samples: &HashMap<String, f64>, name: &str, stage: &str, group: &str) -> f64 {
    crate::scrape::sum(samples, name, &[("stage", stage), ("group", group)])
}

/// An idempotent `acks=all` producer for the test's own records.
pub fn client(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "0")
        .create()
        .expect("test producer")
}
