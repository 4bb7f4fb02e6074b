//! The polling loop: every `exporter.poll_interval` a [`ClusterPoller`]
//! snapshot becomes lag gauges, group statuses and cluster health.
//!
//! [`GroupWatch`] holds, per watched group, one
//! [`GroupStatusTracker`](crate::status::GroupStatusTracker) per judged
//! topic (the group's status is its worst topic's, as for the discovered
//! groups) and maps a [`Snapshot`] onto the metrics; it does no I/O, so it
//! is tested with hand-made snapshots. [`run`] drives it, polling on a blocking
//! thread so a slow or absent broker never stalls the runtime.

use std::collections::BTreeSet;
use std::time::Duration;

use meshflow_common::envelope::now_ns;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterPoller, Snapshot};
use crate::config::Granularity;
use crate::groups::{Groups, PerGroup};
use crate::metrics::{ExporterMetrics, PollReport};
use crate::progress::PollMarks;
use crate::status::StatusConfig;
use crate::status::{Evaluation, GroupStatus};

mod others;
mod tracked;
use others::OtherWatch;
use tracked::{LagPoint, TrackedGroup};

/// Status trackers of the watched groups.
#[derive(Debug)]
pub struct GroupWatch {
    groups: Groups,
    status: StatusConfig,
    watched: PerGroup<TrackedGroup>,
    others: OtherWatch,
    granularity: Granularity,
    cluster_error: Option<String>,
    /// The groups whose description is published.
    described: BTreeSet<String>,
}

impl GroupWatch {
    /// A tracker for each of `groups`.
    pub fn new(groups: &Groups, status: &StatusConfig) -> Self {
        GroupWatch {
            groups: groups.clone(),
            status: status.clone(),
            watched: PerGroup::from_fn(groups, |_| TrackedGroup::default()),
            others: OtherWatch::new(status),
            granularity: Granularity::default(),
            cluster_error: None,
            described: BTreeSet::new(),
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
        // A failed description removes the series rather than leave old
        // states (the failure is counted as kind describe_groups).
        let memberships = snapshot.memberships.as_deref().unwrap_or_default();
        self.described = metrics.membership().replace(memberships, &self.described);
        if let Some(judged) = &snapshot.judged {
            metrics.set_topics_left_out(judged.left_out);
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
        let (groups, status) = (&self.groups, &self.status);
        self.watched.map_mut(|group, watched| {
            let name = groups.name(group);
            let at_ns = snapshot.at_ns;
            match snapshot.groups.get(group) {
                Some(Ok(partitions)) if !partitions.is_empty() => {
                    let lags = partitions.iter().map(|lag| LagPoint {
                        topic: &lag.topic,
                        partition: lag.partition,
                        messages: match (&lag.sample, &lag.offsets) {
                            (Ok(sample), _) => Some(sample.messages),
                            (Err(_), Ok(offsets)) => offsets.lag_messages().ok(),
                            (Err(_), Err(_)) => None,
                        },
                        offsets: lag.offsets.as_ref().ok().copied(),
                        sample: &lag.sample,
                    });
                    watched.record(name, at_ns, lags, status, metrics);
                }
                Some(Ok(_)) => watched.failed(name, at_ns, "no partition", status, metrics),
                Some(Err(e)) => watched.failed(name, at_ns, &e.to_string(), status, metrics),
                None => watched.failed(name, at_ns, "not polled", status, metrics),
            }
            watched
                .publish(name, metrics, now_ns)
                .unwrap_or_else(|| Evaluation {
                    status: GroupStatus::Err,
                    partition: None,
                    reason: "no topic".to_string(),
                })
        })
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
