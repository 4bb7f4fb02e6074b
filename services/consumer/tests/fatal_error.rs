//! A fatal error of the receipt producer on librdkafka's mock cluster: the
//! consumer must stop with an error (so that a fresh instance is started),
//! report not ready and commit nothing it has no receipt for.

mod support;

use std::time::Duration;

use meshflow_common::fatal::READY_CLIENT;
use meshflow_common::testing::{
    assert_fatal_stop, committed_offset, mock_cluster, produce_enveloped,
};
use meshflow_consumer::context::READY_ASSIGNED;
use meshflow_consumer::service::READY_KAFKA;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::Offset;

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

    let names = (TOPIC, "receipts", GROUP);
    let conditions = [READY_KAFKA, READY_ASSIGNED, READY_CLIENT];
    let mut consumer = support::start(&bootstrap, names, "2s", "consumer-fatal", &conditions);
    let limit = Duration::from_secs(40);
    let (run, shutdown) = (&mut consumer.run, &consumer.shutdown);
    assert_fatal_stop(
        run,
        shutdown,
        &consumer.readiness,
        limit,
        "receipt producer",
    )
    .await;

    let committed = tokio::task::spawn_blocking(move || committed_offset(&bootstrap, GROUP, TOPIC))
        .await
        .expect("joined");
    assert!(
        !matches!(committed, Offset::Offset(o) if o > 0),
        "committed {committed:?} without receipts"
    );
}
