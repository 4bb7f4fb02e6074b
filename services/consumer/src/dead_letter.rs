//! Dead letters: a message whose envelope is malformed is re-published,
//! payload and headers intact, to `<topic>.dlq` with an `mf-error` header
//! naming the reason, an `mf-source` header naming where it came from, and
//! the trace context of its own `send` span (a child of the message's
//! `process` span), set by replacement so it carries exactly one
//! `traceparent`. Its offset may move on only once the dead letter is
//! durable.
//!
//! A dead letter refused for good (larger than the dead-letter topic or the
//! client accepts, not authorized) is not retried: retrying inside the one
//! consume loop would stop every partition. It is reported as
//! [`DeadLetter::Refused`], and the consume loop parks that partition only.

use std::time::Duration;

use meshflow_common::envelope::{HeaderList, ERROR};
use meshflow_common::kafka::error_reason;
use meshflow_common::propagation::inject;
use meshflow_common::spans::{self, Operation};
use opentelemetry::trace::{Span, Status, TraceContextExt};
use opentelemetry::Context;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureRecord;
use tokio_util::sync::CancellationToken;

use crate::service::Worker;

/// How a dead letter ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetter {
    /// Acknowledged: the message's offset may move on.
    Written,
    /// Refused for good, for this reason (see [`refused_for_good`]).
    Refused(&'static str),
    /// Shutdown came before it was acknowledged.
    Interrupted,
}

/// Whether the dead-letter topic refuses a record with `error` for good:
/// the reason, or `None` for an error worth retrying.
pub fn refused_for_good(error: &KafkaError) -> Option<&'static str> {
    use rdkafka::types::RDKafkaErrorCode as C;
    match error.rdkafka_error_code()? {
        C::MessageSizeTooLarge | C::InvalidMessageSize => Some("message_too_large"),
        C::TopicAuthorizationFailed | C::ClusterAuthorizationFailed => Some("not_authorized"),
        C::InvalidRecord | C::InvalidMessage => Some("invalid_record"),
        C::PolicyViolation => Some("policy_violation"),
        C::InvalidTopic => Some("invalid_topic"),
        _ => None,
    }
}

impl Worker {
    /// Publishes a copy of `m` to the dead-letter topic with an `mf-error`
    /// header and the context of a `send` span that is a child of `cx`.
    /// Retries until acknowledged, refused for good or shutdown: the
    /// message's offset must not move before its dead letter is durable.
    pub(crate) async fn dead_letter(
        &self,
        m: &BorrowedMessage<'_>,
        cx: &Context,
        error: &str,
        reason: &str,
        shutdown: &CancellationToken,
    ) -> DeadLetter {
        let dlq_topic = self.config.consumer.dlq_topic();
        let mut span = spans::builder(
            Operation::Send,
            &dlq_topic,
            [spans::dead_letter_reason(reason.to_string())],
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
                    return DeadLetter::Written;
                }
                Err((e, _)) => {
                    if let Some(refused) = refused_for_good(&e) {
                        tracing::error!(
                            topic = %m.topic(), partition = m.partition(), offset = m.offset(),
                            error = %e, refused, "dead letter refused for good; parking the partition"
                        );
                        span.set_status(Status::error(format!("dead letter refused: {e}")));
                        span.end();
                        return DeadLetter::Refused(refused);
                    }
                    tracing::warn!(error = %e, reason = error_reason(&e), "dead-letter publish failed; retrying");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => {
                    span.set_status(Status::error("shutdown before the dead letter was acknowledged"));
                    span.end();
                    return DeadLetter::Interrupted;
                }
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode as C;

    #[test]
    fn only_refusals_that_cannot_pass_park_a_partition() {
        let production = KafkaError::MessageProduction;
        for (code, reason) in [
            (C::MessageSizeTooLarge, "message_too_large"),
            (C::TopicAuthorizationFailed, "not_authorized"),
            (C::InvalidRecord, "invalid_record"),
            (C::PolicyViolation, "policy_violation"),
        ] {
            assert_eq!(
                refused_for_good(&production(code)),
                Some(reason),
                "{code:?}"
            );
        }
        for code in [
            C::QueueFull,
            C::MessageTimedOut,
            C::NotLeaderForPartition,
            C::RequestTimedOut,
            C::UnknownTopicOrPartition,
            C::KafkaStorageError,
            C::BrokerTransportFailure,
        ] {
            assert_eq!(refused_for_good(&production(code)), None, "{code:?}");
        }
    }
}
