//! The exporter's built-in probe (`exporter.probe.enabled`), for clusters
//! without meshflow traffic: it writes its own messages to a probe topic
//! with a partition led by every broker and reads them back, per partition
//! and per broker.
//!
//! - On librdkafka's mock cluster (three brokers, one leading each
//!   partition): every broker is measured; a broker down for seconds shows
//!   as round trips of seconds on its partition only, and costs no message;
//!   records forged into the probe topic, even under the probe's own
//!   producer id, move no figure.
//! - On the local broker (Tansu): the probe creates its topic itself.

use std::collections::HashMap;
use std::time::Duration;

use meshflow_common::envelope::{now_ns, PRODUCER, SEQ};
use meshflow_tests::bed::{metrics_until, Bed};
use meshflow_tests::exporter::{envelope, publish_raw, publish_with, start};
use meshflow_tests::ledger::TopicReader;
use meshflow_tests::mock::MockBed;
use meshflow_tests::scrape::sum;
use meshflow_tests::wait_for;

const BROKERS: i32 = 3;

fn probe_env(topic: &str) -> [(&'static str, &str); 3] {
    [
        ("MESHFLOW__EXPORTER__PROBE__ENABLED", "true"),
        ("MESHFLOW__EXPORTER__PROBE__TOPIC", topic),
        ("MESHFLOW__EXPORTER__PROBE__INTERVAL", "200ms"),
    ]
}

/// A probe counter summed over `labels`.
fn probe(s: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    sum(s, &format!("meshflow_probe_{name}"), labels)
}

/// Round trips of the partition led by `broker` that took more than
/// `seconds` (a bucket bound).
fn slower_than(s: &HashMap<String, f64>, broker: &str, seconds: &str) -> f64 {
    let labels = [("broker", broker)];
    probe(s, "round_trip_seconds_count", &labels)
        - probe(
            s,
            "round_trip_seconds_bucket",
            &[("broker", broker), ("le", seconds)],
        )
}

/// The producer id and sequence number of an enveloped record of
/// partition 0 of `topic` (20 s at most).
async fn first_envelope(bootstrap: &str, topic: &str) -> (String, u64) {
    let reader = TopicReader::start(bootstrap, topic, 1);
    wait_for("an enveloped probe record", Duration::from_secs(20), || {
        let found = reader.records().iter().find_map(|r| {
            let text = |name| std::str::from_utf8(r.header(name).first().copied()??).ok();
            Some((text(PRODUCER)?.to_string(), text(SEQ)?.parse().ok()?))
        });
        async move { found }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broker_is_probed_an_outage_is_latency_on_its_partition_and_nothing_is_lost() {
    let bed = MockBed::new("probe-mock");
    let topic = format!("{}.probe", bed.names.topic);
    bed.mock
        .create_topic(&topic, BROKERS, 3)
        .expect("probe topic");
    for partition in 0..BROKERS {
        bed.mock
            .partition_leader(&topic, partition, Some(partition + 1))
            .expect("leader");
    }
    let env = probe_env(&topic);
    let exporter = start(
        bed.dir.path(),
        &bed.bootstrap,
        &bed.names,
        "exporter",
        "probe-exporter",
        &env,
    );
    let received_by_all = |s: &HashMap<String, f64>| {
        (1..=BROKERS)
            .all(|b| probe(s, "messages_received_total", &[("broker", &b.to_string())]) >= 10.0)
    };
    let before = metrics_until(
        exporter.port,
        "every broker probed",
        Duration::from_secs(60),
        received_by_all,
    )
    .await;
    assert_eq!(probe(&before, "partitions", &[]), f64::from(BROKERS));
    assert_eq!(probe(&before, "brokers_uncovered", &[]), 0.0);
    for b in 1..=BROKERS {
        let leads = format!("partition=\"{}\",broker=\"{b}\"", b - 1);
        assert!(
            before
                .keys()
                .any(|k| k.starts_with("meshflow_probe_messages_received_total")
                    && k.contains(&leads)),
            "broker {b} measured on its own partition"
        );
    }

    // Broker 2 down for 4 s: its partition's messages wait for it.
    bed.mock.broker_down(2).expect("broker 2 down");
    tokio::time::sleep(Duration::from_secs(4)).await;
    bed.mock.broker_up(2).expect("broker 2 up");

    // Records forged into the probe topic: another producer id; and the
    // probe's own id, read from the topic, with a number it never handed
    // out, and with a real number but not its tag.
    for seq in [0, 5, u64::MAX] {
        publish_raw(&bed.bootstrap, &topic, 0, envelope("forger", seq, now_ns())).await;
    }
    let (producer, seq) = first_envelope(&bed.bootstrap, &topic).await;
    let forged = [
        (seq + 1_000_000, "0123456789abcdef"),
        (seq, "0123456789abcdef"),
    ];
    for (seq, payload) in forged {
        publish_with(
            &bed.bootstrap,
            &topic,
            0,
            envelope(&producer, seq, now_ns()),
            payload,
        )
        .await;
    }

    let settled = metrics_until(
        exporter.port,
        "broker 2 measured again",
        Duration::from_secs(60),
        |s| {
            slower_than(s, "2", "2.0") >= 1.0
                && probe(s, "records_foreign_total", &[]) >= 5.0
                && probe(s, "messages_received_total", &[("broker", "2")])
                    > probe(&before, "messages_received_total", &[("broker", "2")]) + 10.0
        },
    )
    .await;
    for b in ["1", "3"] {
        assert_eq!(
            slower_than(&settled, b, "2.0"),
            0.0,
            "broker {b} was never slow"
        );
    }
    assert_eq!(probe(&settled, "messages_lost_total", &[]), 0.0);
    assert_eq!(probe(&settled, "messages_duplicated_total", &[]), 0.0);
    assert_eq!(probe(&settled, "messages_unjudged_total", &[]), 0.0);
    assert_eq!(probe(&settled, "records_foreign_total", &[]), 5.0);
    let acked = probe(&settled, "messages_sent_total", &[("result", "acked")]);
    let received = probe(&settled, "messages_received_total", &[]);
    assert!(received <= acked + probe(&settled, "messages_sent_total", &[("result", "failed")]));
    assert!(
        acked - received <= f64::from(BROKERS) * 5.0,
        "acked {acked}, received {received}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_local_broker_the_probe_creates_its_topic_and_reads_everything_back() {
    let bed = Bed::new("probe-tansu").await;
    let topic = format!("{}.probe", bed.names.topic);
    let env = probe_env(&topic);
    let exporter = bed.start_exporter("exporter", "probe-exporter", &env).await;
    let s = metrics_until(
        exporter.port,
        "probe messages read back",
        Duration::from_secs(60),
        |s| probe(s, "messages_received_total", &[]) >= 20.0,
    )
    .await;
    assert_eq!(probe(&s, "enabled", &[]), 1.0);
    assert_eq!(probe(&s, "partitions", &[]), 1.0);
    assert_eq!(probe(&s, "brokers_uncovered", &[]), 0.0);
    assert_eq!(probe(&s, "messages_lost_total", &[]), 0.0);
    assert_eq!(probe(&s, "messages_duplicated_total", &[]), 0.0);
    assert_eq!(probe(&s, "records_foreign_total", &[]), 0.0);
    assert_eq!(
        probe(&s, "messages_sent_total", &[("result", "failed")]),
        0.0
    );
    let median_bucket = probe(&s, "round_trip_seconds_bucket", &[("le", "1.0")]);
    assert!(
        median_bucket >= probe(&s, "round_trip_seconds_count", &[]) / 2.0,
        "most round trips on one idle local broker take under a second"
    );
}
