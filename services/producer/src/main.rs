//! `meshflow-producer`: loads config, starts telemetry and the HTTP
//! endpoint, runs the send loop until SIGTERM/SIGINT, flushes, exits 0.

use meshflow_common::config::load_from_args;
use meshflow_common::fatal::READY_CLIENT;
use meshflow_common::http::{self, Endpoint, Readiness};
use meshflow_common::{shutdown, telemetry};
use meshflow_producer::metrics::ProducerMetrics;
use meshflow_producer::service::{self, READY_KAFKA};
use meshflow_producer::Config;
use prometheus_client::registry::Registry;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config = load_from_args("meshflow-producer", &[]);
    let instance = config
        .producer
        .instance_id
        .clone()
        .unwrap_or_else(|| meshflow_common::config::instance_id("producer"));
    let telemetry = telemetry::init(
        &config.log,
        "meshflow-producer",
        &instance,
        config.trace.baggage,
    )?;
    let shutdown = shutdown::on_signal();

    let mut registry = Registry::with_prefix("meshflow");
    let metrics = ProducerMetrics::register(&mut registry, &config.producer.topic);
    http::register_start_time(&mut registry);
    let readiness = Readiness::new(&[READY_KAFKA, READY_CLIENT], &mut registry);
    let endpoint = Endpoint {
        registry,
        readiness: readiness.clone(),
        statesets: Vec::new(),
    };
    let server = http::serve(config.http.listen, endpoint, shutdown.clone()).await?;

    let summary = service::run(config, instance, metrics, readiness, shutdown.clone()).await?;
    tracing::info!(
        handed = summary.handed,
        acked = summary.acked,
        failed = summary.failed,
        "producer stopped"
    );
    shutdown.cancel();
    let _ = server.await;
    telemetry.shutdown();
    Ok(())
}
