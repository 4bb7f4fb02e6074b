//! A fatal idempotent-producer error on librdkafka's mock cluster: the
//! producer must stop with an error (so that a fresh instance is started)
//! and report not ready, instead of skipping refused sends forever.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meshflow_common::fatal::READY_CLIENT;
use meshflow_common::http::Readiness;
use meshflow_common::testing::{assert_fatal_stop, config_from, mock_cluster};
use meshflow_producer::metrics::ProducerMetrics;
use meshflow_producer::service::{self, READY_KAFKA};
use meshflow_producer::Config;
use prometheus_client::registry::Registry;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_idempotence_error_stops_the_producer_with_an_error() {
    let mock = mock_cluster(&["events"]);
    let bootstrap = mock.bootstrap_servers();
    let vars = [
        ("MESHFLOW__KAFKA__BOOTSTRAP_SERVERS", bootstrap.as_str()),
        ("MESHFLOW__PRODUCER__TOPIC", "events"),
        ("MESHFLOW__PRODUCER__CREATE_TOPIC", "false"),
        ("MESHFLOW__PRODUCER__RATE_PER_SEC", "5"),
        ("MESHFLOW__PRODUCER__INSTANCE_ID", "producer-fatal"),
        ("MESHFLOW__PRODUCER__SHUTDOWN_FLUSH_TIMEOUT", "2s"),
    ];
    let config: Config = config_from(&vars, &[]).expect("config");
    let mut registry = Registry::default();
    let metrics = ProducerMetrics::register(&mut registry, "events");
    let readiness = Readiness::new(&[READY_KAFKA, READY_CLIENT], &mut registry);
    let shutdown = CancellationToken::new();
    let ready = Arc::clone(&readiness);
    let mut run = tokio::spawn(service::run(
        config,
        "producer-fatal".into(),
        metrics,
        ready,
        shutdown.clone(),
    ));

    let deadline = Instant::now() + Duration::from_secs(20);
    while !readiness.is_ready() {
        assert!(
            Instant::now() < deadline,
            "never ready: {:?}",
            readiness.failing()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The head-of-line Produce request fails with a sequence
    // desynchronisation: librdkafka raises a fatal idempotence error.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER],
    );
    let limit = Duration::from_secs(30);
    assert_fatal_stop(&mut run, &shutdown, &readiness, limit, "producer").await;
}
