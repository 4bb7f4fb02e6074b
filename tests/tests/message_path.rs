//! The message path on a real Kafka-protocol broker (Tansu on SQLite):
//! the real producer and consumer binaries, at-least-once across a broker
//! crash and a graceful consumer stop, and poison input. Each test prints
//! its counts. A consumer crash is tested on the mock cluster
//! (`failover.rs`): Tansu 0.6's group coordinator keeps a dead member's
//! partitions assigned after its session expires.

use std::time::{Duration, Instant};

use meshflow_tests::bed::{Bed, PARTITIONS};
use meshflow_tests::ledger::{LogLedger, TopicReader};
use meshflow_tests::{scrape, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_state_every_message_has_exactly_one_receipt() {
    let bed = Bed::new("message-path").await;
    let receipts = bed.reader(&bed.names.receipts);
    let _consumers = bed.consumers(["consumer-a", "consumer-b"]).await;
    let n = 2_000;
    let mut p = bed.producer(n, 500);
    let ledger = receipts.receipts_for(n, Duration::from_secs(120)).await;
    let status = p.wait_exit(Duration::from_secs(60)).await;
    println!(
        "steady state: sent={n} receipts={} distinct={} duplicates={} missing={}",
        ledger.entries,
        ledger.distinct(),
        ledger.duplicates(),
        ledger.missing(&bed.names.producer, n).len()
    );
    assert!(status.success(), "producer exit: {status}");
    assert_eq!(ledger.missing(&bed.names.producer, n), Vec::<u64>::new());
    assert!(
        ledger.counts.values().all(|c| *c == 1),
        "a message has more than one receipt"
    );
    assert_eq!(ledger.entries as u64, n);
    // Both consumers did work.
    for c in ["consumer-a", "consumer-b"] {
        assert!(
            ledger.first_by.values().any(|by| by == c),
            "{c} processed nothing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_and_restarted_loses_nothing() {
    let mut bed = Bed::new("message-path").await;
    let receipts = bed.reader(&bed.names.receipts);
    let _consumers = bed.consumers(["consumer-a", "consumer-b"]).await;
    let n = 3_000;
    let log = TopicReader::start(&bed.broker.bootstrap, &bed.names.topic, PARTITIONS);
    let mut p = bed.producer(n, 500);
    receipts.receipts_for(600, Duration::from_secs(60)).await;
    let fault = Instant::now();
    bed.broker.kill().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    bed.broker.restart().await;
    let restarted = Instant::now();
    let ledger = receipts.receipts_for(n, Duration::from_secs(180)).await;
    let status = p.wait_exit(Duration::from_secs(60)).await;
    let back = ledger
        .first_after(restarted)
        .expect("receipts after the restart");
    let in_log = meshflow_tests::wait_for("the whole log", Duration::from_secs(60), || async {
        let l = LogLedger::from_records(&log.records());
        (l.distinct() as u64 >= n).then_some(l)
    })
    .await;
    println!(
        "broker kill -9: sent={n} log_distinct={} log_duplicates={} distinct={} duplicates={} missing={} \
         down_for={:.2}s receipts_flowing_again={:.2}s_after_restart ({:.2}s after the kill)",
        in_log.distinct(),
        in_log.duplicates(),
        ledger.distinct(),
        ledger.duplicates(),
        ledger.missing(&bed.names.producer, n).len(),
        (restarted - fault).as_secs_f64(),
        back.as_secs_f64(),
        (restarted - fault + back).as_secs_f64(),
    );
    assert!(status.success(), "producer exit: {status}");
    assert_eq!(ledger.missing(&bed.names.producer, n), Vec::<u64>::new());
    // docs/faults.md's claim: the durable broker's crash duplicates nothing,
    // neither in the log (the idempotent producer's retries) nor in
    // processing (offsets were committed for what was receipted).
    assert_eq!(in_log.duplicates(), 0, "duplicates in the log");
    assert_eq!(ledger.duplicates(), 0, "duplicate receipts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_sigterm_hands_over_without_loss_or_duplicates() {
    let bed = Bed::new("message-path").await;
    let receipts = bed.reader(&bed.names.receipts);
    let [mut leaving, _staying] = bed.consumers(["consumer-a", "consumer-b"]).await;
    let n = 3_000;
    let mut p = bed.producer(n, 500);
    receipts.receipts_for(800, Duration::from_secs(60)).await;
    // The consumer that leaves owned partitions and wrote receipts for them,
    // so that there is something to hand over.
    let before = receipts.ledger();
    let owned = before.partitions_of("consumer-a");
    assert!(
        before.entries_by("consumer-a") > 0 && !owned.is_empty(),
        "consumer-a wrote no receipt before the signal"
    );
    let asked = Instant::now();
    leaving.signal(15);
    let exit = leaving.wait_exit(Duration::from_secs(30)).await;
    let took = asked.elapsed();
    let ledger = receipts.receipts_for(n, Duration::from_secs(180)).await;
    let status = p.wait_exit(Duration::from_secs(60)).await;
    let taken_over = ledger.partitions_of("consumer-b");
    println!(
        "consumer SIGTERM: exit={exit} after {:.2}s leaving_owned={owned:?} sent={n} distinct={} duplicates={} missing={}",
        took.as_secs_f64(),
        ledger.distinct(),
        ledger.duplicates(),
        ledger.missing(&bed.names.producer, n).len()
    );
    assert_eq!(
        exit.code(),
        Some(0),
        "consumer exit code; log:\n{}",
        leaving.tail_log(20)
    );
    assert!(status.success(), "producer exit: {status}");
    assert_eq!(ledger.missing(&bed.names.producer, n), Vec::<u64>::new());
    assert_eq!(
        ledger.duplicates(),
        0,
        "a graceful hand-over must not duplicate"
    );
    assert!(
        owned.is_subset(&taken_over),
        "consumer-b took over {taken_over:?}, not all of {owned:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_input_is_dead_lettered_and_unenveloped_is_processed() {
    use meshflow_common::envelope::{HeaderList, CREATED_NS, ERROR, PRODUCER, SEQ, TRACEPARENT};
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let bed = Bed::new("message-path").await;
    let receipts = bed.reader(&bed.names.receipts);
    let [mut c] = bed.consumers(["consumer-a"]).await;
    let dlq = TopicReader::start(&bed.broker.bootstrap, &bed.names.dlq, PARTITIONS);

    let test_producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bed.broker.bootstrap)
        .create()
        .expect("test producer");
    let long_id = "p".repeat(200);
    // Ten each of six kinds of malformed envelope, then 50 with none. The
    // last kind has a header name that is not UTF-8, on which rdkafka's own
    // header accessors panic.
    let malformed: Vec<Vec<(&[u8], &[u8])>> = vec![
        vec![
            (PRODUCER.as_bytes(), b"x"),
            (SEQ.as_bytes(), b"not-a-number"),
            (CREATED_NS.as_bytes(), b"1"),
        ],
        vec![
            (PRODUCER.as_bytes(), long_id.as_bytes()),
            (SEQ.as_bytes(), b"1"),
            (CREATED_NS.as_bytes(), b"1"),
        ],
        vec![
            (PRODUCER.as_bytes(), b"x"),
            (SEQ.as_bytes(), b"1"),
            (SEQ.as_bytes(), b"2"),
            (CREATED_NS.as_bytes(), b"1"),
        ],
        vec![
            (PRODUCER.as_bytes(), &[0xff, 0xfe]),
            (SEQ.as_bytes(), b"1"),
            (CREATED_NS.as_bytes(), b"1"),
        ],
        vec![
            (PRODUCER.as_bytes(), b"x"),
            (SEQ.as_bytes(), b"1"),
            (
                TRACEPARENT.as_bytes(),
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ],
        vec![
            (PRODUCER.as_bytes(), b"x"),
            (SEQ.as_bytes(), b"1"),
            (CREATED_NS.as_bytes(), b"1"),
            (b"mf-\xff\xfe", b"odd name"),
        ],
    ];
    let poison = 10 * malformed.len();
    for i in 0..poison {
        let mut list = HeaderList::new();
        for (k, v) in &malformed[i % malformed.len()] {
            list.push(k, Some(v));
        }
        let headers = list.to_owned_headers();
        let payload = format!("poison-{i}");
        let rec = FutureRecord::<(), _>::to(&bed.names.topic)
            .payload(&payload)
            .headers(headers);
        test_producer
            .send(rec, Duration::from_secs(10))
            .await
            .expect("publish poison");
    }
    for i in 0..50 {
        let payload = format!("plain-{i}");
        let rec = FutureRecord::<(), _>::to(&bed.names.topic).payload(&payload);
        test_producer
            .send(rec, Duration::from_secs(10))
            .await
            .expect("publish plain");
    }
    // Well-formed traffic afterwards still flows.
    let n = 200;
    let mut p = bed.producer(n, 200);
    let ledger = receipts.receipts_for(n, Duration::from_secs(120)).await;
    assert!(p.wait_exit(Duration::from_secs(60)).await.success());
    let dead = wait_for("dead letters", Duration::from_secs(60), || async {
        let r = dlq.records();
        (r.len() >= poison).then_some(r)
    })
    .await;
    let port = c.port;
    let m = wait_for("consumer counts", Duration::from_secs(30), || async move {
        let s = scrape::samples(port)?;
        (scrape::sum(
            &s,
            "meshflow_consumer_messages_total",
            &[("kind", "unenveloped")],
        ) >= 50.0)
            .then_some(s)
    })
    .await;
    let invalid = scrape::sum(&m, "meshflow_consumer_invalid_total", &[]);
    let unenveloped = scrape::sum(
        &m,
        "meshflow_consumer_messages_total",
        &[("kind", "unenveloped")],
    );
    let dead_lettered = scrape::sum(&m, "meshflow_consumer_dead_lettered_total", &[]);
    let mut reasons: Vec<String> = m
        .iter()
        .filter(|(k, v)| k.starts_with("meshflow_consumer_invalid_total{") && **v > 0.0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    reasons.sort();
    println!(
        "poison: dead_letters={} invalid={invalid} dead_lettered={dead_lettered} unenveloped={unenveloped} \
         receipts={} reasons={reasons:?}",
        dead.len(),
        ledger.distinct()
    );
    assert_eq!(dead.len(), poison);
    assert_eq!(invalid, poison as f64);
    assert_eq!(dead_lettered, poison as f64);
    assert_eq!(unenveloped, 50.0);
    for reason in [
        "not_a_number",
        "producer_too_long",
        "duplicated_header",
        "not_utf8",
        "missing_header",
        "header_name_not_utf8",
    ] {
        assert_eq!(
            scrape::sum(&m, "meshflow_consumer_invalid_total", &[("reason", reason)]),
            10.0,
            "{reason}"
        );
    }
    for r in &dead {
        let errors = r.header(ERROR);
        assert_eq!(errors.len(), 1, "one mf-error header");
        let error = String::from_utf8_lossy(errors[0].unwrap_or_default()).to_string();
        assert!(!error.is_empty());
        assert_eq!(
            r.header(TRACEPARENT).len(),
            1,
            "exactly one traceparent on a dead letter"
        );
        assert!(String::from_utf8_lossy(&r.payload).starts_with("poison-"));
        if error.starts_with("header_name_not_utf8") {
            let odd = r
                .headers
                .iter()
                .filter(|(k, _)| k == b"mf-\xff\xfe")
                .count();
            assert_eq!(
                odd, 1,
                "the dead letter keeps the odd header name as it was"
            );
        }
    }
    assert_eq!(ledger.missing(&bed.names.producer, n), Vec::<u64>::new());
    // The harness never restarts a process: one that exited is not running.
    assert!(c.running(), "the consumer must survive poison input");
}
