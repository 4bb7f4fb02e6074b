//! The runs behind each section of the report, and the goals they are held
//! to. Wall-clock figures are compared only within one run: plain and
//! meshflow alternate round by round (which goes first alternates too), and
//! a ratio is the median of the rounds' ratios, with their range beside it.

use crate::consumer::{self, meshflow_config};
use crate::cpu::Run;
use crate::exporter;
use crate::producer::{self, Load};
use crate::report::Row;
use crate::target::Target;

mod callgrind;
mod end_to_end;

pub use callgrind::callgrind;
pub use end_to_end::latency;

/// How much to run: the full report or the short CI check.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Rounds of each throughput pair.
    pub rounds: usize,
    /// Messages per producer round at saturation.
    pub producer_messages: u64,
    /// Messages per consumer round.
    pub consumer_messages: u64,
    /// Seconds of traffic per latency run at 1,000 msg/s.
    pub latency_secs: u64,
    /// Batches of one million entries through the exporter core.
    pub exporter_batches: u64,
    /// Iterations of each callgrind step.
    pub callgrind_steps: u64,
}

impl Scale {
    /// The full report.
    pub const FULL: Scale = Scale {
        rounds: 3,
        producer_messages: 60_000,
        // At 256-byte payloads and five envelope headers, 6 partitions of
        // the mock cluster keep 60,000 messages whole (5 MB per partition).
        consumer_messages: 60_000,
        latency_secs: 5,
        exporter_batches: 5,
        callgrind_steps: 20_000,
    };
    /// The CI check.
    pub const QUICK: Scale = Scale {
        rounds: 3,
        producer_messages: 40_000,
        consumer_messages: 40_000,
        latency_secs: 3,
        exporter_batches: 2,
        callgrind_steps: 5_000,
    };
}

/// Payload size of every message: meshflow's default.
pub const PAYLOAD_BYTES: usize = 256;

/// Margins for the CI check, from three quick runs and two full runs on
/// 2 shared cores (docs/performance.md has the figures).
/// Wall-clock medians moved between runs by up to a factor of 2.9, so a
/// wall-clock figure fails CI only below half the lowest median seen: that
/// catches a change that halves a rate, not the noise. Instruction counts
/// under callgrind moved by less than 1 %, so they are held to 3 % above
/// today's.
pub mod margin {
    /// A throughput ratio whose goal is met may fall this far below it
    /// (half the 0.95 goal, the rule above).
    pub const THROUGHPUT_RATIO: f64 = 0.47;
    /// The producer's ratio is below its goal: CI holds half the lowest
    /// median seen (0.59) instead.
    pub const PRODUCER_FLOOR: f64 = 0.30;
    /// The consumer's ratio is below its goal: CI holds half the lowest
    /// median seen (0.081) instead.
    pub const CONSUMER_FLOOR: f64 = 0.04;
    /// Added end-to-end p99 without export, milliseconds: measured from
    /// -5.3 to +1.8 ms, so up to 7 ms above the goal is noise.
    pub const ADDED_P99_MS: f64 = 7.0;
    /// Added end-to-end p99 with OTLP export on, milliseconds: measured
    /// from 0.2 to 47 ms; the goal is not met and CI holds twice the
    /// highest seen instead.
    pub const OTLP_ADDED_P99_CEILING_MS: f64 = 100.0;
    /// Exporter entries per second below the 1M/s goal: the lowest seen
    /// was 736k, half of it is 370k.
    pub const EXPORTER_RATE: f64 = 630_000.0;
    /// Receipt bytes per message above the 8-byte goal: records carry
    /// fewer entries (so more framing an entry) when the consumer flushes
    /// more often than the load fills them.
    pub const RECEIPT_BYTES: f64 = 2.0;
    /// Instructions per message under callgrind, as a share of today's.
    pub const INSTRUCTIONS: f64 = 0.03;
}

