//! The results: one row per compared figure, printed as a table and written
//! as CSV and JSON, with the goal each row is held to.
//!
//! A goal bounds a row's score (the ratio meshflow ÷ plain, the latency
//! meshflow adds, or an absolute figure). `met` compares the score with the
//! goal itself; the CI check (`--check`) fails only when the score misses
//! the goal by more than the row's margin, the spread measured between
//! repeated runs on these shared machines (see docs/performance.md).

use std::fmt::Write as _;
use std::path::Path;

/// A bound on a row's score.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Goal {
    /// The goal as the issue states it, e.g. `ratio >= 0.95`.
    pub text: String,
    /// The figure held to the goal.
    pub score: f64,
    /// The bound.
    pub bound: f64,
    /// Whether the score must be at least (true) or at most (false) the bound.
    pub at_least: bool,
    /// How far below (or above) the bound CI still passes: measurement noise.
    pub margin: f64,
    /// For a goal not met yet: the level CI holds instead (today's figure
    /// less its noise: a floor for an at-least goal, a ceiling for an
    /// at-most one), so that CI catches a regression without failing on the
    /// known gap, which the table still shows as missed.
    pub ci_floor: Option<f64>,
}

impl Goal {
    /// The score meets the goal.
    pub fn met(&self) -> bool {
        if self.at_least {
            self.score >= self.bound
        } else {
            self.score <= self.bound
        }
    }

    /// The score is within the margin of the goal (or above its CI floor).
    pub fn passes_ci(&self) -> bool {
        if let Some(floor) = self.ci_floor {
            return if self.at_least {
                self.score >= floor
            } else {
                self.score <= floor
            };
        }
        if self.at_least {
            self.score >= self.bound - self.margin
        } else {
            self.score <= self.bound + self.margin
        }
    }
}

/// One compared figure.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// producer, consumer, end-to-end, exporter, callgrind.
    pub section: &'static str,
    /// mock, tansu or in-process.
    pub target: &'static str,
    /// What is measured, with its unit.
    pub measure: String,
    /// The plain client's figure, when there is one.
    pub plain: Option<f64>,
    /// meshflow's figure.
    pub meshflow: f64,
    /// meshflow ÷ plain.
    pub ratio: Option<f64>,
    /// Lowest and highest per-round ratio, when measured in rounds.
    pub spread: Option<(f64, f64)>,
    /// The goal this row is held to.
    pub goal: Option<Goal>,
}

impl Row {
    /// A plain-vs-meshflow row.
    pub fn pair(
        section: &'static str,
        target: &'static str,
        measure: &str,
        plain: f64,
        meshflow: f64,
    ) -> Row {
        Row {
            section,
            target,
            measure: measure.to_string(),
            plain: Some(plain),
            meshflow,
            ratio: (plain != 0.0).then(|| meshflow / plain),
            spread: None,
            goal: None,
        }
    }

    /// A meshflow-only row.
    pub fn single(section: &'static str, target: &'static str, measure: &str, value: f64) -> Row {
        Row {
            section,
            target,
            measure: measure.to_string(),
            plain: None,
            meshflow: value,
            ratio: None,
            spread: None,
            goal: None,
        }
    }

    /// Holds the row to a goal.
    pub fn goal(mut self, text: &str, score: f64, bound: f64, at_least: bool, margin: f64) -> Row {
        self.goal = Some(Goal {
            text: text.to_string(),
            score,
            bound,
            at_least,
            margin,
            ci_floor: None,
        });
        self
    }

    /// Sets the CI floor of a goal not met yet.
    pub fn ci_floor(mut self, floor: f64) -> Row {
        if let Some(g) = self.goal.as_mut() {
            g.ci_floor = Some(floor);
        }
        self
    }

    /// Adds the per-round ratio range.
    pub fn spread(mut self, ratios: &[f64]) -> Row {
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() {
            self.spread = Some((lo, hi));
        }
        self
    }
}

