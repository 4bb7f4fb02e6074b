//! The producer's re-send, on librdkafka's mock cluster with the real
//! producer and exporter binaries.
//!
//! Produce requests answered with UNKNOWN_SERVER_ERROR (what a broker whose
//! disk is full answered before its fix: an error whose outcome is unknown)
//! fail their messages back to the producer, which sends them again. At
//! 1,000 msg/s with a small `producer.resend_capacity`, the test checks
//! what the re-send promises: every message in the log, the errors counted
//! where they happened (`meshflow_producer_resends_total`), the log's
//! duplicates exactly those the exporter reports and within the bound the
//! configuration gives, and the producer's memory bounded. A producer whose
//! messages could not be delivered exits 1 and says how many.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use meshflow_tests::bed::metrics_until;
use meshflow_tests::exporter::{self, stage};
use meshflow_tests::ledger::{LogLedger, TopicReader};
use meshflow_tests::mock::{MockBed, PARTITIONS};
use meshflow_tests::scenario::{producer_with, producer_with_args};
use meshflow_tests::{scrape, unique};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

/// Messages and rate of the run.
const N: u64 = 15_000;
const RATE: u32 = 1_000;
/// `batch.num.messages`: the most messages one Produce request carries, so
/// the most one injected error fails.
const BATCH: u64 = 50;
/// `producer.resend_capacity`.
const CAPACITY: u64 = 10;
/// `queue.buffering.max.messages`: librdkafka's own queue.
const QUEUE: u64 = 2_000;
/// Produce requests answered with an error: rounds of this many.
const ROUNDS: u64 = 3;
const PER_ROUND: u64 = 20;
/// What the producer may hold beyond its size before the errors: the
/// messages waiting to be sent again and those in librdkafka's queue, at
/// most 16 KiB each with their spans and delivery state.
const MEMORY_PER_MESSAGE: u64 = 16 * 1024;