/// Instructions per message under callgrind measured when the margins were
/// set (quick and full runs agreed within 1 %), raised with the
/// `mf-settled` header (one more header written and parsed per message),
/// the consumer's lowered with receipt format 2 and batch spans: CI fails
/// on 3 % more.
pub mod instructions {
    /// meshflow's producer path ÷ plain, on the application thread
    /// (3.49 before `mf-settled`).
    pub const PRODUCER_RATIO: f64 = 3.72;
    /// meshflow's consumer work per message on the application thread,
    /// with its share of a format-2 receipt record and of one batch span
    /// (15,035 with a JSON receipt and a `send` span per message; 14,512
    /// before `mf-settled`).
    pub const CONSUMER: f64 = 11_589.0;
    /// Envelope + inject + extract + parse (5,907 before `mf-settled`).
    pub const ENVELOPE_ROUND_TRIP: f64 = 6_663.0;
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Per-round plain and meshflow runs, reduced to rows.
struct Rounds {
    plain: Vec<Run>,
    meshflow: Vec<Run>,
}

impl Rounds {
    /// Prints round `round`'s rates as the run goes.
    fn log_round(&self, section: &str, target: &str, round: usize) {
        eprintln!(
            "  {section} {target} round {round}: plain {:.0} msg/s, meshflow {:.0} msg/s",
            self.plain[round].rate(),
            self.meshflow[round].rate()
        );
    }

    /// Per round, meshflow's `measure` over plain's.
    fn ratios(&self, measure: fn(&Run) -> f64) -> Vec<f64> {
        self.plain
            .iter()
            .zip(&self.meshflow)
            .map(|(p, m)| measure(m) / measure(p))
            .collect()
    }

    /// One row of `measure`: both sides' medians, the median ratio and the
    /// range of the rounds' ratios.
    fn row(
        &self,
        (section, target): (&'static str, &'static str),
        label: &str,
        measure: fn(&Run) -> f64,
    ) -> Row {
        let ratios = self.ratios(measure);
        let side = |runs: &[Run]| median(runs.iter().map(measure).collect());
        let mut row = Row::pair(
            section,
            target,
            label,
            side(&self.plain),
            side(&self.meshflow),
        )
        .spread(&ratios);
        row.ratio = Some(median(ratios));
        row
    }

