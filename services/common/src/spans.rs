//! Messaging spans: the name, kind and OpenTelemetry messaging attributes
//! of every `send <topic>` and `process <topic>` span, in one place, so the
//! producer, the consumer, its receipts and dead letters, and the bench's
//! mirror of the message path all carry the same attribute set.
//!
//! The functions return a [`SpanBuilder`]; the caller starts it with its own
//! tracer and parent. Building one costs what writing the attributes out by
//! hand did: the span name and one vector of attributes.

use opentelemetry::trace::{
    Link, Span, SpanBuilder, SpanContext, SpanKind, Status, TraceContextExt,
};
use opentelemetry::{Context, KeyValue, Value};

/// `messaging.system` of every span: the broker speaks the Kafka protocol.
pub const SYSTEM: &str = "kafka";

/// What a messaging span stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Handing a record to Kafka (kind PRODUCER).
    Send,
    /// Working on a consumed record (kind CONSUMER).
    Process,
}

impl Operation {
    /// The operation's name: the first word of the span name and the value
    /// of `messaging.operation.type` and `messaging.operation.name`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Send => "send",
            Operation::Process => "process",
        }
    }

    /// The span kind of the operation.
    pub fn kind(self) -> SpanKind {
        match self {
            Operation::Send => SpanKind::Producer,
            Operation::Process => SpanKind::Consumer,
        }
    }
}

/// The `<operation> <destination>` span with the attributes every messaging
/// span carries, followed by `extra` (built with the functions below).
/// Inlined into each caller: the builder it returns is a large value, and
/// a call would copy it out (the producer's send path measured 4 % more
/// instructions under callgrind once a second caller stopped the compiler
/// from inlining it on its own).
#[inline(always)]
pub fn builder<const N: usize>(
    operation: Operation,
    destination: &str,
    extra: [KeyValue; N],
) -> SpanBuilder {
    let op = operation.name();
    let common = [
        KeyValue::new("messaging.system", SYSTEM),
        KeyValue::new("messaging.destination.name", destination.to_string()),
        KeyValue::new("messaging.operation.type", op),
        KeyValue::new("messaging.operation.name", op),
    ];
    SpanBuilder::from_name(format!("{op} {destination}"))
        .with_kind(operation.kind())
        .with_attributes(common.into_iter().chain(extra))
}

/// A record a consumer works on, as its `process` span describes it.
#[derive(Clone, Copy, Debug)]
pub struct Consumed<'a> {
    /// The topic it was read from.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The consumer group reading it.
    pub group: &'a str,
    /// The consumer instance reading it.
    pub client_id: &'a str,
}

/// The `process <topic>` span of `record`, with a link to the producer's
/// span context in `parent` when there is a valid one.
pub fn process(record: &Consumed<'_>, parent: &Context) -> SpanBuilder {
    let builder = self::builder(
        Operation::Process,
        record.topic,
        [
            KeyValue::new("messaging.consumer.group.name", record.group.to_string()),
            partition(record.partition),
            offset(record.offset),
            KeyValue::new("messaging.client.id", record.client_id.to_string()),
        ],
    );
    let parent_sc = parent.span().span_context().clone();
    if parent_sc.is_valid() {
        builder.with_links(vec![Link::with_context(parent_sc)])
    } else {
        builder
    }
}

/// The first partition ids as text: a span of one of them needs no
/// allocation for its partition attribute (the design's topics have 6).
const PARTITION_IDS: [&str; 16] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
];

/// `messaging.destination.partition.id`: the partition, in decimal.
pub fn partition(partition: i32) -> KeyValue {
    const KEY: &str = "messaging.destination.partition.id";
    match usize::try_from(partition)
        .ok()
        .and_then(|p| PARTITION_IDS.get(p))
    {
        Some(id) => KeyValue::new(KEY, *id),
        None => KeyValue::new(KEY, partition.to_string()),
    }
}

/// `messaging.kafka.offset`.
pub fn offset(offset: i64) -> KeyValue {
    KeyValue::new("messaging.kafka.offset", offset)
}

/// `messaging.kafka.message.key`.
pub fn message_key(key: impl Into<Value>) -> KeyValue {
    KeyValue::new("messaging.kafka.message.key", key)
}

/// `messaging.message.body.size`: the payload's length in bytes.
pub fn body_size(bytes: usize) -> KeyValue {
    KeyValue::new("messaging.message.body.size", bytes as i64)
}

/// `meshflow.dead_letter.reason`: why a message was dead-lettered, on the
/// dead letter's `send` span. Not `error.type`: writing the dead letter is
/// what should happen to a malformed message, and the write succeeds.
pub fn dead_letter_reason(reason: impl Into<Value>) -> KeyValue {
    KeyValue::new("meshflow.dead_letter.reason", reason)
}

/// Links a batch's `send` span keeps at most: the OpenTelemetry SDK's
/// default span limit (`OTEL_SPAN_LINK_COUNT_LIMIT`), so none is dropped
/// unseen.
pub const MAX_BATCH_LINKS: usize = 128;

