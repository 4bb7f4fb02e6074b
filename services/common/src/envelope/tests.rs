use super::*;

fn parse(h: &[(&str, Option<&[u8]>)]) -> Result<Option<Envelope>, EnvelopeError> {
    Envelope::parse(h.iter().copied())
}

#[test]
fn valid_envelope_roundtrips_through_headers() {
    let env = Envelope {
        producer: "producer-1a2b".into(),
        seq: 41,
        created_ns: 1_795_813_603_000_000_000,
        settled: Some(40),
    };
    let mut list = HeaderList::new();
    list.set("other", b"x");
    env.write_to(&mut list);
    env.write_to(&mut list);
    assert_eq!(list.count(SEQ), 1, "setting twice must not append");
    let owned = list.to_owned_headers();
    assert_eq!(Envelope::from_headers(Some(&owned)), Ok(Some(env)));
}

#[test]
fn mf_settled_is_optional_and_read_when_present() {
    let base = [
        (PRODUCER, Some(&b"p-1"[..])),
        (SEQ, Some(&b"9"[..])),
        (CREATED_NS, Some(&b"100"[..])),
    ];
    let without = parse(&base).unwrap().unwrap();
    assert_eq!(without.settled, None);
    let mut with = base.to_vec();
    with.push((SETTLED, Some(&b"4"[..])));
    assert_eq!(parse(&with).unwrap().unwrap().settled, Some(4));
    // Written back only when known.
    let mut list = HeaderList::new();
    without.write_to(&mut list);
    assert_eq!(list.count(SETTLED), 0);
    let stamped = Envelope {
        settled: Some(4),
        ..without
    };
    stamped.write_to(&mut list);
    assert_eq!(list.get(SETTLED), Some(&b"4"[..]));
}

/// Headers whose second entry has a name that is not UTF-8.
fn with_raw_name(name: &[u8]) -> rdkafka::message::OwnedHeaders {
    let mut list = crate::headers::HeaderList::new();
    list.push(PRODUCER.as_bytes(), Some(b"p-1"));
    list.push(name, Some(b"7"));
    list.to_owned_headers()
}

#[test]
fn header_name_not_utf8_is_invalid_and_never_panics() {
    for name in [&b"mf-\xff"[..], b"\xc3\x28", b"\xfe\xfe\xfe"] {
        let owned = with_raw_name(name);
        let got = Envelope::from_headers(Some(&owned)).map_err(|e| e.reason());
        assert_eq!(got, Err("header_name_not_utf8"), "{name:?}");
        let view = HeaderView::of(Some(&owned));
        let got = Envelope::parse(view.iter()).map_err(|e| e.reason());
        assert_eq!(got, Err("header_name_not_utf8"), "{name:?}");
    }
    // Whatever comes first: found by fuzzing (a duplicate was reported).
    let headers: [(&[u8], Option<&[u8]>); 4] = [
        (b"mf-seq", Some(b"1")),
        (b"mf-seq", Some(b"2")),
        (b"mf-\x87\x9aq", Some(b"1")),
        (b"mf-producer", None),
    ];
    assert_eq!(
        Envelope::parse(headers),
        Err(EnvelopeError::HeaderNameNotUtf8)
    );
}

