//! The broker's disk fills up under the running system, then space is freed.
//!
//! Tansu's SQLite file lives on a small tmpfs of its own; while traffic
//! flows, a filler file takes every free byte for 10 s and is then deleted.
//! The broker answers what it cannot store with Kafka's retriable
//! `KAFKA_STORAGE_ERROR` (patch 0002 in `deploy/local/tansu/`; stock Tansu
//! 0.6 panics, and panics again after a restart on the first Produce from
//! the running idempotent producers). The producer's client retries the
//! same batches with the same idempotent sequence numbers, so once space
//! returns everything is written once: nothing acknowledged is lost,
//! nothing is in the log twice, no process restarts, and the exporter's
//! figures equal the ledger read from the topics.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use meshflow_tests::bed::{assert_figures_equal_ledger, counts, metrics_until, show, PARTITIONS};
use meshflow_tests::broker::{create_topics, Tansu};
use meshflow_tests::exporter;
use meshflow_tests::ledger::{LogLedger, TopicReader};
use meshflow_tests::scenario::{consumer, producer, wait_ready, Names};
use meshflow_tests::{unique, WorkDir};

/// A tmpfs of `mib` MiB mounted on `path`, unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(path: &Path, mib: u32) -> SmallDisk {
        std::fs::create_dir_all(path).expect("mount point");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount a tmpfs (the disk-full test needs root)"
        );
        SmallDisk {
            path: path.to_path_buf(),
        }
    }

    /// Writes a file that takes every free byte; returns its size.
    fn fill(&self) -> u64 {
        let filler = self.path.join("filler");
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=64k"])
            .arg(format!("of={}", filler.display()))
            .output()
            .expect("run dd");
        std::fs::metadata(&filler).map(|m| m.len()).unwrap_or(0)
    }

    fn free(&self) {
        std::fs::remove_file(self.path.join("filler")).expect("remove the filler");
    }

    /// Free bytes, per `df`.
    fn available(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.path)
            .output()
            .expect("run df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_the_broker_loses_nothing_acknowledged() {
    let dir = WorkDir::new("disk-full");
    let disk = SmallDisk::mount(&dir.path().join("disk"), 64);
    let mut broker = Tansu::start_with_data(dir.path(), &disk.path, "127.0.0.1").await;
    let names = Names::new();
    create_topics(&broker.bootstrap, &names.topics(), PARTITIONS).await;
    let bootstrap = broker.bootstrap.clone();
    let receipts = TopicReader::start(&bootstrap, &names.receipts, PARTITIONS);
    let log = TopicReader::start(&bootstrap, &names.topic, PARTITIONS);
    let exporter_group = unique("exporter");
    let mut exporter = exporter::start(
        dir.path(),
        &bootstrap,
        &names,
        "exporter",
        &exporter_group,
        &[],
    );
    wait_ready(&[&exporter], Duration::from_secs(60)).await;
    exporter::warm_up(&bootstrap, &names, &exporter_group, PARTITIONS).await;
    let mut a = consumer(dir.path(), &bootstrap, &names, "consumer-a");
    let mut b = consumer(dir.path(), &bootstrap, &names, "consumer-b");
    wait_ready(&[&a, &b], Duration::from_secs(60)).await;
    let (n, rate) = (6_000u64, 200u32);
    let mut p = producer(dir.path(), &bootstrap, &names, n, rate);
    receipts.receipts_for(600, Duration::from_secs(60)).await;

    let filled = disk.fill();
    let full_at = Instant::now();
    let left = disk.available();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let broker_alive_while_full = broker.running();
    let during = receipts.ledger().distinct();
    disk.free();
    let freed = Instant::now();

    let truth = receipts.receipts_for(n, Duration::from_secs(120)).await;
    let status = p.wait_exit(Duration::from_secs(60)).await;
    let in_log = LogLedger::from_records(&log.records());
    let back = truth
        .first_after(freed)
        .expect("receipts after space was freed");
    let refused = std::fs::read_to_string(dir.path().join("tansu.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("database or disk is full"))
        .count();
    let after = metrics_until(
        exporter.port,
        "the exporter to count every message at both stages",
        Duration::from_secs(60),
        |s| {
            let c = counts(s, &names.group);
            c[0] >= n as f64 && c[3] >= n as f64
        },
    )
    .await;
    println!(
        "disk full for {:.1}s (filler {} MiB, {left} bytes left) at {rate} msg/s: sent={n} \
         log_distinct={} log_duplicates={} {}\n  \
         storage errors in the broker's log: {refused}; broker running while full: {broker_alive_while_full}; \
         receipted before freeing: {during}; first receipt {:.2}s after freeing\n  exporter: {}",
        (freed - full_at).as_secs_f64(),
        filled >> 20,
        in_log.distinct(),
        in_log.duplicates(),
        truth.summary(&names.producer, n),
        back.as_secs_f64(),
        show(counts(&after, &names.group)),
    );
    // The fault reached the broker: SQLite refused writes.
    assert!(refused > 0, "no write was refused: the disk never filled");
    assert!(status.success(), "producer exit: {status}");
    assert_eq!(truth.missing(&names.producer, n), Vec::<u64>::new());
    assert_eq!(in_log.duplicates(), 0, "a message twice in the log");
    assert!(
        broker_alive_while_full && broker.running(),
        "the broker process survived the full disk (never restarted)"
    );
    assert!(
        a.running() && b.running() && exporter.running(),
        "consumers and exporter still running"
    );
    // The exporter's figures equal the ledger, every series present.
    assert_figures_equal_ledger(
        &after,
        &names.group,
        n,
        in_log.duplicates(),
        truth.duplicates(),
    );
}
