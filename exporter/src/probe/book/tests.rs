use super::*;

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_795_813_600 * SEC;
const ME: &str = "exporter-1-probe";

fn book() -> ProbeBook {
    ProbeBook::new(ME, 1_000)
}

fn received(read: Read) -> (Flight, u64) {
    match read {
        Read::Received { flight, latency_ns } => (flight, latency_ns),
        other => panic!("not received: {other:?}"),
    }
}

#[test]
fn a_message_read_back_is_received_once_with_its_round_trip() {
    let mut book = book();
    let seq = book.send(2, 7, T0);
    book.acked(seq, 40);
    let (read, lost) = book.read(2, 40, ME, seq, Some(book.tag(seq, 2)), T0 + 30_000_000);
    let (flight, latency) = received(read);
    assert_eq!(
        (flight.partition, flight.broker, latency),
        (2, 7, 30_000_000)
    );
    assert!(lost.is_empty());
    assert_eq!(book.in_flight(), 0);
    let (again, lost) = book.read(2, 41, ME, seq, Some(book.tag(seq, 2)), T0 + SEC);
    assert_eq!(again, Read::Duplicate);
    assert!(lost.is_empty());
}

#[test]
fn a_message_read_before_its_acknowledgement_is_received_and_the_late_ack_changes_nothing() {
    let mut book = book();
    let seq = book.send(0, 1, T0);
    received(book.read(0, 5, ME, seq, Some(book.tag(seq, 0)), T0 + 1).0);
    book.acked(seq, 5);
    assert_eq!(book.in_flight(), 0);
    assert!(book
        .read(0, 9, ME, 99, Some(book.tag(99, 0)), T0 + 2)
        .1
        .is_empty());
}

#[test]
fn an_acknowledged_message_is_lost_only_once_the_reading_has_passed_its_offset() {
    let mut book = book();
    let first = book.send(1, 3, T0);
    let second = book.send(1, 3, T0 + 1);
    let other = book.send(0, 2, T0 + 2);
    book.acked(first, 10);
    book.acked(second, 11);
    book.acked(other, 10);
    // The reading has not got there: late, not lost, however long it takes.
    book.expire(T0 + 3_600 * SEC);
    assert_eq!(book.in_flight(), 3);
    // Offset 10 of partition 1 holds something else: `first` is gone.
    let (read, lost) = book.read(1, 10, "someone-else", 0, None, T0 + 4_000 * SEC);
    assert_eq!(read, Read::NotOurs);
    assert_eq!(lost.len(), 1);
    assert_eq!(
        (lost[0].partition, lost[0].broker, lost[0].offset),
        (1, 3, Some(10))
    );
    // The other partition's message at the same offset is untouched.
    received(
        book.read(0, 10, ME, other, Some(book.tag(other, 0)), T0 + 4_000 * SEC)
            .0,
    );
    received(
        book.read(
            1,
            11,
            ME,
            second,
            Some(book.tag(second, 1)),
            T0 + 4_000 * SEC,
        )
        .0,
    );
    assert_eq!(book.in_flight(), 0);
}

#[test]
fn a_failed_send_is_never_lost_is_received_if_written_and_is_forgotten_after_a_minute() {
    let mut book = book();
    let written = book.send(0, 1, T0);
    let gone = book.send(0, 1, T0 + 1);
    book.failed(written);
    book.failed(gone);
    let (read, lost) = book.read(0, 100, ME, written, Some(book.tag(written, 0)), T0 + SEC);
    received(read);
    assert!(lost.is_empty());
    book.expire(T0 + FAILED_KEPT_NS - 1);
    assert_eq!(book.in_flight(), 1);
    book.expire(T0 + 1 + FAILED_KEPT_NS);
    assert_eq!(book.in_flight(), 0);
    assert_eq!(book.unjudged(), 1);
    // Written after all, later still: too old to judge, not a duplicate.
    assert_eq!(
        book.read(
            0,
            101,
            ME,
            gone,
            Some(book.tag(gone, 0)),
            T0 + 2 * FAILED_KEPT_NS
        )
        .0,
        Read::Unjudged
    );
}

#[test]
fn forged_or_misrouted_records_move_no_figure() {
    let mut book = book();
    let seq = book.send(4, 1, T0);
    book.acked(seq, 7);
    // Another producer id, a sequence number never handed out, the right
    // number on the wrong partition (with that partition's tag), the right
    // number and partition without the tag or with another one.
    let tag = Some(book.tag(seq, 4));
    let forgeries = [
        (4, "other", seq, tag),
        (4, ME, u64::MAX, Some(book.tag(u64::MAX, 4))),
        (5, ME, seq, Some(book.tag(seq, 5))),
        (4, ME, seq, None),
        (4, ME, seq, tag.map(|t| t ^ 1)),
    ];
    for (partition, producer, forged, tag) in forgeries {
        let (read, lost) = book.read(partition, 3, producer, forged, tag, T0 + SEC);
        assert_eq!(
            read,
            Read::NotOurs,
            "{partition} {producer} {forged} {tag:?}"
        );
        assert!(lost.is_empty());
    }
    // A tag is the key's: another process's books make other tags.
    assert_ne!(ProbeBook::new(ME, 1).tag(seq, 4), book.tag(seq, 4));
    assert_eq!(book.in_flight(), 1);
    received(book.read(4, 7, ME, seq, Some(book.tag(seq, 4)), T0 + SEC).0);
}

