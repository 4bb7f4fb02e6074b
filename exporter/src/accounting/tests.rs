use super::*;
use crate::observation::Latency;
pub(super) use crate::testing::{log_at, receipt_at};
use crate::window::Outcome::*;

mod cases;

use cases::{cases, Step::*, MS, T0};

/// Accounting for group "g" with windows of `bits` sequence numbers.
pub(super) fn with_window(bits: u32) -> Accounting {
    let config = AccountingConfig {
        window_bits: bits,
        ..AccountingConfig::default()
    };
    Accounting::new(&config, ["g"])
}

/// Sweeps as the exporter does when it is caught up: the log read through
/// `now_ns`, and the group committed everything at once, seen the SLA ago.
fn sweep_caught_up(accounting: &mut Accounting, now_ns: u64) -> SweepReport {
    let sla_ns = duration_ns(AccountingConfig::default().sla);
    sweep_judging(accounting, now_ns, now_ns.saturating_sub(sla_ns))
}

/// Sweeps with the log read through `now_ns` and every group's horizon at
/// `processed_ns`.
pub(super) fn sweep_judging(
    accounting: &mut Accounting,
    now_ns: u64,
    processed_ns: u64,
) -> SweepReport {
    let processed_ns = PerGroup::filled(accounting.groups(), Some(processed_ns));
    accounting.set_horizon(&Horizon {
        log_ns: Some(now_ns),
        processed_ns,
    });
    accounting.sweep()
}

#[test]
fn scenarios() {
    for case in cases() {
        let config = AccountingConfig {
            window_bits: case.window_bits,
            max_producers: case.max_producers,
            ..AccountingConfig::default()
        };
        let mut accounting = Accounting::new(&config, ["g"]);
        for (i, step) in case.steps.iter().enumerate() {
            let context = format!("{}: step {i} {step:?}", case.name);
            match *step {
                Log(producer, seq, partition, ms, want) => {
                    let record = LogRecord {
                        producer,
                        seq,
                        partition,
                        created_ns: T0 + ms * MS - 2 * MS,
                        read_ns: T0 + ms * MS,
                        settled: None,
                    };
                    assert_eq!(accounting.observe_log(&record).outcome, want, "{context}");
                }
                Rcpt(group, producer, seq, partition, ms, want) => {
                    let entry = ReceiptEntry {
                        group,
                        producer,
                        seq,
                        partition,
                        created_ns: T0,
                        processed_ns: T0 + ms * MS,
                    };
                    let got = accounting.observe_receipt(&entry, T0 + ms * MS);
                    assert_eq!(got.outcome, want, "{context}");
                }
                Sweep(ms, log_lost, processed_lost, evicted_idle) => {
                    let report = sweep_caught_up(&mut accounting, T0 + ms * MS);
                    let got = (
                        report.log_lost,
                        report.processed_lost.to_vec(),
                        report.evicted_idle,
                    );
                    let want = (log_lost, vec![processed_lost], evicted_idle);
                    assert_eq!(got, want, "{context}");
                }
                Judge(log_ms, processed_ms) => accounting.set_horizon(&Horizon {
                    log_ns: Some(T0 + log_ms * MS),
                    processed_ns: PerGroup::filled(
                        accounting.groups(),
                        Some(T0 + processed_ms * MS),
                    ),
                }),
                Unjudged(want) => {
                    let p = accounting.processed_counters("g").unwrap();
                    assert_eq!(p.unjudged, want, "{context}");
                }
                Totals(log, processed) => {
                    let l = accounting.log_counters();
                    let p = accounting.processed_counters("g").unwrap();
                    assert_eq!((l.messages, l.lost, l.duplicated), log, "{context}");
                    assert_eq!((p.messages, p.lost, p.duplicated), processed, "{context}");
                }
            }
        }
    }
}

#[test]
fn latency_and_clock_skew() {
    let mut accounting = Accounting::new(&AccountingConfig::default(), ["g"]);
    let ms = Duration::from_millis;
    // (seq, created, seen) → latency, at stage log then at stage processed.
    let log_cases = [
        ((0, T0, T0 + 3 * MS), Latency::Measured(ms(3))),
        ((1, T0 + 5 * MS, T0 + 3 * MS), Latency::ClockSkew(ms(2))),
        ((1, T0, T0 + 9 * MS), Latency::NotMeasured),
    ];
    for ((seq, created_ns, read_ns), want) in log_cases {
        let record = LogRecord {
            created_ns,
            read_ns,
            settled: None,
            ..log_at(seq, 0)
        };
        assert_eq!(accounting.observe_log(&record).latency, want, "{record:?}");
    }
    let receipt_cases = [
        ((0, T0, T0 + 40 * MS), Latency::Measured(ms(40))),
        ((1, T0 + MS, T0), Latency::ClockSkew(ms(1))),
        ((0, T0, T0 + 50 * MS), Latency::NotMeasured),
    ];
    let cases = receipt_cases.map(|((seq, created_ns, processed_ns), want)| {
        let entry = ReceiptEntry {
            created_ns,
            processed_ns,
            ..receipt_at(seq, 0)
        };
        (entry, want)
    });
    for (entry, want) in cases {
        assert_eq!(
            accounting.observe_receipt(&entry, T0).latency,
            want,
            "{entry:?}"
        );
    }
    assert_eq!(accounting.log_counters().clock_skew, 1);
    assert_eq!(accounting.processed_counters("g").unwrap().clock_skew, 1);
}