/// A figure in a readable width.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn goal_cell(goal: &Option<Goal>) -> String {
    match goal {
        None => String::new(),
        Some(g) => {
            let verdict = if g.met() {
                "met".to_string()
            } else if let Some(floor) = g.ci_floor {
                format!(
                    "MISSED; CI {} {}",
                    if g.at_least { "floor" } else { "ceiling" },
                    num(floor)
                )
            } else if g.passes_ci() {
                "MISSED (within noise)".to_string()
            } else {
                "MISSED".to_string()
            };
            format!("{} [{}: {}]", g.text, verdict, num(g.score))
        }
    }
}

/// The table for stdout.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "section", "target", "measure", "plain", "meshflow", "ratio", "goal",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let ratio = match (r.ratio, r.spread) {
                (Some(x), Some((lo, hi))) => format!("{x:.3} ({lo:.3}-{hi:.3})"),
                (Some(x), None) => format!("{x:.3}"),
                _ => String::new(),
            };
            [
                r.section.to_string(),
                r.target.to_string(),
                r.measure.clone(),
                r.plain.map(num).unwrap_or_default(),
                num(r.meshflow),
                ratio,
                goal_cell(&r.goal),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for c in &cells {
        for (w, s) in widths.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, c: &[String]| {
        for (i, (s, w)) in c.iter().zip(widths).enumerate() {
            let pad = w - s.chars().count();
            if (3..6).contains(&i) {
                let _ = write!(out, "{}{s}  ", " ".repeat(pad));
            } else {
                let _ = write!(out, "{s}{}  ", " ".repeat(pad));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    };
    line(&mut out, &header.map(String::from));
    line(&mut out, &widths.map(|w| "-".repeat(w)));
    for c in &cells {
        line(&mut out, c);
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// CSV, one row per figure.
pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from("section,target,measure,plain,meshflow,ratio,ratio_min,ratio_max,goal,score,met,ci_margin,ci_pass\n");
    let opt = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
    for r in rows {
        let g = r.goal.as_ref();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.section,
            r.target,
            csv_field(&r.measure),
            opt(r.plain),
            r.meshflow,
            opt(r.ratio),
            opt(r.spread.map(|s| s.0)),
            opt(r.spread.map(|s| s.1)),
            csv_field(&g.map(|g| g.text.clone()).unwrap_or_default()),
            opt(g.map(|g| g.score)),
            g.map(|g| g.met().to_string()).unwrap_or_default(),
            opt(g.map(|g| g.margin)),
            g.map(|g| g.passes_ci().to_string()).unwrap_or_default(),
        );
    }
    out
}

/// Where and how the figures were made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Machine {
    /// The command line.
    pub command: String,
    /// `uname -srm`.
    pub kernel: String,
    /// CPU model.
    pub cpu: String,
    /// Cores the process may use.
    pub cores: usize,
    /// 1-minute load average at the start (other work on the machine).
    pub load_at_start: String,
    /// git commit of the tree.
    pub commit: String,
    /// Wall-clock seconds the whole run took.
    pub seconds: f64,
}

impl Machine {
    /// Reads the machine's description.
    pub fn describe(command: String) -> Machine {
        let cmd = |c: &str, args: &[&str]| {
            std::process::Command::new(c)
                .args(args)
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default()
        };
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_default();
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|t| t.split_whitespace().next().map(str::to_string))
            .unwrap_or_default();
        Machine {
            command,
            kernel: cmd("uname", &["-srm"]),
            cpu,
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            load_at_start: load,
            commit: cmd("git", &["rev-parse", "--short", "HEAD"]),
            seconds: 0.0,
        }
    }
}

/// Writes `results.json` and `results.csv` into `dir`.
pub fn write(dir: &Path, machine: &Machine, rows: &[Row]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::json!({ "machine": machine, "rows": rows });
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    std::fs::write(dir.join("results.csv"), csv(rows))?;
    Ok(())
}
