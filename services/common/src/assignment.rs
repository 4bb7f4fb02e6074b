//! A consumer group member's assignment, decoded from the bytes a
//! DescribeGroups answer carries for it (Kafka's consumer protocol,
//! `ConsumerProtocolAssignment`: a version, then topics with their
//! partitions, then user data; big-endian, strings with an i16 length).
//!
//! The bytes come from the broker and, through it, from whichever client
//! led the group, so nothing is trusted: an assignment cut short yields
//! what was read before the cut, and a count larger than the bytes left
//! cannot make the decoder allocate or loop beyond them.

use std::collections::BTreeSet;

/// One topic of an assignment and its partitions, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedTopic {
    /// Topic name (lossily decoded: Kafka names are ASCII).
    pub topic: String,
    /// Partition ids.
    pub partitions: Vec<i32>,
}

/// A member's assignment: every topic with its partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// The topics, in the order the bytes list them.
    pub topics: Vec<AssignedTopic>,
}

impl Assignment {
    /// Decodes an assignment; what follows a cut or malformed field is left
    /// out.
    pub fn decode(bytes: &[u8]) -> Assignment {
        let mut r = Reader(bytes);
        let mut topics = Vec::new();
        let _version = r.i16();
        let count = r.i32().unwrap_or(0);
        for _ in 0..count.max(0) {
            let Some(topic) = r.string() else { break };
            let mut partitions = Vec::new();
            let n = r.i32().unwrap_or(0);
            for _ in 0..n.max(0) {
                let Some(p) = r.i32() else { break };
                partitions.push(p);
            }
            let cut = partitions.len() < usize::try_from(n.max(0)).unwrap_or(usize::MAX);
            topics.push(AssignedTopic { topic, partitions });
            if cut {
                break;
            }
        }
        Assignment { topics }
    }

    /// The partitions of `topic`.
    pub fn partitions_of(&self, topic: &str) -> BTreeSet<i32> {
        self.topics
            .iter()
            .filter(|t| t.topic == topic)
            .flat_map(|t| t.partitions.iter().copied())
            .collect()
    }

    /// Distinct (topic, partition) pairs assigned.
    pub fn partition_count(&self) -> usize {
        self.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.topic.as_str(), *p)))
            .collect::<BTreeSet<_>>()
            .len()
    }
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
        crate::testing::assignment_bytes(1, topics)
    }

    #[test]
    fn decodes_every_topic_and_its_partitions() {
        let bytes = encode(&[("events", &[0, 3, 5]), ("other", &[1])]);
        let assignment = Assignment::decode(&bytes);
        assert_eq!(
            assignment.partitions_of("events"),
            BTreeSet::from([0, 3, 5])
        );
        assert_eq!(assignment.partitions_of("other"), BTreeSet::from([1]));
        assert!(assignment.partitions_of("absent").is_empty());
        assert_eq!(assignment.partition_count(), 4);
        assert_eq!(Assignment::decode(&[]).partition_count(), 0);
    }

    #[test]
    fn a_cut_or_hostile_assignment_yields_what_was_read() {
        let bytes = encode(&[("events", &[0, 3, 5]), ("other", &[1])]);
        let whole = Assignment::decode(&bytes);
        for cut in 0..bytes.len() {
            let part = Assignment::decode(&bytes[..cut]);
            assert!(
                part.partition_count() <= whole.partition_count(),
                "cut {cut}"
            );
            assert!(part
                .partitions_of("events")
                .is_subset(&BTreeSet::from([0, 3, 5])));
        }
        // Counts far beyond the bytes: nothing is invented.
        let mut huge = 1i16.to_be_bytes().to_vec();
        huge.extend(i32::MAX.to_be_bytes());
        assert_eq!(Assignment::decode(&huge).partition_count(), 0);
        let mut many = 1i16.to_be_bytes().to_vec();
        many.extend(1i32.to_be_bytes());
        many.extend(1i16.to_be_bytes());
        many.extend(b"t");
        many.extend(i32::MAX.to_be_bytes());
        many.extend(7i32.to_be_bytes());
        assert_eq!(
            Assignment::decode(&many).partitions_of("t"),
            BTreeSet::from([7])
        );
    }
}
