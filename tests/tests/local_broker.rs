//! The local broker's SQLite file: the indexes `deploy/local/tansu-broker`
//! adds at every start (on a new file and on an existing one), and produce
//! and fetch latency as the file grows. Tansu 0.6 looks every fetched
//! record's headers up by (topition, offset_id) in a table it does not
//! index; without the index a fetch slows down in proportion to the number
//! of headers ever stored. Each test prints its figures.

use std::time::{Duration, Instant};

use meshflow_tests::broker::{create_topics, Tansu};
use meshflow_tests::broker_file::{
    expected_indexes, preload, present_indexes, probe, producer, size, sqlite, HEADER_LOOKUP, PROBE,
};
use meshflow_tests::{unique, WorkDir};

/// Messages preloaded by the growth test: as many as fit its share of the CI
/// budget (about 25 s of producing here); `MESHFLOW_GROWTH_MESSAGES` for more.
const DEFAULT_PRELOAD: usize = 30_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_exist_at_every_start_and_serve_the_header_lookup() {
    let dir = WorkDir::new("broker-indexes");
    let started = Instant::now();
    let mut broker = Tansu::start(dir.path()).await;
    println!("new file: broker answering after {:?}", started.elapsed());
    let db = broker.database();
    let expected = expected_indexes();
    let present = present_indexes(&db);
    for name in &expected {
        assert!(
            present.contains(name),
            "{name} missing on a new file: {present:?}"
        );
    }
    let plan = sqlite(&db, HEADER_LOOKUP);
    println!("header lookup plan:\n{plan}");
    assert!(
        plan.contains("INDEX meshflow_header_record"),
        "header lookup does not use the index:\n{plan}"
    );
    assert!(!plan.contains("SCAN h"), "header lookup scans:\n{plan}");

    // An existing file that lacks them (as one written before the launcher
    // existed): they are added before the broker opens it again.
    broker.kill().await;
    for name in &expected {
        sqlite(&db, &format!("drop index {name}"));
    }
    let started = Instant::now();
    broker.restart().await;
    println!(
        "existing file: broker answering after {:?}",
        started.elapsed()
    );
    let present = present_indexes(&db);
    for name in &expected {
        assert!(
            present.contains(name),
            "{name} missing after a restart: {present:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_fetch_latency_stay_flat_as_the_file_grows() {
    let dir = WorkDir::new("broker-growth");
    let broker = Tansu::start(dir.path()).await;
    let topic = unique("growth");
    create_topics(&broker.bootstrap, &[&topic], 1).await;
    let producer = producer(&broker.bootstrap);

    let empty = probe(&producer, &broker.bootstrap, &topic).await;
    println!("empty file: {empty}");

    let n = std::env::var("MESHFLOW_GROWTH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_PRELOAD);
    let started = Instant::now();
    preload(&producer, &topic, n).await;
    let took = started.elapsed();
    let db = broker.database();
    let headers = sqlite(&db, "select count(*) from header");
    let size = size(&db);
    println!(
        "preloaded {n} messages with 4 headers in {took:?} ({:.0}/s): {} header rows, {:.1} MB",
        n as f64 / took.as_secs_f64(),
        headers.trim(),
        size as f64 / 1e6
    );

    let grown = probe(&producer, &broker.bootstrap, &topic).await;
    println!("grown file: {grown}");
    // Ratios against the empty file, with 100 ms of slack for a machine
    // shared with other work; without the header index the fetch is tens of
    // times slower at this size.
    let slack = Duration::from_millis(100);
    assert!(
        grown.fetch <= empty.fetch * 3 + slack,
        "fetch of the newest {PROBE} records: {:?} on the grown file, {:?} on the empty one",
        grown.fetch,
        empty.fetch
    );
    assert!(
        grown.produce_median <= empty.produce_median * 3 + slack,
        "produce ack median: {:?} on the grown file, {:?} on the empty one",
        grown.produce_median,
        empty.produce_median
    );
}
