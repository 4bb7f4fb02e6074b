//! A test bed for the end-to-end tests: a real broker and fresh topics,
//! with the exporter, consumers, topic readers and offset look-ups a test
//! asks for; plus the reading of the exporter's figures those tests share
//! (stage counters, consumer lag, group status).

use std::collections::HashMap;
use std::time::Duration;

use crate::broker::{create_topics, Tansu};
use crate::exporter::{self, stage};
use crate::ledger::{Ledger, TopicReader};
use crate::process::Service;
use crate::scenario::{consumer, producer, wait_ready, Names};
use crate::{scrape, unique, wait_for, WorkDir};

/// Partitions of every topic the beds create.
pub const PARTITIONS: i32 = 6;

/// A broker and the test's topics.
pub struct Bed {
    /// The test's directory (logs, the broker's file).
    pub dir: WorkDir,
    /// The broker.
    pub broker: Tansu,
    /// The test's topics and group.
    pub names: Names,
}

impl Bed {
    /// A broker in a fresh directory for `test`, with the test's topics.
    pub async fn new(test: &str) -> Bed {
        Bed::on(test, "127.0.0.1").await
    }

    /// [`Bed::new`] with the broker listening on `address`, one of this
    /// machine's addresses.
    pub async fn on(test: &str, address: &str) -> Bed {
        let dir = WorkDir::new(test);
        let broker = Tansu::start_on(dir.path(), address).await;
        let names = Names::new();
        create_topics(&broker.bootstrap, &names.topics(), PARTITIONS).await;
        Bed { dir, broker, names }
    }

    /// Starts an exporter with consumer group `group_id` and waits until it
    /// is ready and reads every partition.
    pub async fn exporter(&self, name: &str, group_id: &str, extra: &[(&str, &str)]) -> Service {
        let exporter = self.start_exporter(name, group_id, extra).await;
        exporter::warm_up(&self.broker.bootstrap, &self.names, group_id, PARTITIONS).await;
        exporter
    }

    /// An exporter named `exporter` with a fresh group, warmed up, judging
    /// log gaps after `grace` and missing receipts after `sla` (short, so a
    /// test sees its verdicts within seconds).
    pub async fn judging_exporter(&self, grace: &str, sla: &str) -> Service {
        let settings = [
            ("MESHFLOW__EXPORTER__GRACE", grace),
            ("MESHFLOW__EXPORTER__SLA", sla),
        ];
        self.exporter("exporter", &unique("exporter"), &settings)
            .await
    }

    /// Starts an exporter with consumer group `group_id` and waits until it
    /// is ready, not until it reads every partition.
    pub async fn start_exporter(
        &self,
        name: &str,
        group_id: &str,
        extra: &[(&str, &str)],
    ) -> Service {
        let exporter = exporter::start(
            self.dir.path(),
            &self.broker.bootstrap,
            &self.names,
            name,
            group_id,
            extra,
        );
        wait_ready(&[&exporter], Duration::from_secs(60)).await;
        exporter
    }

    /// Consumers of the test's group named `names`, started and ready.
    pub async fn consumers<const N: usize>(&self, names: [&str; N]) -> [Service; N] {
        let started =
            names.map(|name| consumer(self.dir.path(), &self.broker.bootstrap, &self.names, name));
        let refs: Vec<&Service> = started.iter().collect();
        wait_ready(&refs, Duration::from_secs(60)).await;
        started
    }

    /// The test's producer: `n` messages at `rate` per second.
    pub fn producer(&self, n: u64, rate: u32) -> Service {
        producer(
            self.dir.path(),
            &self.broker.bootstrap,
            &self.names,
            n,
            rate,
        )
    }

    /// The high watermark of every partition of the data topic.
    pub async fn high_watermarks(&self) -> HashMap<i32, i64> {
        let (bootstrap, topic) = (self.broker.bootstrap.clone(), self.names.topic.clone());
        tokio::task::spawn_blocking(move || {
            exporter::high_watermarks(&bootstrap, &topic, PARTITIONS)
        })
        .await
        .expect("watermarks")
    }

    /// The offsets `group` has committed on the data topic, by partition.
    pub async fn committed_offsets(&self, group: &str) -> HashMap<i32, i64> {
        let (bootstrap, topic) = (self.broker.bootstrap.clone(), self.names.topic.clone());
        let group = group.to_string();
        tokio::task::spawn_blocking(move || {
            exporter::committed_offsets(&bootstrap, &group, &topic, PARTITIONS)
        })
        .await
        .expect("committed offsets")
    }

    /// Commits the test's group past every message of the data topic, as
    /// its consumers do once their receipts are written.
    pub async fn commit_group_to_end(&self) {
        let high = self.high_watermarks().await;
        let (bootstrap, topic) = (self.broker.bootstrap.clone(), self.names.topic.clone());
        let group = self.names.group.clone();
        tokio::task::spawn_blocking(move || {
            exporter::commit_group(&bootstrap, &group, &topic, &high)
        })
        .await
        .expect("commit task");
    }

    /// Reads `topic` from the start on every partition.
    pub fn reader(&self, topic: &str) -> TopicReader {
        TopicReader::start(&self.broker.bootstrap, topic, PARTITIONS)
    }
}

