//! Fatal Kafka client errors.
//!
//! After a fatal error (for an idempotent producer: a sequence or epoch
//! desynchronisation it cannot repair without risking duplicates or
//! reordering) librdkafka refuses every further send until the client is
//! recreated. Retrying in place would leave a process that looks alive and
//! does nothing, so the service stops instead: [`watch`] runs under the
//! service's [`Supervisor`](crate::shutdown::Supervisor), and its return
//! before shutdown makes every loop stop at a safe point (flushing and
//! committing what it can) and `main` exit non-zero, so the supervisor or
//! Kubernetes starts a fresh instance with a new client.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::types::RDKafkaErrorCode;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::http::Readiness;
use crate::shutdown::Supervisor;

/// Readiness condition: no Kafka client of the service has a fatal error.
pub const READY_CLIENT: &str = "kafka_client";

/// The task name under which services supervise [`watch`].
pub const WATCHER_TASK: &str = "fatal Kafka error watcher";

/// How often the client is asked for a fatal error.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// Sets [`READY_CLIENT`] and checks `fatal` (typically
/// `|| producer.client().fatal_error()`) every `interval` until `shutdown`.
/// On a fatal error it clears [`READY_CLIENT`], logs the error and returns,
/// which a supervisor treats as the end of the service.
pub async fn watch<F>(
    client: &'static str,
    fatal: F,
    readiness: Arc<Readiness>,
    interval: Duration,
    shutdown: CancellationToken,
) where
    F: Fn() -> Option<(RDKafkaErrorCode, String)> + Send + 'static,
{
    readiness.set(READY_CLIENT, true);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if let Some((code, reason)) = fatal() {
            readiness.set(READY_CLIENT, false);
            tracing::error!(
                client, code = ?code, reason,
                "fatal Kafka client error; stopping so that a fresh instance takes over"
            );
            return;
        }
    }
}

/// Spawns [`watch`] under `supervisor` as [`WATCHER_TASK`], checking
/// every [`CHECK_INTERVAL`] until the supervisor's shutdown.
pub fn supervise<F>(
    supervisor: &Supervisor,
    client: &'static str,
    fatal: F,
    readiness: Arc<Readiness>,
) -> JoinHandle<()>
where
    F: Fn() -> Option<(RDKafkaErrorCode, String)> + Send + 'static,
{
    let shutdown = supervisor.token().clone();
    supervisor.spawn(
        WATCHER_TASK,
        watch(client, fatal, readiness, CHECK_INTERVAL, shutdown),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn a_fatal_error_clears_readiness_and_stops_the_service() {
        let readiness = Readiness::new(&[READY_CLIENT], &mut Registry::default());
        let shutdown = CancellationToken::new();
        let supervisor = Supervisor::new(shutdown.clone());
        let failed = Arc::new(AtomicBool::new(false));
        let f = failed.clone();
        let fatal = move || {
            f.load(Ordering::SeqCst).then(|| {
                (
                    RDKafkaErrorCode::OutOfOrderSequenceNumber,
                    "sequence desynchronisation".to_string(),
                )
            })
        };
        let handle = supervisor.spawn(
            WATCHER_TASK,
            watch(
                "producer",
                fatal,
                readiness.clone(),
                Duration::from_millis(10),
                shutdown.clone(),
            ),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(readiness.is_ready());
        assert!(!shutdown.is_cancelled());
        failed.store(true, Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .expect("in time")
            .expect("watcher");
        assert!(shutdown.is_cancelled());
        assert_eq!(readiness.failing(), vec![READY_CLIENT]);
        assert_eq!(
            supervisor.result().expect_err("recorded").task,
            WATCHER_TASK
        );
    }
}
