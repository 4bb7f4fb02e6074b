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
//!
//! With `--clusters N` (N > 1) it measures several clusters instead, as
//! `exporter.clusters` watches them: N brokers, each with the same topic
//! and `--groups` groups, polled first by one poller (one cluster), then by
//! N pollers at once, each on its own thread as the exporter runs them;
//! both in the same process, so the figures are ratios against one cluster:
//!
//! ```sh
//! cargo run --release -p meshflow-bench --bin poll-bench -- --clusters 3 --groups 100 --partitions 20
//! ```

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
    /// Clusters (brokers) watched at once; above 1, the several-clusters
    /// measurement instead of the groups one.
    #[arg(long, default_value_t = 1)]
    clusters: usize,
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
/// A poller of the broker at `bootstrap` whose discovery watches the
/// groups matching `pattern`, as the exporter's home cluster polls.
fn poller(bootstrap: &str, pattern: &str) -> anyhow::Result<ClusterPoller> {
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
    Ok(ClusterPoller::new(
        &kafka,
        TopicMatcher::new(&["bench.events".to_string()], 1, "bench.receipts")?,
        "bench.receipts",
        &Groups::new(["bench-judged"]),
        "bench-exporter",
        &discovery,
    )?)
}

/// Lag figures in a snapshot, and how many have lag in seconds.
fn figures(
    snapshot: &meshflow_exporter::cluster::Snapshot,
) -> anyhow::Result<(usize, usize, usize)> {
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
    Ok((others.groups.len(), lags.len(), with_seconds))
}

fn measure(bootstrap: &str, pattern: &str, label: &str, args: &Args) -> anyhow::Result<Duration> {
    let before = rss_mib();
    let mut poller = poller(bootstrap, pattern)?;
    let mut times = Vec::new();
    for i in 0..args.polls {
        let start = Instant::now();
        let snapshot = poller.poll(meshflow_common::envelope::now_ns());
        let took = start.elapsed();
        times.push(took);
        let (groups, lags, with_seconds) = figures(&snapshot)?;
        println!(
            "{label} poll {}: {:.3} s, groups {groups}, lag figures {lags}, with lag seconds {with_seconds} ({:.0} %), rss {:.1} MiB (+{:.1})",
            i + 1,
            took.as_secs_f64(),
            100.0 * with_seconds as f64 / lags.max(1) as f64,
            rss_mib(),
            rss_mib() - before
        );
    }
    Ok(steady(times))
}

/// Writes `args.records` records to every partition of `topic` on the
/// broker at `bootstrap`.
fn fill(
    runtime: &tokio::runtime::Runtime,
    bootstrap: &str,
    topic: &str,
    args: &Args,
) -> anyhow::Result<()> {
    runtime.block_on(create_topics(
        bootstrap,
        &[topic, "bench.events", "bench.receipts"],
        args.partitions,
    ));
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
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
    })
}

/// The median of the second half of `times`, by when the timestamp caches
/// have filled.
fn steady(mut times: Vec<Duration>) -> Duration {
    let mut steady = times.split_off(times.len() / 2);
    steady.sort();
    steady[steady.len() / 2]
}

/// Polls every one of `pollers` at once, each on its own thread (as the
/// exporter's watch loops do), `args.polls` times; returns the median
/// round of the second half and the memory the pollers added.
fn rounds(
    pollers: &mut [ClusterPoller],
    label: &str,
    before: f64,
    args: &Args,
) -> anyhow::Result<(Duration, f64)> {
    let mut times = Vec::new();
    for i in 0..args.polls {
        let start = Instant::now();
        let snapshots: Vec<_> = std::thread::scope(|scope| {
            let polls: Vec<_> = pollers
                .iter_mut()
                .map(|p| scope.spawn(move || p.poll(meshflow_common::envelope::now_ns())))
                .collect();
            polls.into_iter().map(|h| h.join()).collect()
        });
        let took = start.elapsed();
        times.push(took);
        let mut line = Vec::new();
        for snapshot in snapshots {
            let snapshot = snapshot.map_err(|_| anyhow::anyhow!("a poll panicked"))?;
            let (groups, lags, with_seconds) = figures(&snapshot)?;
            line.push(format!(
                "{groups} groups, {lags} figures ({with_seconds} with seconds)"
            ));
        }
        println!(
            "{label} round {}: {:.3} s; {}; rss +{:.1} MiB",
            i + 1,
            took.as_secs_f64(),
            line.join("; "),
            rss_mib() - before
        );
    }
    Ok((steady(times), rss_mib() - before))
}

/// The several-clusters measurement: one cluster, then `args.clusters`.
fn clusters(runtime: &tokio::runtime::Runtime, args: &Args) -> anyhow::Result<()> {
    let dirs = (0..args.clusters)
        .map(|_| tempfile::tempdir())
        .collect::<Result<Vec<_>, _>>()?;
    let brokers: Vec<Tansu> = dirs
        .iter()
        .map(|dir| runtime.block_on(Tansu::start(dir.path())))
        .collect();
    let topic = "bench.orders";
    let start = Instant::now();
    for broker in &brokers {
        fill(runtime, &broker.bootstrap, topic, args)?;
        commit_groups(&broker.bootstrap, topic, "watched", args.groups, args)?;
    }
    println!(
        "brokers: {} Tansu (SQLite), each one topic of {} partitions × {} records and {} groups committed on every partition, set up in {:.1} s",
        brokers.len(),
        args.partitions,
        args.records,
        args.groups,
        start.elapsed().as_secs_f64()
    );
    let before = rss_mib();
    let mut one = vec![poller(&brokers[0].bootstrap, "watched-.*")?];
    let (one_time, one_rss) = rounds(&mut one, "1 cluster", before, args)?;
    drop(one);
    let before = rss_mib();
    let mut several = brokers
        .iter()
        .map(|b| poller(&b.bootstrap, "watched-.*"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let label = format!("{} clusters", args.clusters);
    let (several_time, several_rss) = rounds(&mut several, &label, before, args)?;
    println!(
        "median round, second half: 1 cluster {:.3} s, +{:.1} MiB; {n} clusters {:.3} s, +{:.1} MiB; \
         ratios {:.2} (time) and {:.2} (memory) for {n}× the clusters",
        one_time.as_secs_f64(),
        one_rss,
        several_time.as_secs_f64(),
        several_rss,
        several_time.as_secs_f64() / one_time.as_secs_f64().max(1e-9),
        several_rss / one_rss.max(1e-9),
        n = args.clusters,
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.records > 0 && args.partitions > 0 && args.clusters > 0 && args.polls > 0,
        "records, partitions, clusters and polls must be positive"
    );
    let runtime = tokio::runtime::Runtime::new()?;
    if args.clusters > 1 {
        return clusters(&runtime, &args);
    }
    let dir = tempfile::tempdir()?;
    let broker = runtime.block_on(Tansu::start(dir.path()));
    let topic = "bench.orders";
    fill(&runtime, &broker.bootstrap, topic, &args)?;
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
