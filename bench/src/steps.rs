//! Per-message work without a broker, for instruction counts under
//! callgrind (stable where wall-clock time is not).
//!
//! Each step runs `n` times inside a `measured_*` function that callgrind's
//! `--toggle-collect` counts alone (after a warm-up outside it), so the
//! total divided by `n` is the instructions one message costs on the
//! application thread: librdkafka's own threads and the set-up do not count.
//! The producer steps hand the record to a `FutureProducer` whose broker is
//! unreachable, so librdkafka queues it and nothing else happens.

use std::hint::black_box;
use std::path::Path;
use std::process::Command;

use meshflow_common::envelope::{now_ns, Envelope, HeaderView};
use meshflow_common::messaging_metrics::{MessagingMetrics, Receiver};
use meshflow_common::propagation::{extract, message_headers};
use meshflow_common::receipt::{encode_binary, ReceiptEntry};
use meshflow_common::spans::{self, Consumed};
use meshflow_common::testing::envelope_sized_headers;
use meshflow_consumer::receipts;
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{Span, SpanContext, Status, TraceContextExt, Tracer};
use opentelemetry::Context;
use prometheus_client::registry::Registry;
use rdkafka::message::{Message, OwnedMessage, Timestamp};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

/// The steps, by name.
pub const STEPS: [(&str, &str); 5] = [
    ("produce_plain", "producer: plain record + send"),
    ("produce_meshflow", "producer: meshflow prepare + send"),
    ("consume_meshflow", "consumer: meshflow per-message work"),
    ("envelope_round_trip", "envelope + inject + extract + parse"),
    ("headers_baseline", "build the same rdkafka headers"),
];

const TOPIC: &str = "meshflow.events";
const INSTANCE: &str = "meshflow-producer-7d9f8b6c5-x2kq1-3f9a2c71";

struct Bed {
    producer: FutureProducer,
    tracer: BoxedTracer,
    payload: Vec<u8>,
    message: OwnedMessage,
    cx: Context,
    /// The consumer step's receipts and `process` spans since its last
    /// record.
    receipts: Vec<ReceiptEntry>,
    links: Vec<SpanContext>,
    messaging: Receiver,
}

fn produce_plain(bed: &mut Bed, seq: u64) {
    bed.payload[..8].copy_from_slice(&now_ns().to_le_bytes());
    let key = seq.to_string();
    let record = FutureRecord::to(TOPIC).key(&key).payload(&bed.payload);
    black_box(bed.producer.send_result(record).ok());
}

fn produce_meshflow(bed: &mut Bed, seq: u64) {
    let out = meshflow_producer::service::prepare(
        &bed.tracer,
        TOPIC,
        INSTANCE,
        (seq, seq.saturating_sub(1)),
        bed.payload.len(),
    );
    let record = FutureRecord::to(TOPIC)
        .key(&out.key)
        .payload(&bed.payload)
        .headers(out.headers);
    black_box(bed.producer.send_result(record).ok());
    let mut span = out.span;
    span.set_attribute(spans::partition(3));
    span.set_attribute(spans::offset(seq as i64));
    span.end();
}

/// Entries of a receipt record in the consumer step: a busy flush's 100 ms
/// at 1,000 msg/s.
const RECEIPT_BATCH: usize = 100;

