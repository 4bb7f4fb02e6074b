//! The lag and status series of every watched group: the judged groups
//! by id, the discovered ones by name; series of what is gone are removed.

use super::{
    ExporterMetrics, GroupLabels, LagLabels, LeftOutLabels, StatusLabels, TopicGroupLabels,
};
use crate::groups::GroupId;
use crate::status::burrow::BurrowStatus;
use crate::status::GroupStatus;

impl ExporterMetrics {
    /// Sets one partition's lag for any group. `seconds` is `None` when it
    /// could not be computed this poll: the series is then removed rather
    /// than left at an old value, and the miss is counted.
    pub fn set_group_lag(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        messages: u64,
        seconds: Option<f64>,
    ) {
        let labels = LagLabels {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
        };
        self.lag_messages
            .get_or_create(&labels)
            .set(i64::try_from(messages).unwrap_or(i64::MAX));
        match seconds {
            Some(seconds) => {
                self.lag_seconds.get_or_create(&labels).set(seconds);
            }
            None => {
                self.lag_seconds.remove(&labels);
                self.lag_seconds_unknown.get().inc();
            }
        }
    }

    /// Removes one partition's lag series (the group left it, or its
    /// offsets could not be read).
    pub fn remove_group_lag(&self, group: &str, topic: &str, partition: i32) {
        let labels = LagLabels {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
        };
        self.lag_messages.remove(&labels);
        self.lag_seconds.remove(&labels);
        self.lag_lower_bound.remove(&labels);
        self.expired_gap.remove(&labels);
        self.partition_status.remove(&labels);
    }

    /// Says whether one partition's lag in seconds is a lower bound
    /// (`None`: no figure this poll, the series is removed).
    pub fn set_lag_lower_bound(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        lower_bound: Option<bool>,
    ) {
        let labels = LagLabels {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
        };
        match lower_bound {
            Some(lower_bound) => {
                self.lag_lower_bound
                    .get_or_create(&labels)
                    .set(i64::from(lower_bound));
            }
            None => {
                self.lag_lower_bound.remove(&labels);
            }
        }
    }

    /// Adds the records a group lost to retention on one partition of
    /// `topic` (the counter exists at 0 from the first poll on, for
    /// `increase()`), and sets the partition's gap below the low watermark.
    pub fn record_expired(&self, group: &str, topic: &str, partition: i32, expired: u64, gap: u64) {
        let labels = TopicGroupLabels {
            topic: topic.to_string(),
            group: group.to_string(),
        };
        self.expired.get_or_create(&labels).inc_by(expired);
        let labels = LagLabels {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
        };
        self.expired_gap
            .get_or_create(&labels)
            .set(i64::try_from(gap).unwrap_or(i64::MAX));
    }

    /// Removes a group's expiry counter on `topic` (the group is gone).
    pub fn remove_expired(&self, group: &str, topic: &str) {
        self.expired.remove(&TopicGroupLabels {
            topic: topic.to_string(),
            group: group.to_string(),
        });
    }

    /// Sets one partition's status code (Burrow's numbers, see
    /// [`GroupStatus::code`]).
    pub fn set_partition_status(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        status: GroupStatus,
    ) {
        let labels = LagLabels {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
        };
        self.partition_status
            .get_or_create(&labels)
            .set(status.code());
    }

    /// Sets the group's stateset (1 for `status`, 0 for the other states)
    /// and status code, for a group judged end to end.
    pub fn set_status(&self, group: GroupId, status: GroupStatus) {
        self.set_group_status(self.groups.name(group), Some(status));
    }

    /// Sets any group's stateset and status code, or removes them (`None`:
    /// the group is no longer watched).
    pub fn set_group_status(&self, group: &str, status: Option<GroupStatus>) {
        let code = GroupLabels {
            group: group.to_string(),
        };
        match status {
            Some(status) => {
                self.status_code.get_or_create(&code).set(status.code());
            }
            None => {
                self.status_code.remove(&code);
            }
        }
        for state in GroupStatus::ALL {
            let labels = StatusLabels {
                group: group.to_string(),
                meshflow_consumer_group_status: state.as_str(),
            };
            match status {
                Some(status) => {
                    self.group_status
                        .get_or_create(&labels)
                        .set(i64::from(state == status));
                }
                None => {
                    self.group_status.remove(&labels);
                }
            }
        }
    }

    /// Sets any group's status as Burrow's evaluator rolls it up (1 OK,
    /// 2 WARN, 3 ERR), or removes it (`None`: Burrow would not know the
    /// group: it has committed on no partition followed).
    pub fn set_burrow_status(&self, group: &str, status: Option<BurrowStatus>) {
        let labels = GroupLabels {
            group: group.to_string(),
        };
        match status {
            Some(status) => {
                self.burrow_status.get_or_create(&labels).set(status.code());
            }
            None => {
                self.burrow_status.remove(&labels);
            }
        }
    }

    /// Records how many matching topics were beyond `exporter.max_topics`
    /// in the last poll (`what="judged_topics"`).
    pub fn set_topics_left_out(&self, topics: usize) {
        self.left_out
            .get_or_create(&LeftOutLabels {
                what: "judged_topics",
            })
            .set(i64::try_from(topics).unwrap_or(i64::MAX));
    }

    /// Records what discovery had to leave out in the last poll.
    pub fn set_left_out(&self, groups: usize, partitions: usize) {
        for (what, count) in [("groups", groups), ("partitions", partitions)] {
            self.left_out
                .get_or_create(&LeftOutLabels { what })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }
}
