//! What the dashboards and rules read, against what the running services
//! actually expose: every `meshflow_*` metric an expression names must be a
//! family some service writes on `/metrics`, and every label its matchers use
//! must be a label that family's samples carry.

use std::collections::{BTreeMap, BTreeSet};

/// One `meshflow_*` selector of an expression: the metric and the label
/// names its matchers use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The metric name as written (with `_total`, `_bucket`, ... suffixes).
    pub metric: String,
    /// Label names of its matchers, in order.
    pub labels: Vec<String>,
    /// The selector as written: the metric and its `{...}`, if any.
    pub text: String,
}

/// The series names and labels the services expose.
#[derive(Debug, Default)]
pub struct Exposed {
    /// Series name → label names seen on its samples (empty for a family
    /// declared with no sample yet).
    pub series: BTreeMap<String, BTreeSet<String>>,
}

impl Exposed {
    /// Adds one `/metrics` body in the Prometheus text format: the families
    /// its `# TYPE` lines declare (with the suffixes their samples take) and
    /// the labels of its samples.
    pub fn add(&mut self, body: &str) {
        for line in body.lines() {
            if let Some(declared) = line.strip_prefix("# TYPE ") {
                let mut words = declared.split_whitespace();
                let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                    continue;
                };
                for series in family_series(name, kind) {
                    self.series.entry(series).or_default();
                }
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let (name, labels) = match line.split_once('{') {
                    Some((name, rest)) => (name, label_names(rest)),
                    None => (line.split_whitespace().next().unwrap_or(""), Vec::new()),
                };
                self.series
                    .entry(name.to_string())
                    .or_default()
                    .extend(labels);
            }
        }
    }

    /// What `promql` reads that no service exposes, one line each.
    pub fn unknown_reads(&self, promql: &str) -> Vec<String> {
        let mut wrong = Vec::new();
        for selector in selectors(promql) {
            let Some(labels) = self.series.get(&selector.metric) else {
                wrong.push(format!("{} is not exposed by any service", selector.metric));
                continue;
            };
            // A family with no sample yet cannot tell its labels.
            if labels.is_empty() {
                continue;
            }
            for label in &selector.labels {
                let from_prometheus = ["job", "instance"]
                    .iter()
                    .chain(&crate::grafana::TARGET_LABELS)
                    .any(|l| l == label);
                if !labels.contains(label) && !from_prometheus {
                    wrong.push(format!(
                        "{} has no label {label} (it has {labels:?})",
                        selector.metric
                    ));
                }
            }
        }
        wrong
    }
}

/// The series names a family of `kind` is written with.
fn family_series(name: &str, kind: &str) -> Vec<String> {
    match kind {
        "counter" => vec![format!("{name}_total")],
        "histogram" => ["_bucket", "_sum", "_count"]
            .iter()
            .map(|suffix| format!("{name}{suffix}"))
            .collect(),
        _ => vec![name.to_string()],
    }
}

/// Label names of a sample's `a="x",b="y"}` part.
fn label_names(rest: &str) -> Vec<String> {
    matchers(rest)
        .into_iter()
        .filter(|(_, op)| *op == "=")
        .map(|(name, _)| name)
        .collect()
}

/// Every `meshflow_*` selector in `promql` (recorded series such as
/// `meshflow:...` are not services' series and are left out).
pub fn selectors(promql: &str) -> Vec<Selector> {
    let bytes = promql.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = promql[at..].find("meshflow_") {
        let start = at + offset;
        let mut end = start;
        while end < bytes.len() && is_ident(bytes[end]) {
            end += 1;
        }
        at = end;
        let preceded = start > 0 && (is_ident(bytes[start - 1]) || bytes[start - 1] == b'"');
        let metric = &promql[start..end];
        if preceded || metric.contains(':') {
            continue;
        }
        let rest = promql[end..].trim_start();
        let (labels, text) = match rest.strip_prefix('{') {
            Some(inner) => {
                let names = matchers(inner).into_iter().map(|(name, _)| name).collect();
                let close = closing_brace(inner).unwrap_or(inner.len());
                (names, format!("{metric}{{{}}}", &inner[..close]))
            }
            None => (Vec::new(), metric.to_string()),
        };
        found.push(Selector {
            metric: metric.to_string(),
            labels,
            text,
        });
    }
    found
}

