//! A consumer group as the broker describes it (DescribeGroups, through
//! librdkafka's `rd_kafka_list_groups`): its state, protocol and members,
//! with each member's assignment decoded from the consumer protocol.

use std::collections::BTreeSet;
use std::time::Duration;

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
                    .map(|bytes| assignment_partitions(bytes, &topic))
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

/// The partitions of `topic` in a consumer-protocol assignment (version,
/// then topics with their partitions, then user data; big-endian). An
/// assignment cut short yields what was read before the cut.
pub fn assignment_partitions(bytes: &[u8], topic: &str) -> BTreeSet<i32> {
    let mut r = Reader(bytes);
    let mut found = BTreeSet::new();
    let _version = r.i16();
    let topics = r.i32().unwrap_or(0);
    for _ in 0..topics.max(0) {
        let Some(name) = r.string() else { break };
        let count = r.i32().unwrap_or(0);
        for _ in 0..count.max(0) {
            let Some(p) = r.i32() else { break };
            if name == topic {
                found.insert(p);
            }
        }
    }
    found
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        self.take(len)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut out = 1i16.to_be_bytes().to_vec();
        out.extend((topics.len() as i32).to_be_bytes());
        for (name, partitions) in topics {
            out.extend((name.len() as i16).to_be_bytes());
            out.extend(name.as_bytes());
            out.extend((partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                out.extend(p.to_be_bytes());
            }
        }
        out.extend((-1i32).to_be_bytes());
        out
    }

    #[test]
    fn decodes_the_partitions_of_one_topic() {
        let bytes = encode(&[("events", &[0, 3, 5]), ("other", &[1])]);
        assert_eq!(
            assignment_partitions(&bytes, "events"),
            BTreeSet::from([0, 3, 5])
        );
        assert_eq!(assignment_partitions(&bytes, "other"), BTreeSet::from([1]));
        assert!(assignment_partitions(&bytes, "absent").is_empty());
    }

    #[test]
    fn a_cut_or_hostile_assignment_yields_what_was_read() {
        let bytes = encode(&[("events", &[0, 3, 5])]);
        for cut in 0..bytes.len() {
            assert!(assignment_partitions(&bytes[..cut], "events")
                .is_subset(&BTreeSet::from([0, 3, 5])));
        }
        let mut huge = 1i16.to_be_bytes().to_vec();
        huge.extend(i32::MAX.to_be_bytes());
        assert!(assignment_partitions(&huge, "events").is_empty());
    }
}
