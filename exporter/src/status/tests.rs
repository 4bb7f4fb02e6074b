use super::*;
use std::time::Duration;
use GroupStatus::*;

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_795_813_600 * SEC;

/// A sample at `t` seconds with a committed offset and a lag in messages.
fn sample(t: u64, committed: Option<i64>, messages: u64) -> LagSample {
    let position = committed.unwrap_or(0);
    LagSample {
        at_ns: T0 + t * SEC,
        committed,
        position,
        high: position + messages as i64,
        messages,
        seconds: Duration::from_secs(messages / 10),
        clock_skew: false,
        seconds_lower_bound: false,
    }
}

/// Samples every 5 s from `from` to `to` seconds, from a function of the index.
fn every_5s(from: u64, to: u64, f: impl Fn(u64) -> (Option<i64>, u64)) -> Vec<LagSample> {
    (0..)
        .map(|i| from + 5 * i)
        .take_while(|&t| t <= to)
        .enumerate()
        .map(|(i, t)| {
            let (committed, messages) = f(i as u64);
            sample(t, committed, messages)
        })
        .collect()
}

enum Event {
    Samples(i32, Vec<LagSample>),
    PartitionError(i32, u64),
    Failure(u64),
}
use Event::*;

fn run(events: Vec<Event>, now: u64) -> Evaluation {
    let mut tracker = GroupStatusTracker::new(StatusConfig::default());
    for event in events {
        match event {
            Samples(partition, samples) => {
                for s in samples {
                    tracker.record_sample(partition, s);
                }
            }
            PartitionError(partition, t) => {
                let error = Error::MissingTimestamp { offset: 7 };
                tracker.record(partition, T0 + t * SEC, Result::Err(error));
            }
            Failure(t) => tracker.record_failure(T0 + t * SEC, "group unknown"),
        }
    }
    tracker.evaluate(T0 + now * SEC)
}

