//! A consumer group as its coordinator describes it (DescribeGroups): its
//! state, its members, the assignor it agreed on and how its partitions
//! are spread over the members, reduced to figures with bounded labels.
//!
//! The state is one of a fixed set ([`GroupState`]); the assignor is one
//! of the names clients ship or `other` ([`Assignor`]); members are
//! counted, never named (member and client ids change with every join, so
//! they would make series without bound).

use meshflow_common::assignment::Assignment;

/// A group's state as the coordinator reports it (Kafka's classic group
/// states), `Unknown` for anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupState {
    /// Members are consuming with an agreed assignment.
    Stable,
    /// A member joined, left or timed out: the coordinator waits for every
    /// member to rejoin. Nobody consumes.
    PreparingRebalance,
    /// Every member rejoined; the coordinator waits for the leader's
    /// assignment. Nobody consumes.
    CompletingRebalance,
    /// No members; the group may still hold committed offsets.
    Empty,
    /// No members and no offsets, or the group is being removed.
    Dead,
    /// A state this exporter does not know (a newer broker's).
    Unknown,
}

impl GroupState {
    /// Every state, in label order.
    pub const ALL: [GroupState; 6] = [
        GroupState::Stable,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Empty,
        GroupState::Dead,
        GroupState::Unknown,
    ];

    /// The state named by a DescribeGroups answer (Kafka's spelling; the
    /// old `AwaitingSync` is `CompletingRebalance`).
    pub fn parse(state: &str) -> GroupState {
        match state {
            "Stable" => GroupState::Stable,
            "PreparingRebalance" => GroupState::PreparingRebalance,
            "CompletingRebalance" | "AwaitingSync" => GroupState::CompletingRebalance,
            "Empty" => GroupState::Empty,
            "Dead" => GroupState::Dead,
            _ => GroupState::Unknown,
        }
    }

    /// The `state` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Stable => "Stable",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Empty => "Empty",
            GroupState::Dead => "Dead",
            GroupState::Unknown => "Unknown",
        }
    }

    /// The group is between assignments: nobody consumes.
    pub fn rebalancing(self) -> bool {
        matches!(
            self,
            GroupState::PreparingRebalance | GroupState::CompletingRebalance
        )
    }
}

/// The assignor a group agreed on (the `protocol` of a consumer group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Assignor {
    /// `range`.
    Range,
    /// `roundrobin`.
    RoundRobin,
    /// `sticky`.
    Sticky,
    /// `cooperative-sticky`.
    CooperativeSticky,
    /// No protocol agreed (an empty or rebalancing group).
    None,
    /// Any other name (a custom assignor, or not a consumer group).
    Other,
}

impl Assignor {
    /// Every assignor, in label order.
    pub const ALL: [Assignor; 6] = [
        Assignor::Range,
        Assignor::RoundRobin,
        Assignor::Sticky,
        Assignor::CooperativeSticky,
        Assignor::None,
        Assignor::Other,
    ];

    /// The assignor named by the group's protocol.
    pub fn parse(protocol: &str) -> Assignor {
        match protocol {
            "range" => Assignor::Range,
            "roundrobin" => Assignor::RoundRobin,
            "sticky" => Assignor::Sticky,
            "cooperative-sticky" => Assignor::CooperativeSticky,
            "" => Assignor::None,
            _ => Assignor::Other,
        }
    }

    /// The `assignor` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::Sticky => "sticky",
            Assignor::CooperativeSticky => "cooperative-sticky",
            Assignor::None => "none",
            Assignor::Other => "other",
        }
    }
}

/// One described group, reduced to what is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The group's name.
    pub group: String,
    /// Its state.
    pub state: GroupState,
    /// The assignor it agreed on.
    pub assignor: Assignor,
    /// Members.
    pub members: usize,
    /// The fewest partitions a member holds (0 without members).
    pub min_partitions: usize,
    /// The most partitions a member holds (0 without members).
    pub max_partitions: usize,
    /// Partitions held by some member, summed over the members (a
    /// partition held by two members, which a correct assignor never does,
    /// counts twice).
    pub assigned: usize,
}

