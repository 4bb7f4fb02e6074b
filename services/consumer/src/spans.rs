//! The consumer's spans: `process <topic>` for each message (kind CONSUMER,
//! parent = the producer's context, plus a link to it) and `send <receipts
//! topic>` for its receipt, a child of the `process` span, ended by the
//! receipt sink once Kafka acknowledges the receipt. Their attributes come
//! from [`meshflow_common::spans`].

use meshflow_common::spans::{self, Consumed, Operation};
use opentelemetry::global::BoxedSpan;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use rdkafka::message::{BorrowedMessage, Message};

use crate::service::Worker;

impl Worker {
    /// Starts the `process` span of `m` under `parent` (the context
    /// extracted from its headers) and returns the context holding it.
    pub(crate) fn process_span(&self, m: &BorrowedMessage<'_>, parent: &Context) -> Context {
        let record = Consumed {
            topic: m.topic(),
            partition: m.partition(),
            offset: m.offset(),
            group: &self.config.consumer.group,
            client_id: &self.instance,
        };
        let span = spans::process(&record, parent).start_with_context(&self.tracer, parent);
        let cx = Context::current_with_span(span);
        if let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) {
            cx.span().set_attribute(spans::message_key(key.to_string()));
        }
        cx
    }

    /// Starts the `send` span of a receipt keyed by `producer`, a child of
    /// the `process` span in `cx`.
    pub(crate) fn receipt_span(&self, cx: &Context, producer: &str) -> BoxedSpan {
        spans::builder(
            Operation::Send,
            &self.config.consumer.receipts_topic,
            [spans::message_key(producer.to_string())],
        )
        .start_with_context(&self.tracer, cx)
    }
}
