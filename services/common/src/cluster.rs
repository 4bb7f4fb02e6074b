//! Talking to the cluster beyond producing and consuming: creating the
//! topics a service needs at start, and a background probe that keeps a
//! readiness condition in step with whether Kafka answers.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::ClientContext;
use tokio::task::{AbortHandle, JoinHandle};

use crate::config::KafkaConfig;
use crate::contract::ready;
use crate::http::Readiness;
use crate::shutdown::Supervisor;

/// How often a service's probe asks Kafka for metadata.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// How long one metadata request of the probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// A Kafka client a probe can ask for a topic's metadata.
pub trait Reachable: Send + Sync + 'static {
    /// Whether the cluster answers a metadata request for `topic` in time.
    fn answers(&self, topic: &str) -> bool;
}

impl<C: ConsumerContext + 'static> Reachable for StreamConsumer<C> {
    fn answers(&self, topic: &str) -> bool {
        self.fetch_metadata(Some(topic), PROBE_TIMEOUT).is_ok()
    }
}

impl<C: ClientContext + 'static> Reachable for FutureProducer<C> {
    fn answers(&self, topic: &str) -> bool {
        self.client()
            .fetch_metadata(Some(topic), PROBE_TIMEOUT)
            .is_ok()
    }
}

impl<T: Reachable> Reachable for Arc<T> {
    fn answers(&self, topic: &str) -> bool {
        T::answers(self, topic)
    }
}

/// Spawns, under `supervisor`, the probe that keeps the `kafka` readiness
/// condition in step with whether `client` gets `topic`'s metadata, every
/// [`PROBE_INTERVAL`]. Returns the supervised task and a handle that stops
/// the probe on purpose (so that its end is no failure).
pub fn supervise_kafka_probe<K: Reachable + Clone>(
    supervisor: &Supervisor,
    client: &K,
    topic: &str,
    readiness: &Arc<Readiness>,
) -> (JoinHandle<()>, AbortHandle) {
    let (client, topic) = (client.clone(), topic.to_string());
    let probe = spawn_reachability_probe(
        move || client.answers(&topic),
        readiness.clone(),
        ready::KAFKA,
        PROBE_INTERVAL,
        supervisor.token().clone(),
    );
    let abort = probe.abort_handle();
    let task = supervisor.spawn("probe", async move {
        let _ = probe.await;
    });
    (task, abort)
}

/// Keeps a readiness condition in step with whether Kafka answers a metadata
/// request, checking every `every` until `shutdown`. `probe` runs on a
/// blocking thread (librdkafka calls block).
pub fn spawn_reachability_probe<F>(
    probe: F,
    readiness: std::sync::Arc<crate::http::Readiness>,
    condition: &'static str,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> bool + Send + Sync + 'static,
{
    let probe = std::sync::Arc::new(probe);
    tokio::spawn(async move {
        let mut was = None;
        loop {
            let p = probe.clone();
            let ok = tokio::task::spawn_blocking(move || p())
                .await
                .unwrap_or(false);
            readiness.set(condition, ok);
            if was != Some(ok) {
                if ok {
                    tracing::info!(condition, "kafka reachable");
                } else {
                    tracing::warn!(condition, "kafka unreachable");
                }
                was = Some(ok);
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    })
}

/// Creates `topic` if it does not exist, retrying until it exists or
/// `shutdown` fires. Returns whether the topic exists. With a `retention`,
/// the topic is created with `cleanup.policy=delete` and that `retention.ms`
/// (an existing topic keeps its configuration).
pub async fn ensure_topic(
    kafka: &KafkaConfig,
    topic: &str,
    partitions: i32,
    replication_factor: i32,
    retention: Option<std::time::Duration>,
    shutdown: &tokio_util::sync::CancellationToken,
) -> bool {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;
    let admin: AdminClient<DefaultClientContext> = match kafka.client_config().create() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "admin client");
            return false;
        }
    };
    let retention_ms = retention.map(|r| r.as_millis().to_string());
    let mut delay = std::time::Duration::from_millis(200);
    loop {
        let mut new = NewTopic::new(
            topic,
            partitions,
            TopicReplication::Fixed(replication_factor),
        );
        if let Some(ms) = &retention_ms {
            // Tansu deletes old records only from topics whose
            // cleanup.policy is set explicitly; Kafka's default is the same.
            new = new.set("cleanup.policy", "delete").set("retention.ms", ms);
        }
        let opts = AdminOptions::new().operation_timeout(Some(std::time::Duration::from_secs(10)));
        let created = tokio::select! {
            _ = shutdown.cancelled() => return false,
            r = admin.create_topics([&new], &opts) => r,
        };
        match created {
            Ok(results) => match results.into_iter().next() {
                Some(Ok(_)) => {
                    tracing::info!(
                        topic,
                        partitions,
                        replication_factor,
                        retention_ms,
                        "topic created"
                    );
                    return true;
                }
                Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => return true,
                Some(Err((_, code))) => tracing::warn!(topic, error = %code, "create topic"),
                None => tracing::warn!(topic, "create topic: no result"),
            },
            Err(e) => tracing::warn!(topic, error = %e, "create topic"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(std::time::Duration::from_secs(5));
    }
}
