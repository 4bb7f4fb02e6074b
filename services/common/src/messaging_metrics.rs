//! The OpenTelemetry messaging metrics, as the semantic conventions name
//! them, beside meshflow's own `meshflow_*` series:
//!
//! | name | instrument | what |
//! | --- | --- | --- |
//! | `messaging.client.operation.duration` | histogram, s | a send: from handing a record to librdkafka to its acknowledgement or failure |
//! | `messaging.client.sent.messages` | counter | messages a send acknowledged, or failed (with `error.type`) |
//! | `messaging.client.consumed.messages` | counter | messages handed to the application by the consumer |
//! | `messaging.process.duration` | histogram, s | processing one message, to its settling |
//!
//! Attributes: `messaging.system` (`kafka`), `messaging.operation.name`
//! (`send`, `poll`, `process`), `messaging.destination.name`,
//! `messaging.consumer.group.name` (consumers), `error.type` (failures
//! only). Durations use the conventions' recommended buckets.
//!
//! They live outside the `meshflow` prefix, in the root registry. `/metrics`
//! shows them as Prometheus spells OpenTelemetry names (dots as
//! underscores, the unit as a suffix, counters with `_total`:
//! `messaging_client_operation_duration_seconds`); the OTLP push
//! ([`crate::otlp_metrics`]) sends them with their own names
//! ([`otel_name`], [`otel_attribute`]).
//!
//! The series a message touches when nothing fails are created up front and
//! kept, so recording one is an atomic update.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::spans::SYSTEM;

/// The conventions' recommended buckets for messaging durations, seconds.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The Prometheus names of the four metrics and their OpenTelemetry names
/// and units.
const NAMES: [(&str, &str, &str); 4] = [
    (
        "messaging_client_operation_duration_seconds",
        "messaging.client.operation.duration",
        "s",
    ),
    (
        "messaging_client_sent_messages_total",
        "messaging.client.sent.messages",
        "{message}",
    ),
    (
        "messaging_client_consumed_messages_total",
        "messaging.client.consumed.messages",
        "{message}",
    ),
    (
        "messaging_process_duration_seconds",
        "messaging.process.duration",
        "s",
    ),
];

/// Label names and the attribute names they stand for.
const ATTRIBUTES: [(&str, &str); 5] = [
    ("messaging_system", "messaging.system"),
    ("messaging_operation_name", "messaging.operation.name"),
    ("messaging_destination_name", "messaging.destination.name"),
    (
        "messaging_consumer_group_name",
        "messaging.consumer.group.name",
    ),
    ("error_type", "error.type"),
];

/// The OpenTelemetry name and unit of a metric family named `family` in the
/// Prometheus text (a counter's with `_total`), if it is one of these.
pub fn otel_name(family: &str) -> Option<(&'static str, &'static str)> {
    NAMES
        .iter()
        .find(|(prometheus, _, _)| *prometheus == family)
        .map(|&(_, otel, unit)| (otel, unit))
}

/// The attribute name a label of these families stands for.
pub fn otel_attribute(label: &str) -> &str {
    ATTRIBUTES
        .iter()
        .find(|(prometheus, _)| *prometheus == label)
        .map_or(label, |&(_, otel)| otel)
}

/// The attributes of one series. An unset attribute is an empty label,
/// which Prometheus and the OTLP push both leave out.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Attributes {
    /// `messaging.system`: always `kafka`.
    pub messaging_system: &'static str,
    /// `messaging.operation.name`.
    pub messaging_operation_name: &'static str,
    /// `messaging.destination.name`: the topic.
    pub messaging_destination_name: String,
    /// `messaging.consumer.group.name`, for consumers.
    pub messaging_consumer_group_name: Option<String>,
    /// `error.type`, for failures.
    pub error_type: Option<&'static str>,
}

/// The four metrics, registered once per process.
#[derive(Clone, Debug)]
pub struct MessagingMetrics {
    operation_duration: Family<Attributes, Histogram>,
    sent: Family<Attributes, Counter>,
    consumed: Family<Attributes, Counter>,
    process_duration: Family<Attributes, Histogram>,
}

impl MessagingMetrics {
    /// Registers the metrics in `root`, which must have no prefix.
    pub fn register(root: &mut Registry) -> Self {
        let m = MessagingMetrics {
            operation_duration: Family::new_with_constructor(duration_histogram),
            sent: Family::default(),
            consumed: Family::default(),
            process_duration: Family::new_with_constructor(duration_histogram),
        };
        root.register_with_unit(
            "messaging_client_operation_duration",
            "Duration of a send, from handing a record to librdkafka to its \
             acknowledgement or failure (messaging.client.operation.duration)",
            Unit::Seconds,
            m.operation_duration.clone(),
        );
        root.register(
            "messaging_client_sent_messages",
            "Messages a send acknowledged or failed (messaging.client.sent.messages)",
            m.sent.clone(),
        );
        root.register(
            "messaging_client_consumed_messages",
            "Messages the consumer handed to the application \
             (messaging.client.consumed.messages)",
            m.consumed.clone(),
        );
        root.register_with_unit(
            "messaging_process_duration",
            "Duration of processing one message (messaging.process.duration)",
            Unit::Seconds,
            m.process_duration.clone(),
        );
        m
    }

