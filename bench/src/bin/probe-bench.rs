//! What the exporter's built-in probe costs: CPU time per probe message and
//! resident memory of the process running it, with the round trips it
//! measured, against a real broker (one Tansu on SQLite, in its own
//! process, so the CPU time is the probe's alone). Two runs in the same
//! process: the default (one message per partition per second, one
//! partition per broker) as the baseline, then a heavy one.
//!
//! ```sh
//! cargo run --release -p meshflow-bench --bin probe-bench -- --seconds 20
//! ```

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::ensure;
use clap::Parser;
use meshflow_bench::cpu::{process_ns, rss_mib};
use meshflow_common::config::KafkaConfig;
use meshflow_exporter::config::ProbeConfig;
use meshflow_exporter::groups::Groups;
use meshflow_exporter::metrics::ExporterMetrics;
use meshflow_exporter::probe::Probe;
use meshflow_tests::broker::Tansu;
use meshflow_tests::scrape::{parse, sum};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    /// Seconds each run probes.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// The heavy run's time between rounds, in milliseconds.
    #[arg(long, default_value_t = 50)]
    heavy_interval_ms: u64,
    /// The heavy run's partitions per broker.
    #[arg(long, default_value_t = 16)]
    heavy_partitions: u32,
}

/// The round-trip histogram's cumulative counts by bucket bound, summed
/// over partitions and brokers, in bound order.
fn buckets(samples: &HashMap<String, f64>) -> Vec<(f64, f64)> {
    let mut by_bound: BTreeMap<String, f64> = BTreeMap::new();
    for (series, value) in samples {
        let Some(labels) = series.strip_prefix("meshflow_probe_round_trip_seconds_bucket{") else {
            continue;
        };
        if let Some((le, _)) = labels
            .split_once("le=\"")
            .and_then(|(_, rest)| rest.split_once('"'))
        {
            *by_bound.entry(le.to_string()).or_insert(0.0) += value;
        }
    }
    let mut bounds: Vec<(f64, f64)> = by_bound
        .into_iter()
        .filter_map(|(le, n)| Some((le.parse::<f64>().ok()?, n)))
        .collect();
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    bounds
}

/// The bucket bound under which `q` of the round trips fell.
fn quantile(bounds: &[(f64, f64)], q: f64) -> f64 {
    let total = bounds.last().map_or(0.0, |b| b.1);
    bounds
        .iter()
        .find(|(_, n)| *n >= q * total)
        .map_or(f64::INFINITY, |&(le, _)| le)
}

/// One run's figures.
struct Run {
    received: f64,
    cpu_s: f64,
}

/// CPU time of this process so far, in seconds.
fn cpu_s() -> f64 {
    process_ns() as f64 / 1e9
}

async fn run(
    bootstrap: &str,
    label: &str,
    probe: ProbeConfig,
    seconds: u64,
) -> anyhow::Result<Run> {
    let kafka = KafkaConfig {
        bootstrap_servers: bootstrap.to_string(),
        ..KafkaConfig::default()
    };
    let mut registry = Registry::with_prefix("meshflow");
    let metrics = ExporterMetrics::register(&mut registry, &Groups::new(["bench"]));
    let rss = rss_mib();
    let prober = Probe::new(
        &kafka,
        &probe,
        "bench-exporter",
        &format!("bench-{label}"),
        metrics.probe().clone(),
    )?;
    let stop = CancellationToken::new();
    let task = tokio::spawn(prober.run(stop.clone()));
    // The topic is created and read from its end before the first round.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = cpu_s();
    let started = Instant::now();
    let scrape = || {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        parse(&text)
    };
    let before = sum(&scrape(), "meshflow_probe_messages_received_total", &[]);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let used = cpu_s() - cpu;
    let elapsed = started.elapsed().as_secs_f64();
    let after = scrape();
    stop.cancel();
    task.await?;
    let count = |name: &str| sum(&after, name, &[]);
    let received = count("meshflow_probe_messages_received_total") - before;
    let round_trips = buckets(&after);
    println!(
        "{label}: {} partitions, a round every {} ms: {:.0} messages read back in {:.1} s ({:.1}/s), \
         lost {}, duplicated {}, failed sends {}; round trip p50 ≤ {} s, p99 ≤ {} s; \
         CPU {:.3} s ({:.0} µs per message); rss {:.1} MiB (+{:.1})",
        count("meshflow_probe_partitions"),
        probe.interval.as_millis(),
        received,
        elapsed,
        received / elapsed,
        count("meshflow_probe_messages_lost_total"),
        count("meshflow_probe_messages_duplicated_total"),
        sum(&after, "meshflow_probe_messages_sent_total", &[("result", "failed")]),
        quantile(&round_trips, 0.5),
        quantile(&round_trips, 0.99),
        used,
        1e6 * used / received.max(1.0),
        rss_mib(),
        rss_mib() - rss,
    );
    Ok(Run {
        received,
        cpu_s: used,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.seconds > 0, "seconds must be positive");
    let runtime = tokio::runtime::Runtime::new()?;
    let dir = tempfile::tempdir()?;
    let broker = runtime.block_on(Tansu::start(dir.path()));
    println!("broker: Tansu (SQLite), one broker");
    let baseline = ProbeConfig {
        enabled: true,
        topic: "bench.probe.default".into(),
        ..ProbeConfig::default()
    };
    let heavy = ProbeConfig {
        enabled: true,
        topic: "bench.probe.heavy".into(),
        interval: Duration::from_millis(args.heavy_interval_ms),
        partitions_per_broker: args.heavy_partitions,
        ..ProbeConfig::default()
    };
    let base = runtime.block_on(run(&broker.bootstrap, "default", baseline, args.seconds))?;
    let load = runtime.block_on(run(&broker.bootstrap, "heavy", heavy, args.seconds))?;
    let per_message = |r: &Run| r.cpu_s / r.received.max(1.0);
    println!(
        "heavy against default: {:.0}× the messages, {:.1}× the CPU, {:.2}× the CPU per message",
        load.received / base.received.max(1.0),
        load.cpu_s / base.cpu_s.max(1e-9),
        per_message(&load) / per_message(&base).max(1e-12),
    );
    drop(broker);
    Ok(())
}
