//! The probe topic's layout: its partitions and their leaders, the topic
//! created or given partitions as the brokers require, and the ends of the
//! partitions not read yet. A check runs as a task of its own, beside the
//! probe's sending and reading: a slow metadata or admin answer must not
//! hold back the reading and so lengthen the round trips it measures.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::{Leader, REQUEST_TIMEOUT};
use crate::cluster::kafka;
use crate::config::{ProbeConfig, MAX_PROBE_PARTITIONS};
use crate::Error;

/// What a layout check needs: the settings and two of the probe's clients.
#[derive(Clone)]
pub(super) struct LayoutClients {
    pub(super) config: ProbeConfig,
    pub(super) admin: Arc<AdminClient<DefaultClientContext>>,
    pub(super) consumer: Arc<StreamConsumer>,
}

/// What one layout check found.
#[derive(Debug)]
pub(super) struct Found {
    /// The partitions to write, with their leaders.
    pub(super) leaders: Vec<Leader>,
    /// Brokers leading none of them.
    pub(super) uncovered: usize,
    /// The end offset of each partition not read yet: where its reading
    /// starts, before the first message is sent to it.
    pub(super) new_ends: Vec<(i32, i64)>,
}

/// The brokers and the probe topic's leaders, from one metadata answer.
struct Layout {
    brokers: BTreeSet<i32>,
    leaders: BTreeMap<i32, i32>,
}

impl LayoutClients {
    /// Reads the probe topic's partitions and leaders, creates the topic or
    /// adds partitions as the brokers require, and finds the ends of the
    /// partitions not in `assigned`.
    pub(super) async fn check(self, assigned: BTreeSet<i32>) -> Result<Found, Error> {
        let layout = self.layout().await?;
        let brokers = layout.brokers.len();
        let wanted =
            (brokers * self.config.partitions_per_broker as usize).clamp(1, MAX_PROBE_PARTITIONS);
        let layout = match layout.leaders.len() {
            0 => {
                let replicas = (self.config.replication_factor as usize).clamp(1, brokers.max(1));
                self.create_topic(wanted, replicas).await?;
                self.layout().await?
            }
            have if have < wanted => {
                self.add_partitions(wanted).await?;
                self.layout().await?
            }
            _ => layout,
        };
        let mut leaders: Vec<Leader> = layout.leaders.into_iter().collect();
        leaders.truncate(MAX_PROBE_PARTITIONS);
        let leading: BTreeSet<i32> = leaders.iter().map(|&(_, leader)| leader).collect();
        let uncovered = layout.brokers.difference(&leading).count();
        let new: Vec<i32> = leaders
            .iter()
            .map(|&(p, _)| p)
            .filter(|p| !assigned.contains(p))
            .collect();
        let new_ends = self.ends(new).await?;
        Ok(Found {
            leaders,
            uncovered,
            new_ends,
        })
    }

    /// The cluster's brokers and the probe topic's partitions with their
    /// leaders (none when the topic does not exist).
    async fn layout(&self) -> Result<Layout, Error> {
        let (consumer, topic) = (self.consumer.clone(), self.config.topic.clone());
        let metadata = tokio::task::spawn_blocking(move || {
            let metadata = consumer.fetch_metadata(Some(&topic), REQUEST_TIMEOUT)?;
            let brokers = metadata.brokers().iter().map(|b| b.id()).collect();
            let leaders = metadata
                .topics()
                .iter()
                .filter(|t| t.name() == topic && t.error().is_none())
                .flat_map(|t| t.partitions().iter().map(|p| (p.id(), p.leader())))
                .collect();
            Ok(Layout { brokers, leaders })
        });
        metadata
            .await
            .unwrap_or(Err(KafkaError::Canceled))
            .map_err(kafka("probe metadata"))
    }

    /// The high watermark of each of `partitions`.
    async fn ends(&self, partitions: Vec<i32>) -> Result<Vec<(i32, i64)>, Error> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let (consumer, topic) = (self.consumer.clone(), self.config.topic.clone());
        let ends = tokio::task::spawn_blocking(move || {
            partitions
                .into_iter()
                .map(|p| {
                    let (_, high) = consumer.fetch_watermarks(&topic, p, REQUEST_TIMEOUT)?;
                    Ok((p, high))
                })
                .collect()
        });
        ends.await
            .unwrap_or(Err(KafkaError::Canceled))
            .map_err(kafka("probe watermarks"))
    }

    async fn create_topic(&self, partitions: usize, replicas: usize) -> Result<(), Error> {
        let topic = NewTopic::new(
            &self.config.topic,
            i32::try_from(partitions).unwrap_or(i32::MAX),
            TopicReplication::Fixed(i32::try_from(replicas).unwrap_or(1)),
        );
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let asked = self.admin.create_topics([&topic], &options);
        let results = admin_answer("probe create topic", asked).await?;
        for result in results {
            match result {
                Ok(_) => tracing::info!(
                    topic = %self.config.topic, partitions, replicas, "probe topic created"
                ),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(admin_error("probe create topic", code)),
            }
        }
        Ok(())
    }

    async fn add_partitions(&self, total: usize) -> Result<(), Error> {
        let more = NewPartitions::new(&self.config.topic, total);
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let asked = self.admin.create_partitions([&more], &options);
        for result in admin_answer("probe add partitions", asked).await? {
            if let Err((_, code)) = result {
                return Err(admin_error("probe add partitions", code));
            }
        }
        tracing::info!(topic = %self.config.topic, partitions = total, "probe partitions added");
        Ok(())
    }
}

/// An admin request's per-topic failure.
fn admin_error(operation: &'static str, code: RDKafkaErrorCode) -> Error {
    kafka(operation)(KafkaError::AdminOp(code))
}

/// Waits for an admin request's answer, bounded.
async fn admin_answer<T>(
    operation: &'static str,
    asked: impl std::future::Future<Output = Result<T, KafkaError>>,
) -> Result<T, Error> {
    tokio::time::timeout(REQUEST_TIMEOUT * 2, asked)
        .await
        .map_err(|_| admin_error(operation, RDKafkaErrorCode::OperationTimedOut))?
        .map_err(kafka(operation))
}