/// Where the `}` closing a selector's matchers is in `inner` (the text after
/// its `{`), skipping quoted values.
fn closing_brace(inner: &str) -> Option<usize> {
    let mut quote = None;
    let mut escaped = false;
    for (at, c) in inner.char_indices() {
        match (quote, c) {
            (Some(_), _) if escaped => escaped = false,
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '}') => return Some(at),
            (None, _) => {}
        }
    }
    None
}

/// The (label, operator) pairs of matchers up to the closing `}`, skipping
/// quoted values.
fn matchers(inner: &str) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let name: String =
            std::iter::from_fn(|| chars.next_if(|c| c.is_alphanumeric() || *c == '_')).collect();
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let op = match (chars.next(), chars.peek()) {
            (Some('='), Some('~')) => "=~",
            (Some('!'), Some('~')) => "!~",
            (Some('!'), Some('=')) => "!=",
            (Some('='), _) => "=",
            _ => break,
        };
        if op.len() == 2 {
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        // The quoted value, with its escapes.
        let Some(quote) = chars.next().filter(|c| *c == '"' || *c == '\'') else {
            break;
        };
        let mut escaped = false;
        for c in chars.by_ref() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                c if c == quote => break,
                _ => {}
            }
        }
        if !name.is_empty() {
            out.push((name, op));
        }
        if chars.peek() == Some(&'}') {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "\
# HELP meshflow_messages Distinct messages.
# TYPE meshflow_messages counter
meshflow_messages_total{topic=\"events\",stage=\"log\",group=\"\"} 3
# TYPE meshflow_brokers gauge
meshflow_brokers 1
# TYPE meshflow_e2e_latency_seconds histogram
meshflow_e2e_latency_seconds_bucket{topic=\"events\",group=\"g\",le=\"0.5\"} 1
# TYPE meshflow_producer_errors counter
";

    #[test]
    fn selectors_name_metrics_and_matcher_labels() {
        let promql = r#"sum by (group) (rate(meshflow_messages_total{topic=~"$topic", stage="processed",group!="a,b}"}[5m])) / ignoring(x) meshflow:recorded:ratio + max(meshflow_brokers) or vector(0)"#;
        assert_eq!(
            selectors(promql),
            [
                Selector {
                    metric: "meshflow_messages_total".into(),
                    labels: vec!["topic".into(), "stage".into(), "group".into()],
                    text: r#"meshflow_messages_total{topic=~"$topic", stage="processed",group!="a,b}"}"#
                        .into(),
                },
                Selector {
                    metric: "meshflow_brokers".into(),
                    labels: vec![],
                    text: "meshflow_brokers".into(),
                },
            ]
        );
    }

    #[test]
    fn reads_of_what_no_service_writes_are_named() {
        let mut exposed = Exposed::default();
        exposed.add(BODY);
        assert!(exposed
            .unknown_reads(r#"rate(meshflow_messages_total{stage="log"}[1m])"#)
            .is_empty());
        assert!(exposed
            .unknown_reads(r#"histogram_quantile(0.99, meshflow_e2e_latency_seconds_bucket{group="g", job="x"})"#)
            .is_empty());
        // Declared without a sample yet: the name counts, labels cannot be told.
        assert!(exposed
            .unknown_reads(r#"meshflow_producer_errors_total{reason="x"}"#)
            .is_empty());
        assert_eq!(
            exposed
                .unknown_reads(r#"meshflow_messages_total{stgae="log"}"#)
                .len(),
            1
        );
        assert_eq!(exposed.unknown_reads("meshflow_message_total").len(), 1);
        assert_eq!(exposed.unknown_reads("meshflow_brokers_total").len(), 1);
    }
}
