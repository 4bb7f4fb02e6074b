//! Properties of the accounting over generated streams: any interleaving of
//! one producer's messages over partitions (order kept within each, as
//! Kafka keeps it), with arbitrary gaps, duplicates and forged values.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::tests::{log_at, receipt_at, sweep_judging, with_window};
use super::*;
use crate::window::{Outcome, MAX_SEQ};

const MS: u64 = 1_000_000;
const T0: u64 = 1_795_813_600_000 * MS;
const BITS: u32 = 4096;
const PARTITIONS: i32 = 6;

/// A generated stream of one producer.
#[derive(Debug, Clone)]
struct Stream {
    /// Messages sent, in seq order: (seq, partition).
    sent: Vec<(u64, i32)>,
    /// Seqs never written to the log.
    dropped: BTreeSet<u64>,
    /// Seqs written twice.
    doubled: BTreeSet<u64>,
    /// For each read, which partition to take the next message from.
    picks: Vec<usize>,
    /// Forged observations, inserted before the read at this index (never
    /// before the first).
    forged: Vec<(usize, Forgery)>,
}

#[derive(Debug, Clone, Copy)]
enum Forgery {
    /// A sequence number far beyond the window.
    Jump(u64),
    /// `mf-created-ns` far in the past (0) or the future.
    Created(u64),
}

fn stream() -> impl Strategy<Value = Stream> {
    (1u64..1500).prop_flat_map(|n| {
        (
            proptest::collection::vec(0..PARTITIONS, n as usize),
            proptest::collection::btree_set(0..n, 0..(n as usize / 4 + 1)),
            proptest::collection::btree_set(0..n, 0..(n as usize / 8 + 1)),
            proptest::collection::vec(any::<usize>(), 2 * n as usize + 8),
            proptest::collection::vec(
                (
                    // After the first real message: a forgery that comes
                    // first is a producer's first meeting, which no rule
                    // can tell from a real one.
                    1..(2 * n as usize),
                    prop_oneof![
                        (u64::from(BITS) + 2_000..=u64::MAX).prop_map(Forgery::Jump),
                        prop_oneof![Just(0u64), Just(u64::MAX), 0..T0 / 2]
                            .prop_map(Forgery::Created),
                    ],
                ),
                0..40,
            ),
        )
            .prop_map(
                move |(partitions, dropped, doubled, picks, forged)| Stream {
                    sent: (0..n).zip(partitions).collect(),
                    dropped,
                    doubled,
                    picks,
                    forged,
                },
            )
    })
}

/// The log as the exporter reads it: per partition in order, partitions
/// interleaved as `picks` say.
fn reads(stream: &Stream) -> Vec<(u64, i32)> {
    let mut queues: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    for &(seq, partition) in &stream.sent {
        if stream.dropped.contains(&seq) {
            continue;
        }
        let copies = if stream.doubled.contains(&seq) { 2 } else { 1 };
        for _ in 0..copies {
            queues.entry(partition).or_default().push(seq);
        }
    }
    let mut heads: BTreeMap<i32, usize> = BTreeMap::new();
    let mut out = Vec::new();
    let mut picks = stream.picks.iter().cycle();
    loop {
        let open: Vec<i32> = queues
            .iter()
            .filter(|(p, q)| heads.get(p).copied().unwrap_or(0) < q.len())
            .map(|(p, _)| *p)
            .collect();
        if open.is_empty() {
            return out;
        }
        let p = open[picks.next().copied().unwrap_or(0) % open.len()];
        let head = heads.entry(p).or_default();
        out.push((queues[&p][*head], p));
        *head += 1;
    }
}