#[test]
fn rules() {
    let moving = |i: u64| Some(1000 + 50 * i as i64);
    type Case = (&'static str, Vec<Event>, u64, GroupStatus, Option<i32>);
    let cases: Vec<Case> = vec![
        ("nothing recorded", vec![], 0, Err, None),
        (
            "healthy, noisy lag",
            vec![Samples(
                0,
                every_5s(0, 300, |i| (moving(i), 20 + (i * 7) % 30)),
            )],
            300,
            Ok,
            None,
        ),
        (
            "STOP: committed offset unchanged with lag for stop_after",
            vec![Samples(0, every_5s(0, 300, |i| (Some(10), 50 + i)))],
            300,
            Stop,
            Some(0),
        ),
        (
            "not yet STOP just before stop_after",
            vec![Samples(0, every_5s(0, 295, |i| (Some(10), 50 + i)))],
            295,
            Ok,
            None,
        ),
        (
            "STOP: a group that never committed",
            vec![Samples(0, every_5s(0, 300, |_| (None, 70)))],
            300,
            Stop,
            Some(0),
        ),
        (
            "lag 0 restarts the STOP clock",
            vec![Samples(
                0,
                every_5s(0, 300, |i| (Some(10), if i == 20 { 0 } else { 5 })),
            )],
            300,
            Ok,
            None,
        ),
        (
            "caught up is always OK",
            vec![Samples(
                0,
                every_5s(0, 400, |i| (Some(10), if i == 80 { 0 } else { 500 })),
            )],
            400,
            Ok,
            None,
        ),
        (
            "STALL: committing, lag never decreasing, above the threshold",
            vec![Samples(
                0,
                every_5s(0, 300, |i| (moving(i), 100 + 3 * (i / 2))),
            )],
            300,
            Stall,
            Some(0),
        ),
        (
            "no STALL below the threshold",
            vec![Samples(0, every_5s(0, 300, |i| (moving(i), 10 + i / 2)))],
            300,
            Ok,
            None,
        ),
        (
            "WARN: committing, lag trending up with ups and downs",
            vec![Samples(
                0,
                every_5s(0, 300, |i| (moving(i), 200 + 4 * i - 30 * (i % 2))),
            )],
            300,
            Warn,
            Some(0),
        ),
        (
            "too few samples for a trend",
            vec![Samples(0, every_5s(0, 40, |i| (moving(i), 100 + 100 * i)))],
            40,
            Ok,
            None,
        ),
        (
            "worst partition decides",
            vec![
                Samples(0, every_5s(0, 300, |i| (moving(i), 20 + (i * 7) % 30))),
                Samples(
                    3,
                    every_5s(0, 300, |i| (moving(i), 200 + 4 * i - 30 * (i % 2))),
                ),
            ],
            300,
            Warn,
            Some(3),
        ),
        (
            "ERR: offsets could not be read",
            vec![
                Samples(0, every_5s(0, 300, |i| (moving(i), 20))),
                Failure(305),
            ],
            305,
            Err,
            None,
        ),
        (
            "a later sample clears the failure",
            vec![
                Failure(0),
                Samples(0, every_5s(5, 300, |i| (moving(i), 20))),
            ],
            300,
            Ok,
            None,
        ),
        (
            "ERR: a partition's sample failed",
            vec![
                Samples(0, every_5s(0, 300, |i| (moving(i), 20))),
                PartitionError(1, 300),
            ],
            300,
            Err,
            Some(1),
        ),
        (
            "STOP outranks ERR",
            vec![
                Samples(0, every_5s(0, 300, |_| (Some(10), 20))),
                PartitionError(1, 300),
            ],
            300,
            Stop,
            Some(0),
        ),
        (
            "REWIND: the committed offset moved back (an offset reset)",
            vec![Samples(
                0,
                every_5s(0, 100, |i| {
                    (Some(if i == 10 { 400 } else { 1000 + i as i64 }), 20)
                }),
            )],
            100,
            Rewind,
            Some(0),
        ),
        (
            "REWIND outranks OK and WARN, not ERR or STOP",
            vec![
                Samples(
                    0,
                    every_5s(0, 300, |i| (Some(if i < 3 { 900 } else { 100 }), 10)),
                ),
                Samples(1, every_5s(0, 300, |i| (Some(10), 50 + i))),
            ],
            300,
            Stop,
            Some(1),
        ),
        (
            "a rewind worked off (caught up since) is OK, even behind again",
            vec![Samples(
                0,
                every_5s(0, 100, |i| match i {
                    0..=4 => (Some(1000 + i as i64), 20),
                    5 => (Some(400), 600),
                    6..=9 => (Some(900 + 100 * i as i64), 0),
                    _ => (Some(2000 + i as i64), 20),
                }),
            )],
            100,
            Ok,
            None,
        ),
        (
            "a rewind that left the window is forgotten",
            vec![Samples(
                0,
                every_5s(0, 700, |i| {
                    (Some(if i == 2 { 5 } else { 1000 + i as i64 }), 0)
                }),
            )],
            700,
            Ok,
            None,
        ),
        (
            "ERR: no sample for a whole window",
            vec![Samples(0, every_5s(0, 100, |i| (moving(i), 20)))],
            401,
            Err,
            None,
        ),
    ];
    for (name, events, now, status, partition) in cases {
        let got = run(events, now);
        assert_eq!(
            (got.status, got.partition),
            (status, partition),
            "{name}: {got:?}"
        );
    }
}

#[test]
fn samples_outside_the_window_are_forgotten() {
    let mut tracker = GroupStatusTracker::new(StatusConfig::default());
    // A long STALL-like climb, then a dip 10 minutes ago: the dip has left
    // the window, so the climb since is judged alone.
    for s in every_5s(0, 900, |i| {
        let messages = if i == 60 { 150 } else { 200 + i };
        (Some(1000 + i as i64), messages)
    }) {
        tracker.record_sample(0, s);
    }
    assert_eq!(tracker.evaluate(T0 + 900 * SEC).status, Stall);
    assert_eq!(tracker.partitions[&0].samples.len(), 61);
}

#[test]
fn older_samples_are_dropped() {
    let mut tracker = GroupStatusTracker::new(StatusConfig::default());
    tracker.record_sample(0, sample(10, Some(5), 3));
    tracker.record_sample(0, sample(5, Some(4), 9));
    assert_eq!(tracker.partitions[&0].samples.len(), 1);
}

#[test]
fn names_follow_the_contract() {
    let names = GroupStatus::ALL.map(GroupStatus::as_str);
    assert_eq!(names, ["OK", "WARN", "STALL", "STOP", "ERR", "REWIND"]);
    for status in GroupStatus::ALL {
        assert!(STATUS_RULES.contains(status.as_str()), "{status:?}");
    }
    // Burrow's numbers, for alerts written against Burrow.
    let codes = GroupStatus::ALL.map(GroupStatus::code);
    assert_eq!(codes, [1, 2, 5, 4, 3, 6]);
}

#[test]
fn the_exporter_doc_publishes_these_rules() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/exporter.md");
    let readme = std::fs::read_to_string(&path).expect("docs/exporter.md in the workspace");
    assert!(
        readme.contains(STATUS_RULES),
        "the status rules in docs/exporter.md differ from STATUS_RULES"
    );
}
