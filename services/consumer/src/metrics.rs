//! The consumer's metrics, registered under the `meshflow` prefix.

use meshflow_common::messaging_metrics::{Receiver, Sender};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels: topic, group and what kind of message was processed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    topic: String,
    group: String,
    /// `enveloped` or `unenveloped`.
    kind: &'static str,
}

/// Labels: topic, group and why a message was invalid.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    topic: String,
    group: String,
    /// An [`meshflow_common::envelope::EnvelopeError::reason`].
    reason: &'static str,
}

/// Labels: topic and group.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicGroupLabels {
    topic: String,
    group: String,
}

/// Labels: group.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    group: String,
}

/// Labels: group and rebalance kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RebalanceLabels {
    group: String,
    /// `assign` or `revoke`.
    kind: &'static str,
}

/// Counters of the consumer.
#[derive(Clone)]
pub struct ConsumerMetrics {
    topic: String,
    group: String,
    processed: Family<KindLabels, Counter>,
    invalid: Family<ReasonLabels, Counter>,
    dead_lettered: Family<TopicGroupLabels, Counter>,
    receipts: Family<GroupLabels, Counter>,
    receipt_errors: Family<GroupLabels, Counter>,
    rebalances: Family<RebalanceLabels, Counter>,
    trace_invalid: Family<TopicGroupLabels, Counter>,
    parked: Family<TopicGroupLabels, Gauge>,
    /// The OpenTelemetry messaging metrics of consuming and processing the
    /// topic, when registered.
    messaging: Option<Receiver>,
    /// ... and of sending receipts.
    receipt_sends: Option<Sender>,
}

impl ConsumerMetrics {
    /// Registers the metrics for `topic` and `group` into `registry`.
    pub fn register(registry: &mut Registry, topic: &str, group: &str) -> Self {
        let m = ConsumerMetrics {
            topic: topic.to_string(),
            group: group.to_string(),
            processed: Family::default(),
            invalid: Family::default(),
            dead_lettered: Family::default(),
            receipts: Family::default(),
            receipt_errors: Family::default(),
            rebalances: Family::default(),
            trace_invalid: Family::default(),
            parked: Family::default(),
            messaging: None,
            receipt_sends: None,
        };
        registry.register(
            "consumer_messages",
            "Messages processed",
            m.processed.clone(),
        );
        registry.register(
            "consumer_invalid",
            "Messages with a malformed envelope, by reason",
            m.invalid.clone(),
        );
        registry.register(
            "consumer_dead_lettered",
            "Messages published to the dead-letter topic",
            m.dead_lettered.clone(),
        );
        registry.register(
            "consumer_receipts",
            "Receipt entries acknowledged by Kafka",
            m.receipts.clone(),
        );
        registry.register(
            "consumer_receipt_errors",
            "Failed receipt batch deliveries (retried)",
            m.receipt_errors.clone(),
        );
        registry.register(
            "consumer_rebalances",
            "Partition assignments and revocations",
            m.rebalances.clone(),
        );
        registry.register(
            "consumer_trace_context_invalid",
            "Messages whose traceparent header could not be used; each started a new trace",
            m.trace_invalid.clone(),
        );
        registry.register(
            "consumer_partitions_parked",
            "Partitions this consumer stopped taking messages from because a dead letter was \
             refused for good (too large, not authorized); the others keep flowing",
            m.parked.clone(),
        );
        m.create_series();
        m
    }

    /// Creates the series up front, so dashboards and alerts see zeros.
    fn create_series(&self) {
        for kind in ["enveloped", "unenveloped"] {
            let _ = self.processed.get_or_create(&self.kind(kind));
        }
        let _ = self.dead_lettered.get_or_create(&self.topic_group());
        let _ = self.receipts.get_or_create(&self.group_labels());
        let _ = self.trace_invalid.get_or_create(&self.topic_group());
        let _ = self.receipt_errors.get_or_create(&self.group_labels());
        let _ = self.parked.get_or_create(&self.topic_group());
        for kind in ["assign", "revoke"] {
            let _ = self.rebalances.get_or_create(&RebalanceLabels {
                group: self.group.clone(),
                kind,
            });
        }
    }

    fn kind(&self, kind: &'static str) -> KindLabels {
        KindLabels {
            topic: self.topic.clone(),
            group: self.group.clone(),
            kind,
        }
    }

    fn topic_group(&self) -> TopicGroupLabels {
        TopicGroupLabels {
            topic: self.topic.clone(),
            group: self.group.clone(),
        }
    }

    fn group_labels(&self) -> GroupLabels {
        GroupLabels {
            group: self.group.clone(),
        }
    }

    /// Also records consuming, processing and receipt sends in the
    /// OpenTelemetry messaging metrics.
    pub fn with_messaging(mut self, messages: Receiver, receipt_sends: Sender) -> Self {
        self.messaging = Some(messages);
        self.receipt_sends = Some(receipt_sends);
        self
    }

    /// The consumer handed a message to the service.
    pub fn record_consumed(&self) {
        if let Some(m) = &self.messaging {
            m.consumed();
        }
    }

    /// Processing a message took `seconds`; `error` says why it failed.
    pub fn record_process_time(&self, seconds: f64, error: Option<&'static str>) {
        if let Some(m) = &self.messaging {
            m.processed(seconds, error);
        }
    }

    /// A receipt record's send ended after `seconds`, failed as `error`.
    pub fn record_receipt_send(&self, seconds: f64, error: Option<&'static str>) {
        if let Some(m) = &self.receipt_sends {
            m.record(seconds, 1, error);
        }
    }

    /// A message was processed.
    pub fn record_processed(&self, enveloped: bool) {
        let kind = if enveloped {
            "enveloped"
        } else {
            "unenveloped"
        };
        self.processed.get_or_create(&self.kind(kind)).inc();
    }

    /// A message had a malformed envelope.
    pub fn record_invalid(&self, reason: &'static str) {
        self.invalid
            .get_or_create(&ReasonLabels {
                topic: self.topic.clone(),
                group: self.group.clone(),
                reason,
            })
            .inc();
    }

    /// `n` partitions are parked now.
    pub fn set_parked(&self, n: usize) {
        self.parked
            .get_or_create(&self.topic_group())
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// A message reached the dead-letter topic.
    pub fn record_dead_lettered(&self) {
        self.dead_lettered.get_or_create(&self.topic_group()).inc();
    }

    /// `n` receipt entries were acknowledged.
    pub fn record_receipts(&self, n: u64) {
        self.receipts.get_or_create(&self.group_labels()).inc_by(n);
    }

    /// A receipt batch failed and will be retried.
    pub fn record_receipt_error(&self) {
        self.receipt_errors
            .get_or_create(&self.group_labels())
            .inc();
    }

    /// A rebalance event.
    pub fn record_rebalance(&self, kind: &'static str) {
        self.rebalances
            .get_or_create(&RebalanceLabels {
                group: self.group.clone(),
                kind,
            })
            .inc();
    }

    /// A message's `traceparent` was malformed.
    pub fn record_trace_invalid(&self) {
        self.trace_invalid.get_or_create(&self.topic_group()).inc();
    }
}
