//! Sending a message again after librdkafka gave up on it.
//!
//! librdkafka retries what it knows to be transient by itself; it gives a
//! message back as failed when the broker answers with an error it does not
//! classify as retriable. Some of those pass: a broker whose disk is full
//! answers Produce with an unknown error until space is freed. A producer
//! that promises at-least-once does not drop such a message: it sends it
//! again, with its envelope unchanged (same `mf-seq`, same creation time),
//! until it is acknowledged, the error is not on the list below, the
//! message's time (`producer.message_timeout`) is up, or shutdown gives up
//! (after `producer.shutdown_flush_timeout`).
//!
//! Only the errors of [`resend_reason`] are sent again. A new send is a new
//! record with a new idempotent sequence number, so when the broker may
//! have written the first copy before answering (the errors whose outcome
//! is unknown), the log can hold the message twice: the exporter counts
//! that as a log duplicate, by `mf-seq`. Each new send is counted in
//! `meshflow_producer_resends_total{reason}`; the messages waiting for one
//! are bounded by `producer.resend_capacity` (see [`crate::deliveries`]).

use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;

/// Why a message was not delivered in the end.
#[derive(Debug)]
pub enum Failure {
    /// Kafka's last answer.
    Kafka(KafkaError),
    /// The delivery report never came (the client went away).
    Canceled,
}

/// A failure worth a new send: the reason it is counted under, and whether
/// the broker may have written the first copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resend {
    /// The `reason` label of `meshflow_producer_resends_total`.
    pub reason: &'static str,
    /// The outcome of the failed send is unknown: the first copy may be in
    /// the log, and the new send may write the message twice.
    pub may_be_written: bool,
}

/// Whether a message librdkafka failed with `error` is sent again, and why:
/// an allowlist of the broker and transport errors that can pass. Anything
/// else (a message too large, a denied topic, a fatal idempotence error,
/// the message's time up, the client stopping) fails the message for good.
pub fn resend_reason(error: &KafkaError) -> Option<Resend> {
    use RDKafkaErrorCode as C;
    let KafkaError::MessageProduction(code) = error else {
        return None;
    };
    let (reason, may_be_written) = match code {
        // The broker failed while handling the request, or its answer was
        // lost: the records may be in its log.
        C::Unknown => ("unknown_server_error", true),
        C::KafkaStorageError => ("storage_error", true),
        C::RequestTimedOut => ("request_timed_out", true),
        C::NetworkException => ("network_exception", true),
        C::BrokerTransportFailure => ("broker_unreachable", true),
        C::NotEnoughReplicasAfterAppend => ("not_enough_replicas_after_append", true),
        // Refused before anything was appended.
        C::NotEnoughReplicas => ("not_enough_replicas", false),
        C::NotLeaderForPartition | C::LeaderNotAvailable => ("not_leader", false),
        C::UnknownTopicOrPartition => ("unknown_topic_or_partition", false),
        _ => return None,
    };
    Some(Resend {
        reason,
        may_be_written,
    })
}

