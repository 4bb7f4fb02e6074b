//! W3C Trace Context in Kafka headers.
//!
//! The producer injects the context of its `send` span; the consumer extracts
//! it to parent its `process` span. Injection sets headers by replacement (a
//! re-published message never carries two `traceparent`s); extraction
//! tolerates garbage: a malformed `traceparent` yields an empty context,
//! which the caller counts and answers with a new root trace.
//!
//! This runs once per message on both sides, so the common case is written
//! here without allocating: `traceparent` is formatted into a stack buffer,
//! and a `traceparent` in the canonical version-00 form (55 bytes, lowercase
//! hex) is read directly. Anything else goes to the SDK's
//! `TraceContextPropagator`, so what counts as valid, and what a hostile
//! header yields, is the SDK's decision; for the canonical form both give
//! the same context (tests and the `trace_context` fuzz target compare
//! them). W3C Baggage, when [`install`] was asked for it, goes through the
//! SDK's `BaggagePropagator` after the trace context, as the composite
//! propagator would.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::envelope::{Envelope, HeaderList, HeaderView, TRACEPARENT, TRACESTATE};
use crate::headers::MessageHeaders;
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use rdkafka::message::OwnedHeaders;

/// Whether W3C Baggage rides along with the trace context.
static BAGGAGE: AtomicBool = AtomicBool::new(false);

/// Installs propagation for this process: W3C Trace Context, plus W3C
/// Baggage when `baggage` is set. Also sets the global text-map propagator
/// to the same, for anything else that propagates context.
pub fn install(baggage: bool) {
    BAGGAGE.store(baggage, Ordering::Relaxed);
    if baggage {
        opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ]));
    } else {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    }
}

fn baggage() -> bool {
    BAGGAGE.load(Ordering::Relaxed)
}

impl Injector for HeaderList {
    fn set(&mut self, key: &str, value: String) {
        HeaderList::set(self, key, value.as_bytes());
    }
}

impl Extractor for HeaderView<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        HeaderView::get(self, key).and_then(|v| std::str::from_utf8(v).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.text_names()
    }
}

/// Headers the trace context can be extracted from.
pub trait Carrier: Extractor {
    /// Whether a header `key` is present at all (even without a UTF-8 value).
    fn has(&self, key: &str) -> bool;

    /// The value `Extractor::get` looks at, as bytes, UTF-8 or not.
    fn raw(&self, key: &str) -> Option<&[u8]>;
}

impl Carrier for HeaderView<'_> {
    fn has(&self, key: &str) -> bool {
        HeaderView::has(self, key)
    }

    fn raw(&self, key: &str) -> Option<&[u8]> {
        HeaderView::get(self, key)
    }
}

impl Carrier for HeaderList {
    fn has(&self, key: &str) -> bool {
        self.count(key) > 0
    }

    fn raw(&self, key: &str) -> Option<&[u8]> {
        HeaderList::get(self, key)
    }
}

impl Extractor for HeaderList {
    fn get(&self, key: &str) -> Option<&str> {
        HeaderList::get(self, key).and_then(|v| std::str::from_utf8(v).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.iter()
            .filter_map(|(k, _)| std::str::from_utf8(k).ok())
            .collect()
    }
}

impl Injector for MessageHeaders {
    fn set(&mut self, key: &str, value: String) {
        self.add(key, value.as_bytes());
    }
}

/// Length of a version-00 `traceparent`: `00-<32 hex>-<16 hex>-<2 hex>`.
const TRACEPARENT_LEN: usize = 55;

/// `traceparent` of `sc` exactly as the SDK's propagator writes it
/// (`{:02x}-{trace}-{span}-{flags & SAMPLED:02x}`), on the stack.
fn format_traceparent(sc: &SpanContext, buf: &mut [u8; TRACEPARENT_LEN]) {
    let hex_into = crate::hex::write_lower;
    buf[0] = b'0';
    buf[1] = b'0';
    buf[2] = b'-';
    hex_into(&mut buf[3..35], &sc.trace_id().to_bytes());
    buf[35] = b'-';
    hex_into(&mut buf[36..52], &sc.span_id().to_bytes());
    buf[52] = b'-';
    hex_into(
        &mut buf[53..55],
        &[(sc.trace_flags() & TraceFlags::SAMPLED).to_u8()],
    );
}

/// Writes the trace context of `cx` through `set`, as the SDK's
/// `TraceContextPropagator` does: both headers, only for a valid context.
fn write_trace_context(cx: &Context, mut set: impl FnMut(&str, &[u8])) {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return;
    }
    let mut buf = [0u8; TRACEPARENT_LEN];
    format_traceparent(sc, &mut buf);
    set(TRACEPARENT, &buf);
    set(TRACESTATE, sc.trace_state().header().as_bytes());
}