    fn rows(
        &self,
        section: &'static str,
        target: &'static str,
        what: &str,
        goal: Option<(&str, f64)>,
    ) -> Vec<Row> {
        let at = (section, target);
        let mut rate = self.row(at, &format!("{what} msg/s"), Run::rate);
        if let (Some((text, floor)), Some(ratio)) = (goal, rate.ratio) {
            rate = rate
                .goal(text, ratio, 0.95, true, margin::THROUGHPUT_RATIO)
                .ci_floor(floor);
        }
        let cpu = self.row(at, &format!("{what} CPU µs/msg"), Run::cpu_us_per_message);
        vec![rate, cpu]
    }
}

/// Producer pair on `target`: at saturation in rounds, then at a fixed rate.
pub async fn producer(
    target: &Target,
    scale: Scale,
    plain_headers: bool,
    rounds: usize,
) -> anyhow::Result<Vec<Row>> {
    let mut sat = Rounds {
        plain: vec![],
        meshflow: vec![],
    };
    // On the mock cluster also plain with meshflow's five headers: what
    // carrying an envelope costs librdkafka and the broker, apart from
    // meshflow's own code.
    let mut with_headers = Rounds {
        plain: vec![],
        meshflow: vec![],
    };
    let messages = if target.name == "mock" {
        scale.producer_messages
    } else {
        scale.producer_messages / 10
    };
    for round in 0..rounds {
        let topic = meshflow_tests::unique("bench-produce");
        target.create_topics(&[&topic], 6).await?;
        let load = Load {
            bootstrap: target.bootstrap.clone(),
            topic,
            messages,
            rate: None,
            payload_bytes: PAYLOAD_BYTES,
            plain_headers,
        };
        let instance = meshflow_tests::unique("bench-producer");
        if round % 2 == 0 {
            sat.plain.push(producer::plain(&load).await?);
            sat.meshflow
                .push(producer::meshflow(&load, &instance).await?);
        } else {
            sat.meshflow
                .push(producer::meshflow(&load, &instance).await?);
            sat.plain.push(producer::plain(&load).await?);
        }
        if target.name == "mock" && !plain_headers {
            let load = Load {
                plain_headers: true,
                ..load.clone()
            };
            with_headers.plain.push(producer::plain(&load).await?);
            with_headers.meshflow.push(sat.meshflow[round]);
        }
        sat.log_round("producer", target.name, round);
    }
    let goal = (target.name == "mock").then_some(("ratio >= 0.95", margin::PRODUCER_FLOOR));
    let mut rows = sat.rows("producer", target.name, "saturation", goal);
    if !with_headers.plain.is_empty() {
        rows.extend(with_headers.rows(
            "producer",
            target.name,
            "saturation vs plain with the same headers,",
            None,
        ));
    }

    // A fixed rate: the throughput is the same, the CPU it takes is not.
    let rate = if target.name == "mock" {
        10_000.0
    } else {
        1_000.0
    };
    let topic = meshflow_tests::unique("bench-rate");
    target.create_topics(&[&topic], 6).await?;
    let load = Load {
        bootstrap: target.bootstrap.clone(),
        topic,
        messages: (rate * 2.0) as u64,
        rate: Some(rate),
        payload_bytes: PAYLOAD_BYTES,
        plain_headers,
    };
    let fixed = Rounds {
        plain: vec![producer::plain(&load).await?],
        meshflow: vec![producer::meshflow(&load, &meshflow_tests::unique("bench-producer")).await?],
    };
    let cpu = fixed.rows(
        "producer",
        target.name,
        &format!("at {} msg/s", rate as u64),
        None,
    );
    rows.push(cpu[1].clone());
    Ok(rows)
}

/// Consumer pair on `target`, reading one topic filled by meshflow's producer.
pub async fn consumer(target: &Target, scale: Scale) -> anyhow::Result<Vec<Row>> {
    let topic = meshflow_tests::unique("bench-consume");
    let receipts = meshflow_tests::unique("bench-receipts");
    let dlq = format!("{topic}.dlq");
    target.create_topics(&[&topic, &receipts, &dlq], 6).await?;
    let load = Load {
        bootstrap: target.bootstrap.clone(),
        topic: topic.clone(),
        messages: scale.consumer_messages,
        rate: None,
        payload_bytes: PAYLOAD_BYTES,
        plain_headers: false,
    };
    producer::meshflow(&load, &meshflow_tests::unique("bench-fill")).await?;
    // The mock cluster keeps at most 5 MB or 100,000 messages per partition
    // and deletes the oldest beyond that: a round waiting for messages that
    // are gone would never finish.
    let kept = consumer::messages_kept(&target.bootstrap, &topic, 6)?;
    anyhow::ensure!(
        kept == scale.consumer_messages,
        "consumer section: the broker kept {kept} of {} messages; fewer messages or more partitions",
        scale.consumer_messages
    );
    let mut rounds = Rounds {
        plain: vec![],
        meshflow: vec![],
    };
    for round in 0..scale.rounds {
        let plain_group = meshflow_tests::unique("bench-plain");
        let group = meshflow_tests::unique("bench-meshflow");
        let config = meshflow_config(&target.bootstrap, &topic, &group, &receipts, &group);
        let n = scale.consumer_messages;
        if round % 2 == 0 {
            rounds
                .plain
                .push(consumer::plain(&target.bootstrap, &topic, &plain_group, n).await?);
            rounds.meshflow.push(consumer::meshflow(config, n).await?);
        } else {
            rounds.meshflow.push(consumer::meshflow(config, n).await?);
            rounds
                .plain
                .push(consumer::plain(&target.bootstrap, &topic, &plain_group, n).await?);
        }
        rounds.log_round("consumer", target.name, round);
    }
    let goal = (target.name == "mock").then_some(("ratio >= 0.95", margin::CONSUMER_FLOOR));
    Ok(rounds.rows("consumer", target.name, "saturation", goal))
}

/// The exporter's accounting core.
pub fn exporter(scale: Scale) -> Vec<Row> {
    let f = exporter::measure(scale.exporter_batches);
    let producers = exporter::PRODUCERS as f64;
    vec![
        Row::pair(
            "exporter",
            "in-process",
            "receipt entries/s (plain: HashSet insert)",
            f.hash_set_per_sec,
            f.receipts_per_sec,
        )
        .goal(
            ">= 1M entries/s per core",
            f.receipts_per_sec,
            1e6,
            true,
            margin::EXPORTER_RATE,
        ),
        Row::single(
            "exporter",
            "in-process",
            "log + receipt messages/s",
            f.messages_per_sec,
        ),
        Row::pair(
            "exporter",
            "in-process",
            &format!(
                "memory bytes after {}M entries (plain: HashSet)",
                f.entries / 1_000_000
            ),
            f.hash_set_memory as f64,
            f.memory_last as f64,
        ),
        Row::single(
            "exporter",
            "in-process",
            "memory bytes per producer",
            f.memory_last as f64 / producers,
        )
        .goal(
            "memory O(producers): last ÷ first batch <= 1.1",
            f.memory_last as f64 / f.memory_first.max(1) as f64,
            1.1,
            false,
            0.0,
        ),
    ]
}
