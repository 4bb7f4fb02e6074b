//! The at-least-once rules, one scenario each.

use std::time::{Duration, Instant};

use meshflow_common::receipt::{decode, Format, ReceiptEntry};

use super::*;

/// The span slot carries a label so a test can see which items landed.
type TestLedger = Ledger<&'static str>;

fn ledger(batch_max: usize) -> TestLedger {
    Ledger::new("g".into(), "consumer-1".into(), shape(batch_max, 1_000_000))
}

/// Records in the default format, of at most `batch_max` entries and
/// `bytes_max` bytes.
fn shape(batch_max: usize, bytes_max: usize) -> Shape {
    Shape {
        format: Format::default(),
        batch_max,
        bytes_max,
        trace_every: 64,
    }
}

fn receipt(producer: &str, partition: i32, offset: i64) -> ReceiptEntry {
    ReceiptEntry {
        producer: producer.into(),
        seq: offset as u64,
        created_ns: 1,
        topic: "events".into(),
        partition,
        offset,
        processed_ns: 2,
        trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
    }
}

/// Settles a processed, enveloped message.
fn process(l: &mut TestLedger, producer: &str, partition: i32, offset: i64) -> Step {
    let outcome = Outcome::Processed(Some(receipt(producer, partition, offset)));
    l.settle("events".into(), partition, offset, outcome, None)
}

fn flight(l: &mut TestLedger) -> Flight {
    match l.begin() {
        Begin::Flight(f) => f,
        other => panic!("expected a flight, got {other:?}"),
    }
}

/// A ledger whose first flight, out now, carries one message of
/// `producer-a` at partition 0, `offset`.
fn one_out_on_a_flight(offset: i64) -> (TestLedger, Flight) {
    let mut l = ledger(500);
    process(&mut l, "producer-a", 0, offset);
    let f = flight(&mut l);
    (l, f)
}

fn ack_all(f: &mut Flight) {
    let all: Vec<usize> = f.unacked().map(|(i, _)| i).collect();
    for i in all {
        f.acknowledge(i);
    }
}

fn stored(landing: Landing<&'static str>) -> Vec<(i32, i64)> {
    match landing {
        Landing::Stored { offsets, .. } => offsets.iter().map(|o| (o.partition, o.next)).collect(),
        Landing::Returned { waiting } => panic!("returned with {waiting} waiting"),
    }
}

/// (partition, offset) of every entry in the flight's records, in order.
fn sent(f: &Flight) -> Vec<(i32, i64)> {
    f.unacked()
        .flat_map(|(_, r)| {
            let header = r.format.header_value().as_bytes();
            let decoded = decode(Some(header), &r.body).expect("decodes");
            let mut entries = Vec::new();
            decoded.for_each_entry(|e| entries.push((e.partition, e.offset)));
            entries
        })
        .collect()
}

#[test]
fn offsets_are_stored_only_once_every_record_is_acknowledged_in_any_order() {
    let mut l = ledger(500);
    // Three producers' messages interleaved over three partitions.
    for (producer, partition, offset) in [
        ("producer-a", 0, 10),
        ("producer-b", 1, 3),
        ("producer-c", 2, 7),
        ("producer-a", 1, 4),
        ("producer-b", 0, 11),
        ("producer-c", 2, 8),
    ] {
        assert_eq!(process(&mut l, producer, partition, offset), Step::Continue);
    }
    let mut f = flight(&mut l);
    assert_eq!(f.unacked().count(), 3, "one record per producer");
    // Acknowledgements arrive last record first; one is still missing.
    f.acknowledge(2);
    f.acknowledge(0);
    assert!(!f.is_acknowledged());
    match l.land(f) {
        Landing::Returned { waiting } => assert_eq!(waiting, 6),
        Landing::Stored { offsets, .. } => {
            panic!("stored {offsets:?} with a receipt unacknowledged")
        }
    }
    // The retry resends everything; acknowledged in another order, all land.
    let mut f = flight(&mut l);
    for i in [1, 2, 0] {
        f.acknowledge(i);
    }
    assert_eq!(stored(l.land(f)), [(0, 12), (1, 5), (2, 9)]);
    assert!(matches!(l.begin(), Begin::Empty));
}

#[test]
fn a_revoke_waits_for_the_flight_in_progress_and_then_flushes_everything() {
    let (mut l, periodic) = one_out_on_a_flight(10);
    // Consumed while the periodic flush is out.
    process(&mut l, "producer-a", 0, 11);
    process(&mut l, "producer-b", 1, 3);
    assert_eq!(l.waiting(), 2);
    assert!(matches!(l.begin(), Begin::Busy), "flights are serialised");
    // The periodic flush fails; its items go back ahead of the later ones.
    assert!(matches!(l.land(periodic), Landing::Returned { waiting: 3 }));
    let mut revoke = flight(&mut l);
    assert_eq!(sent(&revoke), [(0, 10), (0, 11), (1, 3)]);
    ack_all(&mut revoke);
    assert_eq!(stored(l.land(revoke)), [(0, 12), (1, 4)]);

    let done = Flushed::Done {
        items: 3,
        entries: 3,
    };
    assert_eq!(
        on_revoke(done, false),
        RevokePlan {
            commit: true,
            outstanding: false
        }
    );
    assert_eq!(
        on_revoke(Flushed::GaveUp, false),
        RevokePlan {
            commit: true,
            outstanding: true
        },
        "what landed is committed; the rest is processed again by the next owner"
    );
    assert!(
        !on_revoke(done, true).commit,
        "a lost assignment commits nothing"
    );
}

