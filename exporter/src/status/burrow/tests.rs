//! Burrow's evaluator on the sequences its own rule tests use
//! (`core/internal/evaluator/caching_test.go`, cases 0 to 15): each rule's
//! answer and the partition status, then the group roll-up and the
//! history the exporter keeps.

use super::*;
use BurrowStatus::*;

/// A commit: offset, time in ms, lag (`None`: unknown).
fn c(offset: i64, at_ms: i64, lag: Option<u64>) -> Commit {
    Commit { offset, at_ms, lag }
}

/// Five commits 100 s apart from t = 100 s, offsets and lags given.
fn five(offsets: [i64; 5], lags: [u64; 5]) -> Vec<Commit> {
    (0..5)
        .map(|i| c(offsets[i], 100_000 * (i as i64 + 1), Some(lags[i])))
        .collect()
}

/// Fifteen commits about a second apart with no lag (Burrow's #290 and
/// #303 sequences).
fn fifteen_caught_up() -> Vec<Commit> {
    let at = [
        1512224618356,
        1512224619362,
        1512224620366,
        1512224621367,
        1512224622370,
        1512224623373,
        1512224624378,
        1512224625379,
        1512224626383,
        1512224627383,
        1512224628383,
        1512224629388,
        1512224630391,
        1512224631394,
        1512224632397,
    ];
    (0..15)
        .map(|i| c(792748079 + i as i64, at[i], Some(0)))
        .collect()
}

struct Case {
    commits: Vec<Commit>,
    highs: Vec<i64>,
    current_lag: u64,
    /// Burrow's timeNow, in seconds.
    now_s: i64,
    allowed: u64,
    always_above: bool,
    rewind: Option<usize>,
    stopped: bool,
    stalled: bool,
    not_decreasing: bool,
    recent_zero: bool,
    status: BurrowStatus,
}

