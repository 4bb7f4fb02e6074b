//! A fatal error of the receipt producer on librdkafka's mock cluster: the
//! consumer must stop with an error (so that a fresh instance is started),
//! report not ready and commit nothing it has no receipt for.

use std::sync::Arc;
use std::time::Duration;

use meshflow_common::fatal::READY_CLIENT;
use meshflow_common::http::Readiness;
use meshflow_common::testing::{
    assert_fatal_stop, committed_offset, config_from, mock_cluster, produce_enveloped,
};
use meshflow_consumer::context::READY_ASSIGNED;
use meshflow_consumer::metrics::ConsumerMetrics;
use meshflow_consumer::service::{self, READY_KAFKA};
use meshflow_consumer::Config;
use prometheus_client::registry::Registry;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::Offset;
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "events";
const GROUP: &str = "fatal-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_receipt_producer_error_stops_the_consumer_with_an_error() {
    let mock = mock_cluster(&[TOPIC, "receipts", "events.dlq"]);
    let bootstrap = mock.bootstrap_servers();
    produce_enveloped(&bootstrap, TOPIC, &[(0, false), (1, false), (2, false)]);
    // The first receipt's Produce request fails with a sequence
    // desynchronisation: librdkafka raises a fatal idempotence error.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER],
    );

    let vars = [
        ("MESHFLOW__KAFKA__BOOTSTRAP_SERVERS", bootstrap.as_str()),
        ("MESHFLOW__CONSUMER__TOPIC", TOPIC),
        ("MESHFLOW__CONSUMER__RECEIPTS_TOPIC", "receipts"),
        ("MESHFLOW__CONSUMER__GROUP", GROUP),
        ("MESHFLOW__CONSUMER__CREATE_TOPICS", "false"),
        ("MESHFLOW__CONSUMER__DRAIN_TIMEOUT", "2s"),
    ];
    let config: Config = config_from(&vars, &[]).expect("config");
    let mut registry = Registry::default();
    let metrics = ConsumerMetrics::register(&mut registry, TOPIC, GROUP);
    let readiness = Readiness::new(&[READY_KAFKA, READY_ASSIGNED, READY_CLIENT], &mut registry);
    let shutdown = CancellationToken::new();
    let ready = Arc::clone(&readiness);
    let mut run = tokio::spawn(service::run(
        config,
        "consumer-fatal".into(),
        metrics,
        ready,
        shutdown.clone(),
    ));
    let limit = Duration::from_secs(40);
    assert_fatal_stop(&mut run, &shutdown, &readiness, limit, "receipt producer").await;

    let committed = tokio::task::spawn_blocking(move || committed_offset(&bootstrap, GROUP, TOPIC))
        .await
        .expect("joined");
    assert!(
        !matches!(committed, Offset::Offset(o) if o > 0),
        "committed {committed:?} without receipts"
    );
}
