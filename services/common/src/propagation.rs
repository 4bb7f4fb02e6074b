//! W3C Trace Context in Kafka headers.
//!
//! The producer injects the context of its `send` span; the consumer extracts
//! it to parent its `process` span. Both go through the global text-map
//! propagator installed by [`crate::telemetry`]. Injection sets headers by
//! replacement (a re-published message never carries two `traceparent`s);
//! extraction tolerates garbage: a malformed `traceparent` yields an empty
//! context, which the caller counts and answers with a new root trace.

use crate::envelope::{HeaderList, HeaderView, TRACEPARENT};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;

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
}

impl Carrier for HeaderView<'_> {
    fn has(&self, key: &str) -> bool {
        HeaderView::has(self, key)
    }
}

impl Carrier for HeaderList {
    fn has(&self, key: &str) -> bool {
        self.count(key) > 0
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

/// Writes `cx` into `headers` with the global propagator.
pub fn inject(cx: &Context, headers: &mut HeaderList) {
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(cx, headers));
}

/// What extraction found in a message's headers.
#[derive(Debug)]
pub struct Extracted {
    /// The remote parent context; empty when there was none or it was bad.
    pub context: Context,
    /// A `traceparent` header was present but could not be used.
    pub malformed: bool,
}

/// Reads the trace context of a consumed message with the global propagator.
pub fn extract<E: Extractor>(headers: &E) -> Extracted {
    let present = headers.get(TRACEPARENT).is_some()
        || headers
            .keys()
            .iter()
            .any(|k| k.eq_ignore_ascii_case(TRACEPARENT));
    let context = opentelemetry::global::get_text_map_propagator(|p| p.extract(headers));
    let valid = context.span().span_context().is_valid();
    Extracted {
        malformed: present && !valid,
        context,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    fn install() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    }

    fn remote(trace: u128, span: u64) -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ))
    }

    #[test]
    fn inject_replaces_and_extract_roundtrips() {
        install();
        let mut headers = HeaderList::new();
        headers.set(TRACEPARENT, b"00-stale");
        inject(&remote(0xabc, 0x12), &mut headers);
        inject(&remote(0xabc, 0x34), &mut headers);
        assert_eq!(headers.count(TRACEPARENT), 1);
        let got = extract(&headers);
        assert!(!got.malformed);
        let sc = got.context.span().span_context().clone();
        assert_eq!(sc.trace_id(), TraceId::from(0xabcu128));
        assert_eq!(sc.span_id(), SpanId::from(0x34u64));
        assert!(sc.is_remote());
    }

    #[test]
    fn garbage_is_malformed_absence_is_not() {
        install();
        let mut headers = HeaderList::new();
        assert!(!extract(&headers).malformed);
        for bad in [
            &b"garbage"[..],
            b"00-00000000000000000000000000000000-0000000000000000-01",
            &[0xff, 0x00],
        ] {
            headers.set(TRACEPARENT, bad);
            let got = extract(&headers);
            assert!(got.malformed, "{bad:?}");
            assert!(!got.context.span().span_context().is_valid());
        }
    }
}
