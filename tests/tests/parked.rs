//! A dead letter refused for good parks its partition only, on librdkafka's
//! mock cluster with the real producer and consumer binaries.
//!
//! A malformed record of 999,900 bytes reaches partition 0 while traffic
//! flows. Its dead letter (the same payload plus `mf-error`, `mf-source`
//! and `traceparent`) is larger than the receipt producer's
//! `message.max.bytes` (librdkafka's default, 1,000,000), so it is refused
//! for good. The consumer must neither retry it forever in its one consume
//! loop (which would stop every partition) nor skip it: partition 0 stops
//! at the poison, with its offset never committed past it, while the five
//! other partitions flow on; `/metrics` and `/readyz` say so.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use meshflow_common::envelope::{CREATED_NS, PRODUCER, SEQ};
use meshflow_tests::bed::metrics_until;
use meshflow_tests::ledger::{Record, TopicReader};
use meshflow_tests::mock::{MockBed, PARTITIONS};
use meshflow_tests::scenario::{committed_offsets, consumer, producer, wait_ready};
use meshflow_tests::{scrape, wait_for};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

/// The poison's payload: its dead letter, with the headers the consumer
/// adds, is over the receipt producer's 1,000,000-byte limit.
const POISON_BYTES: usize = 999_900;
const POISONED: i32 = 0;

/// The (producer, seq) of the enveloped records among `records`.
fn message(r: &Record) -> Option<(String, u64)> {
    let producer = r.header(PRODUCER).first().copied().flatten()?;
    let seq = std::str::from_utf8(r.header(SEQ).first().copied().flatten()?)
        .ok()?
        .parse()
        .ok()?;
    Some((String::from_utf8_lossy(producer).into_owned(), seq))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_refused_for_good_parks_its_partition_and_the_others_flow() {
    let bed = MockBed::new("parked");
    bed.lead_all(Some(1), true);
    let names = bed.names.clone();
    let mut c = consumer(bed.dir.path(), &bed.bootstrap, &names, "consumer-a");
    wait_ready(&[&c], Duration::from_secs(60)).await;
    let log = TopicReader::start(&bed.bootstrap, &names.topic, PARTITIONS);
    let dlq = TopicReader::start(&bed.bootstrap, &names.dlq, PARTITIONS);
    let (n, rate) = (3_000u64, 300u32);
    let mut p = producer(bed.dir.path(), &bed.bootstrap, &names, n, rate);
    bed.receipts
        .receipts_for(300, Duration::from_secs(60))
        .await;

    // The poison: an envelope whose mf-seq is not a number.
    let big: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bed.bootstrap)
        .set("message.max.bytes", "2000000")
        .create()
        .expect("poison producer");
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: PRODUCER,
            value: Some("poison"),
        })
        .insert(Header {
            key: SEQ,
            value: Some("not-a-number"),
        })
        .insert(Header {
            key: CREATED_NS,
            value: Some("1"),
        });
    let payload = vec![b'p'; POISON_BYTES];
    let poison_offset = big
        .send(
            FutureRecord::<(), _>::to(&names.topic)
                .partition(POISONED)
                .payload(&payload)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("publish the poison: {e}"))
        .offset;

    let parked = metrics_until(c.port, "partition 0 parked", Duration::from_secs(30), |s| {
        scrape::sum(s, "meshflow_consumer_partitions_parked", &[]) == 1.0
    })
    .await;
    let (status, body) = scrape::get(c.port, "/readyz", None).expect("readyz answers");
    assert!(
        p.wait_exit(Duration::from_secs(60)).await.success(),
        "producer exit"
    );

    // Every message of the other partitions has its receipt, and those of
    // partition 0 before the poison; none after it.
    let expected_after_poison = |r: &Record| r.partition == POISONED && r.offset > poison_offset;
    let wanted: HashSet<(String, u64)> = wait_for(
        "every produced message in the test's log reader",
        Duration::from_secs(60),
        || {
            let records = log.records();
            let all = records.iter().filter_map(message).count() as u64;
            async move {
                (all >= n).then(|| {
                    records
                        .iter()
                        .filter(|r| !expected_after_poison(r))
                        .filter_map(message)
                        .collect()
                })
            }
        },
    )
    .await;
    let held_back: HashSet<(String, u64)> = log
        .records()
        .iter()
        .filter(|r| expected_after_poison(r))
        .filter_map(message)
        .collect();
    let started = Instant::now();
    let done = loop {
        let l = bed.ledger();
        if wanted.iter().all(|m| l.counts.contains_key(m))
            || started.elapsed() > Duration::from_secs(60)
        {
            break l;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Time for anything wrongly taken from partition 0 to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let done_later = bed.ledger();
    let missing = wanted
        .iter()
        .filter(|m| !done.counts.contains_key(*m))
        .count();
    let taken_after_poison = done_later
        .processed_at
        .iter()
        .filter(|(_, _, p, o)| *p == POISONED && *o > poison_offset)
        .count();
    let committed = committed_offsets(&bed.bootstrap, &names, PARTITIONS).await;
    println!(
        "refused dead letter: poison at {POISONED}/{poison_offset}, sent={n}, receipted on the flowing \
         partitions and before the poison: {} of {}, held back after the poison: {}, taken after the \
         poison: {taken_after_poison}, committed on partition {POISONED}: {:?}, readyz {status} {body:?}, \
         dead letters written: {}",
        wanted.len() - missing,
        wanted.len(),
        held_back.len(),
        committed.get(&POISONED),
        dlq.len(),
    );
    assert_eq!(
        scrape::sum(&parked, "meshflow_consumer_partitions_parked", &[]),
        1.0
    );
    assert_eq!(status, 503, "readiness says a partition is parked");
    assert!(body.contains("partitions_flowing"), "{body}");
    assert_eq!(missing, 0, "the other partitions kept flowing");
    assert!(
        !held_back.is_empty(),
        "traffic reached partition 0 after the poison"
    );
    assert_eq!(taken_after_poison, 0, "partition 0 went past the poison");
    assert_eq!(
        committed.get(&POISONED),
        Some(&poison_offset),
        "partition 0 resumes at the poison"
    );
    assert_eq!(dlq.len(), 0, "no dead letter was written");
    assert!(c.running(), "the consumer survives");
}
