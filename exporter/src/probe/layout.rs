//! The probe topic's layout: its partitions and their leaders, the topic
//! created or given partitions as the brokers require, and new partitions
//! read from their end.

use std::collections::{BTreeMap, BTreeSet};

use rdkafka::admin::{AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::{Leader, Probe, REQUEST_TIMEOUT};
use crate::cluster::kafka;
use crate::config::MAX_PROBE_PARTITIONS;
use crate::Error;

impl Probe {
    /// Reads the probe topic's partitions and leaders, creates the topic or
    /// adds partitions as the brokers require, and starts reading new
    /// partitions at their end.
    pub(super) async fn refresh_layout(&mut self) -> Result<(), Error> {
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
        self.metrics.set_layout(&leaders, uncovered);
        let new: Vec<i32> = leaders
            .iter()
            .map(|&(p, _)| p)
            .filter(|p| !self.assigned.contains(p))
            .collect();
        self.leaders = leaders;
        if !new.is_empty() {
            self.assign(new).await?;
        }
        Ok(())
    }

    /// The cluster's brokers and the probe topic's partitions with their
    /// leaders (none when the topic does not exist).
    async fn layout(&self) -> Result<Layout, Error> {
        let metadata = tokio::task::block_in_place(|| {
            self.consumer
                .fetch_metadata(Some(&self.config.topic), REQUEST_TIMEOUT)
        })
        .map_err(kafka("probe metadata"))?;
        let brokers = metadata.brokers().iter().map(|b| b.id()).collect();
        let leaders = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == self.config.topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| (p.id(), p.leader())))
            .collect();
        Ok(Layout { brokers, leaders })
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

    /// Starts reading `new` partitions at their current end, before the
    /// first message is sent to them; the partitions already read go on
    /// where they are.
    async fn assign(&mut self, new: Vec<i32>) -> Result<(), Error> {
        let mut assignment = TopicPartitionList::new();
        for &partition in &new {
            let (_, high) = tokio::task::block_in_place(|| {
                self.consumer
                    .fetch_watermarks(&self.config.topic, partition, REQUEST_TIMEOUT)
            })
            .map_err(kafka("probe watermarks"))?;
            assignment
                .add_partition_offset(&self.config.topic, partition, Offset::Offset(high))
                .map_err(kafka("probe assign"))?;
        }
        self.consumer
            .incremental_assign(&assignment)
            .map_err(kafka("probe assign"))?;
        tracing::info!(partitions = ?new, "probe partitions read");
        self.assigned.extend(new);
        Ok(())
    }
}

/// The brokers and the probe topic's leaders, from one metadata answer.
struct Layout {
    brokers: BTreeSet<i32>,
    leaders: BTreeMap<i32, i32>,
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
