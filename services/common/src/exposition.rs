//! Metric exposition formats.
//!
//! prometheus-client writes OpenMetrics. Prometheus scrapes that form when it
//! stores exemplars; everything else (and `promtool check metrics`, which
//! rejects exemplar lines) gets the Prometheus text format 0.0.4, derived here
//! from the same output: exemplars, `# UNIT` and `# EOF` dropped, counter
//! family names given their `_total` sample name, statesets and infos typed as
//! gauges. prometheus-client has no stateset type, so stateset families are
//! registered as gauges (one sample per state, 0 or 1, the state as a label
//! named like the family) and retyped in the OpenMetrics output.

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

/// Content type of the OpenMetrics form.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the Prometheus text form.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The registry in OpenMetrics, with `statesets` retyped.
pub fn open_metrics(registry: &Registry, statesets: &[String]) -> String {
    let mut out = String::new();
    if encode(&mut out, registry).is_err() {
        return "# EOF\n".to_string();
    }
    if statesets.is_empty() {
        return out;
    }
    out.lines()
        .map(|line| {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                if let Some(name) = rest.strip_suffix(" gauge") {
                    if statesets.iter().any(|s| s == name) {
                        return format!("# TYPE {name} stateset\n");
                    }
                }
            }
            format!("{line}\n")
        })
        .collect()
}

/// The registry in the Prometheus text format 0.0.4.
pub fn prometheus_text(registry: &Registry) -> String {
    let mut om = String::new();
    if encode(&mut om, registry).is_err() {
        return String::new();
    }
    to_prometheus_text(&om)
}

/// Converts OpenMetrics text as prometheus-client writes it.
pub fn to_prometheus_text(open_metrics: &str) -> String {
    // HELP comes before TYPE in prometheus-client's output: learn which
    // families are counters first.
    let counters: std::collections::HashSet<&str> = open_metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.rsplit_once(' ').unwrap_or((rest, "untyped"));
            let kind = match kind {
                "stateset" | "info" => "gauge",
                "unknown" => "untyped",
                k => k,
            };
            let suffix = if kind == "counter" { "_total" } else { "" };
            out.push_str(&format!("# TYPE {name}{suffix} {kind}\n"));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let suffix = if counters.contains(name) {
                "_total"
            } else {
                ""
            };
            out.push_str(&format!("# HELP {name}{suffix} {help}\n"));
            continue;
        }
        out.push_str(without_exemplar(line));
        out.push('\n');
    }
    out
}

/// A sample line without its exemplar. The exemplar follows ` # ` after the
/// value, so the search starts past the label set: a label value may itself
/// contain ` # {` (label values are quoted, with `\\` and `\"` escaped).
fn without_exemplar(line: &str) -> &str {
    let start = match line.find(['{', ' ']) {
        Some(open) if line.as_bytes()[open] == b'{' => match label_set_end(line, open) {
            Some(end) => end,
            // An unterminated label set: not a sample this code wrote.
            None => return line,
        },
        _ => 0,
    };
    match line[start..].find(" # ") {
        Some(i) => &line[..start + i],
        None => line,
    }
}

/// The index just past the `}` closing the label set opened at `open`.
fn label_set_end(line: &str, open: usize) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, &b) in line.as_bytes().iter().enumerate().skip(open + 1) {
        if escaped {
            escaped = false;
        } else if in_quotes {
            match b {
                b'\\' => escaped = true,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else if b == b'"' {
            in_quotes = true;
        } else if b == b'}' {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_contains;
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::exemplar::HistogramWithExemplars;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Trace {
        trace_id: String,
    }

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct State {
        group: String,
        meshflow_consumer_group_status: String,
    }

    fn registry() -> Registry {
        let mut r = Registry::with_prefix("meshflow");
        let c = Counter::<u64>::default();
        c.inc_by(3);
        r.register("things", "Things seen", c);
        let h = HistogramWithExemplars::new([0.1, 1.0].into_iter());
        h.observe(
            0.5,
            Some(Trace {
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            }),
            None,
        );
        r.register("latency_seconds", "Latency", h);
        let s = Family::<State, Gauge>::default();
        s.get_or_create(&State {
            group: "g".into(),
            meshflow_consumer_group_status: "OK".into(),
        })
        .set(1);
        r.register("consumer_group_status", "Status", s);
        r
    }

    #[test]
    fn open_metrics_keeps_exemplars_and_declares_statesets() {
        let om = open_metrics(&registry(), &["meshflow_consumer_group_status".to_string()]);
        assert_contains(&om, "# {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"} 0.5");
        assert_contains(&om, "# TYPE meshflow_consumer_group_status stateset");
        assert!(om.ends_with("# EOF\n"));
    }

    #[test]
    fn exemplar_marker_inside_a_label_value_does_not_cut_the_line() {
        let om = concat!(
            "# HELP meshflow_x X.\n",
            "# TYPE meshflow_x counter\n",
            "meshflow_x_total{reason=\"a # {b\"} 3\n",
            "meshflow_x_total{reason=\"q\\\" # {\\\\\"} 4 # {trace_id=\"t\"} 1.0\n",
            "meshflow_x_total{reason=\"c # {d\"} 5 # {trace_id=\"u # {v\"} 1.0 17\n",
            "# EOF\n",
        );
        let text = to_prometheus_text(om);
        assert_contains(&text, "meshflow_x_total{reason=\"a # {b\"} 3\n");
        assert_contains(&text, "meshflow_x_total{reason=\"q\\\" # {\\\\\"} 4\n");
        assert_contains(&text, "meshflow_x_total{reason=\"c # {d\"} 5\n");
        assert!(!text.contains("trace_id"), "{text}");
    }

    #[test]
    fn prometheus_text_has_no_exemplars_and_typed_totals() {
        let text = prometheus_text(&registry());
        assert!(!text.contains("# {"), "{text}");
        assert!(!text.contains("# EOF"));
        assert_contains(&text, "# TYPE meshflow_things_total counter\n");
        assert_contains(&text, "# HELP meshflow_things_total Things seen.\n");
        assert!(text.contains("meshflow_things_total 3\n"));
        assert_contains(&text, "meshflow_latency_seconds_bucket{le=\"1.0\"} 1\n");
    }
}