/// The `send <destination>` span of one record that reports on `count`
/// messages (a receipt batch), keyed by `key`, linked to the spans of the
/// messages it reports on (the first [`MAX_BATCH_LINKS`] valid ones), as
/// the messaging conventions model a batch: one span, with
/// `messaging.batch.message_count`, and links rather than a parent.
pub fn batch_send(
    destination: &str,
    key: &str,
    count: usize,
    links: impl IntoIterator<Item = SpanContext>,
) -> SpanBuilder {
    let links: Vec<Link> = links
        .into_iter()
        .filter(SpanContext::is_valid)
        .take(MAX_BATCH_LINKS)
        .map(Link::with_context)
        .collect();
    builder(
        Operation::Send,
        destination,
        [
            KeyValue::new("messaging.batch.message_count", count as i64),
            message_key(key.to_string()),
        ],
    )
    .with_links(links)
}

/// `error.type`: a fixed reason label.
pub fn error_type(reason: impl Into<Value>) -> KeyValue {
    KeyValue::new("error.type", reason)
}

/// Ends `span` as failed: `error.type` is `reason`, the status an error
/// with `error`'s message.
pub fn end_failed(span: &mut impl Span, reason: &'static str, error: &impl std::fmt::Display) {
    span.set_attribute(error_type(reason));
    span.set_status(Status::error(error.to_string()));
    span.end();
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    fn attributes(b: &SpanBuilder) -> Vec<(String, Value)> {
        b.attributes
            .iter()
            .flatten()
            .map(|kv| (kv.key.to_string(), kv.value.clone()))
            .collect()
    }

    /// The four attributes every span carries, then `extra`.
    fn expected(op: &str, destination: &str, extra: &[(&str, Value)]) -> Vec<(String, Value)> {
        let common = [
            ("messaging.system", Value::from("kafka")),
            (
                "messaging.destination.name",
                Value::from(destination.to_string()),
            ),
            ("messaging.operation.type", Value::from(op.to_string())),
            ("messaging.operation.name", Value::from(op.to_string())),
        ];
        common
            .iter()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn a_produce_span_carries_the_messaging_attributes_key_and_size() {
        let b = builder(
            Operation::Send,
            "meshflow.events",
            [message_key("41".to_string()), body_size(256)],
        );
        assert_eq!(b.name, "send meshflow.events");
        assert_eq!(b.span_kind, Some(SpanKind::Producer));
        let extra = [
            ("messaging.kafka.message.key", Value::from("41")),
            ("messaging.message.body.size", Value::I64(256)),
        ];
        assert_eq!(attributes(&b), expected("send", "meshflow.events", &extra));
        assert!(b.links.is_none());
    }

    #[test]
    fn a_process_span_carries_group_partition_offset_client_and_a_link() {
        let remote = SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            SpanId::from(0x00f0_67aa_0ba9_02b7),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let parent = Context::new().with_remote_span_context(remote.clone());
        let record = Consumed {
            topic: "meshflow.events",
            partition: 2,
            offset: 1187,
            group: "meshflow",
            client_id: "consumer-7f3a",
        };
        let b = process(&record, &parent);
        assert_eq!(b.name, "process meshflow.events");
        assert_eq!(b.span_kind, Some(SpanKind::Consumer));
        let extra = [
            ("messaging.consumer.group.name", Value::from("meshflow")),
            ("messaging.destination.partition.id", Value::from("2")),
            ("messaging.kafka.offset", Value::I64(1187)),
            ("messaging.client.id", Value::from("consumer-7f3a")),
        ];
        assert_eq!(
            attributes(&b),
            expected("process", "meshflow.events", &extra)
        );
        let links = b.links.expect("a link to the producer's span");
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].span_context, remote);
    }

    #[test]
    fn a_partition_id_is_its_decimal_number() {
        for p in [0, 3, 15, 16, 1_000, -1] {
            assert_eq!(partition(p).value, Value::from(p.to_string()), "{p}");
        }
    }

    #[test]
    fn a_process_span_without_a_valid_parent_has_no_link() {
        let record = Consumed {
            topic: "t",
            partition: 0,
            offset: 0,
            group: "g",
            client_id: "c",
        };
        assert!(process(&record, &Context::new()).links.is_none());
    }

    #[test]
    fn a_batch_send_span_counts_its_messages_and_links_at_most_128() {
        let context = |i: u64| {
            SpanContext::new(
                TraceId::from(u128::from(i) + 1),
                SpanId::from(i + 1),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            )
        };
        let contexts: Vec<SpanContext> = (0..200).map(context).collect();
        let b = batch_send("meshflow.receipts", "producer-1a2b", 200, contexts.clone());
        assert_eq!(b.name, "send meshflow.receipts");
        assert_eq!(b.span_kind, Some(SpanKind::Producer));
        let extra = [
            ("messaging.batch.message_count", Value::I64(200)),
            ("messaging.kafka.message.key", Value::from("producer-1a2b")),
        ];
        assert_eq!(
            attributes(&b),
            expected("send", "meshflow.receipts", &extra)
        );
        let links = b.links.expect("links to the messages' spans");
        assert_eq!(links.len(), MAX_BATCH_LINKS);
        for (link, context) in links.iter().zip(&contexts) {
            assert_eq!(&link.span_context, context);
        }
        // Invalid contexts (a message with no span) are not linked.
        let b = batch_send("r", "p", 2, [SpanContext::empty_context(), context(7)]);
        assert_eq!(b.links.expect("one link").len(), 1);
    }

    #[test]
    fn a_dead_letters_reason_is_not_an_error_type() {
        assert_eq!(
            dead_letter_reason("not_a_number").key.as_str(),
            "meshflow.dead_letter.reason"
        );
    }
}