#[test]
fn shutdown_with_a_half_sent_batch_stores_nothing_and_keeps_every_item() {
    let mut l = ledger(2);
    for offset in 0..5 {
        process(&mut l, "producer-a", 0, offset);
    }
    let mut f = flight(&mut l);
    assert_eq!(f.unacked().count(), 3, "records of 2, 2 and 1 entries");
    f.acknowledge(0);
    f.acknowledge(1);
    let now = Instant::now();
    let mut backoff = Backoff::default();
    assert_eq!(
        backoff.after_failure(now, None, true),
        Retry::GiveUp,
        "the periodic flush, stopping"
    );
    assert!(matches!(l.land(f), Landing::Returned { waiting: 5 }));
    // A later flush sends all five again: duplicates, never a loss.
    let f = flight(&mut l);
    assert_eq!(sent(&f), (0..5).map(|o| (0, o)).collect::<Vec<_>>());
}

#[test]
fn a_drain_retries_until_its_deadline_although_the_consumer_stops() {
    // SIGTERM arrives while a flush is failing: the periodic flush gives up
    // at once, and the drain that follows retries until drain_timeout.
    let now = Instant::now();
    let end = now + Duration::from_secs(10);
    let deadline = Some(end);
    let mut periodic = Backoff::default();
    assert_eq!(periodic.after_failure(now, None, true), Retry::GiveUp);
    let mut drain = Backoff::default();
    let mut at = now;
    let mut waits = Vec::new();
    while let Retry::After(wait) = drain.after_failure(at, deadline, true) {
        waits.push(wait.as_millis());
        at += wait;
    }
    assert_eq!(waits, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
    assert!(
        at + Duration::from_secs(2) >= end,
        "gave up early, at {:?}",
        at - now
    );
    assert!(gives_up(deadline, now + Duration::from_secs(10), true));
    assert!(!gives_up(deadline, now, true));
    assert!(gives_up(None, now, true));
    assert!(!gives_up(None, now, false));
}

#[test]
fn an_abandoned_flight_frees_the_ledger_and_keeps_its_items_first() {
    let (mut l, _lost) = one_out_on_a_flight(1);
    process(&mut l, "producer-a", 0, 2);
    l.abandon();
    let mut f = flight(&mut l);
    assert_eq!(sent(&f), [(0, 1), (0, 2)]);
    ack_all(&mut f);
    assert_eq!(stored(l.land(f)), [(0, 3)]);
}

#[test]
fn retries_back_off_up_to_two_seconds_and_stop_before_the_deadline() {
    let now = Instant::now();
    let mut backoff = Backoff::default();
    let waits: Vec<Retry> = (0..7)
        .map(|_| backoff.after_failure(now, None, false))
        .collect();
    let ms = |m| Retry::After(Duration::from_millis(m));
    assert_eq!(
        waits,
        [
            ms(100),
            ms(200),
            ms(400),
            ms(800),
            ms(1600),
            ms(2000),
            ms(2000)
        ]
    );

    let mut backoff = Backoff::default();
    let deadline = Some(now + Duration::from_millis(250));
    assert_eq!(backoff.after_failure(now, deadline, false), ms(100));
    assert_eq!(
        backoff.after_failure(now + Duration::from_millis(100), deadline, false),
        Retry::GiveUp,
        "a 200 ms wait would reach the deadline"
    );
    assert!(past(deadline, now + Duration::from_millis(250)));
    assert!(!past(None, now));
}

#[test]
fn a_message_neither_receipted_nor_dead_lettered_never_has_its_offset_stored() {
    let mut l = ledger(500);
    process(&mut l, "producer-a", 0, 10);
    let failed = l.settle("events".into(), 0, 11, Outcome::DeadLetterFailed, None);
    assert_eq!(failed, Step::Stop, "the consumer stops taking messages");
    // Even a later message of that partition, had one been taken, cannot
    // move its offset past the held one; other partitions move on.
    process(&mut l, "producer-a", 0, 12);
    process(&mut l, "producer-a", 1, 40);
    let mut f = flight(&mut l);
    assert_eq!(
        sent(&f),
        [(0, 10), (0, 12), (1, 40)],
        "no receipt for the held message"
    );
    ack_all(&mut f);
    assert_eq!(
        stored(l.land(f)),
        [(0, 11), (1, 41)],
        "partition 0 resumes at the held message"
    );
}

#[test]
fn a_refused_dead_letter_parks_its_partition_only_until_it_is_revoked() {
    let mut l = ledger(500);
    process(&mut l, "producer-a", 0, 10);
    let refused = l.settle("events".into(), 0, 11, Outcome::DeadLetterRefused, None);
    assert_eq!(refused, Step::Park, "only this partition stops");
    assert_eq!(l.held(), 1);
    // A message of that partition fetched before the pause is not taken;
    // the held one and the other partitions are.
    assert!(l.is_held("events", 0, 12));
    assert!(!l.is_held("events", 0, 11));
    assert!(!l.is_held("events", 1, 12));
    assert!(!l.is_held("other", 0, 12));
    process(&mut l, "producer-a", 1, 40);
    let mut f = flight(&mut l);
    ack_all(&mut f);
    assert_eq!(
        stored(l.land(f)),
        [(0, 11), (1, 41)],
        "partition 0 resumes at the refused message, partition 1 moves on"
    );
    // Revoked: its next owner reads the message again, and nothing is held.
    assert_eq!(l.release(&[("events".to_string(), 1)]), 1);
    assert_eq!(l.release(&[("events".to_string(), 0)]), 0);
    assert!(!l.is_held("events", 0, 12));
    process(&mut l, "producer-a", 0, 11);
    let mut f = flight(&mut l);
    ack_all(&mut f);
    assert_eq!(stored(l.land(f)), [(0, 12)]);
}

#[test]
fn dead_lettered_and_unenveloped_messages_advance_offsets_without_receipts() {
    let mut l = ledger(500);
    l.settle("events".into(), 3, 5, Outcome::DeadLettered, None);
    l.settle("events".into(), 3, 6, Outcome::Processed(None), None);
    let f = flight(&mut l);
    assert_eq!(f.unacked().count(), 0, "nothing to publish");
    assert!(f.is_acknowledged());
    match l.land(f) {
        Landing::Stored {
            offsets,
            items,
            entries,
        } => {
            assert_eq!(
                offsets,
                [StoreOffset {
                    topic: "events".into(),
                    partition: 3,
                    next: 7
                }]
            );
            assert_eq!((items.len(), entries), (2, 0));
        }
        Landing::Returned { .. } => panic!("nothing was sent, nothing can fail"),
    }
}

#[test]
fn landed_items_come_back_with_their_spans_to_be_ended() {
    let mut l = ledger(500);
    let outcome = Outcome::Processed(Some(receipt("producer-a", 0, 1)));
    l.settle("events".into(), 0, 1, outcome, Some("send span"));
    let mut f = flight(&mut l);
    ack_all(&mut f);
    match l.land(f) {
        Landing::Stored { items, entries, .. } => {
            assert_eq!(entries, 1);
            assert_eq!(items[0].span, Some("send span"));
        }
        Landing::Returned { .. } => panic!("acknowledged"),
    }
}

#[test]
fn a_flight_is_bounded_by_encoded_bytes() {
    let max = 2_000;
    let mut l: TestLedger = Ledger::new("g".into(), "consumer-1".into(), shape(500, max));
    for offset in 0..100 {
        process(&mut l, "producer-a", 0, offset);
    }
    let f = flight(&mut l);
    assert!(
        f.unacked().count() > 1,
        "100 entries do not fit in {max} bytes"
    );
    for (_, r) in f.unacked() {
        assert!(
            r.body.len() <= max,
            "a record of {} bytes exceeds {max}",
            r.body.len()
        );
    }
    assert_eq!(f.entries(), 100);
    assert_eq!(sent(&f), (0..100).map(|o| (0, o)).collect::<Vec<_>>());
}

#[test]
fn the_loop_flushes_at_a_full_batch_and_pauses_at_twenty() {
    assert_eq!(pressure(499, 500), Pressure::Take);
    assert_eq!(pressure(500, 500), Pressure::FlushNow);
    assert_eq!(pressure(9_999, 500), Pressure::FlushNow);
    assert_eq!(pressure(10_000, 500), Pressure::Pause);
}

#[test]
fn each_record_names_the_spans_of_the_messages_it_reports_on() {
    let mut l = ledger(2);
    let items = [
        ("producer-a", 0, 10, "a10"),
        ("producer-b", 0, 11, "b11"),
        ("producer-a", 1, 3, "a3"),
        ("producer-a", 1, 4, "a4"),
    ];
    for (producer, partition, offset, span) in items {
        let outcome = Outcome::Processed(Some(receipt(producer, partition, offset)));
        l.settle("events".into(), partition, offset, outcome, Some(span));
    }
    // A dead-lettered message has a span but no receipt: no record names it.
    l.settle("events".into(), 2, 0, Outcome::DeadLettered, Some("dead"));
    let f = flight(&mut l);
    let spans: Vec<Vec<&str>> = f.unacked().map(|(_, r)| l.spans_of(r)).collect();
    assert_eq!(spans, [vec!["a10", "a3"], vec!["a4"], vec!["b11"]]);
}