    /// The metrics of sends to `topic`.
    pub fn sender(&self, topic: &str) -> Sender {
        let ok = attributes("send", topic, None, None);
        Sender {
            duration_ok: self.operation_duration.get_or_create(&ok).clone(),
            sent_ok: self.sent.get_or_create(&ok).clone(),
            metrics: self.clone(),
            topic: topic.to_string(),
        }
    }

    /// The metrics of `group` consuming and processing `topic`.
    pub fn receiver(&self, topic: &str, group: &str) -> Receiver {
        let group = Some(group.to_string());
        Receiver {
            consumed: self
                .consumed
                .get_or_create(&attributes("poll", topic, group.clone(), None))
                .clone(),
            process_ok: self
                .process_duration
                .get_or_create(&attributes("process", topic, group.clone(), None))
                .clone(),
            metrics: self.clone(),
            topic: topic.to_string(),
            group,
        }
    }
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn attributes(
    operation: &'static str,
    topic: &str,
    group: Option<String>,
    error: Option<&'static str>,
) -> Attributes {
    Attributes {
        messaging_system: SYSTEM,
        messaging_operation_name: operation,
        messaging_destination_name: topic.to_string(),
        messaging_consumer_group_name: group,
        error_type: error,
    }
}

/// Sends to one topic.
#[derive(Clone, Debug)]
pub struct Sender {
    duration_ok: Histogram,
    sent_ok: Counter,
    metrics: MessagingMetrics,
    topic: String,
}

impl Sender {
    /// A send of `messages` ended after `seconds`: acknowledged, or failed
    /// as `error` (a fixed reason).
    pub fn record(&self, seconds: f64, messages: u64, error: Option<&'static str>) {
        match error {
            None => {
                self.duration_ok.observe(seconds);
                self.sent_ok.inc_by(messages);
            }
            Some(_) => {
                let failed = attributes("send", &self.topic, None, error);
                self.metrics
                    .operation_duration
                    .get_or_create(&failed)
                    .observe(seconds);
                self.metrics.sent.get_or_create(&failed).inc_by(messages);
            }
        }
    }
}

/// One group consuming one topic.
#[derive(Clone, Debug)]
pub struct Receiver {
    consumed: Counter,
    process_ok: Histogram,
    metrics: MessagingMetrics,
    topic: String,
    group: Option<String>,
}

impl Receiver {
    /// The consumer handed a message to the application.
    pub fn consumed(&self) {
        self.consumed.inc();
    }

    /// Processing a message took `seconds`, and failed as `error` if set.
    pub fn processed(&self, seconds: f64, error: Option<&'static str>) {
        match error {
            None => self.process_ok.observe(seconds),
            Some(_) => {
                let failed = attributes("process", &self.topic, self.group.clone(), error);
                self.metrics
                    .process_duration
                    .get_or_create(&failed)
                    .observe(seconds);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::prometheus_text;

    #[test]
    fn the_metrics_carry_the_conventions_names_and_attributes() {
        let mut root = Registry::default();
        let m = MessagingMetrics::register(&mut root);
        let sender = m.sender("meshflow.events");
        sender.record(0.004, 1, None);
        sender.record(0.3, 1, Some("timed_out"));
        let receiver = m.receiver("meshflow.events", "meshflow");
        receiver.consumed();
        receiver.processed(0.002, None);
        let text = prometheus_text(&root);
        for line in [
            "messaging_client_operation_duration_seconds_bucket{le=\"0.005\",\
             messaging_system=\"kafka\",messaging_operation_name=\"send\",\
             messaging_destination_name=\"meshflow.events\",\
             messaging_consumer_group_name=\"\",error_type=\"\"} 1",
            "messaging_client_sent_messages_total{messaging_system=\"kafka\",\
             messaging_operation_name=\"send\",messaging_destination_name=\"meshflow.events\",\
             messaging_consumer_group_name=\"\",error_type=\"timed_out\"} 1",
            "messaging_client_consumed_messages_total{messaging_system=\"kafka\",\
             messaging_operation_name=\"poll\",messaging_destination_name=\"meshflow.events\",\
             messaging_consumer_group_name=\"meshflow\",error_type=\"\"} 1",
            "messaging_process_duration_seconds_count{messaging_system=\"kafka\",\
             messaging_operation_name=\"process\",messaging_destination_name=\"meshflow.events\",\
             messaging_consumer_group_name=\"meshflow\",error_type=\"\"} 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert_eq!(
            otel_name("messaging_client_sent_messages_total"),
            Some(("messaging.client.sent.messages", "{message}"))
        );
        assert_eq!(
            otel_name("messaging_process_duration_seconds"),
            Some(("messaging.process.duration", "s"))
        );
        assert_eq!(otel_name("meshflow_producer_messages"), None);
        assert_eq!(otel_attribute("error_type"), "error.type");
        assert_eq!(otel_attribute("topic"), "topic");
    }
}