#[test]
fn the_books_are_bounded_and_what_falls_out_is_unjudged() {
    let mut book = ProbeBook::new(ME, 3);
    let seqs: Vec<u64> = (0..5).map(|i| book.send(0, 1, T0 + i)).collect();
    for (offset, &seq) in seqs.iter().enumerate() {
        book.acked(seq, offset as i64);
    }
    assert_eq!(book.in_flight(), 3);
    assert_eq!(book.unjudged(), 2);
    assert_eq!(
        book.read(0, 0, ME, seqs[0], Some(book.tag(seqs[0], 0)), T0 + SEC)
            .0,
        Read::Unjudged
    );
    let (read, lost) = book.read(0, 4, ME, seqs[4], Some(book.tag(seqs[4], 0)), T0 + SEC);
    received(read);
    // Offsets 2 and 3 were passed without their messages.
    assert_eq!(
        lost.iter().map(|f| f.offset).collect::<Vec<_>>(),
        [Some(2), Some(3)]
    );
}

/// What the broker does with one probe message.
#[derive(Debug, Clone, Copy)]
enum Fate {
    /// Written once and acknowledged.
    Written,
    /// Acknowledged, then its offset overwritten by another record.
    Overwritten,
    /// Written twice (a retry), acknowledged at the first.
    Twice,
    /// Refused: never written.
    Refused,
    /// Written, but the acknowledgement failed.
    WrittenUnacked,
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn fate() -> impl Strategy<Value = Fate> {
        prop_oneof![
            6 => Just(Fate::Written),
            1 => Just(Fate::Overwritten),
            1 => Just(Fate::Twice),
            1 => Just(Fate::Refused),
            1 => Just(Fate::WrittenUnacked),
        ]
    }

    /// One record of the simulated log: ours with a sequence number, or
    /// somebody else's (forged: our producer id with a number never used,
    /// or another id).
    #[derive(Debug, Clone, Copy)]
    enum Entry {
        Ours(u64),
        Forged(u64),
        Foreign,
    }

    proptest! {
        /// Whatever the broker and other writers do, every figure is
        /// exact: received = distinct messages of ours in the log, lost =
        /// acknowledged messages whose offset holds something else,
        /// duplicated = extra copies, and forged records move none of them.
        #[test]
        fn figures_are_exact_whatever_the_broker_and_other_writers_do(
            sends in prop::collection::vec((0..3i32, fate(), any::<bool>(), 0..3u8), 1..200),
            acks_late in any::<bool>(),
        ) {
            let mut book = ProbeBook::new(ME, 100_000);
            let mut logs: HashMap<i32, Vec<Entry>> = HashMap::new();
            let mut acks = Vec::new();
            let (mut written, mut lost_truth, mut copies) = (0u64, 0u64, 0u64);
            for (i, &(partition, fate, forge, junk)) in sends.iter().enumerate() {
                let seq = book.send(partition, partition + 10, T0 + i as u64);
                let log = logs.entry(partition).or_default();
                let offset = log.len() as i64;
                match fate {
                    Fate::Written => {
                        log.push(Entry::Ours(seq));
                        written += 1;
                        acks.push((seq, Some(offset)));
                    }
                    Fate::Overwritten => {
                        log.push(Entry::Foreign);
                        lost_truth += 1;
                        acks.push((seq, Some(offset)));
                    }
                    Fate::Twice => {
                        log.push(Entry::Ours(seq));
                        log.push(Entry::Ours(seq));
                        written += 1;
                        copies += 1;
                        acks.push((seq, Some(offset)));
                    }
                    Fate::Refused => acks.push((seq, None)),
                    Fate::WrittenUnacked => {
                        log.push(Entry::Ours(seq));
                        written += 1;
                        acks.push((seq, None));
                    }
                }
                for _ in 0..junk {
                    log.push(if forge { Entry::Forged(u64::MAX - u64::from(junk)) } else { Entry::Foreign });
                }
                if !acks_late {
                    for (seq, offset) in acks.drain(..) {
                        match offset {
                            Some(offset) => book.acked(seq, offset),
                            None => book.failed(seq),
                        }
                    }
                }
            }
            for (seq, offset) in acks.drain(..) {
                match offset {
                    Some(offset) => book.acked(seq, offset),
                    None => book.failed(seq),
                }
            }
            let (mut received, mut lost, mut duplicated, mut not_ours) = (0u64, 0u64, 0u64, 0u64);
            let mut partitions: Vec<_> = logs.into_iter().collect();
            partitions.sort_by_key(|(p, _)| *p);
            for (partition, log) in partitions {
                for (offset, entry) in log.into_iter().enumerate() {
                    // Forged: our id, and either a number never used or a
                    // real one without its tag.
                    let (producer, seq, tag) = match entry {
                        Entry::Ours(seq) => (ME, seq, Some(book.tag(seq, partition))),
                        Entry::Forged(seq) if seq % 2 == 0 => (ME, seq, Some(book.tag(seq, partition))),
                        Entry::Forged(seq) => (ME, seq % 7, Some(seq)),
                        Entry::Foreign => ("someone-else", 0, None),
                    };
                    let (read, gone) = book.read(partition, offset as i64, producer, seq, tag, T0 + SEC);
                    lost += gone.len() as u64;
                    assert!(gone.iter().all(|f| f.partition == partition && f.broker == partition + 10));
                    match read {
                        Read::Received { flight, .. } => {
                            prop_assert_eq!(flight.partition, partition);
                            received += 1;
                        }
                        Read::Duplicate => duplicated += 1,
                        Read::NotOurs => not_ours += 1,
                        Read::Unjudged => prop_assert!(false, "nothing was dropped"),
                    }
                }
            }
            prop_assert_eq!(received, written);
            prop_assert_eq!(lost, lost_truth);
            prop_assert_eq!(duplicated, copies);
            prop_assert!(not_ours >= lost_truth);
            prop_assert_eq!(book.unjudged(), 0);
        }
    }
}