#[test]
fn unwatched_groups_and_long_ids_are_ignored() {
    let mut accounting = Accounting::new(&AccountingConfig::default(), ["g", "g", "h"]);
    assert_eq!(accounting.groups().names().collect::<Vec<_>>(), ["g", "h"]);
    let long = "x".repeat(MAX_PRODUCER_ID_BYTES + 1);
    let entry = |group, producer| ReceiptEntry {
        group,
        producer,
        seq: 0,
        partition: 0,
        created_ns: T0,
        processed_ns: T0,
    };
    assert_eq!(
        accounting.observe_receipt(&entry("other", "p"), T0).outcome,
        Ignored
    );
    assert_eq!(
        accounting.observe_receipt(&entry("h", &long), T0).outcome,
        Ignored
    );
    let record = LogRecord {
        producer: &long,
        seq: 0,
        partition: 0,
        created_ns: T0,
        read_ns: T0,
        settled: None,
    };
    assert_eq!(accounting.observe_log(&record).outcome, Ignored);
    assert_eq!(accounting.unwatched_receipts(), 1);
    assert_eq!(accounting.processed_counters("h").unwrap().ignored, 1);
    assert_eq!(accounting.log_counters().ignored, 1);
    assert_eq!(accounting.producers(), 0);
    assert_eq!(accounting.processed_counters("other"), None);
}

#[test]
fn memory_grows_with_producers_not_traffic() {
    let mut accounting = with_window(4096);
    let ids: Vec<String> = (0..50).map(|i| format!("producer-{i:04}")).collect();
    let missing = |seq: u64, i: usize| (seq + i as u64).is_multiple_of(97);
    let receipted = |seq: u64, i: usize| !missing(seq, i);
    let feed = |accounting: &mut Accounting, seqs: std::ops::Range<u64>| {
        for seq in seqs {
            let now = T0 + seq * MS;
            let partition = (seq % 6) as i32;
            for (i, producer) in ids.iter().enumerate() {
                let record = LogRecord {
                    producer,
                    seq,
                    partition,
                    created_ns: now,
                    read_ns: now,
                    settled: None,
                };
                accounting.observe_log(&record);
                if receipted(seq, i) {
                    let entry = ReceiptEntry {
                        group: "g",
                        producer,
                        seq,
                        partition,
                        created_ns: now,
                        processed_ns: now,
                    };
                    accounting.observe_receipt(&entry, now);
                }
            }
            if seq % 1000 == 0 {
                // The group commits as fast as it reads: every block is
                // judged when the small window slides past it.
                sweep_judging(accounting, now, now);
            }
        }
    };
    feed(&mut accounting, 0..1_000);
    let small = accounting.memory_bytes();
    feed(&mut accounting, 1_000..20_000);
    assert_eq!(accounting.memory_bytes(), small);
    assert_eq!(accounting.producers(), 50);
    sweep_judging(&mut accounting, T0 + 100_000 * MS, T0 + 100_000 * MS);
    // Every missing receipt is lost, except below the group's floor: the
    // highest first receipt over the six partitions.
    let mut want = 0;
    for i in 0..ids.len() {
        let floor = (0..6u64)
            .map(|lane| (0..).map(|k| lane + 6 * k).find(|&seq| receipted(seq, i)))
            .max()
            .flatten()
            .unwrap();
        want += (floor..20_000).filter(|&seq| !receipted(seq, i)).count() as u64;
    }
    assert_eq!(accounting.processed_counters("g").unwrap().lost, want);
    assert_eq!(accounting.log_counters().lost, 0);
}

/// A record of producer "p" at `ms`, with its `mf-settled` mark.
fn marked(seq: u64, ms: u64, settled: Option<u64>) -> LogRecord<'static> {
    LogRecord {
        settled,
        ..log_at(seq, T0 + ms * MS)
    }
}

