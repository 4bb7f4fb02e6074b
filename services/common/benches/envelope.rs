//! Per-message cost of the envelope and trace propagation: what the producer
//! does to a message (envelope and trace context written straight into
//! rdkafka headers) and what the consumer does (read the headers, extract
//! the context, parse the envelope), together as one round trip. The goal
//! is at most 1 µs per message; building the same five rdkafka headers from
//! fixed values is the in-process baseline. The header-list path (used when
//! a consumed message is re-published, e.g. to the dead-letter topic) is
//! measured beside it.

use criterion::{criterion_group, criterion_main, Criterion};
use meshflow_common::envelope::{Envelope, HeaderList, HeaderView};
use meshflow_common::propagation::{extract, inject, message_headers};
use meshflow_common::testing::envelope_sized_headers;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use rdkafka::message::OwnedHeaders;
use std::hint::black_box;

fn context() -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736u128),
        SpanId::from(0x00f0_67aa_0ba9_02b7u64),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    ))
}

fn round_trip(cx: &Context, seq: u64) -> Envelope {
    consume_side(&produce_side(cx, seq))
}

fn produce_side(cx: &Context, seq: u64) -> OwnedHeaders {
    let envelope = Envelope {
        producer: "producer-7f3a9c21".to_string(),
        seq,
        created_ns: 1_795_813_603_000_000_000,
        settled: Some(seq),
    };
    message_headers(&envelope, cx)
}

fn produce_via_list(cx: &Context, seq: u64) -> OwnedHeaders {
    let envelope = Envelope {
        producer: "producer-7f3a9c21".to_string(),
        seq,
        created_ns: 1_795_813_603_000_000_000,
        settled: Some(seq),
    };
    let mut headers = HeaderList::new();
    envelope.write_to(&mut headers);
    inject(cx, &mut headers);
    headers.to_owned_headers()
}

fn consume_side(owned: &OwnedHeaders) -> Envelope {
    let view = HeaderView::of(Some(owned));
    let extracted = extract(&view);
    assert!(!extracted.malformed);
    Envelope::parse(view.iter())
        .ok()
        .flatten()
        .expect("envelope")
}

fn bench(c: &mut Criterion) {
    meshflow_common::propagation::install(false);
    let cx = context();
    let mut seq = 0u64;
    c.bench_function("envelope+propagation round trip", |b| {
        b.iter(|| {
            seq += 1;
            black_box(round_trip(&cx, black_box(seq)))
        })
    });
    c.bench_function("producer side: envelope + inject + rdkafka headers", |b| {
        b.iter(|| {
            seq += 1;
            black_box(produce_side(&cx, black_box(seq)))
        })
    });
    c.bench_function("producer side via a header list (re-publish path)", |b| {
        b.iter(|| {
            seq += 1;
            black_box(produce_via_list(&cx, black_box(seq)))
        })
    });
    let built = produce_side(&cx, 41);
    c.bench_function("consumer side: read headers + extract + parse", |b| {
        b.iter(|| black_box(consume_side(black_box(&built))))
    });
    c.bench_function("baseline: build the same rdkafka headers", |b| {
        b.iter(|| {
            seq += 1;
            black_box(envelope_sized_headers(black_box(seq)))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
