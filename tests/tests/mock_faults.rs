//! Faults only a controllable cluster can make on demand, on librdkafka's
//! mock cluster with the real producer and consumer binaries: partitions
//! without a leader for seconds, brokers answering requests with errors, and
//! brokers answering slowly. Each test keeps a per-message ledger of the
//! receipts and asserts nothing is lost and duplicates stay within the
//! commit window.

use std::time::{Duration, Instant};

use meshflow_tests::ledger::{unix_ns, Ledger, LogLedger, TopicReader};
use meshflow_tests::mock::{MockBed, PARTITIONS};
use meshflow_tests::process::Service;
use meshflow_tests::scenario::{consumer, producer_with_args, wait_ready};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

/// Auto-commit interval, receipt flush interval and the allowance for a
/// receipt's acknowledgement: the consumer's defaults, which these tests
/// run with.
const COMMIT: f64 = 1.0;
const FLUSH: f64 = 0.1;
const ACK: f64 = 0.5;

/// The most a consumer group can redeliver at `rate` (messages per second)
/// in a rebalance: what its members processed since their last successful
/// commit, at most one commit interval, one flush and the receipt's
/// acknowledgement; plus `held` seconds of production the fault held back,
/// which the members work through at once when it ends and may process
/// again if a commit is refused in the rebalance that follows. Only
/// configured values; each test checks its bound is below its `n`.
fn duplicate_bound(rate: u32, held: f64) -> u64 {
    (f64::from(rate) * (COMMIT + FLUSH + ACK + held)) as u64
}

/// One run's traffic: two consumers of the bed's group, `n` messages at
/// `rate` per second, and a reader of the data topic (to tell loss in the
/// log from loss in processing).
struct Run {
    /// Kept running for the whole run.
    _consumers: (Service, Service),
    n: u64,
    log: TopicReader,
    producer: Service,
    /// The most duplicates the fault may cause.
    bound: u64,
    /// When a broker went down with requests in flight (Unix
    /// nanoseconds), if one did: see [`rewritten_by_the_mock`].
    broker_lost_at: Option<u64>,
}

impl Run {
    /// Starts the consumers, then the producer with its command-line
    /// `args`, and returns once the first `receipts` came back (a minute at
    /// most): traffic flows.
    /// `held` is how long the fault holds production back (seconds), for
    /// the duplicate bound.
    async fn flowing(
        bed: &MockBed,
        n: u64,
        rate: u32,
        held: f64,
        args: &[&str],
        receipts: u64,
    ) -> Run {
        let bound = duplicate_bound(rate, held);
        assert!(
            bound < n,
            "a bound of {bound} cannot fail with {n} messages"
        );
        let consumers = two_consumers(bed).await;
        let log = TopicReader::start(&bed.bootstrap, &bed.names.topic, PARTITIONS);
        let producer =
            producer_with_args(bed.dir.path(), &bed.bootstrap, &bed.names, n, rate, args);
        bed.receipts
            .receipts_for(receipts, Duration::from_secs(60))
            .await;
        Run {
            _consumers: consumers,
            n,
            log,
            producer,
            bound,
            broker_lost_at: None,
        }
    }

    /// Waits for every receipt (a minute at most, then returns what came)
    /// and for the producer's exit; says whether it succeeded.
    async fn finish(&mut self, bed: &MockBed) -> (Ledger, bool) {
        let n = self.n;
        let _ = tokio::time::timeout(
            Duration::from_secs(60),
            bed.receipts.receipts_for(n, Duration::MAX),
        )
        .await;
        let ok = self
            .producer
            .wait_exit(Duration::from_secs(60))
            .await
            .success();
        (bed.ledger(), ok)
    }
}

/// Two consumers of the bed's group, ready.
async fn two_consumers(bed: &MockBed) -> (Service, Service) {
    let a = consumer(bed.dir.path(), &bed.bootstrap, &bed.names, "consumer-a");
    let b = consumer(bed.dir.path(), &bed.bootstrap, &bed.names, "consumer-b");
    wait_ready(&[&a, &b], Duration::from_secs(60)).await;
    (a, b)
}

/// How long before a broker goes down a message it had not yet answered
/// for can have been created: the producer's linger and one round trip,
/// with room for a slow machine.
const IN_FLIGHT: Duration = Duration::from_secs(1);