#[test]
fn parse_table() {
    let big = "p".repeat(MAX_PRODUCER_ID_BYTES + 1);
    let max = "p".repeat(MAX_PRODUCER_ID_BYTES);
    let p: Option<&[u8]> = Some(b"p-1");
    let s: Option<&[u8]> = Some(b"7");
    let c: Option<&[u8]> = Some(b"100");
    type Case<'a> = (
        &'a str,
        Vec<(&'a str, Option<&'a [u8]>)>,
        Result<Option<u64>, &'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            "valid",
            vec![(PRODUCER, p), (SEQ, s), (CREATED_NS, c)],
            Ok(Some(7)),
        ),
        (
            "valid with mf-settled",
            vec![
                (PRODUCER, p),
                (SEQ, s),
                (CREATED_NS, c),
                (SETTLED, Some(b"5")),
            ],
            Ok(Some(7)),
        ),
        (
            "mf-settled not a number",
            vec![
                (PRODUCER, p),
                (SEQ, s),
                (CREATED_NS, c),
                (SETTLED, Some(b"5x")),
            ],
            Err("not_a_number"),
        ),
        (
            "mf-settled without a value",
            vec![(PRODUCER, p), (SEQ, s), (CREATED_NS, c), (SETTLED, None)],
            Err("not_utf8"),
        ),
        (
            "mf-settled twice",
            vec![
                (PRODUCER, p),
                (SEQ, s),
                (CREATED_NS, c),
                (SETTLED, Some(b"5")),
                (SETTLED, Some(b"6")),
            ],
            Err("duplicated_header"),
        ),
        (
            "mf-settled alone",
            vec![(SETTLED, Some(b"5"))],
            Err("missing_header"),
        ),
        ("absent", vec![("traceparent", Some(b"00-x"))], Ok(None)),
        ("no headers", vec![], Ok(None)),
        (
            "seq zero",
            vec![(PRODUCER, p), (SEQ, Some(b"0")), (CREATED_NS, c)],
            Ok(Some(0)),
        ),
        (
            "seq max",
            vec![
                (PRODUCER, p),
                (SEQ, Some(b"18446744073709551615")),
                (CREATED_NS, c),
            ],
            Ok(Some(u64::MAX)),
        ),
        (
            "seq overflow",
            vec![
                (PRODUCER, p),
                (SEQ, Some(b"18446744073709551616")),
                (CREATED_NS, c),
            ],
            Err("not_a_number"),
        ),
        (
            "seq letters",
            vec![(PRODUCER, p), (SEQ, Some(b"12a")), (CREATED_NS, c)],
            Err("not_a_number"),
        ),
        (
            "seq negative",
            vec![(PRODUCER, p), (SEQ, Some(b"-1")), (CREATED_NS, c)],
            Err("not_a_number"),
        ),
        (
            "seq plus",
            vec![(PRODUCER, p), (SEQ, Some(b"+1")), (CREATED_NS, c)],
            Err("not_a_number"),
        ),
        (
            "seq empty",
            vec![(PRODUCER, p), (SEQ, Some(b"")), (CREATED_NS, c)],
            Err("not_a_number"),
        ),
        (
            "seq space",
            vec![(PRODUCER, p), (SEQ, Some(b" 1")), (CREATED_NS, c)],
            Err("not_a_number"),
        ),
        (
            "created letters",
            vec![(PRODUCER, p), (SEQ, s), (CREATED_NS, Some(b"soon"))],
            Err("not_a_number"),
        ),
        (
            "seq missing",
            vec![(PRODUCER, p), (CREATED_NS, c)],
            Err("missing_header"),
        ),
        (
            "producer missing",
            vec![(SEQ, s), (CREATED_NS, c)],
            Err("missing_header"),
        ),
        (
            "seq duplicated",
            vec![(PRODUCER, p), (SEQ, s), (SEQ, s), (CREATED_NS, c)],
            Err("duplicated_header"),
        ),
        (
            "producer duplicated",
            vec![(PRODUCER, p), (PRODUCER, p), (SEQ, s), (CREATED_NS, c)],
            Err("duplicated_header"),
        ),
        (
            "producer oversize",
            vec![(PRODUCER, Some(big.as_bytes())), (SEQ, s), (CREATED_NS, c)],
            Err("producer_too_long"),
        ),
        (
            "producer at limit",
            vec![(PRODUCER, Some(max.as_bytes())), (SEQ, s), (CREATED_NS, c)],
            Ok(Some(7)),
        ),
        (
            "producer empty",
            vec![(PRODUCER, Some(b"")), (SEQ, s), (CREATED_NS, c)],
            Err("empty_producer"),
        ),
        (
            "producer not utf8",
            vec![(PRODUCER, Some(&[0xff, 0xfe])), (SEQ, s), (CREATED_NS, c)],
            Err("not_utf8"),
        ),
        (
            "seq not utf8",
            vec![(PRODUCER, p), (SEQ, Some(&[0xc3, 0x28])), (CREATED_NS, c)],
            Err("not_utf8"),
        ),
        (
            "null value",
            vec![(PRODUCER, p), (SEQ, None), (CREATED_NS, c)],
            Err("not_utf8"),
        ),
    ];
    for (name, headers, want) in cases {
        let got = parse(&headers)
            .map(|e| e.map(|e| e.seq))
            .map_err(|e| e.reason());
        assert_eq!(got, want, "case {name}");
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic sweep over odd header values.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..5_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 40) as usize;
        let bytes: Vec<u8> = (0..len).map(|i| (state >> (i % 8 * 8)) as u8).collect();
        let names = [PRODUCER, SEQ, CREATED_NS];
        let name = names[(state % 3) as usize];
        let _ = parse(&[
            (PRODUCER, Some(b"p")),
            (name, Some(&bytes)),
            (SEQ, Some(&bytes)),
        ]);
        let _ = parse(&[(name, Some(&bytes))]);
    }
}
