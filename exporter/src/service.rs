//! The exporter's run loop: wires the reader, the polling and the
//! reachability probe together and stops them all on shutdown.
//!
//! These tasks run until the shutdown token fires:
//!
//! - the [`Reader`] reads the judged topics and the receipts topic into
//!   each judged topic's accounting, sweeps them every second, and commits
//!   what it read when it stops;
//! - the [`watch`] loop polls offsets, watermarks and metadata every
//!   `exporter.poll_interval` for lag, group status and cluster health;
//!   one such loop runs for the home cluster and one for each entry of
//!   `exporter.clusters`, each with its own clients and its series
//!   labelled with its `kafka_cluster` (see `config/clusters.rs`);
//! - a probe keeps the `kafka` readiness condition in step with whether
//!   Kafka answers;
//! - with `exporter.probe.enabled`, the end-to-end [`Probe`] writes its
//!   own messages to the probe topic and reads them back.
//!
//! `/readyz` is 200 when Kafka answers and the partitions of the receipts
//! topic and of at least one judged topic are assigned to the reader.
//!
//! The tasks are supervised: if one ends before shutdown (returns or
//! panics), the others are stopped and [`run`] returns
//! [`Error::TaskEnded`], so the process exits non-zero and is restarted
//! instead of serving frozen counters.

use std::sync::Arc;

use meshflow_common::cluster::supervise_kafka_probe;
use meshflow_common::config::instance_id;
use meshflow_common::http::Readiness;
use meshflow_common::shutdown::Supervisor;
use tokio_util::sync::CancellationToken;

use crate::cluster::ClusterPoller;
use crate::config::Config;
use crate::groups::Groups;
use crate::metrics::ExporterMetrics;
use crate::probe::Probe;
use crate::reader::{self, Reader};
use crate::watch::{self, GroupWatch};
use crate::Error;

/// Readiness condition: Kafka answers metadata requests.
pub const READY_KAFKA: &str = meshflow_common::contract::ready::KAFKA;

/// Every readiness condition of the exporter.
pub const READINESS: [&str; 3] = [READY_KAFKA, reader::READY_LOG, reader::READY_RECEIPTS];

/// Runs until `shutdown` fires; returns once every task has stopped.
pub async fn run(
    config: Config,
    metrics: ExporterMetrics,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let settings = &config.exporter;
    // The one registry of watched groups: the one the metrics were
    // registered with.
    let groups = metrics.groups().clone();
    let matcher = settings.topic_matcher()?;
    let consumer = Arc::new(reader::consumer(&config)?);
    let poller = ClusterPoller::new(
        &config.kafka,
        matcher.clone(),
        &settings.receipts_topic,
        &groups,
        &settings.group_id,
        &settings.discovery,
    )?
    .with_min_insync(settings.cluster.min_insync_replicas);
    // Every client is created before any task starts.
    let end_to_end = settings
        .probe
        .enabled
        .then(|| {
            Probe::new(
                &config.kafka,
                &settings.probe,
                &settings.group_id,
                &instance_id("exporter-probe"),
                metrics.probe().clone(),
            )
        })
        .transpose()?;
    let none = Groups::new(std::iter::empty::<String>());
    let others = settings
        .clusters
        .iter()
        .map(|cluster| {
            let poller =
                ClusterPoller::watch_only(&cluster.kafka, &settings.group_id, &cluster.discovery)?
                    .with_min_insync(cluster.cluster.min_insync_replicas);
            let metrics = metrics.for_cluster(&cluster.name, &none);
            metrics.set_expected_cluster(&cluster.cluster);
            let watch = GroupWatch::new(&none, &settings.status)
                .with_granularity(cluster.cluster.granularity);
            Ok((poller, watch, metrics))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    tracing::info!(
        cluster = %settings.cluster_name,
        clusters = %settings.clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(","),
        topics = %settings.topics.join(","),
        receipts_topic = %settings.receipts_topic,
        groups = %settings.groups.join(","),
        group_id = %settings.group_id,
        "exporting"
    );

    let supervisor = Supervisor::new(shutdown.clone());
    // Kafka answers when it lists the receipts topic: every judged topic
    // may be a pattern.
    let (probe, _) =
        supervise_kafka_probe(&supervisor, &consumer, &settings.receipts_topic, &readiness);
    let (marks, marks_rx) = watch::marks_channel();
    let watching = supervisor.spawn(
        "watch",
        watch::run(
            poller,
            GroupWatch::new(&groups, &settings.status)
                .with_granularity(settings.cluster.granularity),
            metrics.clone(),
            settings.poll_interval,
            marks,
            shutdown.clone(),
        ),
    );
    let reader = Reader::new(consumer, matcher, metrics, readiness, &config).with_marks(marks_rx);
    let reading = supervisor.spawn("reader", reader.run(shutdown.clone()));
    let mut tasks = vec![reading, watching, probe];
    for (poller, watch, metrics) in others {
        // Their marks concern no judged topic: nobody reads them.
        let (marks, _) = watch::marks_channel();
        let task = watch::run(
            poller,
            watch,
            metrics,
            settings.poll_interval,
            marks,
            shutdown.clone(),
        );
        tasks.push(supervisor.spawn("watch (exporter.clusters)", task));
    }
    if let Some(end_to_end) = end_to_end {
        tasks.push(supervisor.spawn("probe", end_to_end.run(shutdown.clone())));
    }

    for task in tasks {
        let _ = task.await;
    }
    supervisor.result().map_err(Error::TaskEnded)
}
