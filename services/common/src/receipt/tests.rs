use proptest::prelude::*;

use super::binary::{self, Batch, Entry, Run};
use super::*;

fn entry(producer: &str, partition: i32, offset: i64, seq: u64, trace: u8) -> ReceiptEntry {
    ReceiptEntry {
        producer: producer.into(),
        seq,
        created_ns: 1_795_813_603_000_000_000 + seq * 1_000_000,
        topic: "meshflow.events".into(),
        partition,
        offset,
        processed_ns: 1_795_813_603_004_100_000 + seq * 1_000_000,
        trace_id: format!("{trace:032x}"),
    }
}

/// An entry, owned: producer, topic, partition, offset, seq, created ns,
/// processed ns, trace id.
type Flat = (String, String, i32, i64, u64, u64, u64, Option<String>);

/// Every entry of a decoded record, owned, trace as text.
fn entries_of(decoded: &Decoded<'_>) -> Vec<Flat> {
    let mut out = Vec::new();
    decoded.for_each_entry(|e| {
        let mut buf = [0u8; 32];
        out.push((
            e.producer.to_string(),
            e.topic.to_string(),
            e.partition,
            e.offset,
            e.seq,
            e.created_ns,
            e.processed_ns,
            e.trace.as_text(&mut buf).map(str::to_string),
        ));
    });
    out
}

#[test]
fn the_wire_format_is_as_documented() {
    let batch = Batch {
        group: "g",
        consumer: "c",
        topics: vec!["t"],
        producers: vec!["p"],
        runs: vec![Run {
            topic: 0,
            producer: 0,
            partition: 2,
            entries: vec![
                Entry {
                    offset: 10,
                    seq: 5,
                    created_us: 1_000,
                    processed_us: 1_500,
                },
                Entry {
                    offset: 11,
                    seq: 8,
                    created_us: 1_600,
                    processed_us: 2_000,
                },
            ],
        }],
        traces: vec![(1, [0xab; 16])],
    };
    let mut bytes = Vec::new();
    batch.encode(&mut bytes);
    let mut expected = vec![
        2, // version
        1, b'g', 1, b'c', // group, consumer
        1, 1, b't', // topics
        1, 1, b'p', // producers
        1,    // runs
        0, 0, 4, 2, // topic 0, producer 0, partition 2 (zigzag 4), 2 entries
        20, 10, 0xb8, 0x17, 0xe8, 0x07, // offset 10, seq 5, processed 1500, latency 500
        0, 6, 0xe8, 0x07, 0xa0, 0x06, // offset +1, seq +3, processed +500, latency 400
        1, 1, // one trace, entry 1
    ];
    expected.extend([0xab; 16]);
    assert_eq!(bytes, expected);
    assert_eq!(binary::decode(&bytes).unwrap(), batch);
}

#[test]
fn the_format_header_names_the_format_and_none_means_json() {
    assert_eq!(Format::of(None), Some(Format::Json));
    assert_eq!(Format::of(Some(b"1")), Some(Format::Json));
    assert_eq!(Format::of(Some(b"2")), Some(Format::Binary));
    assert_eq!(Format::of(Some(b"3")), None);
    assert_eq!(Format::of(Some(b"")), None);
    for f in [Format::Json, Format::Binary] {
        assert_eq!(Format::of(Some(f.header_value().as_bytes())), Some(f));
    }
    assert!(matches!(
        decode(Some(b"9"), b"{}"),
        Err(DecodeError::UnknownFormat)
    ));
    // A format-2 body under format 1's name, and the other way round.
    let body = encode_binary("g", "c", &[&entry("p", 0, 0, 0, 1)], 64);
    assert!(matches!(decode(None, &body), Err(DecodeError::Json(_))));
    assert!(matches!(
        decode(Some(b"2"), b"{}"),
        Err(DecodeError::Binary(_))
    ));
}

#[test]
fn a_steady_record_costs_a_few_bytes_an_entry() {
    // One producer over 6 partitions, 500 entries, as a busy flush writes.
    let producer = "producer-6f1c2a7e-3b4d-4e8a-9c1f-2d7b5e0a9f31";
    let owned: Vec<ReceiptEntry> = (0..500u64)
        .map(|seq| {
            entry(
                producer,
                (seq % 6) as i32,
                10_000 + (seq / 6) as i64,
                seq,
                7,
            )
        })
        .collect();
    let refs: Vec<&ReceiptEntry> = owned.iter().collect();
    let body = encode_binary("meshflow", "consumer-7f3a-1", &refs, 64);
    let json = serde_json::to_vec(&ReceiptBatch {
        group: "meshflow".into(),
        consumer: "consumer-7f3a-1".into(),
        entries: owned.clone(),
    })
    .unwrap();
    let per_entry = body.len() as f64 / 500.0;
    assert!(per_entry <= 8.0, "{per_entry} bytes an entry");
    assert!(
        json.len() > 25 * body.len(),
        "json {} binary {}",
        json.len(),
        body.len()
    );
}

