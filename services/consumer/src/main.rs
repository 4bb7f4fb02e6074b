//! `meshflow-consumer`: consumes in the service skeleton until
//! SIGTERM/SIGINT; drains, commits, exits 0.

use std::process::ExitCode;

use meshflow_common::contract::ready;
use meshflow_common::skeleton::Skeleton;
use meshflow_consumer::metrics::ConsumerMetrics;
use meshflow_consumer::{config, service, Config};

#[tokio::main]
async fn main() -> ExitCode {
    Skeleton {
        binary: "meshflow-consumer",
        role: "consumer",
        list_keys: &[],
        keys: config::KEYS,
        readiness: &[
            ready::KAFKA,
            ready::ASSIGNED,
            ready::CLIENT,
            ready::PARTITIONS_FLOWING,
        ],
        statesets: &[],
    }
    .run(
        |c: &Config, registry, messaging| {
            let s = &c.consumer;
            ConsumerMetrics::register(registry, &s.topic, &s.group).with_messaging(
                messaging.receiver(&s.topic, &s.group),
                messaging.sender(&s.receipts_topic),
            )
        },
        |s| async move {
            service::run(s.config, s.instance, s.metrics, s.readiness, s.shutdown).await?;
            tracing::info!("consumer stopped");
            Ok::<_, service::ConsumerError>(())
        },
    )
    .await
}