impl Membership {
    /// A group from its description: `protocol_type` `consumer` groups
    /// have their assignments decoded; other types (Kafka Connect, ...)
    /// carry another format and count no partitions.
    pub fn new<'a>(
        group: &str,
        state: &str,
        protocol_type: &str,
        protocol: &str,
        assignments: impl IntoIterator<Item = Option<&'a [u8]>>,
    ) -> Membership {
        let consumer = protocol_type == "consumer" || protocol_type.is_empty();
        let held: Vec<usize> = assignments
            .into_iter()
            .map(|bytes| match bytes {
                Some(bytes) if consumer => Assignment::decode(bytes).partition_count(),
                _ => 0,
            })
            .collect();
        Membership {
            group: group.to_string(),
            state: GroupState::parse(state),
            assignor: if consumer {
                Assignor::parse(protocol)
            } else {
                Assignor::Other
            },
            members: held.len(),
            min_partitions: held.iter().copied().min().unwrap_or(0),
            max_partitions: held.iter().copied().max().unwrap_or(0),
            assigned: held.iter().sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        meshflow_common::testing::assignment_bytes(3, topics)
    }

    #[test]
    fn a_stable_group_of_three_with_six_partitions() {
        let a = assignment(&[("events", &[0, 1, 2])]);
        let b = assignment(&[("events", &[3]), ("orders", &[0])]);
        let c = assignment(&[]);
        let group = Membership::new(
            "billing",
            "Stable",
            "consumer",
            "range",
            [Some(&a[..]), Some(&b[..]), Some(&c[..])],
        );
        assert_eq!(
            group,
            Membership {
                group: "billing".to_string(),
                state: GroupState::Stable,
                assignor: Assignor::Range,
                members: 3,
                min_partitions: 0,
                max_partitions: 3,
                assigned: 5,
            }
        );
    }

    #[test]
    fn states_and_assignors_are_a_fixed_set() {
        for state in GroupState::ALL {
            assert_eq!(GroupState::parse(state.as_str()), state);
        }
        assert_eq!(
            GroupState::parse("AwaitingSync"),
            GroupState::CompletingRebalance
        );
        assert_eq!(GroupState::parse("Reconciling"), GroupState::Unknown);
        assert_eq!(GroupState::parse("stable"), GroupState::Unknown);
        assert!(GroupState::PreparingRebalance.rebalancing());
        assert!(!GroupState::Empty.rebalancing());
        for assignor in [
            Assignor::Range,
            Assignor::RoundRobin,
            Assignor::Sticky,
            Assignor::CooperativeSticky,
        ] {
            assert_eq!(Assignor::parse(assignor.as_str()), assignor);
        }
        assert_eq!(Assignor::parse(""), Assignor::None);
        assert_eq!(Assignor::parse("my-rack-aware"), Assignor::Other);
    }

    #[test]
    fn an_empty_group_and_a_connect_group() {
        let empty = Membership::new("audit", "Empty", "consumer", "", []);
        assert_eq!(
            (empty.members, empty.min_partitions, empty.max_partitions),
            (0, 0, 0)
        );
        assert_eq!(empty.assignor, Assignor::None);
        // Connect's assignment is not the consumer protocol: not decoded.
        let a = assignment(&[("events", &[0, 1])]);
        let connect = Membership::new("connect", "Stable", "connect", "sessioned", [Some(&a[..])]);
        assert_eq!((connect.members, connect.assigned), (1, 0));
        assert_eq!(connect.assignor, Assignor::Other);
    }

    #[test]
    fn hostile_assignments_count_only_what_they_hold() {
        let cut = assignment(&[("events", &[0, 1, 2])]);
        let garbage = [0xffu8; 64];
        let group = Membership::new(
            "g",
            "Stable",
            "consumer",
            "range",
            [Some(&cut[..cut.len() - 8]), Some(&garbage[..]), None],
        );
        assert_eq!(group.members, 3);
        assert_eq!(group.max_partitions, 2);
        assert_eq!(group.assigned, 2);
    }
}
