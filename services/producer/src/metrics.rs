//! The producer's metrics, registered under the `meshflow` prefix.
//!
//! The series every message touches (in flight, acked, ack latency) are
//! looked up once and kept, so recording one costs an atomic update, not a
//! label clone and a hash lookup per message.

use std::sync::OnceLock;

use meshflow_common::messaging_metrics::Sender;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels: topic.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    /// Destination topic.
    pub topic: String,
}

/// Labels: topic and delivery outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Destination topic.
    pub topic: String,
    /// `acked` or `failed`.
    pub outcome: &'static str,
}

/// Labels: topic and error reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Destination topic.
    pub topic: String,
    /// A fixed error kind, see [`crate::service::error_reason`].
    pub reason: &'static str,
}

/// Ack latency buckets: 1 ms to 60 s.
const LATENCY_BUCKETS: [f64; 17] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0,
    60.0,
];

/// Counters, histograms and gauges of the producer.
#[derive(Clone)]
pub struct ProducerMetrics {
    topic: String,
    messages: Family<OutcomeLabels, Counter>,
    errors: Family<ReasonLabels, Counter>,
    resends: Family<ReasonLabels, Counter>,
    resend_waiting: Family<TopicLabels, Gauge>,
    /// `resend_waiting` for this topic.
    resend_waiting_series: Gauge,
    ack_latency: Family<TopicLabels, Histogram>,
    in_flight: Family<TopicLabels, Gauge>,
    /// `in_flight` for this topic.
    in_flight_series: Gauge,
    /// `messages` for this topic, outcome `acked`.
    acked_series: Counter,
    /// `messages` for this topic, outcome `failed`.
    failed_series: Counter,
    /// `ack_latency` for this topic, created on the first acknowledgement
    /// (as before: no empty histogram until then).
    ack_latency_series: OnceLock<Histogram>,
    /// The OpenTelemetry messaging metrics of the sends, when registered.
    messaging: Option<Sender>,
}

impl ProducerMetrics {
    /// Registers the metrics for `topic` into `registry` (prefix `meshflow`).
    pub fn register(registry: &mut Registry, topic: &str) -> Self {
        let messages: Family<OutcomeLabels, Counter> = Family::default();
        let in_flight: Family<TopicLabels, Gauge> = Family::default();
        let labels = TopicLabels {
            topic: topic.to_string(),
        };
        let outcome = |outcome| OutcomeLabels {
            topic: topic.to_string(),
            outcome,
        };
        // Create the series up front so dashboards and alerts see zeros.
        let acked_series = messages.get_or_create(&outcome("acked")).clone();
        let failed_series = messages.get_or_create(&outcome("failed")).clone();
        let in_flight_series = in_flight.get_or_create(&labels).clone();
        let resend_waiting: Family<TopicLabels, Gauge> = Family::default();
        let resend_waiting_series = resend_waiting.get_or_create(&labels).clone();
        let m = ProducerMetrics {
            topic: topic.to_string(),
            messages,
            errors: Family::default(),
            resends: Family::default(),
            resend_waiting,
            resend_waiting_series,
            ack_latency: Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS)),
            in_flight,
            in_flight_series,
            acked_series,
            failed_series,
            ack_latency_series: OnceLock::new(),
            messaging: None,
        };
        registry.register(
            "producer_messages",
            "Messages whose delivery Kafka acknowledged or that failed for good",
            m.messages.clone(),
        );
        registry.register(
            "producer_errors",
            "Send and delivery errors by reason",
            m.errors.clone(),
        );
        registry.register(
            "producer_resends",
            "New sends of messages librdkafka failed with an error that can pass, by that error; \
             after an error of unknown outcome the log may hold the message twice",
            m.resends.clone(),
        );
        registry.register(
            "producer_resend_waiting",
            "Messages waiting to be sent again (at most producer.resend_capacity)",
            m.resend_waiting.clone(),
        );
        registry.register(
            "producer_ack_latency_seconds",
            "Time from handing a message to Kafka to its acknowledgement (acks=all)",
            m.ack_latency.clone(),
        );
        registry.register(
            "producer_in_flight",
            "Messages handed to Kafka and not yet acknowledged or failed",
            m.in_flight.clone(),
        );
        m
    }

    /// Also records each send in the OpenTelemetry messaging metrics.
    pub fn with_messaging(mut self, sends: Sender) -> Self {
        self.messaging = Some(sends);
        self
    }

    /// A message was handed to librdkafka.
    pub fn record_handed(&self) {
        self.in_flight_series.inc();
    }

    /// Kafka acknowledged a message after `latency_s` seconds.
    pub fn record_acked(&self, latency_s: f64) {
        self.in_flight_series.dec();
        self.acked_series.inc();
        self.ack_latency_series
            .get_or_init(|| {
                let labels = TopicLabels {
                    topic: self.topic.clone(),
                };
                self.ack_latency.get_or_create(&labels).clone()
            })
            .observe(latency_s);
        if let Some(m) = &self.messaging {
            m.record(latency_s, 1, None);
        }
    }

    /// A handed message failed for good, `latency_s` seconds after it was
    /// handed over.
    pub fn record_failed(&self, reason: &'static str, latency_s: f64) {
        self.in_flight_series.dec();
        self.failed_series.inc();
        self.record_error(reason);
        if let Some(m) = &self.messaging {
            m.record(latency_s, 1, Some(reason));
        }
    }

    /// A failed message was sent again after an error counted as `reason`.
    pub fn record_resend(&self, reason: &'static str) {
        self.resends
            .get_or_create(&ReasonLabels {
                topic: self.topic.clone(),
                reason,
            })
            .inc();
    }

    /// Messages now waiting to be sent again.
    pub fn set_resend_waiting(&self, waiting: usize) {
        self.resend_waiting_series
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    /// An error, retried or not.
    pub fn record_error(&self, reason: &'static str) {
        self.errors
            .get_or_create(&ReasonLabels {
                topic: self.topic.clone(),
                reason,
            })
            .inc();
    }
}
