//! `meshflow-consumer`: loads config, starts telemetry and the HTTP
//! endpoint, consumes until SIGTERM/SIGINT, drains, commits, exits 0.

use meshflow_common::config::load_from_args;
use meshflow_common::fatal::READY_CLIENT;
use meshflow_common::http::{self, Endpoint, Readiness};
use meshflow_common::{shutdown, telemetry};
use meshflow_consumer::context::READY_ASSIGNED;
use meshflow_consumer::metrics::ConsumerMetrics;
use meshflow_consumer::service::{self, READY_KAFKA};
use meshflow_consumer::Config;
use prometheus_client::registry::Registry;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config = load_from_args("meshflow-consumer", &[]);
    let instance = config
        .consumer
        .instance_id
        .clone()
        .unwrap_or_else(|| meshflow_common::config::instance_id("consumer"));
    let telemetry = telemetry::init(
        &config.log,
        "meshflow-consumer",
        &instance,
        config.trace.baggage,
    )?;
    let shutdown = shutdown::on_signal();

    let mut registry = Registry::with_prefix("meshflow");
    let metrics = ConsumerMetrics::register(
        &mut registry,
        &config.consumer.topic,
        &config.consumer.group,
    );
    http::register_start_time(&mut registry);
    let readiness = Readiness::new(&[READY_KAFKA, READY_ASSIGNED, READY_CLIENT], &mut registry);
    let endpoint = Endpoint {
        registry,
        readiness: readiness.clone(),
        statesets: Vec::new(),
    };
    let server = http::serve(config.http.listen, endpoint, shutdown.clone()).await?;

    service::run(config, instance, metrics, readiness, shutdown.clone()).await?;
    tracing::info!("consumer stopped");
    shutdown.cancel();
    let _ = server.await;
    telemetry.shutdown();
    Ok(())
}
