//! The report's picture: `chart.png`, four panels drawn from the same rows
//! as the table. Throughput and CPU per message as meshflow ÷ plain (the
//! goal as a line), end-to-end latency percentiles of plain and meshflow
//! side by side on the mock cluster, and instructions per message under
//! callgrind.
//!
//! Text needs a TrueType font: DejaVu Sans from Debian's `fonts-dejavu-core`
//! (or `MESHFLOW_BENCH_FONT`). Without one the chart is skipped with a
//! warning; the table, CSV and JSON are written all the same.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::report::{num, Row};

/// Where the font is looked for when `MESHFLOW_BENCH_FONT` is not set.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

const PLAIN: RGBColor = RGBColor(150, 150, 150);
const MESHFLOW: RGBColor = RGBColor(31, 119, 180);
const PLAIN_BESIDE_OTLP: RGBColor = RGBColor(205, 205, 205);
const OTLP: RGBColor = RGBColor(255, 127, 14);
const GOAL: RGBColor = RGBColor(214, 39, 40);

/// One labelled group of bars.
struct Group {
    label: String,
    bars: Vec<(f64, RGBColor)>,
}

/// One panel: a title, groups of horizontal bars, an optional goal line.
struct Panel {
    title: &'static str,
    groups: Vec<Group>,
    goal: Option<f64>,
    legend: Vec<(&'static str, RGBColor)>,
}

/// Registers the font once; false when there is none.
fn font_ready() -> bool {
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *READY.get_or_init(|| {
        let path = std::env::var("MESHFLOW_BENCH_FONT").unwrap_or_else(|_| FONT.to_string());
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!("chart: no font at {path}; chart.png not drawn");
            return false;
        };
        // Registered for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    })
}

fn short(row: &Row) -> String {
    let measure = row.measure.split(',').next().unwrap_or(&row.measure);
    format!("{} {} {}", row.section, row.target, measure)
}

fn ratio_panel(rows: &[Row], title: &'static str, unit: &str, goal: Option<f64>) -> Panel {
    let groups = rows
        .iter()
        .filter(|r| r.measure.ends_with(unit) && r.ratio.is_some() && r.section != "exporter")
        .map(|r| Group {
            label: format!(
                "{}: {:.2}",
                short(r).trim_end_matches(unit).trim_end(),
                r.ratio.unwrap_or(0.0)
            ),
            bars: vec![(r.ratio.unwrap_or(0.0), MESHFLOW)],
        })
        .collect();
    Panel {
        title,
        groups,
        goal,
        legend: vec![("meshflow ÷ plain", MESHFLOW)],
    }
}

fn latency_panel(rows: &[Row]) -> Panel {
    let mut groups = Vec::new();
    for pct in ["p50", "p99", "p99.9"] {
        // Tansu's figures are ten times larger: they stay in the table.
        for target in ["mock"] {
            let find = |variant: &str| {
                rows.iter().find(|r| {
                    r.section == "end-to-end"
                        && r.target == target
                        && r.measure == format!("{pct} ms, {variant}")
                })
            };
            let (Some(off), on) = (find("OTLP off"), find("OTLP on")) else {
                continue;
            };
            // Each meshflow run has its own plain run beside it.
            let mut bars = vec![(off.plain.unwrap_or(0.0), PLAIN), (off.meshflow, MESHFLOW)];
            let mut label = format!(
                "{target} {pct}: plain {} vs {} OTLP off",
                num(off.plain.unwrap_or(0.0)),
                num(off.meshflow)
            );
            if let Some(on) = on {
                bars.push((on.plain.unwrap_or(0.0), PLAIN_BESIDE_OTLP));
                bars.push((on.meshflow, OTLP));
                label.push_str(&format!(
                    "; plain {} vs {} OTLP on",
                    num(on.plain.unwrap_or(0.0)),
                    num(on.meshflow)
                ));
            }
            groups.push(Group { label, bars });
        }
    }
    Panel {
        title: "end-to-end latency at 1,000 msg/s, mock cluster, ms",
        groups,
        goal: None,
        legend: vec![
            ("plain, beside OTLP off", PLAIN),
            ("meshflow, OTLP off", MESHFLOW),
            ("plain, beside OTLP on", PLAIN_BESIDE_OTLP),
            ("meshflow, OTLP on", OTLP),
        ],
    }
}

fn callgrind_panel(rows: &[Row]) -> Panel {
    let groups = rows
        .iter()
        .filter(|r| r.section == "callgrind")
        .map(|r| {
            let mut bars = Vec::new();
            if let Some(p) = r.plain {
                bars.push((p, PLAIN));
            }
            bars.push((r.meshflow, MESHFLOW));
            let what = r
                .measure
                .split(" instructions")
                .next()
                .unwrap_or(&r.measure);
            let label = match r.plain {
                Some(p) => format!("{what}: {} / {}", num(p), num(r.meshflow)),
                None => format!("{what}: {}", num(r.meshflow)),
            };
            Group { label, bars }
        })
        .collect();
    Panel {
        title: "instructions per message (callgrind)",
        groups,
        goal: None,
        legend: vec![("plain", PLAIN), ("meshflow", MESHFLOW)],
    }
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    panel: &Panel,
) -> anyhow::Result<()> {
    let top = panel
        .groups
        .iter()
        .flat_map(|g| g.bars.iter().map(|b| b.0))
        .chain(panel.goal)
        .fold(0.0_f64, f64::max)
        .max(1e-9)
        * 1.4;
    let rows = panel.groups.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(8)
        .build_cartesian_2d(0.0..top, rows..0.0)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(6)
        .x_label_formatter(&|v| num(*v))
        .label_style(("sans-serif", 13))
        .draw()?;
    for (i, g) in panel.groups.iter().enumerate() {
        let slot = 0.62 / g.bars.len().max(1) as f64;
        for (j, (value, color)) in g.bars.iter().enumerate() {
            let y0 = i as f64 + 0.34 + j as f64 * slot;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, y0), (*value, y0 + slot * 0.9)],
                color.filled(),
            )))?;
        }
        chart.draw_series(std::iter::once(Text::new(
            g.label.clone(),
            (top * 0.005, i as f64 + 0.04),
            ("sans-serif", 14).into_font().color(&BLACK),
        )))?;
    }
    if let Some(goal) = panel.goal {
        chart
            .draw_series(LineSeries::new(
                [(goal, 0.0), (goal, rows)],
                GOAL.stroke_width(2),
            ))?
            .label(format!("goal {goal}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], GOAL.stroke_width(2)));
    }
    for (name, color) in &panel.legend {
        let color = *color;
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

/// Draws `chart.png` into `dir` from `rows`; `subtitle` names the machine
/// and command. Returns false (with a warning) when no font was found.
pub fn draw(dir: &Path, rows: &[Row], subtitle: &str) -> anyhow::Result<bool> {
    if !font_ready() {
        return Ok(false);
    }
    let path = dir.join("chart.png");
    let root = BitMapBackend::new(&path, (1400, 1000)).into_drawing_area();
    root.fill(&WHITE)?;
    let (head, body) = root.split_vertically(54);
    head.draw(&Text::new(
        "meshflow next to plain rdkafka",
        (14, 6),
        ("sans-serif", 24).into_font().color(&BLACK),
    ))?;
    head.draw(&Text::new(
        subtitle.to_string(),
        (14, 33),
        ("sans-serif", 13).into_font().color(&BLACK),
    ))?;
    let panels = [
        ratio_panel(rows, "throughput, meshflow ÷ plain", "msg/s", Some(0.95)),
        ratio_panel(
            rows,
            "CPU per message, meshflow ÷ plain",
            "CPU µs/msg",
            None,
        ),
        latency_panel(rows),
        callgrind_panel(rows),
    ];
    for (area, panel) in body.split_evenly((2, 2)).iter().zip(&panels) {
        draw_panel(area, panel)?;
    }
    root.present()?;
    Ok(true)
}
