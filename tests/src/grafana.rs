//! Grafana dashboards as a check sees them: every query of a dashboard
//! file (panel targets, rows' nested panels, variable queries), and the
//! substitution of its variables as Grafana's Prometheus data source does
//! it, for a single value, a multi-value selection and All.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;

use crate::file_name;
use crate::scenario::Names;

/// One query of a dashboard: a panel target or a variable query.
#[derive(Debug, Clone)]
pub struct Query {
    /// The dashboard's file name.
    pub dashboard: String,
    /// The panel's title (empty for a variable query).
    pub panel: String,
    /// The target's refId, or `var:<name>`.
    pub id: String,
    /// The query as written, variables unsubstituted.
    pub text: String,
}

impl Query {
    /// `dashboard / "panel" / id`, for messages.
    pub fn name(&self) -> String {
        format!("{} / {:?} / {}", self.dashboard, self.panel, self.id)
    }
}

/// A dashboard variable's definition.
#[derive(Debug, Clone)]
pub struct Variable {
    /// Multi-value or with an All option: Grafana regex-escapes its values.
    pub multi: bool,
    /// The custom value of the All option, if any.
    pub all_value: Option<String>,
}

/// One dashboard: its panel targets, variable queries and variables.
pub struct Dashboard {
    /// Every panel target, rows' nested panels included.
    pub targets: Vec<Query>,
    /// The queries of its `query` variables.
    pub variable_queries: Vec<Query>,
    /// Its variables by name.
    pub variables: HashMap<String, Variable>,
}

impl Dashboard {
    /// Reads a dashboard file.
    pub fn load(path: &Path) -> Dashboard {
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
pub enum Selection {
    /// The test's topic and group.
    Single,
    /// The test's and one more, as a multi-value selection.
    Multi,
    /// The All option.
    All,
}

/// The values the test picks for the variables.
pub struct Values<'a> {
    /// The test's topics and group.
    pub names: &'a Names,
}

impl Values<'_> {
    /// The selected values of `name` (None: not a selectable variable).
    pub fn of(&self, name: &str, selection: Selection) -> Option<Vec<String>> {
        let (own, other) = match name {
            "topic" => (self.names.topic.clone(), self.names.receipts.clone()),
            "group" => (self.names.group.clone(), "other.group".to_string()),
            // The exporter's Kafka cluster: the stacks set no
            // exporter.cluster_name, so theirs is the default's.
            "kafka_cluster" => ("default".to_string(), "other-cluster".to_string()),
            "mesh_namespace" => return Some(vec!["meshflow".to_string()]),
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

/// Dashboard variables over labels that Prometheus, not the services, puts
/// on series (external labels, Kubernetes target labels).
pub const TARGET_LABELS: [&str; 2] = ["cluster", "namespace"];

/// Grafana's built-in variables (`$__rate_interval`, `$__range`, ...): the
/// values of `dashboards/schema-check/grafana-builtins.json`, the table the
/// JavaScript checks substitute too.
pub fn builtin(name: &str) -> Option<String> {
    static TABLE: OnceLock<HashMap<String, String>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            let text = include_str!("../../dashboards/schema-check/grafana-builtins.json");
            let json: Value = serde_json::from_str(text).expect("grafana-builtins.json");
            serde_json::from_value(json["values"].clone())
                .expect("grafana-builtins.json: values maps names to strings")
        })
        .get(name)
        .cloned()
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
        return v;
    }
    let variable = dashboard.variables.get(name);
    let multi = variable.is_some_and(|v| v.multi);
    let selection = if multi { selection } else { Selection::Single };
    // The target-label variables: the test's Prometheus adds no cluster or
    // namespace label, so they take the All value, as they do for a user
    // whose Prometheus adds none.
    let selection = if TARGET_LABELS.contains(&name) {
        Selection::All
    } else {
        selection
    };
    if selection == Selection::All {
        // A custom all value is inserted as written, whatever the format.
        return variable
            .and_then(|v| v.all_value.clone())
            .unwrap_or_else(|| ".*".to_string());
    }
    let chosen = values
        .of(name, selection)
        .unwrap_or_else(|| panic!("no test value for dashboard variable ${name}"));
    let alternation = || {
        let escaped: Vec<String> = chosen.iter().map(|v| regex_escape(v)).collect();
        if escaped.len() == 1 {
            escaped[0].clone()
        } else {
            format!("({})", escaped.join("|"))
        }
    };
    match format {
        None if multi => alternation(),
        None => plain_escape(&chosen[0]),
        Some("regex") => alternation(),
        Some("pipe") => chosen.join("|"),
        Some("raw") | Some("csv") => chosen.join(","),
        Some(other) => panic!("variable format :{other} of ${name} is not handled"),
    }
}

/// `text` with every `$name`, `${name}`, `${name:format}` and `[[name]]`
/// replaced.
pub fn substitute(
    text: &str,
    dashboard: &Dashboard,
    values: &Values,
    selection: Selection,
) -> String {
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
