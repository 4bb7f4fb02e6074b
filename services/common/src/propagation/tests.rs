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

fn sdk_extract(headers: &HeaderList) -> SpanContext {
    TraceContextPropagator::new()
        .extract_with_context(&Context::new(), headers)
        .span()
        .span_context()
        .clone()
}

fn own_extract(headers: &HeaderList) -> SpanContext {
    let traceparent = Carrier::raw(headers, TRACEPARENT);
    read_trace_context(&Context::new(), headers, traceparent)
        .span()
        .span_context()
        .clone()
}

#[test]
fn writes_what_the_sdk_writes() {
    let state = TraceState::from_key_value([("vendor", "x1"), ("other", "y")]).unwrap();
    for (trace, span, flags, state) in [
        (
            0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736u128,
            0x00f0_67aa_0ba9_02b7u64,
            TraceFlags::SAMPLED,
            TraceState::default(),
        ),
        (1, 1, TraceFlags::default(), state),
        (
            u128::MAX,
            u64::MAX,
            TraceFlags::new(0xff),
            TraceState::default(),
        ),
        (0, 7, TraceFlags::SAMPLED, TraceState::default()),
    ] {
        let cx = Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            flags,
            true,
            state,
        ));
        let (mut ours, mut sdk) = (HeaderList::new(), HeaderList::new());
        inject(&cx, &mut ours);
        TraceContextPropagator::new().inject_context(&cx, &mut sdk);
        assert_eq!(ours, sdk, "{trace:x}");
    }
}

#[test]
fn reads_what_the_sdk_reads() {
    let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut values: Vec<String> = vec![
        good.into(),
        good.replace("-01", "-00"),
        good.replace("-01", "-ff"),
        good.replace("-01", "-0A"),
        good.replace("4bf9", "4BF9"),
        good.replace("00f0", "+0f0"),
        good.replacen("00-", "01-", 1),
        good.replacen("00-", "ff-", 1),
        format!(" {good}"),
        format!("{good}-"),
        format!("{good}-extra"),
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01".into(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01".into(),
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01".into(),
        String::new(),
    ];
    // Every byte position replaced by a few others.
    for at in 0..good.len() {
        for c in ['0', 'a', 'f', 'g', 'A', '-', ' ', '+', 'é'] {
            let mut v: Vec<char> = good.chars().collect();
            v[at] = c;
            values.push(v.into_iter().collect());
        }
    }
    for value in &values {
        for state in [
            None,
            Some(""),
            Some("a=b"),
            Some("a=b,c=d"),
            Some("bad"),
            Some("A=b"),
        ] {
            let mut headers = HeaderList::new();
            headers.set(TRACEPARENT, value.as_bytes());
            if let Some(state) = state {
                headers.set(TRACESTATE, state.as_bytes());
            }
            assert_eq!(
                own_extract(&headers),
                sdk_extract(&headers),
                "{value:?} {state:?}"
            );
        }
    }
}

#[test]
fn message_headers_match_the_header_list() {
    use crate::headers::raw_entries;
    let envelope = Envelope {
        producer: "producer-1a2b".into(),
        seq: 41,
        created_ns: 1_795_813_603_000_000_000,
        settled: None,
    };
    for cx in [remote(0xabc, 0x12), Context::new()] {
        let mut list = HeaderList::new();
        envelope.write_to(&mut list);
        inject(&cx, &mut list);
        let built = message_headers(&envelope, &cx);
        let want: Vec<_> = list.iter().collect();
        assert_eq!(raw_entries(&built), want);
    }
    for n in [0u64, 9, 10, 99, 100, 1_000_000, u64::MAX] {
        let mut list = HeaderList::new();
        Envelope {
            producer: "p".into(),
            seq: n,
            created_ns: n,
            settled: None,
        }
        .write_to(&mut list);
        assert_eq!(
            list.get(crate::envelope::SEQ),
            Some(n.to_string().as_bytes())
        );
    }
}
