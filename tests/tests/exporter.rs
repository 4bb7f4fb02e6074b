//! The exporter on a real Kafka-protocol broker (Tansu on SQLite), as the
//! real `meshflow-exporter` binary, judged by its `/metrics`:
//!
//! - loss and duplicates counted exactly at both stages, from envelopes and
//!   receipts the test writes itself (so it knows the truth), and the text
//!   form passing `promtool check metrics`;
//! - consumer lag of a group that is not consuming, in messages and in
//!   seconds against the wall clock, back to 0 once the real consumer runs;
//! - `kill -9` and a restart mid-run: nothing reported that did not happen,
//!   and reading resumes exactly at the committed offsets;
//! - the broker killed and restarted under it: no loss reported, duplicates
//!   exactly as many as the receipts really hold;
//! - a real Prometheus storing the receipts' trace ids as exemplars;
//! - a bad setting: exit code 2 and one line naming the key.
//!
//! Each test prints what it measured.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use meshflow_common::envelope::now_ns;
use meshflow_tests::bed::{
    assert_all_counted, counts, group_status, lag_messages, lag_seconds, metrics_until,
    seen_at_both_stages, show, Bed, PARTITIONS,
};
use meshflow_tests::exporter::{receipt, stage, trace_id, ReceiptWriter, Sent, TestProducer};
use meshflow_tests::process::Service;
use meshflow_tests::prometheus::{promtool_check, Prometheus};
use meshflow_tests::scenario::{consumer, producer};
use meshflow_tests::{scrape, unique, wait_for, WorkDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_and_duplicates_are_counted_exactly_at_both_stages() {
    let bed = Bed::new("exporter-counts").await;
    let names = &bed.names;
    let exporter = bed.judging_exporter("3s", "5s").await;

    // The exporter reads the fresh topic from offset 0, so the producer is
    // judged from seq 0 and every gap chosen below is judged.
    let n: u64 = 240;
    let skipped = [37, 38, 100, 151, 199];
    let resent = [10, 60, 61, 120];
    let withheld = [45, 90, 130];
    let receipted_twice = [20, 140];
    let producer = TestProducer::new(&bed.broker.bootstrap, &names.topic, &names.producer);
    let sent = producer
        .send_spread((0..n).filter(|s| !skipped.contains(s)), PARTITIONS)
        .await;
    for seq in resent {
        let original = *sent.iter().find(|s| s.seq == seq).expect("sent");
        producer.send_as(original).await;
    }
    // The test plays the consumer group: receipts for all but `withheld`,
    // two of them twice.
    let writer = ReceiptWriter::new(&bed.broker.bootstrap, &names.receipts);
    let entry = |s: &Sent| {
        receipt(
            s,
            &producer.id,
            &names.topic,
            Duration::from_millis(5),
            &trace_id(),
        )
    };
    let receipted: Vec<&Sent> = sent.iter().filter(|s| !withheld.contains(&s.seq)).collect();
    for chunk in receipted.chunks(40) {
        writer
            .write(&names.group, chunk.iter().map(|s| entry(s)).collect(), None)
            .await;
    }
    let again = sent
        .iter()
        .filter(|s| receipted_twice.contains(&s.seq))
        .map(entry)
        .collect();
    writer.write(&names.group, again, None).await;
    // ... and commits past every message, as a consumer does once their
    // receipts are written: only then may a missing receipt count as lost.
    bed.commit_group_to_end().await;

    let (k, d, j, r) = (
        skipped.len() as f64,
        resent.len() as f64,
        withheld.len() as f64,
        receipted_twice.len() as f64,
    );
    let in_log = n as f64 - k;
    let want = [in_log, k, d, in_log - j, j, r];
    let group = names.group.clone();
    let got = metrics_until(
        exporter.port,
        "the exporter's counts to settle",
        Duration::from_secs(90),
        |s| counts(s, &group) == want,
    )
    .await;
    // Settled means settled: nothing more is declared a little later.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = scrape::samples(exporter.port).expect("metrics");
    println!(
        "exact counts: sent={n} skipped(k)={k} resent(d)={d} receipts withheld(j)={j} \
         receipted twice={r}\n  reported: {}\n  4 s later: {}",
        show(counts(&got, &names.group)),
        show(counts(&later, &names.group))
    );
    assert_eq!(counts(&later, &names.group), want);
    let e2e = scrape::sum(&later, "meshflow_e2e_latency_seconds_count", &[]);
    let delivery = scrape::sum(&later, "meshflow_delivery_latency_seconds_count", &[]);
    let skew = scrape::sum(&later, "meshflow_clock_skew_total", &[]);
    println!("  latency samples: e2e={e2e} delivery={delivery} clock_skew={skew}");
    assert_eq!(
        e2e,
        in_log - j,
        "one e2e sample per distinct receipted message"
    );
    assert_eq!(delivery, in_log, "one delivery sample per distinct message");

    let (status, body) = scrape::get(exporter.port, "/metrics", None).expect("metrics");
    assert_eq!(status, 200);
    let check = promtool_check(&body);
    println!("  promtool check metrics: {check}");
    assert!(check.passed, "promtool check metrics:\n{}", check.output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_of_a_stopped_group_tracks_the_clock_and_returns_to_zero() {
    let bed = Bed::new("exporter-lag").await;
    let names = &bed.names;
    let settings = [
        ("MESHFLOW__EXPORTER__POLL_INTERVAL", "500ms"),
        ("MESHFLOW__EXPORTER__STATUS__STOP_AFTER", "3s"),
        ("MESHFLOW__EXPORTER__STATUS__MIN_SAMPLES", "2"),
    ];
    let exporter = bed
        .start_exporter("exporter", &unique("exporter"), &settings)
        .await;

    // The group's consumer is not running: N messages wait for it.
    let n: u64 = 120;
    let producer = TestProducer::new(&bed.broker.bootstrap, &names.topic, &names.producer);
    let mut oldest: BTreeMap<i32, i64> = BTreeMap::new();
    for sent in producer.send_spread(0..n, PARTITIONS).await {
        oldest.entry(sent.partition).or_insert(sent.timestamp_ms);
    }
    let group = names.group.as_str();
    metrics_until(
        exporter.port,
        "lag of all N messages",
        Duration::from_secs(30),
        |s| lag_messages(s, group) == n as f64,
    )
    .await;
    let mut worst: f64 = 0.0;
    for pause in [2, 3] {
        tokio::time::sleep(Duration::from_secs(pause)).await;
        let before_ms = (now_ns() / 1_000_000) as i64;
        let s = scrape::samples(exporter.port).expect("metrics");
        let at_ms = (before_ms + (now_ns() / 1_000_000) as i64) / 2;
        let mut line = Vec::new();
        for (&p, &oldest_ms) in &oldest {
            let want = (at_ms - oldest_ms) as f64 / 1000.0;
            let got = lag_seconds(&s, group, p);
            worst = worst.max((got - want).abs());
            line.push(format!("p{p}: {got:.2}s (clock {want:.2}s)"));
            assert!(
                (got - want).abs() <= 1.0,
                "partition {p}: lag {got:.3}s, but its oldest record waited {want:.3}s"
            );
        }
        println!(
            "lag while stopped: messages={} {}",
            lag_messages(&s, group),
            line.join(" ")
        );
        assert_eq!(lag_messages(&s, group), n as f64);
    }
    let stopped = metrics_until(exporter.port, "status STOP", Duration::from_secs(20), |s| {
        group_status(s, group, "STOP") == 1.0
    })
    .await;
    println!(
        "status while stopped: STOP={} OK={}; worst lag-seconds error {worst:.3}s",
        group_status(&stopped, group, "STOP"),
        group_status(&stopped, group, "OK")
    );

    // The consumer comes (back): lag returns to 0 in messages and seconds.
    let resumed = std::time::Instant::now();
    let c = consumer(bed.dir.path(), &bed.broker.bootstrap, names, "consumer-a");
    let caught_up = metrics_until(
        exporter.port,
        "lag back to 0 and status OK",
        Duration::from_secs(90),
        |s| {
            lag_messages(s, group) == 0.0
                && (0..PARTITIONS).all(|p| lag_seconds(s, group, p) == 0.0)
                && group_status(s, group, "OK") == 1.0
        },
    )
    .await;
    println!(
        "after the consumer started: lag messages={} seconds={} status OK={} within {:.1}s",
        lag_messages(&caught_up, group),
        scrape::sum(
            &caught_up,
            "meshflow_consumer_lag_seconds",
            &[("group", group)]
        ),
        group_status(&caught_up, group, "OK"),
        resumed.elapsed().as_secs_f64()
    );
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_exporter_restarts_without_false_loss_or_duplicates() {
    let bed = Bed::new("exporter-restart").await;
    let names = &bed.names;
    let bootstrap = bed.broker.bootstrap.clone();
    let receipts = bed.reader(&names.receipts);
    let _consumer = bed.consumers(["consumer-a"]).await;
    let group_id = unique("exporter");
    let settings = [
        ("MESHFLOW__EXPORTER__GRACE", "3s"),
        ("MESHFLOW__EXPORTER__SLA", "10s"),
    ];
    let mut first = bed.exporter("exporter-1", &group_id, &settings).await;

    let n: u64 = 1_500;
    let mut p = producer(bed.dir.path(), &bootstrap, names, n, 100);
    let group = names.group.clone();
    let before = metrics_until(
        first.port,
        "the first exporter to see 400 messages",
        Duration::from_secs(60),
        |s| stage(s, "meshflow_messages_total", "log", "") >= 400.0,
    )
    .await;
    first.signal(9);
    first.wait_exit(Duration::from_secs(10)).await;
    let committed = bed.committed_offsets(&group_id).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut second = bed.start_exporter("exporter-2", &group_id, &settings).await;

    assert!(
        p.wait_exit(Duration::from_secs(90)).await.success(),
        "producer exit"
    );
    let truth = receipts.receipts_for(n, Duration::from_secs(120)).await;
    // Let everything the second exporter read become due: grace and SLA
    // after its last read.
    let high = bed.high_watermarks().await;
    let unread: i64 = (0..PARTITIONS)
        .map(|p| high[&p] - committed.get(&p).copied().unwrap_or(0))
        .sum();
    let settled = metrics_until(
        second.port,
        "the second exporter to read everything after the committed offsets",
        Duration::from_secs(60),
        |s| stage(s, "meshflow_messages_total", "log", "") >= unread as f64,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let after = scrape::samples(second.port).expect("metrics");
    println!(
        "exporter kill -9 and restart: sent={n} receipts: {}\n  \
         first exporter before the kill: {}\n  \
         records after its committed offsets: {unread}; second exporter read {} of them\n  \
         second exporter: {}",
        truth.summary(&names.producer, n),
        show(counts(&before, &group)),
        stage(&settled, "meshflow_messages_total", "log", ""),
        show(counts(&after, &group)),
    );
    let [_, lost_before_log, dup_before_log, _, lost_before_processed, dup_before_processed] =
        counts(&before, &group);
    assert_eq!(
        (
            lost_before_log,
            dup_before_log,
            lost_before_processed,
            dup_before_processed
        ),
        (0.0, 0.0, 0.0, 0.0)
    );
    assert!(truth.missing(&names.producer, n).is_empty());
    let [log, lost_log, dup_log, processed, lost_processed, dup_processed] = counts(&after, &group);
    // It resumed exactly at the committed offsets: every record after them
    // read once, nothing before them again.
    assert_eq!(
        log, unread as f64,
        "log messages read by the second exporter"
    );
    assert!(processed > 0.0);
    assert_eq!((lost_log, dup_log, lost_processed), (0.0, 0.0, 0.0));
    assert!(
        dup_processed <= truth.duplicates() as f64,
        "{dup_processed} duplicates reported, {} real",
        truth.duplicates()
    );

    // A graceful stop commits everything read: the next start reads nothing
    // twice.
    second.signal(15);
    let exit = second.wait_exit(Duration::from_secs(30)).await;
    let committed = bed.committed_offsets(&group_id).await;
    println!("  SIGTERM: {exit}; committed {committed:?}, high watermarks {high:?}");
    assert_eq!(exit.code(), Some(0), "{}", second.tail_log(20));
    assert_eq!(committed, high, "committed offsets after SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_is_not_reported_as_loss() {
    let mut bed = Bed::new("exporter-broker-kill").await;
    let names = bed.names.clone();
    let receipts = bed.reader(&names.receipts);
    let _consumer = bed.consumers(["consumer-a"]).await;
    let exporter = bed.judging_exporter("5s", "10s").await;

    let n: u64 = 1_500;
    let mut p = bed.producer(n, 100);
    wait_for("300 receipts", Duration::from_secs(60), || {
        let enough = receipts.ledger().distinct() >= 300;
        async move { enough.then_some(()) }
    })
    .await;
    bed.broker.kill().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    bed.broker.restart().await;

    assert!(
        p.wait_exit(Duration::from_secs(120)).await.success(),
        "producer exit"
    );
    let truth = receipts.receipts_for(n, Duration::from_secs(120)).await;
    let group = names.group.clone();
    seen_at_both_stages(exporter.port, &group, n, Duration::from_secs(60)).await;
    // Past grace and SLA after the last read: anything judged is judged.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let after = scrape::samples(exporter.port).expect("metrics");
    let ok = group_status(&after, &group, "OK");
    println!(
        "broker kill -9 under the exporter: sent={n} receipts: {}\n  \
         exporter: {}; group status OK={ok}",
        truth.summary(&names.producer, n),
        show(counts(&after, &group)),
    );
    assert!(truth.missing(&names.producer, n).is_empty());
    assert_all_counted(&after, &group, n, &truth, "a broker restart loses nothing");
    let [_, _, dup_log, ..] = counts(&after, &group);
    assert_eq!(dup_log, 0.0, "duplicates at stage log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stores_the_receipts_trace_ids_as_exemplars() {
    let bed = Bed::new("exporter-exemplars").await;
    let names = &bed.names;
    let exporter = bed.exporter("exporter", &unique("exporter"), &[]).await;
    let target = ("meshflow-exporter".to_string(), exporter.metrics_target());
    let prometheus =
        Prometheus::start_async(bed.dir.path().to_path_buf(), vec![target], vec![]).await;
    let started_s = now_ns() / 1_000_000_000;

    // One receipt per latency bucket: each bucket keeps its latest exemplar,
    // so every one of these trace ids stays exposed.
    let latencies_ms = [1.2, 4.0, 12.0, 40.0, 120.0, 400.0, 1_200.0, 4_000.0];
    let producer = TestProducer::new(&bed.broker.bootstrap, &names.topic, &names.producer);
    let writer = ReceiptWriter::new(&bed.broker.bootstrap, &names.receipts);
    let mut traces = HashSet::new();
    for (seq, latency_ms) in latencies_ms.iter().enumerate() {
        let sent = producer.send(seq as u64, seq as i32 % PARTITIONS).await;
        let trace = trace_id();
        let latency = Duration::from_secs_f64(latency_ms / 1000.0);
        writer
            .write(
                &names.group,
                vec![receipt(&sent, &producer.id, &names.topic, latency, &trace)],
                None,
            )
            .await;
        traces.insert(trace);
    }

    let found = wait_for(
        "every trace id as an exemplar in Prometheus",
        Duration::from_secs(60),
        || {
            let found = prometheus.exemplar_trace_ids(
                "meshflow_e2e_latency_seconds_bucket",
                started_s - 60,
                now_ns() / 1_000_000_000 + 60,
            );
            let all = traces.is_subset(&found);
            async move { all.then_some(found) }
        },
    )
    .await;
    let count = prometheus.vector("sum(meshflow_e2e_latency_seconds_count)");
    let states = prometheus.vector(&format!(
        "meshflow_consumer_group_status{{group=\"{}\"}}",
        names.group
    ));
    println!(
        "exemplars: wrote {} receipts, Prometheus holds {} trace ids, all {} found; \
         e2e samples in Prometheus: {:?}; status series: {}",
        traces.len(),
        found.len(),
        traces.len(),
        count.first().map(|(_, v)| *v),
        states.len()
    );
    assert_eq!(
        count.first().map(|(_, v)| *v),
        Some(latencies_ms.len() as f64)
    );
    assert_eq!(states.len(), 6, "one series per state");
    assert_eq!(states.iter().filter(|(_, v)| *v == 1.0).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_setting_exits_2_naming_the_key() {
    let dir = WorkDir::new("exporter-config");
    let mut exporter = Service::start(
        "exporter",
        "meshflow-exporter",
        &[(
            "MESHFLOW__EXPORTER__POLL_INTERVAL".to_string(),
            "10ms".to_string(),
        )],
        dir.path(),
    );
    let status = exporter.wait_exit(Duration::from_secs(10)).await;
    let log = std::fs::read_to_string(&exporter.log).unwrap_or_default();
    println!("bad setting: exit={status} output={:?}", log.trim());
    assert_eq!(status.code(), Some(2));
    assert_eq!(log.trim().lines().count(), 1, "{log}");
    assert!(log.contains("`exporter.poll_interval`"), "{log}");
    assert!(log.contains("\"10ms\""), "{log}");
}
