//! OpenMetrics to Prometheus text: arbitrary text never panics the
//! conversion, and a registry whose label values (one per input line) and
//! exemplar (the whole input) hold arbitrary strings, ` # {` included,
//! converts line for line, every sample kept whole and every exemplar
//! dropped.

#![no_main]

use libfuzzer_sys::fuzz_target;
use meshflow_common::exposition::{open_metrics, to_prometheus_text};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Trace {
    trace_id: String,
}

/// A label value as the Prometheus formats quote it.
fn quoted(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fuzz_target!(|input: &str| {
    let _ = to_prometheus_text(input);
    let labels: Vec<(String, u64)> = input
        .lines()
        .map(|l| (l.to_string(), l.len() as u64))
        .collect();

    let mut registry = Registry::with_prefix("meshflow");
    let family = Family::<Reason, Counter>::default();
    for (reason, n) in &labels {
        family
            .get_or_create(&Reason {
                reason: reason.clone(),
            })
            .inc_by(*n);
    }
    registry.register("rejected", "Rejected things", family.clone());
    let histogram = HistogramWithExemplars::new([0.1, 1.0].into_iter());
    histogram.observe(
        0.5,
        Some(Trace {
            trace_id: input.to_string(),
        }),
        None,
    );
    registry.register("latency_seconds", "Latency", histogram);

    let om = open_metrics(&registry, &[]);
    let text = to_prometheus_text(&om);
    let samples = |s: &str| s.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(samples(&om), samples(&text), "{om}\n---\n{text}");
    for (reason, _) in &labels {
        let value = family
            .get_or_create(&Reason {
                reason: reason.clone(),
            })
            .get();
        let line = format!("meshflow_rejected_total{{reason=\"{}\"}} {value}", quoted(reason));
        assert!(text.lines().any(|l| l == line), "{line:?} missing from\n{text}");
    }
    for line in text.lines().filter(|l| l.starts_with("meshflow_latency_seconds")) {
        assert!(!line.contains("trace_id"), "exemplar left in {line:?}");
    }
});
