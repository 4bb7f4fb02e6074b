//! The watched groups as their coordinators describe them: librdkafka's
//! group list (ListGroups on every broker, then DescribeGroups of what each
//! lists), kept for the groups the exporter watches.
//!
//! One call describes every group of the cluster, whatever the number of
//! watched groups: a request per broker rather than one per group. A
//! group missing from the answer (the cluster does not know it) gets no
//! series.

use std::collections::BTreeSet;

use rdkafka::consumer::Consumer;

use super::{kafka, ClusterPoller, REQUEST_TIMEOUT};
use crate::membership::Membership;
use crate::Error;

impl ClusterPoller {
    /// Describes the groups of `wanted`, sorted by name.
    pub(super) fn describe_groups(
        &self,
        wanted: &BTreeSet<String>,
    ) -> Result<Vec<Membership>, Error> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let list = self
            .cluster
            .fetch_group_list(None, REQUEST_TIMEOUT)
            .map_err(kafka("describe groups"))?;
        let mut found: Vec<Membership> = list
            .groups()
            .iter()
            .filter(|g| wanted.contains(g.name()))
            .map(|g| {
                let assignments = g.members().iter().map(|m| m.assignment());
                Membership::new(
                    g.name(),
                    g.state(),
                    g.protocol_type(),
                    g.protocol(),
                    assignments,
                )
            })
            .collect();
        found.sort_by(|a, b| a.group.cmp(&b.group));
        found.dedup_by(|a, b| a.group == b.group);
        Ok(found)
    }
}
