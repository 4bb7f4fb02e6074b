//! Failover on librdkafka's mock cluster: the test process hosts three mock
//! brokers; the real producer and consumer binaries connect to them over
//! TCP. The mock is in memory: it stands for the cluster's failover
//! behaviour and Kafka's group coordination; durability across a real crash
//! is tested on Tansu (`message_path.rs`).

use std::time::{Duration, Instant};

use meshflow_tests::ledger::unix_ns;
use meshflow_tests::mock::{MockBed, PARTITIONS};
use meshflow_tests::scenario::{committed_offsets, consumer, producer, wait_ready};
use meshflow_tests::wait_for;
use rdkafka::mocking::MockCoordinator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_and_coordinator_broker_down_loses_nothing() {
    let bed = MockBed::new("failover");
    let c1 = consumer(bed.dir.path(), &bed.bootstrap, &bed.names, "consumer-a");
    let c2 = consumer(bed.dir.path(), &bed.bootstrap, &bed.names, "consumer-b");
    wait_ready(&[&c1, &c2], Duration::from_secs(60)).await;
    let n: u64 = 3_000;
    let mut p = producer(bed.dir.path(), &bed.bootstrap, &bed.names, n, 500);
    wait_for("800 receipts", Duration::from_secs(60), || async {
        (bed.ledger().distinct() >= 800).then_some(())
    })
    .await;

    let fault = Instant::now();
    let fault_ns = unix_ns();
    for topic in bed.names.topics() {
        for part in 0..PARTITIONS {
            bed.mock
                .partition_leader(topic, part, Some(2 + part % 2))
                .expect("move leader");
        }
    }
    bed.mock
        .coordinator(MockCoordinator::Group(bed.names.group.clone()), 2)
        .expect("move coordinator");
    bed.mock.broker_down(1).expect("broker 1 down");

    let done = bed.all_receipts(n).await;
    let status = p.wait_exit(Duration::from_secs(60)).await;
    let first = done.first_after(fault).expect("receipts after the fault");
    let produced_after = done.created_after(fault_ns);
    println!(
        "mock failover: sent={n} distinct={} duplicates={} missing={} produced_after_fault={produced_after} \
         first_receipt_after_fault={:.2}s longest_receipt_gap_after_fault={:.2}s",
        done.distinct(),
        done.duplicates(),
        done.missing(&bed.names.producer, n).len(),
        first.as_secs_f64(),
        done.longest_gap_after(fault).as_secs_f64()
    );
    assert!(status.success(), "producer exit: {status}");
    assert_eq!(done.missing(&bed.names.producer, n), Vec::<u64>::new());
    // The coordinator moved: the members rejoin, and each redelivers at
    // most what it processed since its last commit.
    let bound = (500.0 * (COMMIT_INTERVAL + FLUSH_INTERVAL + ACK_ALLOWANCE).as_secs_f64()) as u64;
    assert!(
        done.duplicates() <= bound,
        "{} duplicates, more than {bound}",
        done.duplicates()
    );
    // Not only the backlog: the producer went on sending through the new
    // leaders, and those messages were processed too.
    assert!(
        produced_after >= 1_000,
        "only {produced_after} messages were created after the fault"
    );
    drop((c1, c2));
}

/// Receipt flush interval, auto-commit interval and the allowance for a
/// receipt's acknowledgement: the consumer's defaults (`consumer.*` in
/// docs/configuration.md) and what this test runs with.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
const COMMIT_INTERVAL: Duration = Duration::from_millis(1_000);
const ACK_ALLOWANCE: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_killed_loses_nothing_and_duplicates_stay_within_the_commit_window() {
    let bed = MockBed::new("consumer-kill");
    let mut victim = consumer(bed.dir.path(), &bed.bootstrap, &bed.names, "consumer-a");
    let survivor = consumer(bed.dir.path(), &bed.bootstrap, &bed.names, "consumer-b");
    wait_ready(&[&victim, &survivor], Duration::from_secs(60)).await;
    let n: u64 = 5_000;
    let rate: u32 = 500;
    let mut p = producer(bed.dir.path(), &bed.bootstrap, &bed.names, n, rate);
    // The bound: a member redelivers at most what it processed since its
    // last commit, i.e. within one commit interval plus one receipt flush
    // plus the receipt's acknowledgement, at the whole topic's rate (an upper
    // bound on its share). The session timeout delays the hand-over but adds
    // no duplicate: nothing is delivered to a dead member.
    let bound =
        (f64::from(rate) * (COMMIT_INTERVAL + FLUSH_INTERVAL + ACK_ALLOWANCE).as_secs_f64()) as u64;
    // Kill it only after it has processed well over the bound, so that a
    // consumer that never committed would redeliver all of it and fail.
    let worked = 2 * bound as usize;
    wait_for("the victim at work", Duration::from_secs(60), || async {
        (bed.ledger().entries_by("consumer-a") >= worked).then_some(())
    })
    .await;
    let killed = Instant::now();
    victim.signal(9);
    victim.wait_exit(Duration::from_secs(10)).await;
    let committed = committed_offsets(&bed.bootstrap, &bed.names, PARTITIONS).await;
    let done = bed.all_receipts(n).await;
    let victim_receipts = done.entries_by("consumer-a");
    // For the print: what the victim processed at or beyond the offsets
    // committed right after the crash.
    let in_flight = done
        .processed_at
        .iter()
        .filter(|(by, _, p, o)| by == "consumer-a" && *o >= committed.get(p).copied().unwrap_or(0))
        .count() as u64;
    let status = p.wait_exit(Duration::from_secs(60)).await;
    println!(
        "consumer kill -9: sent={n} distinct={} duplicates={} bound={bound} victim_receipts={victim_receipts} \
         in_flight_at_kill={in_flight} missing={} longest_receipt_gap_after_kill={:.2}s",
        done.distinct(),
        done.duplicates(),
        done.missing(&bed.names.producer, n).len(),
        done.longest_gap_after(killed).as_secs_f64()
    );
    assert!(status.success(), "producer exit: {status}");
    assert_eq!(done.missing(&bed.names.producer, n), Vec::<u64>::new());
    assert!(
        victim_receipts >= worked,
        "the victim processed {victim_receipts}, less than {worked}"
    );
    assert!(
        done.duplicates() <= bound,
        "{} duplicates, more than rate x (commit interval + flush interval + ack) = {bound}",
        done.duplicates()
    );
    for ((producer, seq), count) in &done.counts {
        if *count > 1 {
            assert_eq!(
                done.first_by[&(producer.clone(), *seq)],
                "consumer-a",
                "duplicate not from the crash"
            );
        }
    }
    drop(survivor);
}