/// Scrapes `port` until `check` accepts the samples.
pub async fn metrics_until(
    port: u16,
    what: &str,
    timeout: Duration,
    check: impl Fn(&HashMap<String, f64>) -> bool,
) -> HashMap<String, f64> {
    wait_for(what, timeout, || {
        let samples = scrape::samples(port).filter(|s| check(s));
        async move { samples }
    })
    .await
}

/// Scrapes `port` until the exporter has seen at least `n` messages at
/// stage `log` and at stage `processed` for `group`.
pub async fn seen_at_both_stages(
    port: u16,
    group: &str,
    n: u64,
    timeout: Duration,
) -> HashMap<String, f64> {
    metrics_until(
        port,
        &format!("the exporter to see {n} messages at both stages"),
        timeout,
        |s| {
            let c = counts(s, group);
            c[0] >= n as f64 && c[3] >= n as f64
        },
    )
    .await
}

/// The six stage counters of one group, for printing and comparing:
/// (log messages, lost, duplicated, processed messages, lost, duplicated).
pub fn counts(s: &HashMap<String, f64>, group: &str) -> [f64; 6] {
    [
        stage(s, "meshflow_messages_total", "log", ""),
        stage(s, "meshflow_messages_lost_total", "log", ""),
        stage(s, "meshflow_messages_duplicated_total", "log", ""),
        stage(s, "meshflow_messages_total", "processed", group),
        stage(s, "meshflow_messages_lost_total", "processed", group),
        stage(s, "meshflow_messages_duplicated_total", "processed", group),
    ]
}

/// The exporter's samples once it counts `n` messages at both stages and
/// `receipt_duplicates` repeated receipts (two minutes at most).
pub async fn counted(
    port: u16,
    group: &str,
    n: u64,
    receipt_duplicates: f64,
) -> HashMap<String, f64> {
    metrics_until(
        port,
        "the exporter to count every message at both stages and every repeated receipt",
        Duration::from_secs(120),
        |s| {
            let c = counts(s, group);
            c[0] >= n as f64 && c[3] >= n as f64 && c[5] >= receipt_duplicates
        },
    )
    .await
}

/// Asserts that the exporter's figures `after` count all `n` messages at
/// both stages, none of them lost (`why` says why none may be), and exactly
/// as many duplicated receipts as `truth`, what the receipts topic holds.
pub fn assert_all_counted(
    after: &HashMap<String, f64>,
    group: &str,
    n: u64,
    truth: &Ledger,
    why: &str,
) {
    let [log, lost_log, _, processed, lost_processed, dup_processed] = counts(after, group);
    assert_eq!((log, processed), (n as f64, n as f64));
    assert_eq!((lost_log, lost_processed), (0.0, 0.0), "{why}");
    assert_eq!(
        dup_processed,
        truth.duplicates() as f64,
        "duplicated receipts reported vs real"
    );
}

/// Asserts that the exporter's six stage figures `after` equal a ledger read
/// from the topics: `n` messages at both stages, none lost, `log_duplicates`
/// records in the log twice and `receipt_duplicates` repeated receipts.
/// Every series must be published: a missing one fails, it is not read as 0.
pub fn assert_figures_equal_ledger(
    after: &HashMap<String, f64>,
    group: &str,
    n: u64,
    log_duplicates: u64,
    receipt_duplicates: u64,
) {
    let figure = |name: &str, stage: &str, group: &str| {
        scrape::value(after, name, &[("stage", stage), ("group", group)])
            .unwrap_or_else(|| panic!("{name}{{stage={stage},group={group}}} not published"))
    };
    assert_eq!(figure("meshflow_messages_total", "log", ""), n as f64);
    assert_eq!(figure("meshflow_messages_lost_total", "log", ""), 0.0);
    assert_eq!(
        figure("meshflow_messages_duplicated_total", "log", ""),
        log_duplicates as f64
    );
    assert_eq!(
        figure("meshflow_messages_total", "processed", group),
        n as f64
    );
    assert_eq!(
        figure("meshflow_messages_lost_total", "processed", group),
        0.0
    );
    assert_eq!(
        figure("meshflow_messages_duplicated_total", "processed", group),
        receipt_duplicates as f64
    );
}

/// The six counters as one line.
pub fn show(c: [f64; 6]) -> String {
    format!(
        "log: messages={} lost={} duplicated={}; processed: messages={} lost={} duplicated={}",
        c[0], c[1], c[2], c[3], c[4], c[5]
    )
}

/// The exporter's consumer lag of `group` in messages, all partitions.
pub fn lag_messages(s: &HashMap<String, f64>, group: &str) -> f64 {
    scrape::sum(s, "meshflow_consumer_lag_messages", &[("group", group)])
}

/// The exporter's consumer lag of `group` in seconds on `partition`.
pub fn lag_seconds(s: &HashMap<String, f64>, group: &str, partition: i32) -> f64 {
    scrape::sum(
        s,
        "meshflow_consumer_lag_seconds",
        &[("group", group), ("partition", &partition.to_string())],
    )
}

/// 1 when `group`'s status is `state` (OK, WARN, STALL, STOP, ERR), else 0.
pub fn group_status(s: &HashMap<String, f64>, group: &str, state: &str) -> f64 {
    scrape::sum(
        s,
        "meshflow_consumer_group_status",
        &[("group", group), ("meshflow_consumer_group_status", state)],
    )
}
