//! A rolling upgrade of the receipt format on a real broker: in one
//! consumer group, a consumer writing format 1 (JSON, as versions before
//! format 2 did) beside one writing format 2 (binary); the old one is then
//! stopped and replaced by a format-2 one, as a rolling restart does. The
//! exporter, reading both from the same topic, counts every message exactly
//! throughout: each once at both stages, none lost, repeated receipts equal
//! to what the receipts topic holds, no receipt record refused.

use std::time::Duration;

use meshflow_common::receipt::{decode, FORMAT_HEADER};
use meshflow_tests::bed::{assert_all_counted, counted, counts, show, Bed};
use meshflow_tests::scenario::{consumer_with, wait_ready};
use meshflow_tests::scrape;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_and_new_receipt_formats_in_one_group_are_counted_exactly() {
    let bed = Bed::new("receipt-formats").await;
    let (dir, bootstrap, names) = (bed.dir.path(), &bed.broker.bootstrap, &bed.names);
    let receipts = bed.reader(&names.receipts);
    let old = [("MESHFLOW__CONSUMER__RECEIPT_FORMAT", "1")];
    let mut before = consumer_with(dir, bootstrap, names, "consumer-format-1", &old);
    let beside = consumer_with(dir, bootstrap, names, "consumer-format-2", &[]);
    wait_ready(&[&before, &beside], Duration::from_secs(60)).await;
    let exporter = bed.judging_exporter("3s", "5s").await;

    let n: u64 = 3_000;
    let mut p = bed.producer(n, 300);
    receipts.receipts_for(900, Duration::from_secs(60)).await;
    // The upgrade: the format-1 consumer stops (its partitions move to the
    // other) and a format-2 one joins in its place.
    before.signal(15);
    assert_eq!(
        before.wait_exit(Duration::from_secs(30)).await.code(),
        Some(0),
        "the old consumer stops cleanly"
    );
    let after_upgrade = consumer_with(dir, bootstrap, names, "consumer-upgraded", &[]);
    wait_ready(&[&after_upgrade], Duration::from_secs(60)).await;
    assert!(
        p.wait_exit(Duration::from_secs(60)).await.success(),
        "producer exit"
    );
    let truth = receipts.receipts_for(n, Duration::from_secs(120)).await;
    let group = names.group.clone();
    counted(exporter.port, &group, n, truth.duplicates() as f64).await;
    // Past grace and SLA after the last receipt: judged is judged.
    tokio::time::sleep(Duration::from_secs(2 * (3 + 5) + 5)).await;
    let after = scrape::samples(exporter.port).expect("metrics");

    let records = receipts.records();
    // Records whose format header is `value` (`None`: without one).
    let format = |value: Option<&[u8]>| {
        records
            .iter()
            .filter(|r| r.header(FORMAT_HEADER).first().copied() == value.map(Some))
            .count()
    };
    let (json, binary) = (format(Some(b"1")), format(Some(b"2")));
    // The invalid series of a topic appears with its first invalid record:
    // none means none refused.
    let refused = scrape::value(
        &after,
        "meshflow_messages_invalid_total",
        &[("topic", &names.receipts)],
    )
    .unwrap_or(0.0);
    println!(
        "receipt formats: sent={n}; receipt records: {json} in format 1, {binary} in format 2, \
         {} without a format header; {}\n  exporter: {}; receipt records refused: {refused}",
        format(None),
        truth.summary(&names.producer, n),
        show(counts(&after, &group)),
    );
    assert!(json > 0, "the format-1 consumer wrote receipts");
    assert!(binary > 0, "the format-2 consumers wrote receipts");
    // The consumers name the format of every record they write; the only
    // records without the header are the test exporter's warm-up ones
    // (format 1, as an older consumer writes them).
    for r in records
        .iter()
        .filter(|r| r.header(FORMAT_HEADER).is_empty())
    {
        let batch = decode(None, &r.payload).expect("a header-less record is format 1");
        assert_eq!(
            batch.group(),
            "warm-up",
            "a consumer's record without its format"
        );
    }
    for by in ["consumer-format-1", "consumer-format-2"] {
        assert!(
            truth.first_by.values().any(|c| c == by),
            "{by} processed messages first"
        );
    }
    assert!(
        truth.missing(&names.producer, n).is_empty(),
        "every message receipted"
    );
    assert_eq!(refused, 0.0, "no receipt record refused");
    assert_all_counted(&after, &group, n, &truth, "a format change loses nothing");
}
