//! A randomized mix of faults on the local broker, with no operator step:
//! while the real producer sends at a steady rate through two consumers and
//! the exporter, a seeded schedule kills and freezes the broker, kills and
//! freezes consumers, freezes the producer and the exporter, cuts the
//! consumers off the network (both ways, or their answers only: the
//! consumers run in their own network namespace), and publishes malformed
//! records. What a supervisor does (start a killed process again) the test
//! does; nothing else heals.
//! Afterwards a ledger read from the topics by the test's own clients must
//! show every message in the log once and processed, and the exporter's
//! counters must equal it exactly.
//!
//! `MESHFLOW_NEMESIS_SECONDS` (default 100) and `MESHFLOW_NEMESIS_SEED`
//! (default: random, printed) choose the run; a failing seed replays with
//! the same schedule (the timing of the processes around it still varies).

use std::time::{Duration, Instant};

use meshflow_common::envelope::{now_ns, CREATED_NS, PRODUCER, SEQ};
use meshflow_common::headers::HeaderList;
use meshflow_tests::bed::{assert_figures_equal_ledger, counted, counts, show, Bed, PARTITIONS};
use meshflow_tests::exporter::{client, high_watermarks};
use meshflow_tests::ledger::{LogLedger, TopicReader};
use meshflow_tests::netns::Netns;
use meshflow_tests::process::Service;
use meshflow_tests::scenario::consumer_wrapped;
use meshflow_tests::{scrape, unique};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::producer::FutureRecord;

/// Messages per second the producer sends throughout.
const RATE: u32 = 100;

/// One fault of the schedule.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `kill -9` the broker, start it again 1 s later.
    BrokerKill,
    /// SIGSTOP the broker for the given time.
    BrokerFreeze(Duration),
    /// `kill -9` consumer `i`, start it again at once.
    ConsumerKill(usize),
    /// SIGSTOP consumer `i` for the given time.
    ConsumerFreeze(usize, Duration),
    /// Publish this many records whose envelope is malformed (the producer
    /// header twice).
    MalformedBurst(u32),
    /// SIGSTOP the producer for the given time.
    ProducerFreeze(Duration),
    /// SIGSTOP the exporter for the given time.
    ExporterFreeze(Duration),
    /// Cut the consumers' network link, both ways, for the given time.
    ConsumersCut(Duration),
    /// Drop every packet towards the consumers for the given time: their
    /// requests arrive, the answers vanish.
    ConsumersUnanswered(Duration),
}

fn pick(rng: &mut StdRng) -> Fault {
    let freeze = Duration::from_millis(rng.random_range(2_000..9_000));
    match rng.random_range(0..9) {
        0 => Fault::BrokerKill,
        1 => Fault::BrokerFreeze(freeze),
        2 => Fault::ConsumerKill(rng.random_range(0..2)),
        3 => Fault::ConsumerFreeze(rng.random_range(0..2), freeze),
        4 => Fault::ProducerFreeze(freeze),
        5 => Fault::ExporterFreeze(freeze),
        6 => Fault::ConsumersCut(freeze),
        7 => Fault::ConsumersUnanswered(freeze),
        _ => Fault::MalformedBurst(rng.random_range(1..50)),
    }
}

