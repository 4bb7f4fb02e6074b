//! `meshflow-bench`: runs every pair side by side and writes the report.
//!
//! `meshflow-bench [--quick] [--check] [--no-tansu] [--no-callgrind]
//! [--only SECTIONS] [--out DIR]` prints the table and writes it to
//! `table.txt`, with `results.json`, `results.csv` and `chart.png` (see
//! `chart`), into DIR (default `docs/bench`); `--check` exits 1 when a goal
//! is missed by more than its noise margin. `meshflow-bench steps NAME N`
//! is what callgrind runs.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use meshflow_bench::report::{self, Machine, Row};
use meshflow_bench::sections::{self, Scale};
use meshflow_bench::target::Target;

#[derive(Parser, Debug)]
#[command(
    name = "meshflow-bench",
    about = "meshflow next to plain rdkafka, side by side"
)]
struct Args {
    /// The short CI version (fewer rounds and messages, no Tansu).
    #[arg(long)]
    quick: bool,
    /// Exit 1 when a goal is missed by more than its margin.
    #[arg(long)]
    check: bool,
    /// Skip the local Tansu broker.
    #[arg(long)]
    no_tansu: bool,
    /// Skip the instruction counts under callgrind.
    #[arg(long)]
    no_callgrind: bool,
    /// Run only these sections (comma-separated: producer, consumer,
    /// latency, exporter, tansu, callgrind); all by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where the report goes.
    #[arg(long, default_value = "docs/bench")]
    out: PathBuf,
    /// `steps NAME N`: run one per-message step N times (for callgrind).
    #[arg(num_args = 0..)]
    steps: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.steps.first().map(String::as_str) == Some("steps") {
        let name = args
            .steps
            .get(1)
            .map(String::as_str)
            .unwrap_or("envelope_round_trip");
        let n = args
            .steps
            .get(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        return meshflow_bench::steps::run(name, n);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(args))
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut machine = Machine::describe(command);
    let scale = if args.quick {
        Scale::QUICK
    } else {
        Scale::FULL
    };
    let provider = meshflow_bench::tracing::install(None)?;
    let mut rows: Vec<Row> = Vec::new();
    let wanted = |section: &str| args.only.is_empty() || args.only.iter().any(|s| s == section);

    if wanted("producer") {
        eprintln!("mock cluster: producer");
        let mock = Target::mock()?;
        rows.extend(sections::producer(&mock, scale, false, scale.rounds).await?);
    }
    if wanted("consumer") {
        eprintln!("mock cluster: consumer");
        let mock = Target::mock()?;
        rows.extend(sections::consumer(&mock, scale).await?);
    }
    if wanted("latency") {
        eprintln!("mock cluster: end-to-end latency");
        let mock = Target::mock()?;
        rows.extend(sections::latency(&mock, scale, true).await?);
    }
    if wanted("exporter") {
        eprintln!("exporter core");
        rows.extend(tokio::task::spawn_blocking(move || sections::exporter(scale)).await?);
    }

    let tansu_ok = wanted("tansu")
        && !args.no_tansu
        && !args.quick
        && std::panic::catch_unwind(meshflow_tests::broker::tansu_binary).is_ok();
    if tansu_ok {
        eprintln!("tansu: producer and end-to-end latency");
        let dir = tempfile::tempdir()?;
        let tansu = Target::tansu(dir.path()).await;
        rows.extend(sections::producer(&tansu, scale, true, 1).await?);
        rows.extend(sections::latency(&tansu, scale, false).await?);
    }

    if wanted("callgrind") && !args.no_callgrind && which("valgrind") {
        eprintln!("callgrind: instructions per message");
        let exe = std::env::current_exe()?;
        let dir = tempfile::tempdir()?;
        let out = dir.path().to_path_buf();
        rows.extend(
            tokio::task::spawn_blocking(move || sections::callgrind(&exe, &out, scale)).await?,
        );
    }
    let _ = provider.shutdown();

    machine.seconds = started.elapsed().as_secs_f64();
    let made = format!(
        "{} on {} ({}, {} cores, load {} at start), commit {}, {:.0} s",
        machine.command,
        machine.cpu,
        machine.kernel,
        machine.cores,
        machine.load_at_start,
        machine.commit,
        machine.seconds
    );
    let table = report::table(&rows);
    println!("{table}\n{made}");
    report::write(&args.out, &machine, &rows)?;
    std::fs::write(args.out.join("table.txt"), format!("{table}\n{made}\n"))?;
    meshflow_bench::chart::draw(&args.out, &rows, &made)?;
    if args.check {
        let failed: Vec<&Row> = rows
            .iter()
            .filter(|r| r.goal.as_ref().is_some_and(|g| !g.passes_ci()))
            .collect();
        for r in &failed {
            eprintln!("FAILED: {} {} {}", r.section, r.target, r.measure);
        }
        if !failed.is_empty() {
            std::process::exit(1);
        }
    }
    Ok(())
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}
