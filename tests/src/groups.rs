//! A consumer group as the broker describes it (DescribeGroups, through
//! librdkafka's `rd_kafka_list_groups`): its state, protocol and members,
//! with each member's assignment decoded from the consumer protocol
//! ([`meshflow_common::assignment`], the decoder the exporter uses).

use std::collections::BTreeSet;
use std::time::Duration;

use meshflow_common::assignment::Assignment;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

/// One member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member id the coordinator gave it.
    pub id: String,
    /// The client id it joined with.
    pub client_id: String,
    /// The partitions of `topic` (the topic asked about) assigned to it.
    pub partitions: BTreeSet<i32>,
}

/// A described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Empty`, `Dead`.
    pub state: String,
    /// The protocol type (`consumer`).
    pub protocol_type: String,
    /// The assignor the group agreed on (`range`, `roundrobin`, ...).
    pub protocol: String,
    /// Its members, in the order the broker lists them.
    pub members: Vec<Member>,
}

impl Group {
    /// Every partition of the topic assigned to some member.
    pub fn assigned(&self) -> BTreeSet<i32> {
        self.members
            .iter()
            .flat_map(|m| m.partitions.iter().copied())
            .collect()
    }
}

/// Describes `group` at `bootstrap`, decoding the assignments of `topic`.
/// `Err` carries librdkafka's error (a dropped connection, a timeout).
pub async fn describe(bootstrap: &str, group: &str, topic: &str) -> Result<Group, String> {
    let (bootstrap, group, topic) = (bootstrap.to_string(), group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .map_err(|e| e.to_string())?;
        let list = client
            .fetch_group_list(Some(&group), Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let info = list
            .groups()
            .iter()
            .find(|g| g.name() == group)
            .ok_or_else(|| format!("{group} is not in the answer"))?;
        let members = info
            .members()
            .iter()
            .map(|m| Member {
                id: m.id().to_string(),
                client_id: m.client_id().to_string(),
                partitions: m
                    .assignment()
                    .map(|bytes| Assignment::decode(bytes).partitions_of(&topic))
                    .unwrap_or_default(),
            })
            .collect();
        Ok(Group {
            state: info.state().to_string(),
            protocol_type: info.protocol_type().to_string(),
            protocol: info.protocol().to_string(),
            members,
        })
    })
    .await
    .map_err(|e| e.to_string())?
}
