//! The consumer's `process <topic>` span for each message (kind CONSUMER,
//! parent = the producer's context, plus a link to it). Each receipt record
//! has a `send <receipts topic>` span of its own, started by the receipt
//! sink and linked to the `process` spans of its messages
//! ([`meshflow_common::spans::batch_send`]). Attributes come from
//! [`meshflow_common::spans`].

use meshflow_common::spans::{self, Consumed};
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
}
