//! Hostile input against the running system on a real broker: while the
//! real producer's traffic flows through a consumer and the exporter, the
//! test writes records no honest producer writes — a header name that is not
//! UTF-8, a forged `mf-seq` of 2^62 and a forged `mf-created-ns` of 0 for the
//! live producer, and a flood of 20,000 distinct producer ids. Nothing
//! restarts, the exporter counts the real traffic exactly, and each hostile
//! record is counted under its reason.

use std::time::Duration;

use futures::future::join_all;
use meshflow_common::envelope::{now_ns, CREATED_NS, PRODUCER, SEQ};
use meshflow_common::headers::HeaderList;
use meshflow_tests::bed::{counts, seen_at_both_stages, show, Bed, PARTITIONS};
use meshflow_tests::exporter::{client, envelope, publish_raw};
use meshflow_tests::{scrape, wait_for};
use rdkafka::producer::FutureRecord;

const FLOOD: u64 = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_records_restart_nothing_and_move_no_figure() {
    let bed = Bed::new("hostile").await;
    let names = bed.names.clone();
    let bootstrap = bed.broker.bootstrap.clone();
    let receipts = bed.reader(&names.receipts);
    let dlq = bed.reader(&names.dlq);
    let [mut c] = bed.consumers(["consumer-a"]).await;
    let mut exporter = bed.judging_exporter("3s", "5s").await;

    let n: u64 = 1_500;
    let mut p = bed.producer(n, 100);
    receipts.receipts_for(300, Duration::from_secs(60)).await;

    // A header name that is not UTF-8, beside a valid-looking envelope.
    let now = now_ns().to_string();
    let mut odd = HeaderList::new();
    for (name, value) in [
        (PRODUCER.as_bytes(), &b"hostile"[..]),
        (SEQ.as_bytes(), b"0"),
        (CREATED_NS.as_bytes(), now.as_bytes()),
        (b"\xff\xfe-name", b"x"),
    ] {
        odd.push(name, Some(value));
    }
    publish_raw(&bootstrap, &names.topic, 0, odd.to_owned_headers()).await;
    // The live producer's id with absurd values.
    let forged = client(&bootstrap);
    for (seq, created_ns) in [(1u64 << 62, now_ns()), (7, 0)] {
        let record = FutureRecord::<(), _>::to(&names.topic)
            .payload("forged")
            .partition(1)
            .headers(envelope(&names.producer, seq, created_ns));
        forged
            .send(record, Duration::from_secs(10))
            .await
            .unwrap_or_else(|(e, _)| panic!("forged record: {e}"));
    }
    // A flood of producer ids, twice the exporter's max_producers.
    let ids: Vec<String> = (0..FLOOD).map(|i| format!("flood-{i}")).collect();
    for chunk in ids.chunks(1_000) {
        let created = now_ns();
        let sends = chunk.iter().enumerate().map(|(i, id)| {
            let record = FutureRecord::<(), _>::to(&names.topic)
                .payload("flood")
                .partition((i % PARTITIONS as usize) as i32)
                .headers(envelope(id, 0, created));
            forged.send(record, Duration::from_secs(30))
        });
        for sent in join_all(sends).await {
            sent.unwrap_or_else(|(e, _)| panic!("flood record: {e}"));
        }
    }

    assert!(
        p.wait_exit(Duration::from_secs(120)).await.success(),
        "producer exit"
    );
    // The flood's receipts share the topic: wait for the real producer's.
    let producer_id = names.producer.clone();
    let truth = wait_for(
        "a receipt for every real message",
        Duration::from_secs(120),
        || {
            let ledger = receipts.ledger();
            let complete = ledger.missing(&producer_id, n).is_empty();
            async move { complete.then_some(ledger) }
        },
    )
    .await;
    let group = names.group.clone();
    let honest = n + FLOOD;
    // The two forged records carry plausible-looking envelopes as far as the
    // consumer can tell: it processes and receipts them too.
    seen_at_both_stages(exporter.port, &group, honest, Duration::from_secs(120)).await;
    wait_for("the dead letter", Duration::from_secs(30), || {
        let one = !dlq.is_empty();
        async move { one.then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let after = scrape::samples(exporter.port).expect("metrics");
    let rejected = |stage: &str, reason: &str| {
        scrape::sum(
            &after,
            "meshflow_envelope_rejected_total",
            &[("stage", stage), ("reason", reason)],
        )
    };
    let invalid = scrape::sum(
        &after,
        "meshflow_messages_invalid_total",
        &[("topic", &names.topic)],
    );
    let evicted = scrape::sum(
        &after,
        "meshflow_exporter_producers_evicted_total",
        &[("reason", "capacity")],
    );
    println!(
        "hostile input while {n} real messages flowed: 1 non-UTF-8 header name, \
         mf-seq=2^62 and mf-created-ns=0 for the live producer, {FLOOD} producer ids\n  \
         receipts: distinct={} (real and flood) missing={} (real); dead letters={}\n  \
         exporter: {}\n  \
         rejected: log seq_jump={} created_too_old={}; processed seq_jump={} created_too_old={}; \
         invalid={invalid}; producers evicted for capacity={evicted}",
        truth.distinct(),
        truth.missing(&names.producer, n).len(),
        dlq.len(),
        show(counts(&after, &group)),
        rejected("log", "seq_jump"),
        rejected("log", "created_too_old"),
        rejected("processed", "seq_jump"),
        rejected("processed", "created_too_old"),
    );
    assert!(truth.missing(&names.producer, n).is_empty());
    assert_eq!(
        dlq.len(),
        1,
        "the record with a non-UTF-8 header name is dead-lettered"
    );
    let [log, lost_log, dup_log, processed, lost_processed, _] = counts(&after, &group);
    assert_eq!(
        (log, processed),
        (honest as f64, honest as f64),
        "counted exactly"
    );
    assert_eq!((lost_log, dup_log, lost_processed), (0.0, 0.0, 0.0));
    assert_eq!(rejected("log", "seq_jump"), 1.0);
    assert_eq!(rejected("log", "created_too_old"), 1.0);
    assert_eq!(rejected("processed", "seq_jump"), 1.0);
    assert_eq!(rejected("processed", "created_too_old"), 1.0);
    assert_eq!(invalid, 1.0, "the non-UTF-8 header name counted invalid");
    assert!(
        evicted >= (FLOOD - 10_000) as f64,
        "the flood evicted ({evicted})"
    );
    // The harness never restarts a process: one that exited is not running.
    assert!(c.running() && exporter.running(), "nothing restarted");
}
