//! W3C trace-context extraction from arbitrary headers: never panics, a
//! context is only ever valid when a `traceparent` header was there, and
//! injecting into any header list replaces what was there.

#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use meshflow_common::envelope::{HeaderList, HeaderView, TRACEPARENT};
use meshflow_common::propagation::{extract, inject};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;

static PROPAGATOR: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    PROPAGATOR.call_once(|| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new())
    });
    let pairs = meshflow_fuzz::pairs(data);
    // Ids to inject, derived from the input so they vary with it.
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let (trace, span) = ((u128::from(hash) << 64) | u128::from(!hash), hash);
    let view = HeaderView::from_entries(pairs.clone());
    let got = extract(&view);
    let sc = got.context.span().span_context().clone();
    // The fast path for canonical values reads what the SDK reads.
    let sdk = TraceContextPropagator::new().extract_with_context(&Context::new(), &view);
    assert_eq!(&sc, sdk.span().span_context());
    if sc.is_valid() {
        assert!(sc.is_remote());
        assert!(!got.malformed);
    }
    if !view.has(TRACEPARENT) {
        assert!(!sc.is_valid());
        assert!(!got.malformed);
    }

    let mut list = HeaderList::new();
    for (name, value) in &pairs {
        list.push(name, *value);
    }
    let (trace, span) = (trace.max(1), span.max(1));
    let cx = Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(trace),
        SpanId::from(span),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ));
    inject(&cx, &mut list);
    assert_eq!(list.count(TRACEPARENT), 1);
    let again = extract(&list);
    let sc = again.context.span().span_context().clone();
    assert!(!again.malformed);
    assert_eq!(sc.trace_id(), TraceId::from(trace));
    assert_eq!(sc.span_id(), SpanId::from(span));
});
