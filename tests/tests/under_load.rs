//! Late is not lost: the broker stalls under the running system for longer
//! than the exporter's grace and SLA, and nothing is reported lost.
//!
//! Tansu is stopped with SIGSTOP while the producer, two consumers and the
//! exporter run: every connection stays open and nothing answers, as when
//! the broker is overloaded. The exporter must say it cannot judge (its read
//! lag rises past the stall) instead of judging, and once the broker runs
//! again and everything is caught up: 0 lost at both stages, the duplicates
//! it reports equal to the receipts that really repeat, and every message
//! with its receipts.

use std::time::{Duration, Instant};

use meshflow_tests::bed::{assert_all_counted, counts, seen_at_both_stages, show, Bed};
use meshflow_tests::scrape;

const SIGSTOP: i32 = 19;
const SIGCONT: i32 = 18;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_stall_longer_than_grace_and_sla_is_late_not_lost() {
    let bed = Bed::new("broker-stall").await;
    let names = &bed.names;
    let receipts = bed.reader(&names.receipts);
    let [mut a, mut b] = bed.consumers(["consumer-a", "consumer-b"]).await;
    let grace = Duration::from_secs(3);
    let sla = Duration::from_secs(5);
    let mut exporter = bed.judging_exporter("3s", "5s").await;

    let n: u64 = 2_400;
    let mut p = bed.producer(n, 200);
    receipts.receipts_for(500, Duration::from_secs(60)).await;

    let stall = Duration::from_secs(12);
    assert!(
        stall > grace + sla,
        "the stall outlasts grace and SLA together"
    );
    bed.broker.signal(SIGSTOP);
    let stopped = Instant::now();
    let mut read_lag_seen: f64 = 0.0;
    while stopped.elapsed() < stall {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(s) = scrape::samples(exporter.port) {
            let lag = scrape::sum(
                &s,
                "meshflow_exporter_read_lag_seconds",
                &[("topic", &names.topic)],
            );
            read_lag_seen = read_lag_seen.max(lag);
        }
    }
    let during = scrape::samples(exporter.port).expect("metrics during the stall");
    bed.broker.signal(SIGCONT);
    let resumed = Instant::now();

    assert!(
        p.wait_exit(Duration::from_secs(180)).await.success(),
        "producer exit"
    );
    let truth = receipts.receipts_for(n, Duration::from_secs(180)).await;
    let caught_up = resumed.elapsed();
    let group = names.group.clone();
    seen_at_both_stages(exporter.port, &group, n, Duration::from_secs(90)).await;
    // Past grace and SLA after the last read and commit: judged is judged.
    tokio::time::sleep(2 * (grace + sla) + Duration::from_secs(5)).await;
    let after = scrape::samples(exporter.port).expect("metrics");
    let read_lag_after = scrape::sum(
        &after,
        "meshflow_exporter_read_lag_seconds",
        &[("topic", &names.topic)],
    );
    println!(
        "broker SIGSTOP for {stall:?} at 200 msg/s (grace {grace:?}, SLA {sla:?}): sent={n}\n  \
         receipts: {}; caught up {caught_up:?} after SIGCONT\n  \
         exporter during the stall: {}\n  \
         exporter read lag: max {read_lag_seen:.1} s during the stall, {read_lag_after:.1} s after\n  \
         exporter after: {}",
        truth.summary(&names.producer, n),
        show(counts(&during, &group)),
        show(counts(&after, &group)),
    );
    assert!(
        truth.missing(&names.producer, n).is_empty(),
        "every message receipted"
    );
    assert!(
        read_lag_seen >= stall.as_secs_f64() - 4.0,
        "the exporter says it is behind while the broker is stalled ({read_lag_seen:.1} s)"
    );
    // Caught up: behind by at most two of its 1 s polls.
    assert!(
        read_lag_after < 2.0,
        "and caught up after ({read_lag_after:.1} s)"
    );
    assert_all_counted(&after, &group, n, &truth, "a stall is late, never lost");
    let [_, _, dup_log, ..] = counts(&after, &group);
    assert_eq!(
        dup_log, 0.0,
        "the idempotent producer writes each message once"
    );
    for service in [&mut a, &mut b, &mut exporter] {
        assert!(service.running(), "{} still running", service.name);
    }
}
