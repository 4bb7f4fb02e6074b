//! What the exporter's cluster poll costs as the cluster grows: poll time and
//! the process's memory for G consumer groups × P partitions on a real
//! broker (one Tansu on SQLite), next to a baseline of 10 groups on the
//! same partitions measured in the same run.
//!
//! ```sh
//! cargo run --release -p meshflow-bench --bin poll-bench -- --groups 1000 --partitions 100
//! ```
//!
//! Every group commits on every partition of one topic, group N at offset
//! (N + p) mod R on partition p (R records per partition), so lag in seconds
//! needs the timestamps of R × P distinct records, shared by the groups
//! through the exporter's cache: the first polls read as many as fit in
//! their time bound and the cache fills over the following ones. Each poll prints its time, the lag
//! figures it has, how many of them have lag in seconds, and the resident
//! memory.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use clap::Parser;
use meshflow_bench::cpu::rss_mib;
use meshflow_common::config::KafkaConfig;
use meshflow_exporter::cluster::ClusterPoller;
use meshflow_exporter::config::{DiscoveryConfig, TopicMatcher};
use meshflow_exporter::groups::Groups;
use meshflow_tests::broker::{create_topics, Tansu};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

#[derive(Parser)]
struct Args {
    /// Consumer groups, each committed on every partition.
    #[arg(long, default_value_t = 1000)]
    groups: usize,
    /// Partitions of the one topic.
    #[arg(long, default_value_t = 100)]
    partitions: i32,
    /// Records per partition.
    #[arg(long, default_value_t = 20)]
    records: i64,
    /// Polls measured per run.
    #[arg(long, default_value_t = 6)]
    polls: usize,
}

/// Commits offsets for `groups` groups named `prefix-N` on every partition;
/// group N sits at offset (N + p) mod `records`.
fn commit_groups(
    bootstrap: &str,
    topic: &str,
    prefix: &str,
    groups: usize,
    args: &Args,
) -> anyhow::Result<()> {
    for g in 0..groups {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", format!("{prefix}-{g}"))
            .set("enable.auto.commit", "false")
            .create()?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..args.partitions {
            let offset = (g as i64 + i64::from(p)) % args.records;
            tpl.add_partition_offset(topic, p, Offset::Offset(offset))?;
        }
        client
            .commit(&tpl, CommitMode::Sync)
            .with_context(|| format!("commit group {g}"))?;
    }
    Ok(())
}

/// Polls `polls` times with discovery watching groups matching `pattern`;
/// prints one line per poll and returns the median of the second half, by
/// when the timestamp cache has filled.
fn measure(bootstrap: &str, pattern: &str, label: &str, args: &Args) -> anyhow::Result<Duration> {
    let kafka = KafkaConfig {
        bootstrap_servers: bootstrap.to_string(),
        ..KafkaConfig::default()
    };
    let discovery = DiscoveryConfig {
        allow_groups: pattern.to_string(),
        max_groups: 10_000,
        max_partitions: 1_000_000,
        ..DiscoveryConfig::default()
    };
    let before = rss_mib();
    let mut poller = ClusterPoller::new(
        &kafka,
        TopicMatcher::new(&["bench.events".to_string()], 1, "bench.receipts")?,
        "bench.receipts",
        &Groups::new(["bench-judged"]),
        "bench-exporter",
        &discovery,
    )?;
    let mut times = Vec::new();
    for i in 0..args.polls {
        let start = Instant::now();
        let snapshot = poller.poll(meshflow_common::envelope::now_ns());
        let took = start.elapsed();
        times.push(took);
        let others = snapshot
            .others
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let lags: Vec<_> = others
            .groups
            .iter()
            .filter_map(|g| g.partitions.as_ref().ok())
            .flatten()
            .collect();
        let with_seconds = lags.iter().filter(|l| l.sample.is_ok()).count();
        println!(
            "{label} poll {}: {:.3} s, groups {}, lag figures {}, with lag seconds {} ({:.0} %), rss {:.1} MiB (+{:.1})",
            i + 1,
            took.as_secs_f64(),
            others.groups.len(),
            lags.len(),
            with_seconds,
            100.0 * with_seconds as f64 / lags.len().max(1) as f64,
            rss_mib(),
            rss_mib() - before
        );
    }
    let mut steady = times.split_off(times.len() / 2);
    steady.sort();
    Ok(steady[steady.len() / 2])
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.records > 0 && args.partitions > 0,
        "records and partitions must be positive"
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let dir = tempfile::tempdir()?;
    let broker = runtime.block_on(Tansu::start(dir.path()));
    let topic = "bench.orders";
    runtime.block_on(create_topics(
        &broker.bootstrap,
        &[topic, "bench.events", "bench.receipts"],
        args.partitions,
    ));
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("linger.ms", "5")
        .create()?;
    runtime.block_on(async {
        let mut sends = Vec::new();
        for p in 0..args.partitions {
            for r in 0..args.records {
                let payload = format!("{p}-{r}");
                let record = FutureRecord::<(), _>::to(topic)
                    .payload(&payload)
                    .partition(p);
                sends.push(producer.send_result(record).map_err(|(e, _)| e)?);
            }
        }
        for sent in sends {
            sent.await?.map_err(|(e, _)| e)?;
        }
        anyhow::Ok(())
    })?;
    let start = Instant::now();
    commit_groups(&broker.bootstrap, topic, "small", 10, &args)?;
    commit_groups(&broker.bootstrap, topic, "large", args.groups, &args)?;
    println!(
        "broker: Tansu (SQLite), one topic of {} partitions × {} records; {} + 10 groups committed on every partition in {:.1} s",
        args.partitions,
        args.records,
        args.groups,
        start.elapsed().as_secs_f64()
    );
    let baseline = measure(&broker.bootstrap, "small-.*", "10 groups", &args)?;
    let large = measure(
        &broker.bootstrap,
        "large-.*",
        &format!("{} groups", args.groups),
        &args,
    )?;
    println!(
        "median poll, second half: 10 groups × {p} partitions {:.3} s; {g} groups × {p} partitions {:.3} s; ratio {:.1} for {:.0}× the groups",
        baseline.as_secs_f64(),
        large.as_secs_f64(),
        large.as_secs_f64() / baseline.as_secs_f64().max(1e-9),
        args.groups as f64 / 10.0,
        p = args.partitions,
        g = args.groups,
    );
    Ok(())
}
