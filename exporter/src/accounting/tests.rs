use super::*;
use crate::observation::Latency;
use crate::window::Outcome::{self, *};

const MS: u64 = 1_000_000;
const T0: u64 = 1_795_813_600_000 * MS;

/// One step of a scenario; times are milliseconds after `T0`.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A message read from the log: producer, seq, partition, read at.
    Log(&'static str, u64, i32, u64, Outcome),
    /// A receipt entry read: group, producer, seq, partition, read at.
    Rcpt(&'static str, &'static str, u64, i32, u64, Outcome),
    /// Sweep at: log lost, processed lost for group "g", idle evictions.
    Sweep(u64, u64, u64, u64),
    /// Cumulative (messages, lost, duplicated) at log and for group "g".
    Totals((u64, u64, u64), (u64, u64, u64)),
    /// Set the horizon: log read through, group "g" judged through (ms).
    Judge(u64, u64),
    /// Cumulative messages of group "g" dropped unjudged.
    Unjudged(u64),
}
use Step::*;

struct Case {
    name: &'static str,
    window_bits: u32,
    max_producers: usize,
    steps: Vec<Step>,
}

fn case(name: &'static str, steps: Vec<Step>) -> Case {
    Case {
        name,
        window_bits: 1024,
        max_producers: 100,
        steps,
    }
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "in order through both stages",
            vec![
                Log("p", 0, 0, 0, New),
                Log("p", 1, 1, 1, New),
                Rcpt("g", "p", 0, 0, 5, New),
                Log("p", 2, 2, 6, New),
                Rcpt("g", "p", 1, 1, 7, New),
                Rcpt("g", "p", 2, 2, 8, New),
                Sweep(100_000, 0, 0, 0),
                Totals((3, 0, 0), (3, 0, 0)),
            ],
        ),
        case(
            "log gap: late within grace, then a gap never filled",
            vec![
                Log("p", 0, 0, 0, New),
                Log("p", 2, 0, 0, New),
                Log("p", 1, 0, 20_000, Late),
                Log("p", 4, 0, 21_000, New),
                Sweep(50_999, 0, 0, 0),
                Sweep(51_000, 1, 0, 0),
                Sweep(90_000, 0, 0, 0),
                Totals((4, 1, 0), (0, 0, 0)),
            ],
        ),
        case(
            "no receipt within the SLA: lost at processed exactly once",
            vec![
                Log("p", 0, 0, 0, New),
                Log("p", 1, 0, 0, New),
                Log("p", 2, 0, 0, New),
                Rcpt("g", "p", 0, 0, 1_000, New),
                Rcpt("g", "p", 2, 0, 1_000, New),
                Sweep(59_999, 0, 0, 0),
                Sweep(60_000, 0, 1, 0),
                Sweep(90_000, 0, 0, 0),
                Rcpt("g", "p", 1, 0, 95_000, Late),
                Sweep(200_000, 0, 0, 0),
                Totals((3, 0, 0), (3, 1, 0)),
            ],
        ),
        case(
            "receipts for messages the log never saw make no loss",
            vec![
                Rcpt("g", "p", 0, 0, 0, New),
                Rcpt("g", "p", 1, 0, 0, New),
                Rcpt("g", "p", 2, 0, 0, New),
                Log("p", 2, 0, 10, New),
                Log("p", 3, 0, 10, New),
                Rcpt("g", "p", 3, 0, 20, New),
                Sweep(200_000, 0, 0, 0),
                Totals((2, 0, 0), (4, 0, 0)),
            ],
        ),
        case(
            "a producer met at processed before the log",
            vec![
                Rcpt("g", "p", 10, 0, 0, New),
                Log("p", 10, 0, 100, New),
                Log("p", 11, 0, 100, New),
                Rcpt("g", "p", 11, 0, 200, New),
                Sweep(200_000, 0, 0, 0),
            ],
        ),
        case(
            "a group that never receipted the producer judges nothing",
            vec![
                Log("p", 0, 0, 0, New),
                Log("p", 1, 0, 0, New),
                Rcpt("h", "p", 0, 0, 0, Ignored),
                Sweep(200_000, 0, 0, 0),
                Totals((2, 0, 0), (0, 0, 0)),
            ],
        ),
        case(
            "the group's first receipt is its floor",
            vec![
                Log("p", 0, 0, 0, New),
                Log("p", 1, 0, 0, New),
                Log("p", 2, 0, 0, New),
                Log("p", 3, 0, 0, New),
                Log("p", 4, 0, 0, New),
                Rcpt("g", "p", 3, 0, 10, New),
                Sweep(200_000, 0, 1, 0),
            ],
        ),
        case(
            "receipt lanes raise the floor; loss above it still counts",
            vec![
                Log("p", 0, 0, 0, New),
                Log("p", 1, 1, 0, New),
                Log("p", 2, 0, 0, New),
                Log("p", 3, 1, 0, New),
                Log("p", 4, 0, 0, New),
                Log("p", 5, 1, 0, New),
                Log("p", 6, 0, 0, New),
                Rcpt("g", "p", 2, 0, 10, New),
                Rcpt("g", "p", 3, 1, 10, New),
                Rcpt("g", "p", 4, 0, 10, New),
                Rcpt("g", "p", 6, 0, 10, New),
                Sweep(200_000, 0, 1, 0),
            ],
        ),
        case(
            "duplicates at both stages",
            vec![
                Log("p", 0, 0, 0, New),
                Log("p", 0, 0, 1, Duplicate),
                Rcpt("g", "p", 0, 0, 2, New),
                Rcpt("g", "p", 0, 3, 3, Duplicate),
                Rcpt("g", "p", 0, 3, 4, Duplicate),
                Totals((1, 0, 1), (1, 0, 2)),
            ],
        ),
        Case {
            name: "the log window sliding: what the horizon does not cover is unjudged",
            window_bits: 128,
            max_producers: 100,
            steps: vec![
                Log("p", 0, 0, 0, New),
                Log("p", 1, 0, 0, New),
                Log("p", 2, 0, 0, New),
                Rcpt("g", "p", 0, 0, 0, New),
                Rcpt("g", "p", 2, 0, 0, New),
                Log("p", 130, 0, 1_000, New),
                // 3..64 slid out unseen; 1 had no receipt, but the group
                // had not committed past it: not judged.
                Sweep(1_000, 61, 0, 0),
                Sweep(31_000, 66, 0, 0),
                Rcpt("g", "p", 130, 0, 32_000, New),
                Sweep(200_000, 0, 0, 0),
                Totals((4, 127, 0), (3, 0, 0)),
                Unjudged(1),
            ],
        },
        Case {
            name: "the log window sliding judges what the horizon covers at once",
            window_bits: 128,
            max_producers: 100,
            steps: vec![
                Log("p", 0, 0, 0, New),
                Log("p", 1, 0, 0, New),
                Log("p", 2, 0, 0, New),
                Rcpt("g", "p", 0, 0, 0, New),
                Rcpt("g", "p", 2, 0, 0, New),
                Judge(0, 500),
                Log("p", 130, 0, 1_000, New),
                Sweep(1_000, 61, 1, 0),
                Totals((4, 61, 0), (2, 1, 0)),
                Unjudged(0),
            ],
        },
        case(
            "a sequence number beyond the window is refused, not a slide",
            vec![
                Log("p", 0, 0, 0, New),
                Log("p", 1 << 62, 0, 1, Ignored),
                Log("p", 1, 0, 2, New),
                Sweep(100_000, 0, 0, 0),
                Totals((2, 0, 0), (0, 0, 0)),
            ],
        ),
        case(
            "an idle producer is forgotten; its unseen tail is no loss",
            vec![
                Log("p", 0, 0, 0, New),
                Log("p", 2, 0, 0, New),
                Rcpt("g", "p", 0, 0, 0, New),
                Rcpt("g", "p", 2, 0, 0, New),
                Sweep(299_999, 1, 0, 0),
                Sweep(300_000, 0, 0, 1),
                Log("p", 9, 0, 400_000, New),
                Log("p", 2, 0, 400_000, Late),
                Sweep(1_000_000, 0, 0, 1),
                Totals((4, 1, 0), (2, 0, 0)),
            ],
        ),
        Case {
            name: "past max_producers the idlest is forgotten",
            window_bits: 1024,
            max_producers: 2,
            steps: vec![
                Log("a", 0, 0, 0, New),
                Log("b", 0, 0, 1, New),
                Log("a", 1, 0, 2, New),
                Log("c", 0, 0, 3, New),
                Log("b", 0, 0, 4, New),
                Log("c", 0, 0, 5, Duplicate),
                Log("a", 1, 0, 6, New),
                Totals((6, 0, 1), (0, 0, 0)),
            ],
        },
    ]
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
    let record = |seq, created_ns, read_ns| LogRecord {
        producer: "p",
        seq,
        partition: 0,
        created_ns,
        read_ns,
    };
    let cases = [
        (
            record(0, T0, T0 + 3 * MS),
            Latency::Measured(Duration::from_millis(3)),
        ),
        (
            record(1, T0 + 5 * MS, T0 + 3 * MS),
            Latency::ClockSkew(Duration::from_millis(2)),
        ),
        (record(1, T0, T0 + 9 * MS), Latency::NotMeasured),
    ];
    for (record, want) in cases {
        assert_eq!(accounting.observe_log(&record).latency, want, "{record:?}");
    }
    let entry = |seq, created_ns, processed_ns| ReceiptEntry {
        group: "g",
        producer: "p",
        seq,
        partition: 0,
        created_ns,
        processed_ns,
    };
    let cases = [
        (
            entry(0, T0, T0 + 40 * MS),
            Latency::Measured(Duration::from_millis(40)),
        ),
        (
            entry(1, T0 + MS, T0),
            Latency::ClockSkew(Duration::from_millis(1)),
        ),
        (entry(0, T0, T0 + 50 * MS), Latency::NotMeasured),
    ];
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
    let config = AccountingConfig {
        window_bits: 4096,
        ..AccountingConfig::default()
    };
    let mut accounting = Accounting::new(&config, ["g"]);
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
