//! Dead letters that cannot be written, on librdkafka's mock cluster: the
//! poison message's offset must not be committed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meshflow_common::config::{load, Sources};
use meshflow_common::envelope::{Envelope, HeaderList, SEQ};
use meshflow_common::http::Readiness;
use meshflow_consumer::context::READY_ASSIGNED;
use meshflow_consumer::metrics::ConsumerMetrics;
use meshflow_consumer::service::{self, READY_KAFKA};
use meshflow_consumer::Config;
use prometheus_client::registry::Registry;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "events";
const RECEIPTS: &str = "receipts";
const GROUP: &str = "dlq-test";

/// Produces a valid message, a malformed one, and a valid one to partition 0.
fn produce_three(bootstrap: &str) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    for (seq, malformed) in [(0u64, false), (1, true), (2, false)] {
        let mut headers = HeaderList::new();
        Envelope {
            producer: "p".into(),
            seq,
            created_ns: 1,
        }
        .write_to(&mut headers);
        if malformed {
            headers.set(SEQ, b"not a number");
        }
        producer
            .send(
                BaseRecord::to(TOPIC)
                    .partition(0)
                    .key("k")
                    .payload("v")
                    .headers(headers.to_owned_headers()),
            )
            .expect("queued");
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");
}

/// The group's committed offset of partition 0, if any.
fn committed(bootstrap: &str) -> Option<i64> {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", GROUP)
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(TOPIC, 0);
    let got = reader
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    match got.elements()[0].offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

/// How many records the topic's partition 0 holds.
fn records(bootstrap: &str, topic: &str) -> i64 {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("reader");
    reader
        .fetch_watermarks(topic, 0, Duration::from_secs(5))
        .map(|(low, high)| high - low)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_that_cannot_be_written_keeps_its_offset_uncommitted() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let bootstrap = mock.bootstrap_servers();
    mock.create_topic(TOPIC, 1, 1).expect("topic");
    mock.create_topic(RECEIPTS, 1, 1).expect("receipts topic");
    // The dead-letter topic refuses writes, as it would without the ACL.
    mock.topic_error(
        &format!("{TOPIC}.dlq"),
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
    )
    .expect("topic error");
    produce_three(&bootstrap);

    let config: Config = load(Sources::with_env(
        None,
        &[
            ("MESHFLOW__KAFKA__BOOTSTRAP_SERVERS", bootstrap.as_str()),
            ("MESHFLOW__CONSUMER__TOPIC", TOPIC),
            ("MESHFLOW__CONSUMER__RECEIPTS_TOPIC", RECEIPTS),
            ("MESHFLOW__CONSUMER__GROUP", GROUP),
            ("MESHFLOW__CONSUMER__CREATE_TOPICS", "false"),
            ("MESHFLOW__CONSUMER__DRAIN_TIMEOUT", "5s"),
        ],
        &[],
    ))
    .expect("config");
    let mut registry = Registry::default();
    let metrics = ConsumerMetrics::register(&mut registry, TOPIC, GROUP);
    let readiness = Readiness::new(&[READY_KAFKA, READY_ASSIGNED], &mut registry);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(service::run(
        config,
        "consumer-a".into(),
        metrics,
        Arc::clone(&readiness),
        shutdown.clone(),
    ));

    // The message before the poison one is receipted; then the dead letter
    // keeps failing.
    let deadline = Instant::now() + Duration::from_secs(30);
    let b = bootstrap.clone();
    while tokio::task::spawn_blocking({
        let b = b.clone();
        move || records(&b, RECEIPTS)
    })
    .await
    .expect("watermarks")
        < 1
    {
        assert!(
            Instant::now() < deadline,
            "no receipt for the first message"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("stops in time")
        .expect("joined")
        .expect("clean stop");

    let offset = tokio::task::spawn_blocking(move || committed(&b))
        .await
        .expect("joined");
    // The first message's offset is committed, the poison message's not.
    assert_eq!(
        offset,
        Some(1),
        "committed offset: the poison message (offset 1) must be read again"
    );
}