/// Delay before the next send of a failed message: 100 ms, doubling up to
/// 2 s, so a full disk is not hammered and a short outage costs little.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(2);

    /// A fresh backoff.
    pub fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    /// The delay to wait now; the next one is twice as long, up to 2 s.
    pub fn step(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        now
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

/// Sends `message` again after librdkafka failed it with `error`, while
/// [`resend_reason`] allows it, until `deadline` or until `give_up` fires;
/// returns its final delivery or the last error. `on_resend` is told each
/// reason that led to a new send. Once `give_up` fires, nothing more is
/// awaited: a send in flight then ends as failed at once, so shutdown stays
/// within its flush timeout.
pub async fn deliver_again(
    producer: &FutureProducer,
    mut error: KafkaError,
    mut message: OwnedMessage,
    deadline: Instant,
    give_up: &CancellationToken,
    mut on_resend: impl FnMut(Resend, &KafkaError),
) -> Result<Delivery, Failure> {
    let mut backoff = Backoff::new();
    loop {
        let Some(why) = resend_reason(&error) else {
            return Err(Failure::Kafka(error));
        };
        if Instant::now() >= deadline || give_up.is_cancelled() {
            return Err(Failure::Kafka(error));
        }
        let pending: DeliveryFuture = loop {
            tokio::select! {
                _ = give_up.cancelled() => return Err(Failure::Kafka(error)),
                _ = tokio::time::sleep(backoff.step()) => {}
            }
            if Instant::now() >= deadline {
                return Err(Failure::Kafka(error));
            }
            match producer.send_result(record_of(&message)) {
                Ok(delivery) => break delivery,
                // The queue is full or the client refuses for now: wait more.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => continue,
                Err((refused, _)) => return Err(Failure::Kafka(refused)),
            }
        };
        on_resend(why, &error);
        let report = tokio::select! {
            report = pending => report,
            _ = give_up.cancelled() => return Err(Failure::Kafka(error)),
        };
        (error, message) = match report {
            Ok(Ok(delivery)) => return Ok(delivery),
            Ok(Err(failed)) => failed,
            Err(_) => return Err(Failure::Canceled),
        };
    }
}

/// The same message as a record to send: topic, partition, key, payload,
/// headers and timestamp as they were.
fn record_of(message: &OwnedMessage) -> FutureRecord<'_, [u8], [u8]> {
    let mut record = FutureRecord::to(message.topic()).partition(message.partition());
    if let Some(key) = message.key() {
        record = record.key(key);
    }
    if let Some(payload) = message.payload() {
        record = record.payload(payload);
    }
    if let Some(headers) = message.headers() {
        record = record.headers(headers.clone());
    }
    if let Some(ms) = message.timestamp().to_millis() {
        record = record.timestamp(ms);
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production(code: RDKafkaErrorCode) -> KafkaError {
        KafkaError::MessageProduction(code)
    }

    #[test]
    fn only_listed_errors_are_sent_again_and_those_of_unknown_outcome_say_so() {
        use RDKafkaErrorCode as C;
        for (code, reason, may_be_written) in [
            (C::Unknown, "unknown_server_error", true),
            (C::KafkaStorageError, "storage_error", true),
            (C::RequestTimedOut, "request_timed_out", true),
            (C::NetworkException, "network_exception", true),
            (C::BrokerTransportFailure, "broker_unreachable", true),
            (
                C::NotEnoughReplicasAfterAppend,
                "not_enough_replicas_after_append",
                true,
            ),
            (C::NotEnoughReplicas, "not_enough_replicas", false),
            (C::NotLeaderForPartition, "not_leader", false),
            (C::LeaderNotAvailable, "not_leader", false),
            (
                C::UnknownTopicOrPartition,
                "unknown_topic_or_partition",
                false,
            ),
        ] {
            assert_eq!(
                resend_reason(&production(code)),
                Some(Resend {
                    reason,
                    may_be_written
                }),
                "{code:?}"
            );
        }
    }

    #[test]
    fn anything_else_fails_for_good() {
        use RDKafkaErrorCode as C;
        for code in [
            C::MessageSizeTooLarge,
            C::TopicAuthorizationFailed,
            C::ClusterAuthorizationFailed,
            C::InvalidRecord,
            C::InvalidTopic,
            C::Fatal,
            C::OutOfOrderSequenceNumber,
            C::InvalidProducerEpoch,
            C::MessageTimedOut,
            C::PurgeQueue,
            C::PurgeInflight,
            C::QueueFull,
            C::InvalidArgument,
            C::PolicyViolation,
        ] {
            assert_eq!(resend_reason(&production(code)), None, "{code:?}");
        }
        assert_eq!(resend_reason(&KafkaError::Canceled), None);
    }

    #[test]
    fn backoff_doubles_up_to_two_seconds() {
        let mut b = Backoff::new();
        let steps: Vec<u64> = (0..7).map(|_| b.step().as_millis() as u64).collect();
        assert_eq!(steps, [100, 200, 400, 800, 1600, 2000, 2000]);
    }
}