/// Whether a message written twice to the mock's log is the mock's doing.
///
/// A real broker keeps an idempotent producer's sequence numbers with the
/// partition and refuses a retried batch it already holds, whichever
/// replica leads; librdkafka's mock checks sequences only for
/// transactional producers (`rd_kafka_mock_validate_records` returns early
/// without a TransactionalId). A Produce the mock appended but whose answer
/// was lost because its broker went down is retried to the next leader and
/// appended again. Such a message was in flight at that moment: created at
/// most [`IN_FLIGHT`] before the broker went down, and written exactly
/// twice. Anything else in the log twice is a defect of the producer.
fn rewritten_by_the_mock(
    created_ns: Option<u64>,
    records: u32,
    broker_lost_at: Option<u64>,
) -> bool {
    let (Some(created), Some(lost)) = (created_ns, broker_lost_at) else {
        return false;
    };
    records == 2 && created <= lost && lost - created <= IN_FLIGHT.as_nanos() as u64
}

/// Prints the ledger's counts and asserts the common outcome: the producer
/// finished, every message has a receipt, duplicates within the bound.
fn check(what: &str, bed: &MockBed, run: &Run, done: &Ledger, producer_ok: bool, extra: &str) {
    let n = run.n;
    let missing = done.missing(&bed.names.producer, n);
    let in_log = LogLedger::from_records(&run.log.records());
    let not_in_log: Vec<u64> = missing
        .iter()
        .copied()
        .filter(|s| {
            !in_log
                .counts
                .contains_key(&(bed.names.producer.clone(), *s))
        })
        .collect();
    println!(
        "{what}: sent={n} log_distinct={} log_duplicates={} distinct={} duplicates={} (redelivered, rewritten)={:?} \
         bound={} missing={} of_which_not_in_log={not_in_log:?} {extra}",
        in_log.distinct(),
        in_log.duplicates(),
        done.distinct(),
        done.duplicates(),
        done.duplicate_causes(),
        run.bound,
        missing.len()
    );
    assert!(producer_ok, "the producer failed");
    assert_eq!(missing, Vec::<u64>::new());
    let unexplained: Vec<_> = in_log
        .written_twice()
        .into_iter()
        .filter(|(m, records)| {
            !rewritten_by_the_mock(
                done.created_ns.get(*m).copied(),
                *records,
                run.broker_lost_at,
            )
        })
        .collect();
    assert_eq!(
        unexplained,
        [],
        "messages written more than once to the log"
    );
    assert!(
        done.duplicates() <= run.bound,
        "{} duplicates, more than {}",
        done.duplicates(),
        run.bound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_without_a_leader_for_seconds_lose_nothing() {
    let bed = MockBed::new("leaderless");
    // Production is held back while nobody leads, and the members rejoin
    // the new coordinator one after the other: the backlog they work
    // through before a rejoin may be processed again after it, once per
    // member's rejoin (2,504 held back, 4,509 repeats in one run). So the
    // bound is one commit window plus that hold twice; and of the work done
    // before the fault, at most one commit window comes back (checked
    // below). 2,000 receipts before the fault, so that consumers that
    // never commit, which redeliver it all, fail that check.
    let (n, rate) = (9_000, 500);
    let leaderless = Duration::from_secs(5);
    let members = 2.0;
    let held = members * (leaderless + IN_FLIGHT).as_secs_f64();
    let mut run = Run::flowing(&bed, n, rate, held, &[], 2_000).await;

    // The broker that leads everything and coordinates the group goes down
    // first; only then does the cluster notice that nobody leads.
    let fault = Instant::now();
    let fault_ns = unix_ns();
    bed.mock.broker_down(1).expect("broker 1 down");
    run.broker_lost_at = Some(unix_ns());
    bed.lead_all(None, false);
    tokio::time::sleep(leaderless).await;
    // Election: brokers 2 and 3 lead, 2 coordinates.
    let elected = Instant::now();
    let elected_ns = unix_ns();
    bed.coordinate(2);
    bed.lead_all(Some(2), true);

    let (done, ok) = run.finish(&bed).await;
    let first = done
        .first_after(elected)
        .expect("receipts after the election");
    check(
        "leaderless window",
        &bed,
        &run,
        &done,
        ok,
        &format!(
            "leaderless_for={:.1}s first_receipt_after_election={:.2}s created_during_window={} \
             created_after_election={}",
            (elected - fault).as_secs_f64(),
            first.as_secs_f64(),
            done.created_after(fault_ns) - done.created_after(elected_ns),
            done.created_after(elected_ns),
        ),
    );
    let window = duplicate_bound(rate, 0.0);
    assert!(
        done.duplicates_created_before(fault_ns) <= window,
        "{} repeats of messages created before the fault, more than one commit window ({window})",
        done.duplicates_created_before(fault_ns)
    );
    // Messages the producer created while nobody led were held and
    // delivered, not dropped; and production went on after the election.
    assert!(done.created_after(fault_ns) - done.created_after(elected_ns) >= 1_000);
    assert!(done.created_after(elected_ns) >= 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_answering_with_errors_lose_nothing() {
    use RDKafkaRespErr::*;
    let bed = MockBed::new("request-errors");
    bed.lead_all(Some(1), true);
    let (n, rate) = (3_000, 500);
    // One request in flight per connection (see `one_in_flight_args`).
    let [flag, config] = bed.one_in_flight_args();
    let args = &[flag.as_str(), config.as_str()];
    // Nothing is held back: requests are retried at once.
    let mut run = Run::flowing(&bed, n, rate, 0.0, args, 500).await;

    // Rounds of errors, each taken by the next requests of that kind from
    // any client: the producers (data and receipts), the consumers' fetches
    // and their offset commits.
    let produce = [
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
    ];
    let fetch = [
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
    ];
    let commit = [
        RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
    ];
    let start = Instant::now();
    let mut pushed = 0;
    for _ in 0..8 {
        for _ in 0..4 {
            bed.mock.request_errors(RDKafkaApiKey::Produce, &produce);
            bed.mock.request_errors(RDKafkaApiKey::Fetch, &fetch);
            bed.mock
                .request_errors(RDKafkaApiKey::OffsetCommit, &commit);
            pushed += produce.len() + fetch.len() + commit.len();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let errors_for = start.elapsed();

    let (done, ok) = run.finish(&bed).await;
    check(
        "request errors",
        &bed,
        &run,
        &done,
        ok,
        &format!(
            "errors_pushed={pushed} over={:.1}s longest_receipt_gap={:.2}s",
            errors_for.as_secs_f64(),
            done.longest_gap_after(start).as_secs_f64()
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_brokers_lose_nothing() {
    let bed = MockBed::new("slow-brokers");
    bed.lead_all(Some(1), true);
    let (n, rate) = (3_000, 300);
    // A commit is acknowledged up to the slowest round trip late.
    let slowest = Duration::from_millis(3_000);
    let mut run = Run::flowing(&bed, n, rate, slowest.as_secs_f64(), &[], 300).await;

    // Every broker answers 1 to 3 s late, for 10 s.
    let slow = Instant::now();
    for (broker, rtt) in [(1, 2_000), (2, 3_000), (3, 1_000)] {
        bed.mock
            .broker_round_trip_time(broker, Duration::from_millis(rtt))
            .expect("set round trip time");
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    for broker in 1..=3 {
        bed.mock
            .broker_round_trip_time(broker, Duration::ZERO)
            .expect("reset round trip time");
    }
    let healed = Instant::now();

    let (done, ok) = run.finish(&bed).await;
    let during = done
        .arrivals
        .iter()
        .filter(|t| **t > slow && **t < healed)
        .count();
    check(
        "slow brokers",
        &bed,
        &run,
        &done,
        ok,
        &format!(
            "receipt_batches_while_slow={during} caught_up={:.2}s_after_healing",
            done.arrivals
                .iter()
                .max()
                .map_or(0.0, |t| t.saturating_duration_since(healed).as_secs_f64())
        ),
    );
    // Slow is not stopped: receipts kept coming while every answer was late.
    assert!(during > 0, "no receipt while the brokers were slow");
}

/// One partition refuses writes for a minute while everything else works:
/// its broker answers Produce with `NOT_ENOUGH_REPLICAS` (what a real one
/// answers while the partition is below `min.insync.replicas`), and answers
/// Fetch, ListOffsets and Metadata as usual. The producer keeps retrying
/// the partition's messages (its delivery timeout is 5 minutes) while the
/// other partitions take theirs, so the log has gaps for longer than the
/// exporter's grace, and the reading progresses past them. They are late,
/// not lost: the exporter reports 0 lost throughout and, at the end, the
/// same figures as the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_refusing_writes_for_a_minute_is_late_not_lost() {
    use meshflow_tests::bed::{assert_figures_equal_ledger, counted, counts, metrics_until, show};
    const STALL: Duration = Duration::from_secs(60);
    const GRACE: Duration = Duration::from_secs(30);
    let bed = MockBed::new("partial-stall");
    // Broker 3 leads partition 0 of the data topic and nothing else.
    bed.mock
        .partition_leader(&bed.names.topic, 0, Some(3))
        .expect("leader 3");
    let exporter = meshflow_tests::exporter::start(
        bed.dir.path(),
        &bed.bootstrap,
        &bed.names,
        "exporter",
        &meshflow_tests::unique("exporter"),
        &[("MESHFLOW__EXPORTER__GRACE", "30s")],
    );
    wait_ready(&[&exporter], Duration::from_secs(60)).await;
    let (n, rate) = (7_500, 100);
    // One request in flight per connection (see `one_in_flight_args`).
    let [flag, config] = bed.one_in_flight_args();
    let args = &[flag.as_str(), config.as_str()];
    let mut run = Run::flowing(&bed, n, rate, STALL.as_secs_f64(), args, 500).await;

    let stalled = Instant::now();
    let mut pushed = 0;
    while stalled.elapsed() < STALL {
        if bed.produce_errors_left(3) < 5 {
            bed.produce_errors(
                3,
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                Duration::from_millis(200),
                10,
            );
            pushed += 10;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let taken = pushed - bed.produce_errors_left(3);
    let during = metrics_until(
        exporter.port,
        "the exporter's figures at the end of the stall",
        Duration::from_secs(10),
        |s| !counts(s, &bed.names.group)[0].is_nan(),
    )
    .await;
    // The stall was real: partition 0 took nothing from 5 s in to its end,
    // while the others were still written to more than the grace after it
    // began, so grace alone would have judged its messages lost.
    let records = run.log.records();
    let in_stall = |r: &&meshflow_tests::ledger::Record| r.seen > stalled + Duration::from_secs(5);
    let p0_during = records
        .iter()
        .filter(|r| r.partition == 0)
        .filter(in_stall)
        .count();
    let others_after_grace = records
        .iter()
        .filter(|r| r.partition != 0 && r.seen > stalled + GRACE + Duration::from_secs(5))
        .count();
    println!(
        "partial stall: {taken} Produce errors taken by broker 3 in {:.0} s; partition 0 written \
         {p0_during} times during it, the others {others_after_grace} times past the grace; \
         exporter at its end: {}",
        STALL.as_secs_f64(),
        show(counts(&during, &bed.names.group))
    );
    assert!(
        taken >= 10,
        "the producer took {taken} of the Produce errors"
    );
    assert_eq!(p0_during, 0, "partition 0 was written to during the stall");
    assert!(
        others_after_grace > 0,
        "no partition progressed past the grace"
    );
    let [_, lost_log, _, _, lost_processed, _] = counts(&during, &bed.names.group);
    assert_eq!(
        (lost_log, lost_processed),
        (0.0, 0.0),
        "judged lost while retried"
    );

    let (done, ok) = run.finish(&bed).await;
    check("partial stall", &bed, &run, &done, ok, "");
    let in_log = LogLedger::from_records(&run.log.records());
    let after = counted(exporter.port, &bed.names.group, n, done.duplicates() as f64).await;
    println!(
        "partial stall: exporter after: {}",
        show(counts(&after, &bed.names.group))
    );
    assert_figures_equal_ledger(
        &after,
        &bed.names.group,
        n,
        in_log.duplicates(),
        done.duplicates(),
    );
}

#[test]
fn only_a_message_in_flight_when_its_broker_went_down_may_be_in_the_mock_log_twice() {
    let lost = 10_000_000_000;
    let ms = 1_000_000;
    assert!(rewritten_by_the_mock(Some(lost - 20 * ms), 2, Some(lost)));
    // Created after the broker went down, or long before: not in flight.
    assert!(!rewritten_by_the_mock(Some(lost + ms), 2, Some(lost)));
    assert!(!rewritten_by_the_mock(
        Some(lost - 1_500 * ms),
        2,
        Some(lost)
    ));
    // Three copies, no broker lost, or no creation time: a defect.
    assert!(!rewritten_by_the_mock(Some(lost - 20 * ms), 3, Some(lost)));
    assert!(!rewritten_by_the_mock(Some(lost - 20 * ms), 2, None));
    assert!(!rewritten_by_the_mock(None, 2, Some(lost)));
}
