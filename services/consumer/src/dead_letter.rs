//! Dead letters: a message whose envelope is malformed is re-published,
//! payload and headers intact, to `<topic>.dlq` with an `mf-error` header
//! naming the reason, an `mf-source` header naming where it came from, and
//! the trace context of its own `send` span (a child of the message's
//! `process` span), set by replacement so it carries exactly one
//! `traceparent`. Its offset may move on only once the dead letter is
//! durable.

use std::time::Duration;

use meshflow_common::envelope::{HeaderList, ERROR};
use meshflow_common::kafka::error_reason;
use meshflow_common::propagation::inject;
use meshflow_common::spans::{self, Operation};
use opentelemetry::trace::{Span, Status, TraceContextExt};
use opentelemetry::Context;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureRecord;
use tokio_util::sync::CancellationToken;

use crate::service::Worker;

impl Worker {
    /// Publishes a copy of `m` to the dead-letter topic with an `mf-error`
    /// header and the context of a `send` span that is a child of `cx`.
    /// Retries until acknowledged (returns true) or shutdown (false): the
    /// message's offset must not move before its dead letter is durable.
    pub(crate) async fn dead_letter(
        &self,
        m: &BorrowedMessage<'_>,
        cx: &Context,
        error: &str,
        reason: &str,
        shutdown: &CancellationToken,
    ) -> bool {
        let dlq_topic = self.config.consumer.dlq_topic();
        let mut span = spans::builder(
            Operation::Send,
            &dlq_topic,
            [spans::error_type(reason.to_string())],
        )
        .start_with_context(&self.tracer, cx);
        let send_cx = Context::current().with_remote_span_context(span.span_context().clone());
        let mut headers = HeaderList::copy_of(m.headers());
        headers.set(ERROR, format!("{reason}: {error}").as_bytes());
        headers.set(
            meshflow_common::contract::header::SOURCE,
            format!("{}/{}/{}", m.topic(), m.partition(), m.offset()).as_bytes(),
        );
        inject(&send_cx, &mut headers);
        let owned = headers.to_owned_headers();
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut record = FutureRecord::to(&dlq_topic).headers(owned.clone());
            if let Some(k) = m.key() {
                record = record.key(k);
            }
            if let Some(p) = m.payload() {
                record = record.payload(p);
            }
            match self.dlq.send(record, Duration::from_secs(5)).await {
                Ok(_) => {
                    self.metrics.record_dead_lettered();
                    tracing::warn!(
                        topic = %m.topic(), partition = m.partition(), offset = m.offset(),
                        reason, error, "dead-lettered"
                    );
                    span.end();
                    return true;
                }
                Err((e, _)) => {
                    tracing::warn!(error = %e, reason = error_reason(&e), "dead-letter publish failed; retrying");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => {
                    span.set_status(Status::error("shutdown before the dead letter was acknowledged"));
                    span.end();
                    return false;
                }
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}