fn cases() -> Vec<Case> {
    let rising = [1000, 2000, 3000, 4000, 5000];
    let rewound = [1000, 2000, 3000, 2000, 4000];
    let stuck = [1000; 5];
    vec![
        // 0: lag 0 at the first commit: OK.
        Case {
            commits: five(rising, [0, 50, 100, 150, 200]),
            highs: vec![5200],
            current_lag: 200,
            now_s: 600,
            allowed: 0,
            always_above: false,
            rewind: None,
            stopped: false,
            stalled: false,
            not_decreasing: true,
            recent_zero: false,
            status: Ok,
        },
        // 1: 400 s since the last commit equals the 400 s the window spans: not stopped.
        Case {
            commits: five(rising, [0, 50, 100, 150, 200]),
            highs: vec![5200],
            current_lag: 200,
            now_s: 900,
            allowed: 0,
            always_above: false,
            rewind: None,
            stopped: false,
            stalled: false,
            not_decreasing: true,
            recent_zero: false,
            status: Ok,
        },
        // 2: 500 s since: STOP, though lag was 0 at the start.
        Case {
            commits: five(rising, [0, 50, 100, 150, 200]),
            highs: vec![5200],
            current_lag: 200,
            now_s: 1000,
            allowed: 0,
            always_above: false,
            rewind: None,
            stopped: true,
            stalled: false,
            not_decreasing: true,
            recent_zero: false,
            status: Stop,
        },
        // 3: STOP with lag throughout.
        Case {
            commits: five(rising, [50, 100, 150, 200, 250]),
            highs: vec![5250],
            current_lag: 250,
            now_s: 1000,
            allowed: 0,
            always_above: true,
            rewind: None,
            stopped: true,
            stalled: false,
            not_decreasing: true,
            recent_zero: false,
            status: Stop,
        },
        // 4: the same offset throughout, but lag 0 at the start: OK.
        Case {
            commits: five(stuck, [0, 50, 100, 150, 200]),
            highs: vec![1200],
            current_lag: 200,
            now_s: 600,
            allowed: 0,
            always_above: false,
            rewind: None,
            stopped: false,
            stalled: true,
            not_decreasing: true,
            recent_zero: false,
            status: Ok,
        },
        // 5: the same offset with lag throughout: STALL.
        Case {
            commits: five(stuck, [100, 150, 200, 250, 300]),
            highs: vec![1300],
            current_lag: 300,
            now_s: 600,
            allowed: 0,
            always_above: true,
            rewind: None,
            stopped: false,
            stalled: true,
            not_decreasing: true,
            recent_zero: false,
            status: Stall,
        },
        // 6: STALL with a constant lag too.
        Case {
            commits: five(stuck, [100; 5]),
            highs: vec![1100],
            current_lag: 100,
            now_s: 600,
            allowed: 0,
            always_above: true,
            rewind: None,
            stopped: false,
            stalled: true,
            not_decreasing: true,
            recent_zero: false,
            status: Stall,
        },
        // 7: a rewind made good within the window, and the lag decreased: OK.
        Case {
            commits: five(rewound, [100, 150, 200, 1250, 300]),
            highs: vec![4300],
            current_lag: 300,
            now_s: 600,
            allowed: 0,
            always_above: true,
            rewind: Some(3),
            stopped: false,
            stalled: false,
            not_decreasing: false,
            recent_zero: false,
            status: Ok,
        },
        // 8: current lag 0: OK, whatever the rest says.
        Case {
            commits: five(rising, [50, 100, 150, 200, 250]),
            highs: vec![5250],
            current_lag: 0,
            now_s: 1000,
            allowed: 0,
            always_above: true,
            rewind: None,
            stopped: true,
            stalled: false,
            not_decreasing: true,
            recent_zero: false,
            status: Ok,
        },
        // 9: caught up at every commit, then new data and no commit: STOP.
        Case {
            commits: fifteen_caught_up(),
            highs: vec![792749024, 792749000, 792748800, 792748600, 792748500],
            current_lag: 931,
            now_s: 1512224650,
            allowed: 0,
            always_above: false,
            rewind: None,
            stopped: true,
            stalled: false,
            not_decreasing: true,
            recent_zero: false,
            status: Stop,
        },
        // 10: as 9, but a recent high watermark equals the last commit: OK.
        Case {
            commits: fifteen_caught_up(),
            highs: vec![792748094, 792748093, 792748093, 792748093],
            current_lag: 1,
            now_s: 1512224650,
            allowed: 0,
            always_above: false,
            rewind: None,
            stopped: true,
            stalled: false,
            not_decreasing: true,
            recent_zero: true,
            status: Ok,
        },
        // 11: case 0 with commits of unknown lag between: the same answers.
        Case {
            commits: (0..10)
                .map(|i| {
                    let lag = (i % 2 == 0).then_some(50 * (i as u64 / 2));
                    c(1000 + 500 * i as i64, 100_000 + 50_000 * i as i64, lag)
                })
                .collect(),
            highs: vec![5700],
            current_lag: 200,
            now_s: 600,
            allowed: 0,
            always_above: false,
            rewind: None,
            stopped: false,
            stalled: false,
            not_decreasing: true,
            recent_zero: false,
            status: Ok,
        },
        // 12: lag 1 is within the allowed lag of 1: OK although stopped.
        Case {
            commits: vec![
                c(1000, 100_000, Some(2)),
                c(2000, 200_000, Some(1)),
                c(2000, 300_000, Some(1)),
            ],
            highs: vec![2001],
            current_lag: 1,
            now_s: 550,
            allowed: 1,
            always_above: false,
            rewind: None,
            stopped: true,
            stalled: false,
            not_decreasing: false,
            recent_zero: false,
            status: Ok,
        },
        // 13: case 5 with an allowed lag of 99: still STALL.
        Case {
            commits: five(stuck, [100, 150, 200, 250, 300]),
            highs: vec![1300],
            current_lag: 300,
            now_s: 600,
            allowed: 99,
            always_above: true,
            rewind: None,
            stopped: false,
            stalled: true,
            not_decreasing: true,
            recent_zero: false,
            status: Stall,
        },
        // 14: case 7 with an allowed lag of 99: still OK.
        Case {
            commits: five(rewound, [100, 150, 200, 1250, 300]),
            highs: vec![4300],
            current_lag: 300,
            now_s: 600,
            allowed: 99,
            always_above: true,
            rewind: Some(3),
            stopped: false,
            stalled: false,
            not_decreasing: false,
            recent_zero: false,
            status: Ok,
        },
        // 15: a rewind not made good: REWIND.
        Case {
            commits: five([1000, 2000, 3000, 2000, 2500], [100, 150, 200, 1250, 300]),
            highs: vec![4300],
            current_lag: 300,
            now_s: 600,
            allowed: 0,
            always_above: true,
            rewind: Some(3),
            stopped: false,
            stalled: false,
            not_decreasing: false,
            recent_zero: false,
            status: Rewind,
        },
    ]
}