/// The ids and flags of a `traceparent` in the canonical version-00 form;
/// `None` for every other value, valid or not, which the SDK then judges.
fn parse_canonical(b: &[u8]) -> Option<(TraceId, SpanId, TraceFlags)> {
    if b.len() != TRACEPARENT_LEN || &b[..3] != b"00-" || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    use crate::hex::{read_lower, read_trace_id};
    let trace = read_trace_id(&b[3..35])?;
    let span = read_lower(&b[36..52])?;
    let flags = read_lower(&b[53..55])? as u8;
    Some((
        TraceId::from(trace),
        SpanId::from(span),
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
    ))
}

/// The trace context in `headers` on top of `parent`, as the SDK's
/// `TraceContextPropagator::extract_with_context` finds it.
fn read_trace_context<C: Carrier>(
    parent: &Context,
    headers: &C,
    traceparent: Option<&[u8]>,
) -> Context {
    let Some((trace_id, span_id, flags)) = traceparent.and_then(parse_canonical) else {
        return TraceContextPropagator::new().extract_with_context(parent, headers);
    };
    // The SDK reads a missing, empty or non-UTF-8 `tracestate` as empty.
    let state = match headers.raw(TRACESTATE) {
        None | Some(b"") => TraceState::default(),
        Some(_) => headers
            .get(TRACESTATE)
            .map(|s| s.parse::<TraceState>().unwrap_or_default())
            .unwrap_or_default(),
    };
    let sc = SpanContext::new(trace_id, span_id, flags, true, state);
    if sc.is_valid() {
        parent.with_remote_span_context(sc)
    } else {
        parent.clone()
    }
}

/// Writes `cx` into `headers`, replacing any earlier copy.
pub fn inject(cx: &Context, headers: &mut HeaderList) {
    write_trace_context(cx, |k, v| headers.set(k, v));
    if baggage() {
        BaggagePropagator::new().inject_context(cx, headers);
    }
}

/// The headers of a new message in rdkafka's form: the envelope, then the
/// trace context of `cx` (and baggage, if propagated). Built straight into
/// the native list, each header once; no number or id is formatted on the
/// heap.
pub fn message_headers(envelope: &Envelope, cx: &Context) -> OwnedHeaders {
    let mut headers = MessageHeaders::with_capacity(6);
    envelope.add_to(&mut headers);
    write_trace_context(cx, |k, v| headers.add(k, v));
    if baggage() {
        BaggagePropagator::new().inject_context(cx, &mut headers);
    }
    headers.into_owned()
}

/// What extraction found in a message's headers.
#[derive(Debug)]
pub struct Extracted {
    /// The remote parent context; empty when there was none or it was bad.
    pub context: Context,
    /// A `traceparent` header was present but could not be used.
    pub malformed: bool,
}

/// Reads the trace context (and baggage, if propagated) of a consumed
/// message on top of the current context.
pub fn extract<C: Carrier>(headers: &C) -> Extracted {
    let traceparent = headers.raw(TRACEPARENT);
    let present = traceparent.is_some()
        || headers
            .keys()
            .iter()
            .any(|k| k.eq_ignore_ascii_case(TRACEPARENT));
    let mut context = Context::map_current(|cx| read_trace_context(cx, headers, traceparent));
    let valid = context.span().span_context().is_valid();
    if baggage() {
        context = BaggagePropagator::new().extract_with_context(&context, headers);
    }
    Extracted {
        malformed: present && !valid,
        context,
    }
}

#[cfg(test)]
mod tests;
