//! Every query of the dashboards against a live Prometheus, as Grafana
//! would send it: panel expressions under each variable selection, and the
//! variable queries. Collects what is wrong instead of stopping at the first.

use crate::emitted::selectors;
use crate::grafana::{substitute, Dashboard, Query, Selection, Values};
use crate::prometheus::{encode, Prometheus};
use crate::scenario::Names;

/// A dashboard query that may be empty: (dashboard file, panel title, refId
/// or `var:<name>` for a variable query, why). It must still parse.
pub type AllowedEmpty = (&'static str, &'static str, &'static str, &'static str);

/// What Prometheus said about one query.
#[derive(Debug)]
enum Answer {
    /// Parsed and evaluated; how many series (or 1 for a scalar).
    Data(usize),
    /// Parsed and evaluated, nothing.
    Empty,
    /// Parsed and evaluated, but every value is NaN (Grafana shows no number).
    OnlyNaN,
    /// Refused: the error.
    Error(String),
}

fn instant(prometheus: &Prometheus, promql: &str) -> Answer {
    let answer = prometheus.get(&format!("/api/v1/query?query={}", encode(promql)));
    if answer["status"] != "success" {
        return Answer::Error(format!("{} {}", answer["errorType"], answer["error"]));
    }
    let data = &answer["data"];
    match data["resultType"].as_str() {
        Some("vector") => {
            let results = data["result"].as_array().cloned().unwrap_or_default();
            let numbers = results
                .iter()
                .filter(|r| r["value"][1].as_str() != Some("NaN"))
                .count();
            match (results.len(), numbers) {
                (0, _) => Answer::Empty,
                (_, 0) => Answer::OnlyNaN,
                (n, _) => Answer::Data(n),
            }
        }
        Some("scalar") if data["result"][1].as_str() == Some("NaN") => Answer::OnlyNaN,
        Some("scalar") => Answer::Data(1),
        other => Answer::Error(format!("unexpected result type {other:?}: {answer}")),
    }
}

/// `label_values(selector, label)` or `label_values(label)`.
fn label_values(query: &str) -> Option<(Option<String>, String)> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    Some(match inner.rsplit_once(',') {
        Some((selector, label)) => (Some(selector.trim().to_string()), label.trim().to_string()),
        None => (None, inner.trim().to_string()),
    })
}