#[test]
fn a_partition_refusing_writes_is_late_not_lost_when_the_producer_says_so() {
    let mut accounting = with_window(1 << 16);
    // Seq 3 goes to a partition that refuses writes for 60 s; the others
    // take 0..=2 and 4..=99, each stamped with the producer's mark, which
    // stays at 3 while it retries.
    for seq in (0..100).filter(|&s| s != 3) {
        accounting.observe_log(&marked(seq, seq * 10, Some(seq.min(3))));
    }
    for ms in [31_000, 60_000] {
        assert_eq!(sweep_caught_up(&mut accounting, T0 + ms * MS).log_lost, 0);
    }
    // The partition takes it at 61 s; later messages carry a mark past it.
    assert_eq!(
        accounting.observe_log(&marked(3, 61_000, Some(3))).outcome,
        Late
    );
    accounting.observe_log(&marked(100, 61_000, Some(100)));
    assert_eq!(
        sweep_caught_up(&mut accounting, T0 + 200_000 * MS).log_lost,
        0
    );
    assert_eq!(accounting.log_counters().lost, 0);

    // Without the mark (another producer), grace alone judges: the same
    // stall is reported lost after 30 s.
    let mut accounting = with_window(1 << 16);
    for seq in (0..100).filter(|&s| s != 3) {
        accounting.observe_log(&marked(seq, seq * 10, None));
    }
    assert_eq!(
        sweep_caught_up(&mut accounting, T0 + 31_000 * MS).log_lost,
        1
    );
}

#[test]
fn a_gap_the_producer_gave_up_on_is_lost_once_its_mark_passes_it() {
    let mut accounting = with_window(1 << 16);
    for seq in (0..10).filter(|&s| s != 3) {
        accounting.observe_log(&marked(seq, seq, Some(seq.min(3))));
    }
    assert_eq!(
        sweep_caught_up(&mut accounting, T0 + 100_000 * MS).log_lost,
        0
    );
    // Given up (counted failed by the producer): its mark moves on. Seq 10
    // shares the gap's 64-sequence block, whose grace restarts with it.
    accounting.observe_log(&marked(10, 100_000, Some(10)));
    assert_eq!(
        sweep_caught_up(&mut accounting, T0 + 129_999 * MS).log_lost,
        0
    );
    assert_eq!(
        sweep_caught_up(&mut accounting, T0 + 130_000 * MS).log_lost,
        1
    );
    assert_eq!(accounting.log_counters().lost, 1);
}

#[test]
fn a_forged_mark_moves_no_figure() {
    // The real stream: 3 is held back, the producer's mark stays at 3.
    let real = |accounting: &mut Accounting| {
        for seq in (0..50).filter(|&s| s != 3) {
            accounting.observe_log(&marked(seq, seq, Some(seq.min(3))));
        }
    };
    // A forged low mark is below the highest: nothing changes.
    let mut accounting = with_window(1 << 16);
    real(&mut accounting);
    accounting.observe_log(&marked(50, 50, Some(0)));
    assert_eq!(
        sweep_caught_up(&mut accounting, T0 + 100_000 * MS).log_lost,
        0
    );
    // A forged high mark is capped by its own message's seq: a record
    // claiming seq 2 settled "everything below 1,000,000" settles nothing
    // new (2 < 3), and the held-back 3 is still not judged.
    let mut accounting = with_window(1 << 16);
    real(&mut accounting);
    accounting.observe_log(&marked(2, 60, Some(1_000_000)));
    assert_eq!(
        sweep_caught_up(&mut accounting, T0 + 100_000 * MS).log_lost,
        0
    );
    // A mark on a refused record (created too far in the future) is not
    // taken.
    let mut accounting = with_window(1 << 16);
    real(&mut accounting);
    let future = LogRecord {
        created_ns: T0 + 10_000_000 * MS,
        ..marked(60, 60, Some(60))
    };
    assert!(accounting.observe_log(&future).rejected.is_some());
    assert_eq!(
        sweep_caught_up(&mut accounting, T0 + 100_000 * MS).log_lost,
        0
    );
}

#[test]
fn processed_loss_waits_for_the_log_to_be_settled() {
    let mut accounting = with_window(1 << 16);
    for seq in (0..20).filter(|&s| s != 3) {
        accounting.observe_log(&marked(seq, seq, Some(seq.min(3))));
    }
    // The group processed 0..=2 only; the rest waits behind the log's mark.
    for seq in 0..3 {
        accounting.observe_receipt(&receipt_at(seq, T0 + seq * MS), T0 + seq * MS);
    }
    let report = sweep_judging(&mut accounting, T0 + 200_000 * MS, T0 + 200_000 * MS);
    assert_eq!(
        (report.log_lost, report.processed_lost.to_vec()),
        (0, vec![0])
    );
    // 3 arrives and is settled; the group never receipts 4..=20: judged now.
    accounting.observe_log(&marked(3, 200_000, Some(3)));
    accounting.observe_log(&marked(20, 200_000, Some(20)));
    let report = sweep_judging(&mut accounting, T0 + 300_000 * MS, T0 + 300_000 * MS);
    assert_eq!(
        (report.log_lost, report.processed_lost.to_vec()),
        (0, vec![17])
    );
}