/// The data topic as the test's own reader holds it, once it has the `n`
/// messages of `producer` or a minute has passed: the reader may still be
/// catching up (a broker restart, a leader moved) when the receipts are in.
async fn read_log(log: &TopicReader, producer: &str, n: u64) -> LogLedger {
    let started = Instant::now();
    loop {
        let l = LogLedger::from_records(&log.records());
        let ours = l.counts.keys().filter(|(p, _)| p == producer).count() as u64;
        if ours >= n || started.elapsed() > Duration::from_secs(60) {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn malformed(bed: &Bed, count: u32) {
    let producer = client(&bed.broker.bootstrap);
    for i in 0..count {
        let mut headers = HeaderList::new();
        let now = now_ns().to_string();
        for (name, value) in [
            (PRODUCER, "nemesis-forged"),
            (PRODUCER, "nemesis-forged-again"),
            (SEQ, "0"),
            (CREATED_NS, now.as_str()),
        ] {
            headers.push(name.as_bytes(), Some(value.as_bytes()));
        }
        let record = FutureRecord::<(), _>::to(&bed.names.topic)
            .payload("malformed")
            .partition(i as i32 % PARTITIONS)
            .headers(headers.to_owned_headers());
        producer
            .send(record, Duration::from_secs(60))
            .await
            .unwrap_or_else(|(e, _)| panic!("malformed record: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_randomized_mix_of_faults_loses_nothing_and_the_exporter_equals_the_ledger() {
    let seconds: u64 = env_or("MESHFLOW_NEMESIS_SECONDS", 100);
    let seed: u64 = env_or("MESHFLOW_NEMESIS_SEED", rand::random());
    println!("nemesis: seed {seed}, {seconds} s of faults at {RATE} msg/s (MESHFLOW_NEMESIS_SEED={seed} replays it)");
    let mut rng = StdRng::seed_from_u64(seed);

    let ns = Netns::create("mf-nem");
    let mut bed = Bed::on("nemesis", &ns.outside).await;
    let receipts = bed.reader(&bed.names.receipts);
    let log = bed.reader(&bed.names.topic);
    let mut exporter = bed.exporter("exporter", &unique("exporter"), &[]).await;
    // The consumers run in the namespace: their HTTP endpoints are not
    // reachable from here, so their work shows in the receipts only.
    let wrapper = ns.exec_prefix();
    let start_consumer = |bed: &Bed, name: &str| {
        consumer_wrapped(
            bed.dir.path(),
            &wrapper,
            &bed.broker.bootstrap,
            &bed.names,
            name,
        )
    };
    let mut consumers: [Service; 2] = [
        start_consumer(&bed, "consumer-a"),
        start_consumer(&bed, "consumer-b"),
    ];
    let n = u64::from(RATE) * seconds;
    let mut p = bed.producer(n, RATE);
    // The consumers at work before the first fault.
    receipts.receipts_for(100, Duration::from_secs(60)).await;

    let start = Instant::now();
    let mut done = Vec::new();
    let mut forged = 0u32;
    while start.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(rng.random_range(3_000..8_000))).await;
        let fault = pick(&mut rng);
        let at = start.elapsed().as_secs_f64();
        match fault {
            Fault::BrokerKill => {
                bed.broker.kill().await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                bed.broker.restart().await;
            }
            Fault::BrokerFreeze(d) => {
                bed.broker.signal(19);
                tokio::time::sleep(d).await;
                bed.broker.signal(18);
            }
            Fault::ConsumerKill(i) => {
                let name = consumers[i].name.clone();
                consumers[i].signal(9);
                consumers[i].wait_exit(Duration::from_secs(10)).await;
                consumers[i] = start_consumer(&bed, &name);
            }
            Fault::ConsumerFreeze(i, d) => {
                consumers[i].signal(19);
                tokio::time::sleep(d).await;
                consumers[i].signal(18);
            }
            Fault::MalformedBurst(count) => {
                malformed(&bed, count).await;
                forged += count;
            }
            Fault::ProducerFreeze(d) => {
                p.signal(19);
                tokio::time::sleep(d).await;
                p.signal(18);
            }
            Fault::ExporterFreeze(d) => {
                exporter.signal(19);
                tokio::time::sleep(d).await;
                exporter.signal(18);
            }
            Fault::ConsumersCut(d) => {
                ns.cut();
                tokio::time::sleep(d).await;
                ns.heal();
            }
            Fault::ConsumersUnanswered(d) => {
                ns.blackhole_towards();
                tokio::time::sleep(d).await;
                ns.clear_blackhole();
            }
        }
        println!("  {at:6.1}s {fault:?}");
        done.push(fault);
    }

    let status = p.wait_exit(Duration::from_secs(seconds + 300)).await;
    receipts.receipts_for(n, Duration::from_secs(180)).await;
    // Nothing gave up: the processes the test did not kill are the ones it
    // started.
    assert!(
        consumers.iter_mut().all(Service::running) && exporter.running(),
        "a consumer or the exporter exited"
    );
    // The ledger is read once nothing can add to it: a consumer that came
    // back from a freeze may still be redelivering what it had not
    // committed, and the exporter counts those receipts too (seed
    // 1935275945822670023: 3 receipts written after the last message's
    // first one). The consumers stop as at a rolling restart, draining and
    // committing, and the receipts topic is read to its end.
    for c in &mut consumers {
        c.signal(15);
    }
    for c in &mut consumers {
        assert_eq!(
            c.wait_exit(Duration::from_secs(30)).await.code(),
            Some(0),
            "{} stops cleanly",
            c.name
        );
    }
    let highs = {
        let (bootstrap, topic) = (bed.broker.bootstrap.clone(), bed.names.receipts.clone());
        tokio::task::spawn_blocking(move || high_watermarks(&bootstrap, &topic, PARTITIONS))
            .await
            .expect("receipts watermarks")
    };
    let truth = receipts
        .ledger_through(&highs, Duration::from_secs(60))
        .await;
    let in_log = read_log(&log, &bed.names.producer, n).await;
    let ours = |l: &LogLedger| {
        l.counts
            .iter()
            .filter(|((producer, _), _)| *producer == bed.names.producer)
            .map(|(k, c)| (k.clone(), *c))
            .collect::<std::collections::HashMap<_, _>>()
    };
    let logged = ours(&in_log);
    let gaps = (0..n)
        .filter(|s| !logged.contains_key(&(bed.names.producer.clone(), *s)))
        .count();
    let log_duplicates: u64 = logged.values().map(|c| u64::from(c - 1)).sum();
    let unprocessed = truth.missing(&bed.names.producer, n).len();
    let (redelivered, rewritten) = truth.duplicate_causes();
    let group = bed.names.group.clone();
    let receipt_duplicates = truth.duplicates() as f64;
    let after = counted(exporter.port, &group, n, receipt_duplicates).await;
    // The invalid series appears with the first malformed record.
    let invalid = scrape::value(
        &after,
        "meshflow_messages_invalid_total",
        &[("topic", &bed.names.topic)],
    );
    println!(
        "nemesis: seed {seed}: {} faults; sent={n} log: distinct={} gaps={gaps} twice={log_duplicates}; \
         receipts: {} unprocessed={unprocessed} (repeats: {redelivered} redelivered, {rewritten} rewritten); \
         malformed published={forged}, exporter invalid={invalid:?}\n  exporter: {}",
        done.len(),
        logged.len(),
        truth.summary(&bed.names.producer, n),
        show(counts(&after, &group)),
    );
    assert!(status.success(), "producer exit: {status}");
    match (forged, invalid) {
        (0, None) => {}
        (_, Some(invalid)) => assert_eq!(
            invalid,
            f64::from(forged),
            "malformed records counted as invalid"
        ),
        (_, None) => panic!("{forged} malformed records published, none counted invalid"),
    }
    assert_eq!(gaps, 0, "messages missing from the log");
    assert_eq!(unprocessed, 0, "messages in the log never processed");
    assert_figures_equal_ledger(&after, &group, n, log_duplicates, truth.duplicates());
    assert!(exporter.running(), "the exporter exited");
}

/// One fault of the mock cluster's schedule.
#[derive(Debug, Clone, Copy)]
enum MockFault {
    /// Broker `b` down for the given time, its partitions moved to the next
    /// broker first (as a controller would), then back up. The group's
    /// coordinator (broker 1) stays where it is and is away while down.
    BrokerDown(i32, Duration),
    /// No partition has a leader for the given time, the brokers that led
    /// them down meanwhile; then broker `b` and the next lead them,
    /// alternating. (The brokers go down because librdkafka 2.12's mock
    /// crashes answering a Fetch for a partition without a leader:
    /// `rd_kafka_mock_Fetch_reply_tags_partition_write` reads
    /// `mpart->leader->id` with no leader, rdkafka_mock_handlers.c:294.)
    Leaderless(Duration, i32),
    /// The next requests of each kind (Produce, Fetch, OffsetCommit) are
    /// answered with retriable errors, this many rounds of them.
    RequestErrors(u32),
    /// Every broker answers late by the given time, for 5 s.
    Slow(Duration),
}

// Not in the mix: moving the group's coordinator and killing a consumer.
// librdkafka 2.12's mock aborts when a member joins again while its
// previous JoinGroup is still parked (`rd_kafka_mock_cgrp_classic_member_add:
// Assertion !member->resp`, rdkafka_mock_cgrp.c:603), which a coordinator
// move followed by a consumer restart makes happen (seed
// 13908676389772233753 of an earlier mix). Those faults run against the
// local broker's coordinator in the test above, and one at a time on the
// mock in failover.rs and mock_faults.rs.

fn pick_mock(rng: &mut StdRng) -> MockFault {
    let broker = rng.random_range(1..=3);
    let hold = Duration::from_millis(rng.random_range(1_000..5_000));
    match rng.random_range(0..4) {
        0 => MockFault::BrokerDown(broker, hold),
        1 => MockFault::Leaderless(hold, broker),
        2 => MockFault::RequestErrors(rng.random_range(1..5)),
        _ => MockFault::Slow(Duration::from_millis(rng.random_range(500..2_500))),
    }
}

/// The broker after `b` of three.
fn next_broker(b: i32) -> i32 {
    b % 3 + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "seed 9863713209371270200 aborts the exporter inside librdkafka 2.12.1 \
            (rd_kafka_enq_once_del_source_return: Assertion eonce->refcnt > 0, after an admin \
            call timed out while a broker was down; docs/faults.md); run it with scripts/nemesis"]
async fn a_randomized_mix_on_three_mock_brokers_loses_nothing_and_the_exporter_equals_the_ledger() {
    use meshflow_tests::mock::MockBed;
    use meshflow_tests::scenario::{consumer, producer_with_args, wait_ready};
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

    const MOCK_RATE: u32 = 200;
    let seconds: u64 = env_or("MESHFLOW_NEMESIS_SECONDS", 100) / 2;
    let seed: u64 = env_or("MESHFLOW_NEMESIS_SEED", rand::random());
    println!(
        "mock nemesis: seed {seed}, {seconds} s of faults at {MOCK_RATE} msg/s on three brokers \
         (MESHFLOW_NEMESIS_SEED={seed} replays it)"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let bed = MockBed::new("nemesis-mock");
    bed.lead_all(Some(1), true);
    let names = bed.names.clone();
    let group = names.group.clone();
    let log = TopicReader::start(&bed.bootstrap, &names.topic, PARTITIONS);
    let exporter = meshflow_tests::exporter::start(
        bed.dir.path(),
        &bed.bootstrap,
        &names,
        "exporter",
        &unique("exporter"),
        &[],
    );
    wait_ready(&[&exporter], Duration::from_secs(60)).await;
    // The brokers leading the partitions now.
    let mut leaders = vec![1, 2];
    let consumers = [
        consumer(bed.dir.path(), &bed.bootstrap, &names, "consumer-a"),
        consumer(bed.dir.path(), &bed.bootstrap, &names, "consumer-b"),
    ];
    wait_ready(&[&consumers[0], &consumers[1]], Duration::from_secs(60)).await;
    // One request in flight per connection: the mock does not check
    // idempotent sequences of a non-transactional producer (see
    // MockBed::one_in_flight_args), and this keeps its log honest.
    let n = u64::from(MOCK_RATE) * seconds;
    let [flag, config] = bed.one_in_flight_args();
    let args = [flag.as_str(), config.as_str()];
    let mut p = producer_with_args(bed.dir.path(), &bed.bootstrap, &names, n, MOCK_RATE, &args);
    bed.receipts
        .receipts_for(100, Duration::from_secs(60))
        .await;

    let start = Instant::now();
    let mut done = Vec::new();
    while start.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(rng.random_range(2_000..5_000))).await;
        let fault = pick_mock(&mut rng);
        let at = start.elapsed().as_secs_f64();
        match fault {
            MockFault::BrokerDown(b, d) => {
                bed.lead_all(Some(next_broker(b)), false);
                leaders = vec![next_broker(b)];
                bed.mock.broker_down(b).expect("broker down");
                tokio::time::sleep(d).await;
                bed.mock.broker_up(b).expect("broker up");
            }
            MockFault::Leaderless(d, b) => {
                for l in &leaders {
                    bed.mock.broker_down(*l).expect("leader down");
                }
                bed.lead_all(None, false);
                tokio::time::sleep(d).await;
                bed.lead_all(Some(b), b < 3);
                for l in &leaders {
                    bed.mock.broker_up(*l).expect("leader up");
                }
                leaders = if b < 3 { vec![b, b + 1] } else { vec![b] };
            }
            MockFault::RequestErrors(rounds) => {
                use RDKafkaRespErr::*;
                for _ in 0..rounds {
                    bed.mock.request_errors(
                        RDKafkaApiKey::Produce,
                        &[
                            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                        ],
                    );
                    bed.mock.request_errors(
                        RDKafkaApiKey::Fetch,
                        &[RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION],
                    );
                    bed.mock.request_errors(
                        RDKafkaApiKey::OffsetCommit,
                        &[RD_KAFKA_RESP_ERR_NOT_COORDINATOR],
                    );
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
            MockFault::Slow(rtt) => {
                for b in 1..=3 {
                    bed.mock.broker_round_trip_time(b, rtt).expect("slow");
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
                for b in 1..=3 {
                    bed.mock
                        .broker_round_trip_time(b, Duration::ZERO)
                        .expect("fast");
                }
            }
        }
        println!("  {at:6.1}s {fault:?}");
        done.push(fault);
    }

    let status = p.wait_exit(Duration::from_secs(seconds + 300)).await;
    let truth = bed.receipts.receipts_for(n, Duration::from_secs(180)).await;
    let in_log = read_log(&log, &names.producer, n).await;
    let gaps = (0..n)
        .filter(|s| !in_log.counts.contains_key(&(names.producer.clone(), *s)))
        .count();
    let unprocessed = truth.missing(&names.producer, n).len();
    let receipt_duplicates = truth.duplicates() as f64;
    let after = counted(exporter.port, &group, n, receipt_duplicates).await;
    println!(
        "mock nemesis: seed {seed}: {} faults; sent={n} log: distinct={} gaps={gaps} twice={}; \
         receipts: {} unprocessed={unprocessed}\n  exporter: {}",
        done.len(),
        in_log.distinct(),
        in_log.duplicates(),
        truth.summary(&names.producer, n),
        show(counts(&after, &group)),
    );
    assert!(status.success(), "producer exit: {status}");
    assert_eq!(gaps, 0, "messages missing from the log");
    assert_eq!(unprocessed, 0, "messages in the log never processed");
    assert_figures_equal_ledger(&after, &group, n, in_log.duplicates(), truth.duplicates());
}
