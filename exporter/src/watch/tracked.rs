//! One watched group's lag series and status over several topics, shared
//! by the judged groups (over the judged topics) and the discovered ones
//! (over the reported topics). The group keeps one status tracker per
//! topic and takes its worst topic's status. Series of a partition that is
//! gone, or whose offsets could not be read, are removed rather than left
//! at old values.

use std::collections::{BTreeMap, BTreeSet};

use crate::lag::LagSample;
use crate::metrics::ExporterMetrics;
use crate::status::{Evaluation, GroupStatus, GroupStatusTracker, StatusConfig};
use crate::Error;

/// One partition's lag as a poll found it.
pub(super) struct LagPoint<'a> {
    pub(super) topic: &'a str,
    pub(super) partition: i32,
    /// Lag in messages, when known.
    pub(super) messages: Option<u64>,
    pub(super) sample: &'a Result<LagSample, Error>,
}

/// One group's trackers per topic and the series published for it.
#[derive(Debug, Default)]
pub(super) struct TrackedGroup {
    topics: BTreeMap<String, GroupStatusTracker>,
    /// The (topic, partition) lag series published.
    series: BTreeSet<(String, i32)>,
    last: Option<GroupStatus>,
}

impl TrackedGroup {
    /// Records one poll's lag of the group at `at_ns`: every partition it
    /// has on the topics followed; topics and partitions not in `lags` are
    /// forgotten and their series removed.
    pub(super) fn record<'a>(
        &mut self,
        name: &str,
        at_ns: u64,
        lags: impl IntoIterator<Item = LagPoint<'a>>,
        status: &StatusConfig,
        metrics: &ExporterMetrics,
    ) {
        let mut now: BTreeSet<(String, i32)> = BTreeSet::new();
        let mut topics: BTreeSet<&str> = BTreeSet::new();
        for lag in lags {
            topics.insert(lag.topic);
            let tracker = self
                .topics
                .entry(lag.topic.to_string())
                .or_insert_with(|| GroupStatusTracker::new(status.clone()));
            tracker.record(lag.partition, at_ns, lag.sample.clone());
            match lag.messages {
                Some(messages) => {
                    let seconds = lag.sample.as_ref().ok().map(|s| s.seconds.as_secs_f64());
                    metrics.set_group_lag(name, lag.topic, lag.partition, messages, seconds);
                    now.insert((lag.topic.to_string(), lag.partition));
                }
                None => metrics.remove_group_lag(name, lag.topic, lag.partition),
            }
        }
        for (topic, partition) in self.series.difference(&now) {
            metrics.remove_group_lag(name, topic, *partition);
        }
        self.topics
            .retain(|topic, _| topics.contains(topic.as_str()));
        self.series = now;
    }

    /// The group's offsets could not be read: its lag is unknown.
    pub(super) fn failed(
        &mut self,
        name: &str,
        at_ns: u64,
        error: &str,
        status: &StatusConfig,
        metrics: &ExporterMetrics,
    ) {
        for (topic, partition) in std::mem::take(&mut self.series) {
            metrics.remove_group_lag(name, &topic, partition);
        }
        if self.topics.is_empty() {
            self.topics
                .insert(String::new(), GroupStatusTracker::new(status.clone()));
        }
        for tracker in self.topics.values_mut() {
            tracker.record_failure(at_ns, error.to_string());
        }
    }

    /// Publishes the worst topic's status (none while the group has no
    /// topic), logs a change, and returns the worst topic's evaluation.
    pub(super) fn publish(
        &mut self,
        name: &str,
        metrics: &ExporterMetrics,
        now_ns: u64,
    ) -> Option<Evaluation> {
        let worst = self
            .topics
            .values()
            .map(|tracker| tracker.evaluate(now_ns))
            .max_by_key(|evaluation| evaluation.status);
        let status = worst.as_ref().map(|e| e.status);
        metrics.set_group_status(name, status);
        for (topic, tracker) in &self.topics {
            for (partition, status) in tracker.partition_statuses() {
                if self.series.contains(&(topic.clone(), partition)) {
                    metrics.set_partition_status(name, topic, partition, status);
                }
            }
        }
        super::log_change(&mut self.last, name, worst.as_ref());
        worst
    }

    /// The group is gone: its series go too.
    pub(super) fn forget(&mut self, name: &str, metrics: &ExporterMetrics) {
        for (topic, partition) in &self.series {
            metrics.remove_group_lag(name, topic, *partition);
        }
        metrics.set_group_status(name, None);
    }
}
