//! The dashboards and alert rules against live metrics: a real Prometheus
//! scrapes a running stack (Tansu, the producer, two consumers, the
//! exporter) every second, with `alerts/*.rules.yml` loaded, and then
//!
//! 0. every target is scraped without error;
//! 1. every PromQL expression of every dashboard panel (rows' nested panels
//!    included) parses and returns data (not only NaN), with the Grafana
//!    variables substituted three ways: the test's topic and group, a
//!    two-value multi-selection, and All; every `label_values` variable query answers
//!    and offers the test's topic and group. Only the expressions listed in
//!    [`ALLOWED_EMPTY`], each with its reason, may be empty; they must parse;
//! 2. every rule group of the rule files is loaded and every rule is healthy,
//!    with no evaluation error, after several evaluation cycles;
//! 3. a sequence gap injected by a made-up producer instance is counted as
//!    exactly 5 lost messages at stage `log`, and `MeshflowMessagesLost`,
//!    silent before, goes pending or firing within a bounded time.
//!
//! It prints one summary line with its figures.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use meshflow_tests::broker::{create_topics, Tansu};
use meshflow_tests::exporter::{self, TestProducer};
use meshflow_tests::process::Service;
use meshflow_tests::prometheus::{encode, Prometheus};
use meshflow_tests::scenario::{consumer, producer_with, wait_ready, Names};
use meshflow_tests::{scrape, unique, wait_for, WorkDir};
use serde_json::Value;

const PARTITIONS: i32 = 6;
/// The producer's rate, messages per second.
const RATE: u32 = 20;
/// The exporter's grace for sequence gaps (short, so the injected loss is
/// declared within seconds).
const GRACE_SECS: u64 = 3;
/// The gap the injected producer leaves: 5 sequence numbers of 0..60.
const GAP: std::ops::Range<u64> = 20..25;
const INJECTED: u64 = 60;

/// Dashboard queries that are empty unless something is wrong (or a part
/// the local stack does not have is present): (dashboard file, panel title,
/// refId or `var:<name>` for a variable query, why). They are checked to
/// parse only. An entry that matches nothing fails the test, so the list
/// cannot outlive the dashboards.
const ALLOWED_EMPTY: &[(&str, &str, &str, &str)] = &[
    (
        "message-flow.json",
        "Producer send errors",
        "A",
        "producer_errors_total{reason} is created by the first send error",
    ),
    (
        "message-flow.json",
        "Dead letters and invalid messages",
        "B",
        "consumer_invalid_total{reason} is created by the first malformed envelope",
    ),
    (
        "message-flow.json",
        "Dead letters and invalid messages",
        "C",
        "messages_invalid_total{reason} is created by the first malformed envelope or receipt batch",
    ),
    (
        "cluster-mesh.json",
        "mTLS share of connections",
        "A",
        "Istio ztunnel telemetry or HAProxy's door metrics: this stack has neither",
    ),
    (
        "cluster-mesh.json",
        "mTLS share over time",
        "A",
        "Istio ztunnel telemetry or HAProxy's door metrics: this stack has neither",
    ),
    (
        "cluster-mesh.json",
        "mTLS share over time",
        "B",
        "Istio ztunnel telemetry or HAProxy's door metrics: this stack has neither",
    ),
    (
        "cluster-mesh.json",
        "Connections opened by security policy",
        "A",
        "Istio ztunnel telemetry or HAProxy's door metrics: this stack has neither",
    ),
    (
        "cluster-mesh.json",
        "Connections opened per workload pair",
        "A",
        "Istio ztunnel telemetry or HAProxy's door metrics: this stack has neither",
    ),
    (
        "cluster-mesh.json",
        "Bytes per destination workload",
        "A",
        "Istio ztunnel telemetry or HAProxy's door metrics: this stack has neither",
    ),
    (
        "cluster-mesh.json",
        "Bytes per destination workload",
        "B",
        "Istio ztunnel telemetry or HAProxy's door metrics: this stack has neither",
    ),
    (
        "cluster-mesh.json",
        "",
        "var:namespace",
        "Istio ztunnel telemetry: no mesh in the local stack",
    ),
];

