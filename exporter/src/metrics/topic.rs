//! The series of one judged data topic: its `log` stage, its `processed`
//! stage per watched group, and its latency histograms. The families are
//! registered once; a topic's handles are made when it is first judged, so
//! every counter of a judged topic exists at 0 from then on, which
//! `increase()` in alert rules needs.

use prometheus_client::metrics::histogram::Histogram;

use super::series::{record, valid_trace_id, GroupSeries, StageSeries};
use super::{
    ExporterMetrics, RejectedLabels, StageLabels, TopicGroupLabels, TopicLabels, TraceLabels,
};
use crate::groups::{GroupId, PerGroup};
use crate::observation::{Observed, Rejection, SweepReport};

/// Handles on the series of one judged topic.
#[derive(Clone, Debug)]
pub struct TopicSeries {
    topic: String,
    log: StageSeries,
    per_group: PerGroup<GroupSeries>,
    delivery_latency: Histogram,
}

impl ExporterMetrics {
    /// The series of `topic`, created at 0 if they do not exist yet.
    pub fn for_topic(&self, topic: &str) -> TopicSeries {
        let f = &self.families;
        let stage = |stage: &'static str, group: &str| {
            let labels = StageLabels {
                topic: topic.to_string(),
                stage,
                group: group.to_string(),
            };
            let skew = TopicGroupLabels {
                topic: topic.to_string(),
                group: group.to_string(),
            };
            StageSeries {
                messages: f.messages.get_or_create(&labels).clone(),
                lost: f.lost.get_or_create(&labels).clone(),
                duplicated: f.duplicated.get_or_create(&labels).clone(),
                clock_skew: f.clock_skew.get_or_create(&skew).clone(),
                unjudged: f.unjudged.get_or_create(&labels).clone(),
                rejected: Rejection::ALL
                    .iter()
                    .map(|why| {
                        f.rejected
                            .get_or_create(&RejectedLabels {
                                topic: topic.to_string(),
                                stage,
                                reason: why.as_str(),
                            })
                            .clone()
                    })
                    .collect(),
            }
        };
        let groups = &self.groups;
        let per_group = PerGroup::from_fn(groups, |id| {
            let labels = TopicGroupLabels {
                topic: topic.to_string(),
                group: groups.name(id).to_string(),
            };
            GroupSeries {
                processed: stage("processed", groups.name(id)),
                e2e_latency: f.e2e.get_or_create(&labels).clone(),
                unmatched: f.unmatched.get_or_create(&labels).clone(),
            }
        });
        let delivery_latency = f
            .delivery
            .get_or_create(&TopicLabels {
                topic: topic.to_string(),
            })
            .clone();
        TopicSeries {
            topic: topic.to_string(),
            log: stage("log", ""),
            per_group,
            delivery_latency,
        }
    }
}

impl TopicSeries {
    /// The topic these series are labelled with.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Accounts a message read from the topic.
    pub fn record_log(&self, observed: Observed) {
        record(&self.log, observed, |seconds| {
            self.delivery_latency.observe(seconds)
        });
    }

    /// Accounts a receipt entry of `group` about the topic; `trace_id`
    /// becomes the latency's exemplar when it is a valid W3C trace id.
    pub fn record_receipt(&self, group: GroupId, observed: Observed, trace_id: &str) {
        let Some(series) = self.per_group.get(group) else {
            return;
        };
        record(&series.processed, observed, |seconds| {
            let exemplar = valid_trace_id(trace_id).then(|| TraceLabels {
                trace_id: trace_id.to_string(),
            });
            series.e2e_latency.observe(seconds, exemplar, None);
        });
    }

    /// Adds what a sweep of the topic's accounting found (idle evictions
    /// are the exporter's, see [`ExporterMetrics::record_sweep`]).
    pub fn record_sweep(&self, report: &SweepReport) {
        self.log.lost.inc_by(report.log_lost);
        for (group, series) in self.per_group.iter() {
            let found = |per_group: &PerGroup<u64>| per_group.get(group).copied().unwrap_or(0);
            series.processed.lost.inc_by(found(&report.processed_lost));
            series
                .processed
                .unjudged
                .inc_by(found(&report.processed_unjudged));
            series.unmatched.inc_by(found(&report.receipts_unmatched));
        }
    }
}
