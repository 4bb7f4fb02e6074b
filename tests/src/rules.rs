//! Prometheus alert and recording rules: the groups a rule file defines,
//! and what a running Prometheus says it loaded and which alerts are active.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::file_name;
use crate::prometheus::Prometheus;

/// Groups and their rule names, read from a rule file (the layout of
/// `alerts/*.rules.yml`: `- name:` opens a group, `- alert:` / `- record:`
/// name its rules).
pub fn rule_groups(path: &Path) -> Vec<(String, Vec<String>)> {
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

/// The rule names of every group of `files`, keyed by (file name, group);
/// panics on a group defined twice.
pub fn groups_of(files: &[PathBuf]) -> BTreeMap<(String, String), Vec<String>> {
    let mut groups = BTreeMap::new();
    for file in files {
        for (group, rules) in rule_groups(file) {
            let key = (file_name(file), group);
            assert!(
                groups.insert(key.clone(), rules).is_none(),
                "rule group {key:?} defined twice"
            );
        }
    }
    groups
}

/// A loaded rule: ((file name, group), rule name, the rule's JSON).
pub type LoadedRule = ((String, String), String, Value);

/// Every loaded rule: ((file name, group), rule name, the rule's JSON).
pub fn loaded_rules(prometheus: &Prometheus) -> Vec<LoadedRule> {
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
pub fn alert_states(
    prometheus: &Prometheus,
    alertname: &str,
    labels: &[(&str, &str)],
) -> Vec<String> {
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
pub fn active_alerts(prometheus: &Prometheus) -> BTreeSet<String> {
    let answer = prometheus.get("/api/v1/alerts");
    answer["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| format!("{}:{}", a["labels"]["alertname"], a["state"]).replace('"', ""))
        .collect()
}

/// The loaded rules' names by (file name, group), comparable with
/// [`groups_of`].
pub fn loaded_groups(rules: &[LoadedRule]) -> BTreeMap<(String, String), Vec<String>> {
    let mut loaded: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (group, rule, _) in rules {
        loaded.entry(group.clone()).or_default().push(rule.clone());
    }
    loaded
}

/// Every rule that is not healthy or whose last evaluation failed, one
/// line each.
pub fn unhealthy(rules: &[LoadedRule]) -> Vec<String> {
    rules
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
        .collect()
}
