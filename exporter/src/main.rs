//! `meshflow-exporter`: measures in the service skeleton until
//! SIGTERM/SIGINT; commits what it read, exits 0.

use std::process::ExitCode;

use meshflow_common::skeleton::Skeleton;
use meshflow_exporter::config::{self, Config, LIST_KEYS};
use meshflow_exporter::metrics::{ExporterMetrics, GROUP_STATUS};
use meshflow_exporter::service::{self, READINESS};

#[tokio::main]
async fn main() -> ExitCode {
    Skeleton {
        binary: "meshflow-exporter",
        role: "exporter",
        list_keys: LIST_KEYS,
        keys: config::KEYS,
        readiness: &READINESS,
        statesets: &[GROUP_STATUS],
    }
    .run(
        |c: &Config, registry, _messaging| {
            let groups = c.exporter.groups.as_slice().into();
            let metrics =
                ExporterMetrics::register_for(registry, &groups, &c.exporter.cluster_name);
            metrics.set_expected_cluster(&c.exporter.cluster);
            metrics
        },
        |s| async move {
            service::run(s.config, s.metrics, s.readiness, s.shutdown).await?;
            tracing::info!("exporter stopped");
            Ok::<_, meshflow_exporter::Error>(())
        },
    )
    .await
}
