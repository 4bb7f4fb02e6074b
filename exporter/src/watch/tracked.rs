//! One watched group's lag series and status over several topics, shared
//! by the judged groups (over the judged topics) and the discovered ones
//! (over the reported topics). The group keeps one status tracker per
//! topic and takes its worst topic's status. Series of a partition that is
//! gone, or whose offsets could not be read, are removed rather than left
//! at old values. It also keeps each partition's [`ExpiryMark`], so the
//! records the group loses to retention are counted once.

use std::collections::{BTreeMap, BTreeSet};

use crate::expiry::{expired_gap, ExpiryMark};
use crate::lag::{LagSample, PartitionOffsets};
use crate::metrics::ExporterMetrics;
use crate::status::burrow::{BurrowPartition, BurrowStatus};
use crate::status::{Evaluation, GroupStatus, GroupStatusTracker, StatusConfig};
use crate::Error;

/// One partition's lag as a poll found it.
pub(super) struct LagPoint<'a> {
    pub(super) topic: &'a str,
    pub(super) partition: i32,
    /// Lag in messages, when known.
    pub(super) messages: Option<u64>,
    /// Watermarks and committed offset, when read.
    pub(super) offsets: Option<PartitionOffsets>,
    pub(super) sample: &'a Result<LagSample, Error>,
}

/// One group's trackers per topic and the series published for it.
#[derive(Debug, Default)]
pub(super) struct TrackedGroup {
    topics: BTreeMap<String, GroupStatusTracker>,
    /// The (topic, partition) lag series published.
    series: BTreeSet<(String, i32)>,
    /// Per (topic, partition) followed, what is settled for expiry.
    expiry: BTreeMap<(String, i32), ExpiryMark>,
    /// Per (topic, partition) followed, Burrow's window of commits.
    burrow: BTreeMap<(String, i32), BurrowPartition>,
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
        let mut followed: BTreeSet<(String, i32)> = BTreeSet::new();
        let mut topics: BTreeSet<&str> = BTreeSet::new();
        for lag in lags {
            topics.insert(lag.topic);
            followed.insert((lag.topic.to_string(), lag.partition));
            if let Some(offsets) = &lag.offsets {
                // A partition the group never committed on has no position
                // that retention could pass: nothing of it is the group's.
                if offsets.committed.is_some() {
                    self.record_expiry(name, lag.topic, lag.partition, offsets, metrics);
                }
                self.burrow
                    .entry((lag.topic.to_string(), lag.partition))
                    .or_default()
                    .record(unix_ms(at_ns), offsets);
            }
            let tracker = self
                .topics
                .entry(lag.topic.to_string())
                .or_insert_with(|| GroupStatusTracker::new(status.clone()));
            tracker.record(lag.partition, at_ns, lag.sample.clone());
            match lag.messages {
                Some(messages) => {
                    let sample = lag.sample.as_ref().ok();
                    let seconds = sample.map(|s| s.seconds.as_secs_f64());
                    metrics.set_group_lag(name, lag.topic, lag.partition, messages, seconds);
                    let lower_bound = sample.map(|s| s.seconds_lower_bound);
                    metrics.set_lag_lower_bound(name, lag.topic, lag.partition, lower_bound);
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
        self.expiry.retain(|key, _| followed.contains(key));
        self.burrow.retain(|key, _| followed.contains(key));
    }

    /// Counts what the group lost to retention on one partition since the
    /// last poll (nothing at the first: see [`crate::expiry`]) and
    /// publishes the gap below the low watermark.
    fn record_expiry(
        &mut self,
        name: &str,
        topic: &str,
        partition: i32,
        offsets: &PartitionOffsets,
        metrics: &ExporterMetrics,
    ) {
        let expired = match self.expiry.get_mut(&(topic.to_string(), partition)) {
            Some(mark) => mark.observe(offsets),
            None => {
                let mark = ExpiryMark::first(offsets);
                self.expiry.insert((topic.to_string(), partition), mark);
                0
            }
        };
        metrics.record_expired(name, topic, partition, expired, expired_gap(offsets));
        if expired > 0 {
            tracing::warn!(
                group = %name,
                topic = %topic,
                partition,
                expired,
                low_watermark = offsets.low,
                committed = ?offsets.committed,
                "records deleted by retention before the group read them"
            );
        }
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
        let known = self.burrow.values().filter(|p| p.known());
        let burrow = known.map(|p| p.status(unix_ms(now_ns))).collect::<Vec<_>>();
        let burrow = (!burrow.is_empty()).then(|| BurrowStatus::group(burrow));
        metrics.set_burrow_status(name, burrow);
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
        let topics: BTreeSet<&str> = self.expiry.keys().map(|(t, _)| t.as_str()).collect();
        for topic in topics {
            metrics.remove_expired(name, topic);
        }
        metrics.set_group_status(name, None);
        metrics.set_burrow_status(name, None);
    }
}

/// Unix nanoseconds as Burrow's milliseconds.
fn unix_ms(ns: u64) -> i64 {
    i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX)
}