/// Answers a variable query as Grafana would: label values, or an
/// instant query for `query_result(...)`. Ok(values) or Err(error).
fn variable_values(prometheus: &Prometheus, query: &str) -> Result<Vec<String>, String> {
    if let Some((selector, label)) = label_values(query) {
        let path = match selector {
            Some(s) => format!("/api/v1/label/{label}/values?match[]={}", encode(&s)),
            None => format!("/api/v1/label/{label}/values"),
        };
        let answer = prometheus.get(&path);
        if answer["status"] != "success" {
            return Err(format!("{} {}", answer["errorType"], answer["error"]));
        }
        return Ok(answer["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect());
    }
    if let Some(expr) = query
        .trim()
        .strip_prefix("query_result(")
        .and_then(|q| q.strip_suffix(')'))
    {
        return match instant(prometheus, expr) {
            Answer::Data(n) => Ok(vec![String::new(); n]),
            Answer::Empty | Answer::OnlyNaN => Ok(Vec::new()),
            Answer::Error(e) => Err(e),
        };
    }
    panic!("variable query form not handled: {query}")
}

/// Figures of the dashboard check.
#[derive(Debug, Default)]
pub struct DashboardFigures {
    /// Panel expressions checked.
    pub expressions: usize,
    /// Of those, with data under every selection.
    pub with_data: usize,
    /// Of those, allowed-empty and empty.
    pub allowed_empty: usize,
    /// Variable queries checked.
    pub variables: usize,
    /// Of those, offering values.
    pub variables_with_values: usize,
    /// Of those, allowed-empty and empty.
    pub variables_allowed_empty: usize,
    /// Allowed-empty queries that had data this time (for the record).
    pub allowed_but_data: Vec<String>,
    /// What is wrong, one line each.
    pub failures: Vec<String>,
}

/// `promql` without a trailing top-level `or vector(0)`, if it ends so.
pub fn without_fallback(promql: &str) -> Option<&str> {
    let trimmed = promql.trim_end();
    let head = trimmed.strip_suffix(')')?.trim_end().strip_suffix('0')?;
    let head = head
        .trim_end()
        .strip_suffix('(')?
        .trim_end()
        .strip_suffix("vector")?;
    let bare = head.trim_end().strip_suffix("or")?;
    // `or` must be a word of its own, outside every parenthesis.
    let word = bare.ends_with(|c: char| c.is_whitespace() || c == ')');
    let mut depth = 0i32;
    for c in bare.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
    }
    (word && depth == 0).then(|| bare.trim_end())
}

/// Runs every panel expression under every selection and every variable
/// query; collects what is wrong instead of stopping at the first.
pub fn check_dashboards(
    prometheus: &Prometheus,
    dashboards: &[Dashboard],
    names: &Names,
    allowed: &[AllowedEmpty],
) -> DashboardFigures {
    let allowed_empty = |q: &Query| {
        allowed
            .iter()
            .find(|(d, p, id, _)| *d == q.dashboard && *p == q.panel && *id == q.id)
            .map(|(_, _, _, why)| *why)
    };
    let values = Values { names };
    let mut f = DashboardFigures::default();
    for dashboard in dashboards {
        for query in &dashboard.targets {
            f.expressions += 1;
            let why_empty = allowed_empty(query);
            let mut data_everywhere = true;
            for selection in [Selection::Single, Selection::Multi, Selection::All] {
                let promql = substitute(&query.text, dashboard, &values, selection);
                // A fallback must not hide a selector that matches nothing:
                // without it, the expression has data, or each of its
                // meshflow_* selectors does (it is empty by its filters,
                // say a count of groups not OK when all are).
                if let Some(bare) = without_fallback(&promql) {
                    if why_empty.is_none() && !matches!(instant(prometheus, bare), Answer::Data(_))
                    {
                        for selector in selectors(bare) {
                            let answer = instant(prometheus, &selector.text);
                            if !matches!(answer, Answer::Data(_)) {
                                f.failures.push(format!(
                                    "{} ({selection:?}): {} matches nothing ({answer:?}), hidden by `or vector(0)`",
                                    query.name(),
                                    selector.text
                                ));
                            }
                        }
                    }
                }
                let answer = instant(prometheus, &promql);
                match answer {
                    Answer::Data(_) => {}
                    Answer::Empty | Answer::OnlyNaN => {
                        data_everywhere = false;
                        if why_empty.is_none() {
                            f.failures.push(format!(
                                "{} ({selection:?}) returned no data{}: {promql}",
                                query.name(),
                                if matches!(answer, Answer::OnlyNaN) {
                                    " (only NaN)"
                                } else {
                                    ""
                                }
                            ));
                        }
                    }
                    Answer::Error(e) => {
                        data_everywhere = false;
                        f.failures.push(format!(
                            "{} ({selection:?}) does not parse or evaluate: {e}: {promql}",
                            query.name()
                        ));
                    }
                }
            }
            match (why_empty, data_everywhere) {
                (None, true) => f.with_data += 1,
                (Some(_), true) => {
                    f.with_data += 1;
                    f.allowed_but_data.push(query.name());
                }
                (Some(_), false) => f.allowed_empty += 1,
                (None, false) => {}
            }
        }
        for query in &dashboard.variable_queries {
            f.variables += 1;
            let text = substitute(&query.text, dashboard, &values, Selection::Single);
            let name = query.id.trim_start_matches("var:");
            let must_hold = values
                .of(name, Selection::Single)
                .filter(|_| name == "topic" || name == "group")
                .map(|v| v[0].clone());
            match variable_values(prometheus, &text) {
                Err(e) => f.failures.push(format!(
                    "{} does not parse or evaluate: {e}: {text}",
                    query.name()
                )),
                Ok(found) if found.is_empty() => {
                    if allowed_empty(query).is_some() {
                        f.variables_allowed_empty += 1;
                    } else {
                        f.failures
                            .push(format!("{} offers no values: {text}", query.name()));
                    }
                }
                Ok(found) => match must_hold {
                    Some(want) if !found.contains(&want) => f.failures.push(format!(
                        "{} does not offer {want}: {found:?} from {text}",
                        query.name()
                    )),
                    _ => {
                        f.variables_with_values += 1;
                        if allowed_empty(query).is_some() {
                            f.allowed_but_data.push(query.name());
                        }
                    }
                },
            }
        }
    }
    // Every allowed-empty entry must name a query that exists.
    for (d, p, id, _) in allowed {
        let exists = dashboards.iter().any(|dash| {
            dash.targets
                .iter()
                .chain(&dash.variable_queries)
                .any(|q| q.dashboard == *d && q.panel == *p && q.id == *id)
        });
        if !exists {
            f.failures.push(format!(
                "allowed-empty entry {d} / {p:?} / {id} matches no dashboard query: remove it"
            ));
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::without_fallback;

    #[test]
    fn only_a_trailing_top_level_fallback_is_taken_off() {
        assert_eq!(
            without_fallback("sum(rate(x[5m])) or vector(0)"),
            Some("sum(rate(x[5m]))")
        );
        assert_eq!(
            without_fallback("sum(x)\n  or\n  vector( 0 )\n"),
            Some("sum(x)")
        );
        assert_eq!(without_fallback("sum(x or vector(0))"), None);
        assert_eq!(without_fallback("(sum(x) or vector(0))"), None);
        assert_eq!(without_fallback("sum(x) or vector(1)"), None);
        assert_eq!(without_fallback("sum(x)"), None);
        assert_eq!(without_fallback("xor vector(0)"), None);
    }
}
