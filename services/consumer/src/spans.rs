//! The consumer's spans: `process <topic>` for each message (kind CONSUMER,
//! parent = the producer's context, plus a link to it) and `send <receipts
//! topic>` for its receipt, a child of the `process` span, ended by the
//! receipt sink once Kafka acknowledges the receipt.

use opentelemetry::global::BoxedSpan;
use opentelemetry::trace::{Link, SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use rdkafka::message::{BorrowedMessage, Message};

use crate::service::Worker;

impl Worker {
    /// Starts the `process` span of `m` under `parent` (the context
    /// extracted from its headers) and returns the context holding it.
    pub(crate) fn process_span(&self, m: &BorrowedMessage<'_>, parent: &Context) -> Context {
        let topic = m.topic();
        let parent_sc = parent.span().span_context().clone();
        let mut builder = self
            .tracer
            .span_builder(format!("process {topic}"))
            .with_kind(SpanKind::Consumer)
            .with_attributes([
                KeyValue::new("messaging.system", "kafka"),
                KeyValue::new("messaging.destination.name", topic.to_string()),
                KeyValue::new("messaging.operation.type", "process"),
                KeyValue::new("messaging.operation.name", "process"),
                KeyValue::new(
                    "messaging.consumer.group.name",
                    self.config.consumer.group.clone(),
                ),
                KeyValue::new(
                    "messaging.destination.partition.id",
                    m.partition().to_string(),
                ),
                KeyValue::new("messaging.kafka.offset", m.offset()),
                KeyValue::new("messaging.client.id", self.instance.clone()),
            ]);
        if parent_sc.is_valid() {
            builder = builder.with_links(vec![Link::with_context(parent_sc)]);
        }
        let span = builder.start_with_context(&self.tracer, parent);
        let cx = Context::current_with_span(span);
        if let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) {
            cx.span().set_attribute(KeyValue::new(
                "messaging.kafka.message.key",
                key.to_string(),
            ));
        }
        cx
    }

    /// Starts the `send` span of a receipt keyed by `producer`, a child of
    /// the `process` span in `cx`.
    pub(crate) fn receipt_span(&self, cx: &Context, producer: &str) -> BoxedSpan {
        let receipts_topic = &self.config.consumer.receipts_topic;
        self.tracer
            .span_builder(format!("send {receipts_topic}"))
            .with_kind(SpanKind::Producer)
            .with_attributes([
                KeyValue::new("messaging.system", "kafka"),
                KeyValue::new("messaging.destination.name", receipts_topic.clone()),
                KeyValue::new("messaging.operation.type", "send"),
                KeyValue::new("messaging.operation.name", "send"),
                KeyValue::new("messaging.kafka.message.key", producer.to_string()),
            ])
            .start_with_context(&self.tracer, cx)
    }
}
