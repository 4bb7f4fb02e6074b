//! Loss among a producer's very first messages is counted when the
//! exporter's reading covers the whole history: an exporter that reads
//! every partition of the data topic from offset 0 judges each producer it
//! meets from seq 0, so seq 0, 1, 2, … missing is loss like any other gap.
//! An exporter that starts mid-stream keeps its per-partition floors and
//! counts nothing it cannot know.

use std::time::Duration;

use meshflow_tests::bed::{counts, metrics_until, show, Bed, PARTITIONS};
use meshflow_tests::exporter::TestProducer;
use meshflow_tests::unique;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_among_a_new_producers_first_messages_are_each_counted() {
    let bed = Bed::new("first-messages").await;
    let names = &bed.names;
    // Started on empty topics: every partition is read from offset 0.
    let exporter = bed.judging_exporter("3s", "5s").await;

    // Two brand-new producers; the first loses its very first messages
    // (including seq 0), the second loses two of its first six, one per
    // partition, which the floors used to hide.
    let first_lost = [0u64, 1, 7, 13];
    let second_lost = [2u64, 3];
    let n: u64 = 60;
    let a = TestProducer::new(&bed.broker.bootstrap, &names.topic, &unique("new-a"));
    let b = TestProducer::new(&bed.broker.bootstrap, &names.topic, &unique("new-b"));
    a.send_spread((0..n).filter(|s| !first_lost.contains(s)), PARTITIONS)
        .await;
    b.send_spread((0..n).filter(|s| !second_lost.contains(s)), PARTITIONS)
        .await;

    let lost = (first_lost.len() + second_lost.len()) as f64;
    let seen = (2 * n) as f64 - lost;
    let s = metrics_until(
        exporter.port,
        "every message seen and every gap judged",
        Duration::from_secs(60),
        |s| {
            let [log, lost_log, ..] = counts(s, &names.group);
            log == seen && lost_log >= lost
        },
    )
    .await;
    // Judged again after more than the grace: nothing else is declared.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = meshflow_tests::scrape::samples(exporter.port).expect("metrics");
    let c = counts(&after, &names.group);
    println!(
        "first messages lost: {} (expected log lost={lost})",
        show(c)
    );
    assert_eq!(counts(&s, &names.group)[1], lost);
    assert_eq!((c[0], c[1], c[2]), (seen, lost, 0.0));
}