/// Resident memory of process `pid` in bytes.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_of_unknown_outcome_are_sent_again_with_duplicates_and_memory_bounded() {
    let bed = MockBed::new("resend");
    bed.lead_all(Some(1), true);
    let names = bed.names.clone();
    let exporter = exporter::start(
        bed.dir.path(),
        &bed.bootstrap,
        &names,
        "exporter",
        &unique("exporter"),
        &[("MESHFLOW__EXPORTER__GRACE", "3s")],
    );
    meshflow_tests::scenario::wait_ready(&[&exporter], Duration::from_secs(60)).await;
    let log = TopicReader::start(&bed.bootstrap, &names.topic, PARTITIONS);
    let config = bed.dir.path().join("producer.toml");
    std::fs::write(
        &config,
        format!(
            "[producer]\nresend_capacity = {CAPACITY}\n[kafka.librdkafka]\n\
             \"batch.num.messages\" = \"{BATCH}\"\n\
             \"queue.buffering.max.messages\" = \"{QUEUE}\"\n"
        ),
    )
    .unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let mut producer = producer_with_args(bed.dir.path(), &bed.bootstrap, &names, N, RATE, &args);
    let pid = producer.pid().expect("producer pid");
    let started = Instant::now();
    while log.len() < 2_000 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no traffic: {}",
            producer.tail_log(20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = rss(pid).expect("producer memory");

    // Rounds of errors, each taken by the next Produce requests.
    let mut peak = before;
    let mut last: HashMap<String, f64> = HashMap::new();
    let mut waiting_peak: f64 = 0.0;
    let errors = vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN; PER_ROUND as usize];
    for _ in 0..ROUNDS {
        bed.mock.request_errors(RDKafkaApiKey::Produce, &errors);
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            peak = peak.max(rss(pid).unwrap_or(0));
            if let Some(s) = scrape::samples(producer.port) {
                waiting_peak =
                    waiting_peak.max(scrape::sum(&s, "meshflow_producer_resend_waiting", &[]));
                last = s;
            }
        }
    }
    // Until the producer is done: its last figures and its peak memory.
    while producer.running() && started.elapsed() < Duration::from_secs(120) {
        peak = peak.max(rss(pid).unwrap_or(0));
        if let Some(s) = scrape::samples(producer.port) {
            last = s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = producer.wait_exit(Duration::from_secs(30)).await;

    // The log as the test's own reader sees it, once it has every message
    // (a minute at most).
    let read_from = Instant::now();
    let mut in_log = LogLedger::from_records(&log.records());
    while in_log.distinct() < N as usize && read_from.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        in_log = LogLedger::from_records(&log.records());
    }
    let resends = scrape::sum(&last, "meshflow_producer_resends_total", &[]);
    let held_back = scrape::sum(
        &last,
        "meshflow_producer_errors_total",
        &[("reason", "resend_full")],
    );
    let unknown = scrape::sum(
        &last,
        "meshflow_producer_resends_total",
        &[("reason", "unknown_server_error")],
    );
    let injected = ROUNDS * PER_ROUND;
    let duplicate_bound = injected * BATCH;
    let memory_bound = before + (CAPACITY + QUEUE) * MEMORY_PER_MESSAGE;
    // The exporter has judged every gap once grace is past the last record.
    let judged = metrics_until(
        exporter.port,
        "the exporter counting every message in the log",
        Duration::from_secs(60),
        |s| stage(s, "meshflow_messages_total", "log", "") == in_log.distinct() as f64,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = scrape::samples(exporter.port).expect("exporter metrics");
    println!(
        "re-send at {RATE} msg/s: sent={N} errors_injected={injected} resends={resends} \
         (unknown_server_error {unknown}) waiting_peak={waiting_peak} held_back={held_back} log_distinct={} \
         log_duplicates={} (bound {duplicate_bound}) exporter_log_duplicates={} \
         rss_before={} MiB rss_peak={} MiB (bound {} MiB) exit={status}",
        in_log.distinct(),
        in_log.duplicates(),
        stage(
            &after,
            "meshflow_messages_duplicated_total",
            "log",
            ""
        ),
        before >> 20,
        peak >> 20,
        memory_bound >> 20,
    );
    assert!(
        status.success(),
        "the producer failed: {}",
        producer.tail_log(20)
    );
    assert_eq!(in_log.distinct(), N as usize, "every message in the log");
    // The injected errors reached the producer, and it sent those messages
    // again: never more new sends than messages the errors could fail.
    assert!(
        unknown >= 1.0,
        "no re-send after unknown_server_error: {resends}"
    );
    assert!(resends <= duplicate_bound as f64, "{resends} re-sends");
    // What a re-send wrote twice is what the exporter reports, and no more
    // than the configuration allows.
    assert!(in_log.duplicates() <= duplicate_bound);
    assert_eq!(
        stage(&after, "meshflow_messages_duplicated_total", "log", ""),
        in_log.duplicates() as f64
    );
    assert_eq!(
        stage(&after, "meshflow_messages_lost_total", "log", ""),
        0.0
    );
    assert_eq!(
        stage(&judged, "meshflow_messages_total", "log", ""),
        in_log.distinct() as f64
    );
    // More waited than the capacity allows: new sends were held back.
    assert!(held_back >= 1.0, "the send loop was never held back");
    assert!(
        waiting_peak <= (CAPACITY + QUEUE) as f64,
        "{waiting_peak} messages waited to be sent again"
    );
    assert!(peak <= memory_bound, "memory grew to {} MiB", peak >> 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_whose_messages_were_not_delivered_exits_1_and_says_how_many() {
    let bed = MockBed::new("undelivered");
    // Nobody leads: every message waits until its time is up.
    bed.lead_all(None, false);
    let mut producer = producer_with(
        bed.dir.path(),
        &bed.bootstrap,
        &bed.names,
        20,
        50,
        &[
            ("MESHFLOW__PRODUCER__MESSAGE_TIMEOUT", "2s"),
            ("MESHFLOW__PRODUCER__SHUTDOWN_FLUSH_TIMEOUT", "5s"),
        ],
    );
    let status = producer.wait_exit(Duration::from_secs(30)).await;
    let log = producer.tail_log(40);
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("20 of 20 messages were not delivered"),
        "{log}"
    );
}