/// Feeds the stream (with or without its forgeries), judges everything, and
/// returns the log counters.
fn run(stream: &Stream, forge: bool) -> StageCounters {
    let config = AccountingConfig {
        window_bits: BITS,
        ..AccountingConfig::default()
    };
    let mut accounting = Accounting::new(&config, ["g"]);
    let reads = reads(stream);
    let mut now = T0;
    for (index, &(seq, partition)) in reads.iter().enumerate() {
        if forge {
            for (_, forgery) in stream.forged.iter().filter(|(at, _)| *at == index) {
                let (seq, created_ns) = match *forgery {
                    Forgery::Jump(seq) => (seq, now),
                    Forgery::Created(created) => (seq, created),
                };
                let observed = accounting.observe_log(&LogRecord {
                    producer: "p",
                    seq,
                    partition,
                    created_ns,
                    read_ns: now,
                    settled: None,
                });
                assert!(
                    observed.rejected.is_some() || observed.outcome == Outcome::Ignored,
                    "forgery {forgery:?} was taken: {observed:?}"
                );
            }
        }
        now += MS;
        accounting.observe_log(&LogRecord {
            producer: "p",
            seq,
            partition,
            created_ns: now - MS / 2,
            read_ns: now,
            settled: None,
        });
    }
    let end = now + 3_600_000 * MS;
    sweep_judging(&mut accounting, end, end);
    accounting.log_counters()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn lost_plus_seen_is_the_judged_range(stream in stream()) {
        let reads = reads(&stream);
        let counters = run(&stream, false);
        let distinct: BTreeSet<u64> = reads.iter().map(|&(seq, _)| seq).collect();
        prop_assert_eq!(counters.messages, distinct.len() as u64, "each message counted once");
        prop_assert_eq!(counters.duplicated, (reads.len() - distinct.len()) as u64);
        if let Some(&top) = distinct.iter().next_back() {
            // Judging starts at the highest first sequence number of any
            // partition (the lanes' floor) and ends at the newest seen.
            let mut firsts: BTreeMap<i32, u64> = BTreeMap::new();
            for &(seq, partition) in &reads {
                firsts.entry(partition).or_insert(seq);
            }
            let floor = firsts.values().copied().max().unwrap_or(0);
            let seen = distinct.range(floor..).count() as u64;
            prop_assert_eq!(counters.lost + seen, top + 1 - floor, "lost + seen == judged range");
            let truly_lost = stream.dropped.range(floor..=top).count() as u64;
            prop_assert_eq!(counters.lost, truly_lost, "no false loss, no missed loss");
        }
    }

    #[test]
    fn forged_values_move_no_figure(stream in stream()) {
        let honest = run(&stream, false);
        let forged = run(&stream, true);
        let count = stream.forged.iter().filter(|(at, _)| *at < reads(&stream).len()).count() as u64;
        prop_assert_eq!(
            (forged.messages, forged.lost, forged.duplicated, forged.clock_skew),
            (honest.messages, honest.lost, honest.duplicated, honest.clock_skew)
        );
        prop_assert_eq!(forged.rejected + forged.ignored, count);
    }

    #[test]
    fn any_sequence_numbers_are_safe(
        seqs in proptest::collection::vec(
            prop_oneof![any::<u64>(), MAX_SEQ - 100..=MAX_SEQ + 100, 0u64..10_000],
            1..300,
        )
    ) {
        let config = AccountingConfig { window_bits: 64, ..AccountingConfig::default() };
        let mut accounting = Accounting::new(&config, ["g"]);
        let mut now = T0;
        for (i, &seq) in seqs.iter().enumerate() {
            now += MS;
            accounting.observe_log(&LogRecord {
                producer: "p",
                seq,
                partition: (i % 3) as i32,
                created_ns: now,
                read_ns: now,
                settled: None,
            });
            accounting.observe_receipt(&ReceiptEntry {
                group: "g",
                producer: "p",
                seq,
                partition: (i % 3) as i32,
                created_ns: now,
                processed_ns: now,
            }, now);
            sweep_judging(&mut accounting, now, now);
        }
        let log = accounting.log_counters();
        // Only what is at most a window ahead is ever taken, so loss is
        // bounded by a window per accepted observation.
        prop_assert!(log.lost <= seqs.len() as u64 * 64);
        prop_assert_eq!(log.messages + log.duplicated + log.ignored + log.rejected, seqs.len() as u64);
    }
}

#[test]
fn a_receipt_far_beyond_the_log_hides_no_loss() {
    let mut accounting = with_window(1024);
    let entry = receipt_at;
    for seq in 0..10 {
        let now = T0 + seq * MS;
        accounting.observe_log(&log_at(seq, now));
        if seq != 5 {
            accounting.observe_receipt(&entry(seq, now), now);
        }
    }
    let forged = accounting.observe_receipt(&entry(1 << 62, T0), T0 + 20 * MS);
    assert_eq!(forged.rejected, Some(Rejection::SeqJump));
    let end = T0 + 3_600_000 * MS;
    let report = sweep_judging(&mut accounting, end, end);
    assert_eq!(report.processed_lost.to_vec(), [1], "seq 5 is still lost");
    assert_eq!(accounting.processed_counters("g").unwrap().rejected, 1);
}

