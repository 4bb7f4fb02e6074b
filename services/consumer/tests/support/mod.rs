//! Starting the consumer's service loop on librdkafka's mock cluster, for
//! the tests in this directory.

use std::sync::Arc;

use meshflow_common::http::Readiness;
use meshflow_common::testing::config_from;
use meshflow_consumer::metrics::ConsumerMetrics;
use meshflow_consumer::service::{self, ConsumerError};
use meshflow_consumer::Config;
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The service loop of consumer `instance`, running.
pub struct Running {
    /// The loop; it ends with the run's result.
    pub run: JoinHandle<Result<(), ConsumerError>>,
    /// Stops the loop.
    pub shutdown: CancellationToken,
    /// The readiness conditions it keeps.
    #[allow(dead_code)] // Not every test reads them.
    pub readiness: Arc<Readiness>,
}

/// Starts consumer `instance` of `group` on `topic` at `bootstrap`, with
/// receipts to `receipts`, topics it does not create, the given drain
/// timeout and readiness `conditions`.
pub fn start(
    bootstrap: &str,
    (topic, receipts, group): (&str, &str, &str),
    drain_timeout: &str,
    instance: &str,
    conditions: &[&'static str],
) -> Running {
    let vars = [
        ("MESHFLOW__KAFKA__BOOTSTRAP_SERVERS", bootstrap),
        ("MESHFLOW__CONSUMER__TOPIC", topic),
        ("MESHFLOW__CONSUMER__RECEIPTS_TOPIC", receipts),
        ("MESHFLOW__CONSUMER__GROUP", group),
        ("MESHFLOW__CONSUMER__CREATE_TOPICS", "false"),
        ("MESHFLOW__CONSUMER__DRAIN_TIMEOUT", drain_timeout),
    ];
    let config: Config = config_from(&vars, &[]).expect("config");
    let mut registry = Registry::default();
    let metrics = ConsumerMetrics::register(&mut registry, topic, group);
    let readiness = Readiness::new(conditions, &mut registry);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(service::run(
        config,
        instance.into(),
        metrics,
        Arc::clone(&readiness),
        shutdown.clone(),
    ));
    Running {
        run,
        shutdown,
        readiness,
    }
}
