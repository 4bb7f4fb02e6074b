//! The polling loop: every `exporter.poll_interval` a [`ClusterPoller`]
//! snapshot becomes lag gauges, group statuses and cluster health.
//!
//! [`GroupWatch`] holds one [`GroupStatusTracker`] per watched group and
//! maps a [`Snapshot`] onto the metrics; it does no I/O, so it is tested
//! with hand-made snapshots. [`run`] drives it, polling on a blocking
//! thread so a slow or absent broker never stalls the runtime.

use std::time::Duration;

use meshflow_common::envelope::now_ns;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterPoller, Snapshot};
use crate::config::Granularity;
use crate::groups::{GroupId, Groups, PerGroup};
use crate::metrics::{ExporterMetrics, PollReport};
use crate::progress::PollMarks;
use crate::status::StatusConfig;
use crate::status::{Evaluation, GroupStatus, GroupStatusTracker};

mod others;
use others::OtherWatch;

/// Status trackers of the watched groups.
#[derive(Debug)]
pub struct GroupWatch {
    groups: Groups,
    watched: PerGroup<Watched>,
    others: OtherWatch,
    granularity: Granularity,
    cluster_error: Option<String>,
}

/// One group's status tracker and the status last logged.
#[derive(Debug)]
struct Watched {
    tracker: GroupStatusTracker,
    last: Option<GroupStatus>,
}

impl GroupWatch {
    /// A tracker for each of `groups`.
    pub fn new(groups: &Groups, status: &StatusConfig) -> Self {
        GroupWatch {
            groups: groups.clone(),
            watched: PerGroup::from_fn(groups, |_| Watched {
                tracker: GroupStatusTracker::new(status.clone()),
                last: None,
            }),
            others: OtherWatch::new(status),
            granularity: Granularity::default(),
            cluster_error: None,
        }
    }

    /// Publishes the cluster view at `granularity`.
    pub fn with_granularity(mut self, granularity: Granularity) -> Self {
        self.granularity = granularity;
        self
    }

    /// Records a snapshot, updates the metrics, and returns each group's
    /// evaluation at `now_ns`.
    pub fn apply(
        &mut self,
        snapshot: &Snapshot,
        metrics: &ExporterMetrics,
        now_ns: u64,
    ) -> PerGroup<Evaluation> {
        match &snapshot.health {
            Ok(health) => {
                metrics.set_cluster(health, self.granularity);
                if self.cluster_error.take().is_some() {
                    tracing::info!(brokers = health.brokers, "cluster metadata readable again");
                }
            }
            Err(e) => {
                let error = e.to_string();
                if self.cluster_error.as_ref() != Some(&error) {
                    tracing::warn!(%error, "cluster metadata");
                }
                self.cluster_error = Some(error);
            }
        }
        if let Ok(brokers) = &snapshot.brokers {
            metrics.set_brokers(brokers);
        }
        self.others
            .apply(&snapshot.others, snapshot.at_ns, metrics, now_ns);
        metrics.record_poll(&PollReport {
            seconds: now_ns.saturating_sub(snapshot.at_ns) as f64 / 1e9,
            errors: snapshot.error_kinds(),
            ended_unix_s: now_ns as f64 / 1e9,
            groups: self.groups.len() + self.others.len(),
            partitions: snapshot.partitions_watched(),
        });
        let groups = &self.groups;
        self.watched.map_mut(|group, watched| {
            watched.judge(group, groups.name(group), snapshot, metrics, now_ns)
        })
    }
}

impl Watched {
    /// One group's part of [`GroupWatch::apply`].
    fn judge(
        &mut self,
        group: GroupId,
        name: &str,
        snapshot: &Snapshot,
        metrics: &ExporterMetrics,
        now_ns: u64,
    ) -> Evaluation {
        let at_ns = snapshot.at_ns;
        let tracker = &mut self.tracker;
        match snapshot.groups.get(group) {
            Some(Ok(partitions)) => {
                for lag in partitions {
                    let messages = match (&lag.sample, &lag.offsets) {
                        (Ok(sample), _) => Some(sample.messages),
                        (Err(_), Ok(offsets)) => offsets.lag_messages().ok(),
                        (Err(_), Err(_)) => None,
                    };
                    let seconds = lag.sample.as_ref().ok().map(|s| s.seconds.as_secs_f64());
                    if let Some(messages) = messages {
                        metrics.set_lag(group, lag.partition, messages, seconds);
                    }
                    tracker.record(lag.partition, at_ns, lag.sample.clone());
                }
            }
            Some(Err(e)) => tracker.record_failure(at_ns, e.to_string()),
            None => tracker.record_failure(at_ns, "not polled"),
        }
        let evaluation = tracker.evaluate(now_ns);
        metrics.set_status(group, evaluation.status);
        metrics.set_partition_statuses(group, tracker.partition_statuses());
        log_change(&mut self.last, name, Some(&evaluation));
        evaluation
    }
}

/// Logs a group's status when it differs from `last`, the status last
/// logged, and remembers it (`None`: the group has no status).
fn log_change(last: &mut Option<GroupStatus>, group: &str, evaluation: Option<&Evaluation>) {
    let status = evaluation.map(|e| e.status);
    if *last == status {
        return;
    }
    if let Some(evaluation) = evaluation {
        tracing::info!(
            group = %group,
            status = evaluation.status.as_str(),
            reason = %evaluation.reason,
            "consumer group status"
        );
    }
    *last = status;
}

/// The receiving end of the marks each poll hands to the reader.
pub type MarksReceiver = tokio::sync::watch::Receiver<Option<PollMarks>>;

/// A channel for [`run`]'s marks: the reader sees the latest only.
pub fn marks_channel() -> (tokio::sync::watch::Sender<Option<PollMarks>>, MarksReceiver) {
    tokio::sync::watch::channel(None)
}

/// Polls every `interval` until `shutdown`, applying each snapshot and
/// handing its watermarks and committed offsets to the reader on `marks`.
pub async fn run(
    poller: ClusterPoller,
    mut watch: GroupWatch,
    metrics: ExporterMetrics,
    interval: Duration,
    marks: tokio::sync::watch::Sender<Option<PollMarks>>,
    shutdown: CancellationToken,
) {
    let mut poller = Some(poller);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let Some(mut current) = poller.take() else {
            break;
        };
        let polling = tokio::task::spawn_blocking(move || {
            let snapshot = current.poll(now_ns());
            (current, snapshot)
        });
        // A poll is bounded by request timeouts; shutdown does not wait for it.
        let polled = tokio::select! {
            _ = shutdown.cancelled() => break,
            polled = polling => polled,
        };
        match polled {
            Ok((current, snapshot)) => {
                let done_ns = now_ns();
                marks.send_replace(Some(PollMarks {
                    at_ns: snapshot.at_ns,
                    done_ns,
                    log_highs: snapshot.log_highs.clone(),
                    receipt_highs: snapshot.receipt_highs.clone(),
                    committed: snapshot.committed(),
                }));
                watch.apply(&snapshot, &metrics, done_ns);
                poller = Some(current);
            }
            Err(e) => {
                tracing::error!(error = %e, "cluster poll task failed");
                break;
            }
        }
    }
    // Closing librdkafka clients blocks briefly.
    if let Some(current) = poller {
        let _ = tokio::task::spawn_blocking(move || drop(current)).await;
    }
}

#[cfg(test)]
mod tests;
