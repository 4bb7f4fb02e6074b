//! Dead letters that cannot be written, on librdkafka's mock cluster: the
//! poison message's offset must not be committed.

mod support;

use std::time::{Duration, Instant};

use meshflow_common::testing::{committed_offset, mock_cluster, produce_enveloped};
use meshflow_consumer::context::READY_ASSIGNED;
use meshflow_consumer::service::READY_KAFKA;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, Offset};

const TOPIC: &str = "events";
const RECEIPTS: &str = "receipts";
const GROUP: &str = "dlq-test";

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
    let mock = mock_cluster(&[TOPIC, RECEIPTS]);
    let bootstrap = mock.bootstrap_servers();
    // The dead-letter topic refuses writes, as it would without the ACL.
    mock.topic_error(
        &format!("{TOPIC}.dlq"),
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
    )
    .expect("topic error");
    // A valid message, a malformed one, and a valid one.
    produce_enveloped(&bootstrap, TOPIC, &[(0, false), (1, true), (2, false)]);

    let names = (TOPIC, RECEIPTS, GROUP);
    let consumer = support::start(
        &bootstrap,
        names,
        "5s",
        "consumer-a",
        &[READY_KAFKA, READY_ASSIGNED],
    );

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
    consumer.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), consumer.run)
        .await
        .expect("stops in time")
        .expect("joined")
        .expect("clean stop");

    let offset = tokio::task::spawn_blocking(move || match committed_offset(&b, GROUP, TOPIC) {
        Offset::Offset(o) => Some(o),
        _ => None,
    })
    .await
    .expect("joined");
    // The first message's offset is committed, the poison message's not.
    assert_eq!(
        offset,
        Some(1),
        "committed offset: the poison message (offset 1) must be read again"
    );
}