/// The repository root (dashboards, alerts).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

/// Files of `dir` whose name ends with `suffix`, sorted.
fn files(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .unwrap_or_else(|e| panic!("read {dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(suffix))
        })
        .collect();
    found.sort();
    found
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string()
}

/// One query of a dashboard: a panel target or a variable query.
#[derive(Debug, Clone)]
struct Query {
    dashboard: String,
    panel: String,
    /// The target's refId, or `var:<name>`.
    id: String,
    text: String,
}

impl Query {
    fn allowed_empty(&self) -> Option<&'static str> {
        ALLOWED_EMPTY
            .iter()
            .find(|(d, p, id, _)| *d == self.dashboard && *p == self.panel && *id == self.id)
            .map(|(_, _, _, why)| *why)
    }

    fn name(&self) -> String {
        format!("{} / {:?} / {}", self.dashboard, self.panel, self.id)
    }
}

/// A dashboard variable's definition.
#[derive(Debug, Clone)]
struct Variable {
    /// Multi-value or with an All option: Grafana regex-escapes its values.
    multi: bool,
    all_value: Option<String>,
}

/// One dashboard: its panel targets, variable queries and variables.
struct Dashboard {
    targets: Vec<Query>,
    variable_queries: Vec<Query>,
    variables: HashMap<String, Variable>,
}

fn load_dashboard(path: &Path) -> Dashboard {
    let file = file_name(path);
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {file}: {e}"));
    let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut targets = Vec::new();
    collect_targets(
        &file,
        json["panels"].as_array().map(Vec::as_slice).unwrap_or(&[]),
        &mut targets,
    );
    let mut variable_queries = Vec::new();
    let mut variables = HashMap::new();
    for v in json["templating"]["list"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or_default().to_string();
        variables.insert(
            name.clone(),
            Variable {
                multi: v["multi"].as_bool().unwrap_or(false)
                    || v["includeAll"].as_bool().unwrap_or(false),
                all_value: v["allValue"].as_str().map(str::to_string),
            },
        );
        if v["type"] == "query" {
            // Older dashboards keep the query as a string, newer as an object.
            let query = v["query"]
                .as_str()
                .or_else(|| v["query"]["query"].as_str())
                .or_else(|| v["definition"].as_str())
                .unwrap_or_else(|| panic!("{file}: variable {name} has no query"));
            variable_queries.push(Query {
                dashboard: file.clone(),
                panel: String::new(),
                id: format!("var:{name}"),
                text: query.to_string(),
            });
        }
    }
    Dashboard {
        targets,
        variable_queries,
        variables,
    }
}

/// Every `targets[].expr` of `panels`, and of the panels nested in rows.
fn collect_targets(file: &str, panels: &[Value], out: &mut Vec<Query>) {
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or_default();
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push(Query {
                    dashboard: file.to_string(),
                    panel: title.to_string(),
                    id: target["refId"].as_str().unwrap_or_default().to_string(),
                    text: expr.to_string(),
                });
            }
        }
        if let Some(nested) = panel["panels"].as_array() {
            collect_targets(file, nested, out);
        }
    }
}

/// Which values the topic and group variables take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selection {
    /// The test's topic and group.
    Single,
    /// The test's and one more, as a multi-value selection.
    Multi,
    /// The All option.
    All,
}

/// The values the test picks for the variables.
struct Values<'a> {
    names: &'a Names,
}

impl Values<'_> {
    /// The selected values of `name` (None: not a selectable variable).
    fn of(&self, name: &str, selection: Selection) -> Option<Vec<String>> {
        let (own, other) = match name {
            "topic" => (self.names.topic.clone(), self.names.receipts.clone()),
            "group" => (self.names.group.clone(), "other.group".to_string()),
            "namespace" => return Some(vec!["meshflow".to_string()]),
            "jaeger_url" => return Some(vec!["http://localhost:16686".to_string()]),
            "datasource" => return Some(vec!["prometheus".to_string()]),
            _ => return None,
        };
        Some(match selection {
            Selection::Multi => vec![own, other],
            _ => vec![own],
        })
    }
}

