//! Sending a message again after librdkafka gave up on it.
//!
//! librdkafka retries what it knows to be transient by itself; it gives a
//! message back as failed when the broker answers with an error it does not
//! classify as retriable. Some of those pass: a broker whose disk is full
//! answers Produce with an unknown error until space is freed. A producer
//! that promises at-least-once does not drop such a message: it sends it
//! again, with its envelope unchanged (same `mf-seq`, same creation time),
//! until it is acknowledged, the error is one that cannot pass, the
//! message's time (`producer.message_timeout`) is up, or shutdown gives up
//! (after `producer.shutdown_flush_timeout`).

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

/// Whether a message librdkafka failed is worth sending again: every broker
/// or client error except those that are permanent for this message or this
/// client, and those that say its time is up or the client is stopping.
pub fn worth_resending(error: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    match error {
        KafkaError::MessageProduction(code) => !matches!(
            code,
            // This message can never be written.
            C::MessageSizeTooLarge
                | C::InvalidMessage
                | C::InvalidMessageSize
                | C::InvalidRecord
                | C::UnsupportedForMessageFormat
                // This client may never write here.
                | C::TopicAuthorizationFailed
                | C::ClusterAuthorizationFailed
                | C::InvalidTopic
                | C::UnknownTopic
                | C::InvalidRequiredAcks
                | C::InvalidArgument
                // The client is done: a fatal error recreates the process.
                | C::Fatal
                | C::ProducerFenced
                | C::InvalidProducerEpoch
                // Its time is up, or the client is being stopped.
                | C::MessageTimedOut
                | C::PurgeQueue
                | C::PurgeInflight
        ),
        _ => false,
    }
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
/// [`worth_resending`] says so, until `deadline` or until `give_up` fires;
/// returns its final delivery or the last error. `on_resend` is told each
/// error that led to a new send.
pub async fn deliver_again(
    producer: &FutureProducer,
    mut error: KafkaError,
    mut message: OwnedMessage,
    deadline: Instant,
    give_up: &CancellationToken,
    mut on_resend: impl FnMut(&KafkaError),
) -> Result<Delivery, Failure> {
    let mut backoff = Backoff::new();
    loop {
        if !worth_resending(&error) || Instant::now() >= deadline || give_up.is_cancelled() {
            return Err(Failure::Kafka(error));
        }
        on_resend(&error);
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
        (error, message) = match pending.await {
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
    fn errors_that_can_pass_are_worth_a_new_send() {
        for code in [
            RDKafkaErrorCode::Unknown,
            RDKafkaErrorCode::KafkaStorageError,
            RDKafkaErrorCode::NotEnoughReplicas,
            RDKafkaErrorCode::NotEnoughReplicasAfterAppend,
            RDKafkaErrorCode::NotLeaderForPartition,
            RDKafkaErrorCode::RequestTimedOut,
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::UnknownTopicOrPartition,
        ] {
            assert!(worth_resending(&production(code)), "{code:?}");
        }
    }

    #[test]
    fn permanent_errors_timeouts_and_shutdown_are_not() {
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::InvalidRecord,
            RDKafkaErrorCode::Fatal,
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::PurgeQueue,
            RDKafkaErrorCode::PurgeInflight,
        ] {
            assert!(!worth_resending(&production(code)), "{code:?}");
        }
        assert!(!worth_resending(&KafkaError::Canceled));
    }

    #[test]
    fn backoff_doubles_up_to_two_seconds() {
        let mut b = Backoff::new();
        let steps: Vec<u64> = (0..7).map(|_| b.step().as_millis() as u64).collect();
        assert_eq!(steps, [100, 200, 400, 800, 1600, 2000, 2000]);
    }
}