#[test]
fn burrows_rule_sequences_give_burrows_answers() {
    for (i, case) in cases().into_iter().enumerate() {
        let commits = &case.commits;
        assert_eq!(
            lag_always_above(commits, case.allowed),
            case.always_above,
            "case {i}: lag always above"
        );
        assert_eq!(rewind_at(commits), case.rewind, "case {i}: rewind");
        assert_eq!(
            stopped(commits, case.now_s * 1000),
            case.stopped,
            "case {i}: stopped"
        );
        assert_eq!(stalled(commits), case.stalled, "case {i}: stalled");
        assert_eq!(
            lag_not_decreasing(commits),
            case.not_decreasing,
            "case {i}: lag not decreasing"
        );
        assert_eq!(
            recently_caught_up(commits, &case.highs),
            case.recent_zero,
            "case {i}: recent zero"
        );
        let status = partition_status(
            commits,
            &case.highs,
            case.current_lag,
            case.now_s * 1000,
            case.allowed,
        );
        assert_eq!(status, case.status, "case {i}: status");
    }
}

#[test]
fn the_group_takes_its_worst_partition_capped_at_err() {
    assert_eq!(BurrowStatus::group([]), Ok);
    assert_eq!(BurrowStatus::group([Ok, Ok]), Ok);
    assert_eq!(BurrowStatus::group([Ok, Warning, Ok]), Warning);
    for worse in [Stop, Stall, Rewind] {
        assert_eq!(BurrowStatus::group([Ok, worse]), Error);
        assert_eq!(BurrowStatus::group([worse, Warning]), Error);
        assert_eq!(BurrowStatus::group([worse]).code(), 3);
    }
    assert_eq!(
        [Ok, Warning, Error, Stop, Stall, Rewind].map(BurrowStatus::code),
        [1, 2, 3, 4, 5, 6]
    );
}

fn at(low: i64, high: i64, committed: Option<i64>) -> PartitionOffsets {
    PartitionOffsets {
        low,
        high,
        committed,
    }
}

#[test]
fn polls_become_burrows_window() {
    const S: i64 = 1_000;
    // A group committing 10 a poll while 20 arrive: its lag grows at
    // every commit: WARN.
    let mut slow = BurrowPartition::default();
    for i in 0..12 {
        slow.record(i * 10 * S, &at(0, 1_000 + 20 * i, Some(50 + 10 * i)));
    }
    assert_eq!(slow.commits.len(), INTERVALS);
    assert_eq!(slow.highs.len(), INTERVALS);
    assert_eq!(slow.status(115 * S), Warning);
    // The same group, then no commit while the window's span (90 s) passes
    // again: STOP; a group-level alert sees ERR.
    assert_eq!(slow.status(110 * S + 90 * S), Warning);
    assert_eq!(slow.status(110 * S + 91 * S), Stop);
    assert_eq!(BurrowStatus::group([slow.status(201 * S)]), Error);
    // Offsets seen again at later polls are not new commits.
    let mut still = BurrowPartition::default();
    for i in 0..5 {
        still.record(i * 10 * S, &at(0, 100, Some(60)));
    }
    assert_eq!(still.commits.len(), 1);
    // Caught up: OK at once.
    still.record(50 * S, &at(0, 100, Some(100)));
    assert_eq!(still.status(500 * S), Ok);
    // A partition without a commit, or with impossible offsets, is unknown.
    let mut none = BurrowPartition::default();
    none.record(0, &at(0, 100, None));
    none.record(0, &at(200, 100, Some(5)));
    assert!(!none.known());
    assert_eq!(none.status(10 * S), Ok);
}

#[test]
fn a_reset_offset_is_a_rewind_until_made_good() {
    const S: i64 = 1_000;
    let mut p = BurrowPartition::default();
    for (i, committed) in [100, 200, 300, 50, 150].into_iter().enumerate() {
        p.record(i as i64 * 10 * S, &at(0, 1_000, Some(committed)));
    }
    assert_eq!(p.status(45 * S), Rewind);
    p.record(50 * S, &at(0, 1_000, Some(300)));
    assert_eq!(p.status(55 * S), Ok);
}