#[test]
fn the_slowest_entry_and_every_64th_seq_keep_their_trace() {
    let mut owned: Vec<ReceiptEntry> = (0..200u64)
        .map(|seq| entry("p", 0, seq as i64, seq, 1))
        .collect();
    for (i, e) in owned.iter_mut().enumerate() {
        e.trace_id = format!("{:032x}", i + 1);
    }
    owned[77].processed_ns += 5_000_000_000;
    let refs: Vec<&ReceiptEntry> = owned.iter().collect();
    let body = encode_binary("g", "c", &refs, 64);
    let decoded = decode(Some(b"2"), &body).unwrap();
    let kept: Vec<(u64, String)> = entries_of(&decoded)
        .into_iter()
        .filter_map(|e| e.7.map(|t| (e.4, t)))
        .collect();
    let expected: Vec<(u64, String)> = [0u64, 64, 77, 128, 192]
        .into_iter()
        .map(|seq| (seq, format!("{:032x}", seq + 1)))
        .collect();
    assert_eq!(kept, expected);
    // 1 keeps every id.
    let body = encode_binary("g", "c", &refs, 1);
    let decoded = decode(Some(b"2"), &body).unwrap();
    assert!(entries_of(&decoded).iter().all(|e| e.7.is_some()));
}

#[test]
fn hostile_bodies_are_refused_with_a_reason() {
    let good = encode_binary(
        "g",
        "c",
        &[&entry("p", 0, 5, 1, 1), &entry("p", 1, 9, 2, 1)],
        1,
    );
    assert!(binary::decode(&good).is_ok());
    for cut in 0..good.len() {
        assert!(binary::decode(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        binary::decode(&trailing),
        Err(binary::DecodeError::Trailing)
    );
    assert_eq!(binary::decode(&[1]), Err(binary::DecodeError::Version(1)));
    // A count of a billion runs in a 20-byte body allocates nothing.
    let mut huge = vec![2, 0, 0, 0, 0];
    huge.extend([0x80, 0x94, 0xeb, 0xdc, 0x03]);
    assert_eq!(binary::decode(&huge), Err(binary::DecodeError::Count));
    // An eleven-byte varint.
    let mut long = vec![2];
    long.extend([0xff; 11]);
    assert_eq!(binary::decode(&long), Err(binary::DecodeError::Varint));
    // A producer index past the table.
    let bad = [
        2, 0, 0, 1, 1, b't', 1, 1, b'p', 1, 0, 1, 0, 1, 0, 0, 0, 0, 0,
    ];
    assert_eq!(binary::decode(&bad), Err(binary::DecodeError::Index));
    // A negative partition.
    let bad = [
        2, 0, 0, 1, 1, b't', 1, 1, b'p', 1, 0, 0, 1, 1, 0, 0, 0, 0, 0,
    ];
    assert_eq!(binary::decode(&bad), Err(binary::DecodeError::Position));
    // A time past u64 nanoseconds.
    let mut bad = vec![2, 0, 0, 1, 1, b't', 1, 1, b'p', 1, 0, 0, 0, 1, 0, 0];
    bad.extend([
        0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0,
    ]);
    assert_eq!(binary::decode(&bad), Err(binary::DecodeError::Time));
}

fn arb_entry() -> impl Strategy<Value = Entry> {
    (
        0..i64::MAX,
        any::<u64>(),
        0..u64::MAX / 1_000,
        0..u64::MAX / 1_000,
    )
        .prop_map(|(offset, seq, created_us, processed_us)| Entry {
            offset,
            seq,
            created_us,
            processed_us,
        })
}

/// Topics, producers, runs (topic, producer, partition, entries) and
/// traces, before indexes are brought into range.
type RawBatch = (
    Vec<String>,
    Vec<String>,
    Vec<(usize, usize, i32, Vec<Entry>)>,
    Vec<(usize, [u8; 16])>,
);

fn arb_batch() -> impl Strategy<Value = RawBatch> {
    (
        prop::collection::vec("[a-z.-]{0,12}", 1..4),
        prop::collection::vec("\\PC{0,20}", 1..4),
        prop::collection::vec(
            (
                any::<usize>(),
                any::<usize>(),
                0..i32::MAX,
                prop::collection::vec(arb_entry(), 0..20),
            ),
            0..6,
        ),
        prop::collection::vec((any::<usize>(), any::<[u8; 16]>()), 0..8),
    )
}

proptest! {
    #[test]
    fn binary_decode_inverts_encode((topics, producers, runs, traces) in arb_batch()) {
        let runs: Vec<Run> = runs
            .into_iter()
            .map(|(t, p, partition, entries)| Run {
                topic: t % topics.len(),
                producer: p % producers.len(),
                partition,
                entries,
            })
            .collect();
        let total: usize = runs.iter().map(|r| r.entries.len()).sum();
        let mut traces: Vec<(usize, [u8; 16])> = if total == 0 {
            Vec::new()
        } else {
            traces.into_iter().map(|(i, id)| (i % total, id)).collect()
        };
        traces.sort_by_key(|t| t.0);
        traces.dedup_by_key(|t| t.0);
        let batch = Batch {
            group: "meshflow",
            consumer: "consumer-1",
            topics: topics.iter().map(String::as_str).collect(),
            producers: producers.iter().map(String::as_str).collect(),
            runs,
            traces,
        };
        let mut bytes = Vec::new();
        batch.encode(&mut bytes);
        prop_assert_eq!(binary::decode(&bytes).unwrap(), batch);
    }

    #[test]
    fn every_entry_comes_back_from_format_2(
        entries in prop::collection::vec(
            ("p[0-3]", "t[0-1]", 0..4i32, 0..1_000_000i64, any::<u64>(), 0..u64::MAX / 2, 0..u64::MAX / 2),
            0..60,
        ),
        every in 1..100u64,
    ) {
        let owned: Vec<ReceiptEntry> = entries
            .iter()
            .enumerate()
            .map(|(i, (p, t, partition, offset, seq, created_ns, processed_ns))| ReceiptEntry {
                producer: p.clone(),
                seq: *seq,
                created_ns: *created_ns,
                topic: t.clone(),
                partition: *partition,
                offset: *offset,
                processed_ns: *processed_ns,
                trace_id: format!("{:032x}", i + 1),
            })
            .collect();
        let refs: Vec<&ReceiptEntry> = owned.iter().collect();
        let body = encode_binary("g", "c", &refs, every);
        let decoded = decode(Some(b"2"), &body).unwrap();
        prop_assert_eq!(decoded.group(), "g");
        prop_assert_eq!(decoded.consumer(), "c");
        let mut got = entries_of(&decoded);
        // Runs regroup entries; within a (topic, partition, producer) the
        // order is kept, so a stable sort on that key restores the input's.
        got.sort_by(|a, b| (&a.1, a.2, &a.0).cmp(&(&b.1, b.2, &b.0)));
        let mut want: Vec<_> = owned
            .iter()
            .map(|e| (
                e.producer.clone(),
                e.topic.clone(),
                e.partition,
                e.offset,
                e.seq,
                e.created_ns / 1_000 * 1_000,
                e.processed_ns / 1_000 * 1_000,
            ))
            .collect();
        want.sort_by(|a, b| (&a.1, a.2, &a.0).cmp(&(&b.1, b.2, &b.0)));
        let got_no_trace: Vec<_> = got.iter().map(|g| (g.0.clone(), g.1.clone(), g.2, g.3, g.4, g.5, g.6)).collect();
        prop_assert_eq!(got_no_trace, want);
        // A kept id is the one its entry was written with, and a multiple
        // of `every` always keeps its id.
        let mut ids: std::collections::HashMap<(String, i32, i64, u64), Vec<&str>> =
            std::collections::HashMap::new();
        for e in &owned {
            ids.entry((e.topic.clone(), e.partition, e.offset, e.seq))
                .or_default()
                .push(e.trace_id.as_str());
        }
        for g in &got {
            let own = &ids[&(g.1.clone(), g.2, g.3, g.4)];
            match &g.7 {
                Some(t) => prop_assert!(own.contains(&t.as_str())),
                None => prop_assert!(g.4 % every != 0, "seq {} lost its id", g.4),
            }
        }
    }

    #[test]
    fn no_body_panics_or_yields_more_entries_than_bytes(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut with_version = body.clone();
        with_version.insert(0, 2);
        for b in [&body, &with_version] {
            if let Ok(batch) = binary::decode(b) {
                prop_assert!(batch.len() <= b.len() / 4);
                let mut again = Vec::new();
                batch.encode(&mut again);
                prop_assert_eq!(binary::decode(&again).unwrap(), batch);
            }
        }
    }
}
