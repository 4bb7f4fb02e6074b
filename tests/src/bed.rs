//! A test bed for the exporter's end-to-end tests: a real broker, fresh
//! topics, and the exporter started and warmed up; plus the scrape helpers
//! those tests share.

use std::collections::HashMap;
use std::time::Duration;

use crate::broker::{create_topics, Tansu};
use crate::exporter::{self, stage};
use crate::process::Service;
use crate::scenario::{wait_ready, Names};
use crate::{scrape, wait_for, WorkDir};

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
        let exporter = exporter::start(
            self.dir.path(),
            &self.broker.bootstrap,
            &self.names,
            name,
            group_id,
            extra,
        );
        wait_ready(&[&exporter], Duration::from_secs(60)).await;
        exporter::warm_up(&self.broker.bootstrap, &self.names, group_id, PARTITIONS).await;
        exporter
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

/// The six counters as one line.
pub fn show(c: [f64; 6]) -> String {
    format!(
        "log: messages={} lost={} duplicated={}; processed: messages={} lost={} duplicated={}",
        c[0], c[1], c[2], c[3], c[4], c[5]
    )
}