#[test]
fn receipts_for_sequence_numbers_the_log_never_showed_are_unmatched() {
    let mut accounting = Accounting::new(&AccountingConfig::default(), ["g"]);
    for seq in [0u64, 1, 3] {
        let now = T0 + seq * MS;
        accounting.observe_log(&log_at(seq, now));
    }
    for seq in [0u64, 1, 2, 3] {
        let now = T0 + seq * MS;
        accounting.observe_receipt(&receipt_at(seq, now), now);
    }
    let end = T0 + 3_600_000 * MS;
    let report = sweep_judging(&mut accounting, end, end);
    assert_eq!(report.log_lost, 1, "seq 2 never reached the log");
    assert_eq!(report.processed_lost.to_vec(), [0]);
    assert_eq!(report.receipts_unmatched.to_vec(), [1]);
}

#[test]
fn a_producer_that_truly_jumped_is_rebased_after_a_run() {
    let mut accounting = with_window(1024);
    let mut now = T0;
    let mut observe = |accounting: &mut Accounting, seq: u64| {
        now += MS;
        accounting.observe_log(&LogRecord {
            producer: "p",
            seq,
            partition: 0,
            created_ns: now,
            read_ns: now,
            settled: None,
        })
    };
    observe(&mut accounting, 0);
    let far = 1_000_000;
    for k in 0..u64::from(REBASE_AFTER_JUMPS) - 1 {
        assert_eq!(
            observe(&mut accounting, far + k).rejected,
            Some(Rejection::SeqJump)
        );
    }
    let taken = observe(&mut accounting, far + 1_000);
    assert_eq!((taken.outcome, taken.rejected), (Outcome::New, None));
    assert_eq!(accounting.evictions().rebased, 1);
    let end = now + 3_600_000 * MS;
    assert_eq!(
        sweep_judging(&mut accounting, end, end).log_lost,
        0,
        "nothing judged across the jump"
    );
}

#[test]
fn implausible_times_are_refused_at_both_stages() {
    let mut accounting = Accounting::new(&AccountingConfig::default(), ["g"]);
    let record = |seq, created_ns| LogRecord {
        producer: "p",
        seq,
        partition: 0,
        created_ns,
        read_ns: T0,
        settled: None,
    };
    let day = 24 * 3_600_000 * MS;
    assert_eq!(
        accounting.observe_log(&record(0, 0)).rejected,
        Some(Rejection::CreatedTooOld)
    );
    assert_eq!(
        accounting.observe_log(&record(0, T0 + day)).rejected,
        Some(Rejection::CreatedInFuture)
    );
    assert_eq!(accounting.observe_log(&record(0, T0 - day)).rejected, None);
    let entry = |created_ns, processed_ns| ReceiptEntry {
        group: "g",
        producer: "p",
        seq: 0,
        partition: 0,
        created_ns,
        processed_ns,
    };
    let mut check = |e: ReceiptEntry<'_>, want| {
        assert_eq!(accounting.observe_receipt(&e, T0).rejected, want, "{e:?}");
    };
    check(entry(T0, T0 + day), Some(Rejection::ProcessedInFuture));
    check(entry(0, T0), Some(Rejection::CreatedTooOld));
    check(entry(T0 + day, T0), Some(Rejection::CreatedInFuture));
    check(entry(T0 - MS, T0), None);
    let log = accounting.log_counters();
    assert_eq!((log.messages, log.rejected), (1, 2));
    let processed = accounting.processed_counters("g").unwrap();
    assert_eq!((processed.messages, processed.rejected), (1, 3));
}

#[test]
fn a_flood_of_new_producers_evicts_in_amortised_constant_time() {
    let config = AccountingConfig {
        window_bits: 64,
        max_producers: 1_000,
        ..AccountingConfig::default()
    };
    let mut accounting = Accounting::new(&config, ["g"]);
    for i in 0..20_000u64 {
        let now = T0 + i * MS;
        let id = format!("flood-{i}");
        accounting.observe_log(&LogRecord {
            producer: &id,
            ..log_at(0, now)
        });
    }
    assert_eq!(accounting.producers(), 1_000);
    assert_eq!(accounting.evictions().capacity, 19_000);
    // One pass over the table per sixteenth of it evicted.
    let passes = accounting.eviction_passes;
    assert!(
        passes <= 19_000 / (1_000 / EVICTION_BATCH_DIVISOR as u64) + 2,
        "{passes} passes over the table"
    );
}
