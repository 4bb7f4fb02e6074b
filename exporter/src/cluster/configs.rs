//! Each reported topic's `min.insync.replicas`, from DescribeConfigs, with
//! the broker's default and then `exporter.cluster.min_insync_replicas` as
//! fallbacks. One request per poll for every topic and one broker.

use std::collections::{BTreeMap, BTreeSet};

use rdkafka::admin::{AdminClient, AdminOptions, OwnedResourceSpecifier, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;

use meshflow_common::config::KafkaConfig;

use super::{kafka, REQUEST_TIMEOUT};
use crate::Error;

/// The config entry read.
const MIN_INSYNC: &str = "min.insync.replicas";

/// What DescribeConfigs told of `min.insync.replicas`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MinInsyncAnswer {
    /// Per topic that answered with the entry, its value (Kafka answers
    /// with the value in force: the topic's own, else the broker's).
    pub topics: BTreeMap<String, u32>,
    /// The broker's value, when the broker resource answered.
    pub broker: Option<u32>,
}

impl MinInsyncAnswer {
    /// The value in force for `topic`: the topic's, else the broker's,
    /// else `configured`.
    pub fn resolve(&self, topic: &str, configured: u32) -> u32 {
        self.topics
            .get(topic)
            .copied()
            .or(self.broker)
            .unwrap_or(configured)
    }
}

/// The admin client that asks.
pub(super) fn admin_client(
    kafka: &KafkaConfig,
) -> Result<AdminClient<DefaultClientContext>, Error> {
    kafka
        .client_config()
        .create()
        .map_err(self::kafka("admin client"))
}

/// Asks for `min.insync.replicas` of `topics` and of `broker`. A resource
/// that answers with an error (an unknown topic, a broker resource the
/// broker does not describe) is left out; a failed request is an error.
pub(super) fn min_insync(
    admin: &AdminClient<DefaultClientContext>,
    topics: &BTreeSet<String>,
    broker: Option<i32>,
) -> Result<MinInsyncAnswer, Error> {
    let mut resources: Vec<ResourceSpecifier<'_>> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    resources.extend(broker.map(ResourceSpecifier::Broker));
    if resources.is_empty() {
        return Ok(MinInsyncAnswer::default());
    }
    let options = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT));
    let answers = futures::executor::block_on(admin.describe_configs(&resources, &options))
        .map_err(kafka("describe configs"))?;
    let mut found = MinInsyncAnswer::default();
    for resource in answers.into_iter().flatten() {
        let value = resource
            .get(MIN_INSYNC)
            .and_then(|e| e.value.as_deref())
            .and_then(|v| v.trim().parse::<u32>().ok());
        let Some(value) = value else { continue };
        match resource.specifier {
            OwnedResourceSpecifier::Topic(topic) => {
                found.topics.insert(topic, value);
            }
            OwnedResourceSpecifier::Broker(_) => found.broker = Some(value),
            OwnedResourceSpecifier::Group(_) => {}
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_topic_wins_then_the_broker_then_the_configuration() {
        let answer = MinInsyncAnswer {
            topics: BTreeMap::from([("payments".to_string(), 3)]),
            broker: Some(2),
        };
        assert_eq!(answer.resolve("payments", 1), 3);
        assert_eq!(answer.resolve("events", 1), 2);
        let nothing = MinInsyncAnswer::default();
        assert_eq!(nothing.resolve("events", 1), 1);
    }
}