/// What `Worker::handle` in the consumer does for an enveloped message
/// (logging aside), plus its share of the receipt record: every
/// [`RECEIPT_BATCH`] messages one format-2 body and one `send` span linked
/// to their `process` spans, as the receipt sink writes them.
fn consume_meshflow(bed: &mut Bed) {
    let started = std::time::Instant::now();
    bed.messaging.consumed();
    let m = &bed.message;
    let topic = m.topic().to_string();
    let (partition, offset) = (m.partition(), m.offset());
    let headers = HeaderView::of(m.headers());
    let extracted = extract(&headers);
    let record = Consumed {
        topic: &topic,
        partition,
        offset,
        group: "meshflow",
        client_id: "consumer-7f3a",
    };
    let span = spans::process(&record, &extracted.context)
        .start_with_context(&bed.tracer, &extracted.context);
    let trace_id = span.span_context().trace_id().to_string();
    let cx = Context::current_with_span(span);
    let envelope = Envelope::parse(headers.iter()).ok().flatten();
    if let Some(env) = &envelope {
        bed.receipts
            .push(receipts::entry(env, &topic, partition, offset, trace_id));
        bed.links.push(cx.span().span_context().clone());
    }
    cx.span().set_status(Status::Ok);
    cx.span().end();
    bed.messaging
        .processed(started.elapsed().as_secs_f64(), None);
    if bed.receipts.len() >= RECEIPT_BATCH {
        let entries: Vec<&ReceiptEntry> = bed.receipts.iter().collect();
        black_box(encode_binary("meshflow", "consumer-7f3a", &entries, 64));
        let links = std::mem::take(&mut bed.links);
        let mut send = spans::batch_send("meshflow.receipts", INSTANCE, entries.len(), links)
            .start_with_context(&bed.tracer, &Context::new());
        send.set_status(Status::Ok);
        send.end();
        bed.receipts.clear();
    }
}

fn envelope_round_trip(bed: &mut Bed, seq: u64) {
    let envelope = Envelope {
        producer: INSTANCE.to_string(),
        seq,
        created_ns: 1_795_813_603_000_000_000,
        settled: Some(seq),
    };
    let owned = message_headers(&envelope, &bed.cx);
    let view = HeaderView::of(Some(&owned));
    black_box(extract(&view));
    black_box(Envelope::parse(view.iter()).ok());
}

fn headers_baseline(seq: u64) {
    black_box(envelope_sized_headers(seq));
}

fn step(bed: &mut Bed, name: &str, seq: u64) {
    match name {
        "produce_plain" => produce_plain(bed, seq),
        "produce_meshflow" => produce_meshflow(bed, seq),
        "consume_meshflow" => consume_meshflow(bed),
        "envelope_round_trip" => envelope_round_trip(bed, seq),
        _ => headers_baseline(seq),
    }
}

/// The counted loop: callgrind collects inside this function only.
#[inline(never)]
fn measured_steps(bed: &mut Bed, name: &str, from: u64, n: u64) {
    for seq in from..from + n {
        step(bed, name, seq);
    }
}

/// Runs step `name` `n` times after a warm-up (the `steps` sub-command).
pub fn run(name: &str, n: u64) -> anyhow::Result<()> {
    let _provider = crate::tracing::install(None)?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", "127.0.0.1:1")
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.messages", "1000000")
        .set("log_level", "0")
        .create()?;
    let tracer = opentelemetry::global::tracer("meshflow-bench");
    let span = tracer.start("parent");
    let cx = Context::current().with_remote_span_context(span.span_context().clone());
    let envelope = Envelope {
        producer: INSTANCE.to_string(),
        seq: 41,
        created_ns: 1_795_813_603_000_000_000,
        settled: Some(41),
    };
    let message = OwnedMessage::new(
        Some(vec![b'm'; 256]),
        Some(b"41".to_vec()),
        TOPIC.to_string(),
        Timestamp::CreateTime(1_795_813_603_000),
        2,
        1187,
        Some(message_headers(&envelope, &cx)),
    );
    let mut bed = Bed {
        producer,
        tracer,
        payload: vec![b'm'; 256],
        message,
        cx,
        receipts: Vec::with_capacity(RECEIPT_BATCH),
        links: Vec::with_capacity(RECEIPT_BATCH),
        messaging: MessagingMetrics::register(&mut Registry::default()).receiver(TOPIC, "meshflow"),
    };
    for seq in 0..n / 10 + 10 {
        step(&mut bed, name, seq);
    }
    measured_steps(&mut bed, name, 1_000_000, n);
    Ok(())
}

/// Instructions per message of step `name` under callgrind, or `None`
/// when valgrind is missing or fails.
pub fn instructions(exe: &Path, dir: &Path, name: &str, n: u64) -> Option<f64> {
    let out = dir.join(format!("callgrind.{name}.out"));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg("--toggle-collect=*measured_steps*")
        .arg(exe)
        .arg("steps")
        .arg(name)
        .arg(n.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let text = std::fs::read_to_string(&out).ok()?;
    let total: f64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(total / n as f64)
}
