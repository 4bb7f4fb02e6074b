//! `meshflow-producer`: the send loop in the service skeleton, until
//! SIGTERM/SIGINT or `producer.max_messages`; flushes, exits 0 when every
//! message it handed to Kafka was acknowledged, 1 when any was not.

use std::process::ExitCode;

use meshflow_common::contract::ready;
use meshflow_common::skeleton::Skeleton;
use meshflow_producer::metrics::ProducerMetrics;
use meshflow_producer::{config, service, Config};

#[tokio::main]
async fn main() -> ExitCode {
    Skeleton {
        binary: "meshflow-producer",
        role: "producer",
        list_keys: &[],
        keys: config::KEYS,
        readiness: &[ready::KAFKA, ready::CLIENT],
        statesets: &[],
    }
    .run(
        |c: &Config, registry, messaging| {
            ProducerMetrics::register(registry, &c.producer.topic)
                .with_messaging(messaging.sender(&c.producer.topic))
        },
        |s| async move {
            let summary =
                service::run(s.config, s.instance, s.metrics, s.readiness, s.shutdown).await?;
            tracing::info!(
                handed = summary.handed,
                acked = summary.acked,
                failed = summary.failed,
                "producer stopped"
            );
            summary.delivered_all()?;
            Ok::<_, service::ProducerError>(())
        },
    )
    .await
}
