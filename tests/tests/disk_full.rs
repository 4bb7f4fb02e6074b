//! The broker's disk fills up under the running system, then space is freed.
//!
//! Tansu's SQLite file lives on a small tmpfs of its own; while traffic
//! flows, a filler file takes every free byte for 10 s and is then deleted.
//! Producers see errors and retry; nothing acknowledged is lost; the
//! services recover without a restart. Tansu 0.6 panics when SQLite cannot
//! write, and its launcher then kills it (a dead storage task would answer
//! every later request with an error), so the test restarts it after space
//! is freed, as supervisord or the kubelet would.
//!
//! It does not pass on Tansu 0.6, and is left out of the default run: the
//! restarted broker panics again on the first Produce from the running
//! idempotent producers (tansu-storage's `idempotent_message_check` finds no
//! row for the producer id, epoch and partition a client sends: "more or
//! less than one row") and is killed again, so nothing flows after the disk
//! was full. Measured: 812 of 6,000 acknowledged before the disk filled;
//! the rest failed after 32,000 re-sends. Run it with
//! `cargo nextest run -p meshflow-tests -E 'binary(disk_full)' --run-ignored all`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use meshflow_tests::bed::PARTITIONS;
use meshflow_tests::broker::{create_topics, Tansu};
use meshflow_tests::ledger::{LogLedger, TopicReader};
use meshflow_tests::scenario::{consumer, producer, wait_ready, Names};
use meshflow_tests::{scrape, WorkDir};

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
#[ignore = "Tansu 0.6 does not recover from a full disk: see the module documentation"]
async fn a_full_disk_under_the_broker_loses_nothing_acknowledged() {
    let dir = WorkDir::new("disk-full");
    let disk = SmallDisk::mount(&dir.path().join("disk"), 64);
    let mut broker = Tansu::start_with_data(dir.path(), &disk.path, "127.0.0.1").await;
    let names = Names::new();
    create_topics(&broker.bootstrap, &names.topics(), PARTITIONS).await;
    let bootstrap = broker.bootstrap.clone();
    let receipts = TopicReader::start(&bootstrap, &names.receipts, PARTITIONS);
    let log = TopicReader::start(&bootstrap, &names.topic, PARTITIONS);
    let mut a = consumer(dir.path(), &bootstrap, &names, "consumer-a");
    let mut b = consumer(dir.path(), &bootstrap, &names, "consumer-b");
    wait_ready(&[&a, &b], Duration::from_secs(60)).await;
    let (n, rate) = (6_000u64, 200u32);
    let mut p = producer(dir.path(), &bootstrap, &names, n, rate);
    let (pids_a, pids_b) = (a.pid(), b.pid());
    receipts.receipts_for(600, Duration::from_secs(60)).await;

    let filled = disk.fill();
    let full_at = Instant::now();
    let left = disk.available();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let errors_while_full = scrape::samples(p.port)
        .map(|s| scrape::sum(&s, "meshflow_producer_errors_total", &[]))
        .unwrap_or(f64::NAN);
    let broker_alive_while_full = broker.running();
    let during = receipts.ledger().distinct();
    disk.free();
    let freed = Instant::now();
    // The supervisor's part (supervisord in the stack, the kubelet on
    // Kubernetes): a broker that exited is started again, on the same file.
    let restarted = !broker.running();
    if restarted {
        broker.restart().await;
    }

    let truth = receipts.receipts_for(n, Duration::from_secs(120)).await;
    let status = p.wait_exit(Duration::from_secs(60)).await;
    let in_log = LogLedger::from_records(&log.records());
    let back = truth
        .first_after(freed)
        .expect("receipts after space was freed");
    println!(
        "disk full for {:.1}s (filler {} MiB, {left} bytes left) at {rate} msg/s: sent={n} \
         log_distinct={} log_duplicates={} distinct={} duplicates={} missing={}\n  \
         producer errors while full: {errors_while_full}; broker running while full: {broker_alive_while_full}, \
         restarted after freeing: {restarted}; \
         receipted before freeing: {during}; first receipt {:.2}s after freeing",
        (freed - full_at).as_secs_f64(),
        filled >> 20,
        in_log.distinct(),
        in_log.duplicates(),
        truth.distinct(),
        truth.duplicates(),
        truth.missing(&names.producer, n).len(),
        back.as_secs_f64(),
    );
    assert!(status.success(), "producer exit: {status}");
    assert_eq!(truth.missing(&names.producer, n), Vec::<u64>::new());
    assert_eq!(in_log.duplicates(), 0, "a message twice in the log");
    assert!(broker.running(), "the broker survived");
    assert!(a.running() && b.running(), "consumers still running");
    assert_eq!((a.pid(), b.pid()), (pids_a, pids_b), "no restart");
}
