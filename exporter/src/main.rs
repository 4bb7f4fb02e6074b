//! `meshflow-exporter`: loads config, starts telemetry and the HTTP
//! endpoint, measures until SIGTERM/SIGINT, commits what it read, exits 0.

use meshflow_common::config::load_from_args;
use meshflow_common::http::{self, Endpoint, Readiness};
use meshflow_common::{shutdown, telemetry};
use meshflow_exporter::config::{Config, LIST_KEYS};
use meshflow_exporter::metrics::{ExporterMetrics, GROUP_STATUS};
use meshflow_exporter::service::{self, READINESS};
use prometheus_client::registry::Registry;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config = load_from_args("meshflow-exporter", LIST_KEYS);
    let instance = meshflow_common::config::instance_id("exporter");
    let telemetry = telemetry::init(
        &config.log,
        "meshflow-exporter",
        &instance,
        config.trace.baggage,
    )?;
    let shutdown = shutdown::on_signal();

    let mut registry = Registry::with_prefix("meshflow");
    let metrics = ExporterMetrics::register(
        &mut registry,
        &config.exporter.topic,
        &config.exporter.groups,
    );
    http::register_start_time(&mut registry);
    let readiness = Readiness::new(&READINESS, &mut registry);
    let endpoint = Endpoint {
        registry,
        readiness: readiness.clone(),
        statesets: vec![GROUP_STATUS.to_string()],
    };
    let server = http::serve(config.http.listen, endpoint, shutdown.clone()).await?;

    service::run(config, metrics, readiness, shutdown.clone()).await?;
    tracing::info!("exporter stopped");
    shutdown.cancel();
    let _ = server.await;
    telemetry.shutdown();
    Ok(())
}