/// Grafana's built-in variables, with the values the brief fixes.
fn builtin(name: &str) -> Option<&'static str> {
    Some(match name {
        "__rate_interval" => "30s",
        "__interval" => "5s",
        "__interval_ms" => "5000",
        "__range" => "5m",
        "__range_s" => "300",
        "__range_ms" => "300000",
        _ => return None,
    })
}

/// A value escaped as Grafana's Prometheus data source escapes the values of
/// a multi-value variable: regex metacharacters get a backslash that is
/// itself escaped for the PromQL string (`a.b` → `a\\.b`).
fn regex_escape(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '\\' => out.push_str(r"\\\\"),
            '$' | '^' | '*' | '{' | '}' | '[' | ']' | '\'' | '+' | '?' | '.' | '(' | ')' | '|' => {
                out.push_str(r"\\");
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// A single-value variable's escape (backslashes and single quotes).
fn plain_escape(value: &str) -> String {
    value.replace('\\', r"\\").replace('\'', r"\\'")
}

/// The text that replaces variable `name` (with format `format`, as in
/// `${name:format}`) in a query.
fn render(
    name: &str,
    format: Option<&str>,
    dashboard: &Dashboard,
    values: &Values,
    selection: Selection,
) -> String {
    if let Some(v) = builtin(name) {
        return v.to_string();
    }
    let variable = dashboard.variables.get(name);
    let multi = variable.is_some_and(|v| v.multi);
    let selection = if multi { selection } else { Selection::Single };
    if selection == Selection::All {
        // A custom all value is inserted as written, whatever the format.
        return variable
            .and_then(|v| v.all_value.clone())
            .unwrap_or_else(|| ".*".to_string());
    }
    let chosen = values
        .of(name, selection)
        .unwrap_or_else(|| panic!("no test value for dashboard variable ${name}"));
    match format {
        None if multi => {
            let escaped: Vec<String> = chosen.iter().map(|v| regex_escape(v)).collect();
            if escaped.len() == 1 {
                escaped[0].clone()
            } else {
                format!("({})", escaped.join("|"))
            }
        }
        None => plain_escape(&chosen[0]),
        Some("regex") => {
            let escaped: Vec<String> = chosen.iter().map(|v| regex_escape(v)).collect();
            if escaped.len() == 1 {
                escaped[0].clone()
            } else {
                format!("({})", escaped.join("|"))
            }
        }
        Some("pipe") => chosen.join("|"),
        Some("raw") | Some("csv") => chosen.join(","),
        Some(other) => panic!("variable format :{other} of ${name} is not handled"),
    }
}

/// `text` with every `$name`, `${name}`, `${name:format}` and `[[name]]`
/// replaced.
fn substitute(text: &str, dashboard: &Dashboard, values: &Values, selection: Selection) -> String {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(['$', '[']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(body) = tail.strip_prefix("${") {
            let end = body
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in {text}"));
            let (name, format) = match body[..end].split_once(':') {
                Some((n, f)) => (n, Some(f)),
                None => (&body[..end], None),
            };
            out.push_str(&render(name, format, dashboard, values, selection));
            rest = &body[end + 1..];
        } else if let Some(body) = tail.strip_prefix("[[") {
            match body.find("]]") {
                Some(end) if body[..end].chars().all(ident) => {
                    out.push_str(&render(&body[..end], None, dashboard, values, selection));
                    rest = &body[end + 2..];
                }
                _ => {
                    out.push('[');
                    rest = &tail[1..];
                }
            }
        } else if tail.starts_with('$') && tail[1..].starts_with(ident) {
            let body = &tail[1..];
            let end = body.find(|c: char| !ident(c)).unwrap_or(body.len());
            out.push_str(&render(&body[..end], None, dashboard, values, selection));
            rest = &body[end..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// What Prometheus said about one query.
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
struct DashboardFigures {
    expressions: usize,
    with_data: usize,
    allowed_empty: usize,
    variables: usize,
    variables_with_values: usize,
    variables_allowed_empty: usize,
    /// Allowed-empty queries that had data this time (for the record).
    allowed_but_data: Vec<String>,
    failures: Vec<String>,
}

/// Runs every panel expression under every selection and every variable
/// query; collects what is wrong instead of stopping at the first.
fn check_dashboards(
    prometheus: &Prometheus,
    dashboards: &[Dashboard],
    names: &Names,
) -> DashboardFigures {
    let values = Values { names };
    let mut f = DashboardFigures::default();
    for dashboard in dashboards {
        for query in &dashboard.targets {
            f.expressions += 1;
            let allowed = query.allowed_empty();
            let mut data_everywhere = true;
            for selection in [Selection::Single, Selection::Multi, Selection::All] {
                let promql = substitute(&query.text, dashboard, &values, selection);
                let answer = instant(prometheus, &promql);
                match answer {
                    Answer::Data(_) => {}
                    Answer::Empty | Answer::OnlyNaN => {
                        data_everywhere = false;
                        if allowed.is_none() {
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
            match (allowed, data_everywhere) {
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
                    if query.allowed_empty().is_some() {
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
                        if query.allowed_empty().is_some() {
                            f.allowed_but_data.push(query.name());
                        }
                    }
                },
            }
        }
    }
    // Every allowed-empty entry must name a query that exists.
    for (d, p, id, _) in ALLOWED_EMPTY {
        let exists = dashboards.iter().any(|dash| {
            dash.targets
                .iter()
                .chain(&dash.variable_queries)
                .any(|q| q.dashboard == *d && q.panel == *p && q.id == *id)
        });
        if !exists {
            f.failures.push(format!(
                "ALLOWED_EMPTY entry {d} / {p:?} / {id} matches no dashboard query: remove it"
            ));
        }
    }
    f
}

/// Groups and their rule names, read from a rule file (the layout of
/// `alerts/*.rules.yml`: `- name:` opens a group, `- alert:` / `- record:`
/// name its rules).
fn rule_groups(path: &Path) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(path).expect("read rule file");
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("- name:") {
            groups.push((name.trim().trim_matches('"').to_string(), Vec::new()));
        } else if let Some(rule) = line
            .strip_prefix("- alert:")
            .or_else(|| line.strip_prefix("- record:"))
        {
            groups
                .last_mut()
                .unwrap_or_else(|| panic!("{}: a rule outside a group", path.display()))
                .1
                .push(rule.trim().trim_matches('"').to_string());
        }
    }
    groups
}

/// Every loaded rule: ((file name, group), rule name, the rule's JSON).
fn loaded_rules(prometheus: &Prometheus) -> Vec<((String, String), String, Value)> {
    let answer = prometheus.get("/api/v1/rules");
    assert_eq!(answer["status"], "success", "/api/v1/rules: {answer}");
    let mut out = Vec::new();
    for group in answer["data"]["groups"].as_array().into_iter().flatten() {
        let file = Path::new(group["file"].as_str().unwrap_or_default());
        let name = (
            file_name(file),
            group["name"].as_str().unwrap_or_default().to_string(),
        );
        for rule in group["rules"].as_array().into_iter().flatten() {
            out.push((
                name.clone(),
                rule["name"].as_str().unwrap_or_default().to_string(),
                rule.clone(),
            ));
        }
    }
    out
}

/// The active alerts named `alertname` whose labels include `labels`:
/// their states.
fn alert_states(prometheus: &Prometheus, alertname: &str, labels: &[(&str, &str)]) -> Vec<String> {
    let answer = prometheus.get("/api/v1/alerts");
    assert_eq!(answer["status"], "success", "/api/v1/alerts: {answer}");
    answer["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["labels"]["alertname"] == alertname)
        .filter(|a| labels.iter().all(|(k, v)| a["labels"][*k] == *v))
        .filter_map(|a| a["state"].as_str().map(str::to_string))
        .collect()
}

/// The names of every active alert, with their state.
fn active_alerts(prometheus: &Prometheus) -> BTreeSet<String> {
    let answer = prometheus.get("/api/v1/alerts");
    answer["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| format!("{}:{}", a["labels"]["alertname"], a["state"]).replace('"', ""))
        .collect()
}

/// The sum of an instant vector (0 when empty).
fn sum(prometheus: &Prometheus, promql: &str) -> f64 {
    prometheus.vector(promql).iter().map(|(_, v)| v).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_work_against_live_metrics() {
    let started = Instant::now();
    let dir = WorkDir::new("observability");
    let broker = Tansu::start(dir.path()).await;
    let names = Names::new();
    create_topics(&broker.bootstrap, &names.topics(), PARTITIONS).await;

    // The exporter first, reading every partition before any traffic.
    let grace = format!("{GRACE_SECS}s");
    let exporter_group = unique("exporter");
    let exporter = exporter::start(
        dir.path(),
        &broker.bootstrap,
        &names,
        "exporter",
        &exporter_group,
        &[("MESHFLOW__EXPORTER__GRACE", &grace)],
    );
    wait_ready(&[&exporter], Duration::from_secs(60)).await;
    exporter::warm_up(&broker.bootstrap, &names, &exporter_group, PARTITIONS).await;

    let c1 = consumer(dir.path(), &broker.bootstrap, &names, "consumer-1");
    let c2 = consumer(dir.path(), &broker.bootstrap, &names, "consumer-2");
    wait_ready(&[&c1, &c2], Duration::from_secs(60)).await;
    // Until stopped (max_messages 0).
    let producer = producer_with(dir.path(), &broker.bootstrap, &names, 0, RATE, &[]);
    wait_ready(&[&producer], Duration::from_secs(30)).await;

    let targets: Vec<(&str, String)> = vec![
        ("meshflow-producer", target(&producer)),
        ("meshflow-consumer", target(&c1)),
        ("meshflow-consumer", target(&c2)),
        ("meshflow-exporter", target(&exporter)),
    ];
    let rule_files = files("alerts", ".rules.yml");
    assert!(!rule_files.is_empty(), "no alerts/*.rules.yml");
    let prometheus = {
        let dir = dir.path().to_path_buf();
        let targets = targets.clone();
        let rule_files = rule_files.clone();
        tokio::task::spawn_blocking(move || {
            let targets: Vec<(&str, &str)> =
                targets.iter().map(|(j, t)| (*j, t.as_str())).collect();
            Prometheus::start(&dir, &targets, &rule_files)
        })
        .await
        .expect("start prometheus")
    };
    let stack_ready = started.elapsed();

    // Traffic: every target up, and the group's processed messages flowing
    // through the scrapes.
    let processed = format!(
        "sum(meshflow_messages_total{{topic=\"{}\", stage=\"processed\", group=\"{}\"}})",
        names.topic, names.group
    );
    wait_for(
        "4 targets up and 200 processed messages in Prometheus",
        Duration::from_secs(60),
        || {
            let up = sum(&prometheus, "sum(up{job=~\"meshflow-.*\"})");
            let done = sum(&prometheus, &processed);
            async move { (up == 4.0 && done >= 200.0).then_some(()) }
        },
    )
    .await;
    let scrape_errors: Vec<String> = prometheus.get("/api/v1/targets")["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["health"] != "up" || t["lastError"].as_str().is_some_and(|e| !e.is_empty()))
        .map(|t| {
            format!(
                "{} {}: {} {}",
                t["labels"]["job"], t["scrapeUrl"], t["health"], t["lastError"]
            )
        })
        .collect();
    assert!(scrape_errors.is_empty(), "scrape errors: {scrape_errors:?}");

    // 1. Dashboards.
    let dashboard_files = files("dashboards", ".json");
    assert!(!dashboard_files.is_empty(), "no dashboards/*.json");
    let dashboards: Vec<Dashboard> = dashboard_files.iter().map(|p| load_dashboard(p)).collect();
    // Rates need a few scrapes of every series: give the expressions a
    // bounded while to fill, then judge strictly.
    let filling = Instant::now();
    let deadline = filling + Duration::from_secs(45);
    let figures = loop {
        let figures = check_dashboards(&prometheus, &dashboards, &names);
        if figures.failures.is_empty() || Instant::now() > deadline {
            break figures;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert!(
        figures.failures.is_empty(),
        "{} dashboard queries failed:\n  {}",
        figures.failures.len(),
        figures.failures.join("\n  ")
    );
    let filled_after = filling.elapsed();
    let per_consumer = prometheus.vector(&format!(
        "sum by (instance) (rate(meshflow_consumer_messages_total{{topic=\"{}\", group=\"{}\"}}[30s]))",
        names.topic, names.group
    ));
    assert_eq!(
        per_consumer.len(),
        2,
        "per-consumer series: {per_consumer:?}"
    );

    // 2. Rules: every group of the files loaded, every rule healthy after
    // several evaluation cycles.
    let mut expected: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for file in &rule_files {
        for (group, rules) in rule_groups(file) {
            let key = (file_name(file), group);
            assert!(
                expected.insert(key.clone(), rules).is_none(),
                "rule group {key:?} defined twice"
            );
        }
    }
    wait_for("every rule evaluated", Duration::from_secs(30), || {
        let rules = loaded_rules(&prometheus);
        let all = !rules.is_empty() && rules.iter().all(|(_, _, r)| r["health"] != "unknown");
        async move { all.then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rules = loaded_rules(&prometheus);
    let mut loaded: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (group, rule, _) in &rules {
        loaded.entry(group.clone()).or_default().push(rule.clone());
    }
    assert_eq!(
        loaded, expected,
        "the rule groups Prometheus loaded differ from the files"
    );
    let unhealthy: Vec<String> = rules
        .iter()
        .filter(|(_, _, r)| {
            r["health"] != "ok" || r["lastError"].as_str().is_some_and(|e| !e.is_empty())
        })
        .map(|((f, g), n, r)| {
            format!(
                "{f} {g}/{n}: health {} error {}",
                r["health"], r["lastError"]
            )
        })
        .collect();
    assert!(
        unhealthy.is_empty(),
        "unhealthy rules:\n  {}",
        unhealthy.join("\n  ")
    );
    let lost_for = rules
        .iter()
        .find(|(_, n, _)| n == "MeshflowMessagesLost")
        .map(|(_, _, r)| r["duration"].as_f64().unwrap_or(0.0))
        .expect("MeshflowMessagesLost is loaded");

    // 3. An injected loss. Nothing lost and no loss alert before.
    let lost_series = format!("meshflow_messages_lost_total{{topic=\"{}\"}}", names.topic);
    let before = alert_states(&prometheus, "MeshflowMessagesLost", &[]);
    let lost_before = sum(&prometheus, &lost_series);
    let active_before = active_alerts(&prometheus);
    assert!(
        before.is_empty(),
        "MeshflowMessagesLost is {before:?} before any loss (lost counters: {lost_before})"
    );
    assert_eq!(lost_before, 0.0, "messages lost before the injection");

    let injected = TestProducer::new(&broker.bootstrap, &names.topic, &unique("injected"));
    for seq in (0..INJECTED).filter(|s| !GAP.contains(s)) {
        injected.send(seq, (seq % PARTITIONS as u64) as i32).await;
    }
    let injected_at = Instant::now();
    let bound = Duration::from_secs_f64(lost_for) + Duration::from_secs(GRACE_SECS + 30);
    let labels = [("topic", names.topic.as_str()), ("stage", "log")];
    let (state, alert_after) = wait_for("MeshflowMessagesLost pending or firing", bound, || {
        let states = alert_states(&prometheus, "MeshflowMessagesLost", &labels);
        let state = states.into_iter().find(|s| s == "pending" || s == "firing");
        async move { state.map(|s| (s, injected_at.elapsed())) }
    })
    .await;

    // Exactly the gap, at stage log, and nothing else lost.
    let exporter_port = exporter.port;
    let gap = GAP.end - GAP.start;
    let log_lost = wait_for(
        "the exporter to count the gap",
        Duration::from_secs(20),
        || async move {
            let s = scrape::samples(exporter_port)?;
            let n = exporter::stage(&s, "meshflow_messages_lost_total", "log", "");
            (n >= gap as f64).then_some(n)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(GRACE_SECS + 2)).await;
    let later = scrape::samples(exporter_port).expect("exporter metrics");
    let log_lost_later = exporter::stage(&later, "meshflow_messages_lost_total", "log", "");
    let processed_lost = exporter::stage(
        &later,
        "meshflow_messages_lost_total",
        "processed",
        &names.group,
    );
    assert_eq!(
        (log_lost, log_lost_later, processed_lost),
        (gap as f64, gap as f64, 0.0),
        "lost at log (first seen, {}s later) and at processed",
        GRACE_SECS + 2
    );

    println!(
        "observability: stack up in {:.1}s, 4 targets scraped without error; dashboards: {} expressions checked x3 selections \
         (single, multi, All), {} with data (all of them {:.1}s after 200 messages), {} \
         allowed-empty (parsed){}; variables: {} queried, {} with values, {} allowed-empty; \
         rules: {} groups, {} rules ok; before the injection: lost=0, active alerts {:?}; \
         injected gap of {gap} (seqs {}..{}): exporter counted {log_lost} lost at log, 0 at \
         processed; MeshflowMessagesLost {state} {:.1}s after the injection (for: {lost_for}s, \
         bound {:.0}s); total {:.1}s",
        stack_ready.as_secs_f64(),
        figures.expressions,
        figures.with_data,
        filled_after.as_secs_f64(),
        figures.allowed_empty,
        if figures.allowed_but_data.is_empty() {
            String::new()
        } else {
            format!(
                ", allowed-empty but with data now: {:?}",
                figures.allowed_but_data
            )
        },
        figures.variables,
        figures.variables_with_values,
        figures.variables_allowed_empty,
        expected.len(),
        rules.len(),
        active_before,
        GAP.start,
        GAP.end - 1,
        alert_after.as_secs_f64(),
        bound.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
}

/// `127.0.0.1:<port>` of a service's metrics endpoint.
fn target(service: &Service) -> String {
    format!("127.0.0.1:{}", service.port)
}

#[test]
fn grafana_variables_are_substituted_as_grafana_does() {
    let names = Names::new();
    let values = Values { names: &names };
    let dashboard = Dashboard {
        targets: Vec::new(),
        variable_queries: Vec::new(),
        variables: HashMap::from([
            (
                "topic".to_string(),
                Variable {
                    multi: true,
                    all_value: Some(".*".to_string()),
                },
            ),
            (
                "group".to_string(),
                Variable {
                    multi: true,
                    all_value: None,
                },
            ),
            (
                "namespace".to_string(),
                Variable {
                    multi: false,
                    all_value: None,
                },
            ),
        ]),
    };
    let query = r#"sum(rate(m{topic=~"$topic", group=~"(${group})?", ns=~"$namespace", g=~"${group:pipe}"}[$__rate_interval])) + x[[topic]] + y[5m:$__interval] + z[$__range]"#;
    let (t, r, g) = (&names.topic, &names.receipts, &names.group);
    let receipts = r.replace('.', r"\\.");
    assert_eq!(
        substitute(query, &dashboard, &values, Selection::Single),
        format!(
            r#"sum(rate(m{{topic=~"{t}", group=~"({g})?", ns=~"meshflow", g=~"{g}"}}[30s])) + x{t} + y[5m:5s] + z[5m]"#
        )
    );
    assert_eq!(
        substitute(query, &dashboard, &values, Selection::Multi),
        format!(
            r#"sum(rate(m{{topic=~"({t}|{receipts})", group=~"(({g}|other\\.group))?", ns=~"meshflow", g=~"{g}|other.group"}}[30s])) + x({t}|{receipts}) + y[5m:5s] + z[5m]"#
        )
    );
    assert_eq!(
        substitute(query, &dashboard, &values, Selection::All),
        r#"sum(rate(m{topic=~".*", group=~"(.*)?", ns=~"meshflow", g=~".*"}[30s])) + x.* + y[5m:5s] + z[5m]"#
    );
}
