//! A fatal error of the receipt producer on librdkafka's mock cluster: the
//! consumer must stop with an error (so that a fresh instance is started),
//! report not ready and commit nothing it has no receipt for.

use std::sync::Arc;
use std::time::Duration;

use meshflow_common::config::{load, Sources};
use meshflow_common::envelope::{Envelope, HeaderList};
use meshflow_common::fatal::READY_CLIENT;
use meshflow_common::http::Readiness;
use meshflow_consumer::context::READY_ASSIGNED;
use meshflow_consumer::metrics::ConsumerMetrics;
use meshflow_consumer::service::{self, READY_KAFKA};
use meshflow_consumer::Config;
use prometheus_client::registry::Registry;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "events";
const GROUP: &str = "fatal-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_receipt_producer_error_stops_the_consumer_with_an_error() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let bootstrap = mock.bootstrap_servers();
    mock.create_topic(TOPIC, 1, 1).expect("topic");
    mock.create_topic("receipts", 1, 1).expect("receipts topic");
    mock.create_topic("events.dlq", 1, 1).expect("dlq topic");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    for seq in 0..3u64 {
        let mut headers = HeaderList::new();
        Envelope {
            producer: "p".into(),
            seq,
            created_ns: 1,
        }
        .write_to(&mut headers);
        producer
            .send(
                BaseRecord::to(TOPIC)
                    .key("k")
                    .payload("v")
                    .headers(headers.to_owned_headers()),
            )
            .expect("queued");
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");
    // The first receipt's Produce request fails with a sequence
    // desynchronisation: librdkafka raises a fatal idempotence error.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER],
    );

    let config: Config = load(Sources::with_env(
        None,
        &[
            ("MESHFLOW__KAFKA__BOOTSTRAP_SERVERS", bootstrap.as_str()),
            ("MESHFLOW__CONSUMER__TOPIC", TOPIC),
            ("MESHFLOW__CONSUMER__RECEIPTS_TOPIC", "receipts"),
            ("MESHFLOW__CONSUMER__GROUP", GROUP),
            ("MESHFLOW__CONSUMER__CREATE_TOPICS", "false"),
            ("MESHFLOW__CONSUMER__DRAIN_TIMEOUT", "2s"),
        ],
        &[],
    ))
    .expect("config");
    let mut registry = Registry::default();
    let metrics = ConsumerMetrics::register(&mut registry, TOPIC, GROUP);
    let readiness = Readiness::new(&[READY_KAFKA, READY_ASSIGNED, READY_CLIENT], &mut registry);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(service::run(
        config,
        "consumer-fatal".into(),
        metrics,
        Arc::clone(&readiness),
        shutdown.clone(),
    ));

    let ended = tokio::time::timeout(Duration::from_secs(40), run).await;
    shutdown.cancel();
    let result = match ended {
        Ok(joined) => joined.expect("joined"),
        Err(_) => panic!("still running 40 s after a fatal receipt producer error"),
    };
    let err = result.expect_err("a fatal error must make the run fail");
    assert!(err.to_string().contains("fatal"), "{err}");
    assert!(
        readiness.failing().contains(&READY_CLIENT),
        "not ready after a fatal error: {:?}",
        readiness.failing()
    );

    let committed = tokio::task::spawn_blocking(move || {
        let reader: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", GROUP)
            .create()
            .expect("reader");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(TOPIC, 0);
        let got = reader
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("committed offsets");
        got.elements()[0].offset()
    })
    .await
    .expect("joined");
    assert!(
        !matches!(committed, Offset::Offset(o) if o > 0),
        "committed {committed:?} without receipts"
    );
}
