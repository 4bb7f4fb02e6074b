//! The described groups' series: state, members, assignor, partitions
//! per member. A group that is no longer described loses its series.

use std::collections::BTreeSet;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{help, AssignorLabels, GroupLabels, GroupStateLabels, MemberPartitionsLabels, Scoped};
use crate::membership::{Assignor, GroupState, Membership};

/// The families of the described groups.
#[derive(Clone, Debug)]
pub struct MembershipSeries {
    state: Scoped<GroupStateLabels, Gauge>,
    members: Scoped<GroupLabels, Gauge>,
    member_partitions: Scoped<MemberPartitionsLabels, Gauge>,
    assigned: Scoped<GroupLabels, Gauge>,
    assignor: Scoped<AssignorLabels, Gauge>,
}

fn gauge(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl MembershipSeries {
    /// Registers the families into `registry`; the handle writes for
    /// `cluster`.
    pub fn register(registry: &mut Registry, cluster: &str) -> Self {
        let series = MembershipSeries {
            state: Scoped::new(cluster),
            members: Scoped::new(cluster),
            member_partitions: Scoped::new(cluster),
            assigned: Scoped::new(cluster),
            assignor: Scoped::new(cluster),
        };
        register!(registry;
            "consumer_group_state" => series.state.family(),
            "consumer_group_members" => series.members.family(),
            "consumer_group_member_partitions" => series.member_partitions.family(),
            "consumer_group_assigned_partitions" => series.assigned.family(),
            "consumer_group_assignor" => series.assignor.family(),
        );
        series
    }

    /// The same families, writing for `cluster`.
    pub fn in_cluster(&self, cluster: &str) -> Self {
        MembershipSeries {
            state: self.state.in_cluster(cluster),
            members: self.members.in_cluster(cluster),
            member_partitions: self.member_partitions.in_cluster(cluster),
            assigned: self.assigned.in_cluster(cluster),
            assignor: self.assignor.in_cluster(cluster),
        }
    }

    /// Publishes one group's description.
    pub fn set(&self, m: &Membership) {
        let group = || m.group.clone();
        for state in GroupState::ALL {
            let labels = GroupStateLabels {
                group: group(),
                state: state.as_str(),
            };
            self.state
                .get_or_create(&labels)
                .set(i64::from(state == m.state));
        }
        for assignor in Assignor::ALL {
            let labels = AssignorLabels {
                group: group(),
                assignor: assignor.as_str(),
            };
            self.assignor
                .get_or_create(&labels)
                .set(i64::from(assignor == m.assignor));
        }
        let labels = GroupLabels { group: group() };
        self.members.get_or_create(&labels).set(gauge(m.members));
        self.assigned.get_or_create(&labels).set(gauge(m.assigned));
        for (stat, value) in [("min", m.min_partitions), ("max", m.max_partitions)] {
            let labels = MemberPartitionsLabels {
                group: group(),
                stat,
            };
            self.member_partitions
                .get_or_create(&labels)
                .set(gauge(value));
        }
    }

    /// Removes one group's series.
    pub fn remove(&self, group: &str) {
        for state in GroupState::ALL {
            self.state.remove(&GroupStateLabels {
                group: group.to_string(),
                state: state.as_str(),
            });
        }
        for assignor in Assignor::ALL {
            self.assignor.remove(&AssignorLabels {
                group: group.to_string(),
                assignor: assignor.as_str(),
            });
        }
        let labels = GroupLabels {
            group: group.to_string(),
        };
        self.members.remove(&labels);
        self.assigned.remove(&labels);
        for stat in ["min", "max"] {
            self.member_partitions.remove(&MemberPartitionsLabels {
                group: group.to_string(),
                stat,
            });
        }
    }

    /// Publishes `memberships` and removes the series of the groups of
    /// `published` that are not among them; returns the groups published.
    pub fn replace(
        &self,
        memberships: &[Membership],
        published: &BTreeSet<String>,
    ) -> BTreeSet<String> {
        let now: BTreeSet<String> = memberships.iter().map(|m| m.group.clone()).collect();
        for gone in published.difference(&now) {
            self.remove(gone);
        }
        for m in memberships {
            self.set(m);
        }
        now
    }
}
