//! What the secured-stack test reads from a running `deploy/local/stack`:
//! the exporter's samples and lags, whether a real Kafka client gets an
//! answer through the mTLS door, and which mesh dashboard panels have data.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::grafana::{substitute, Dashboard, Selection, Values};
use crate::prometheus::encode;
use crate::scenario::Names;
use crate::scrape;
use crate::stack::LocalStack;

/// Polls `check` every 200 ms until it returns `Some` or `timeout` passes.
pub fn wait<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The exporter's samples, `None` while it does not answer.
pub fn exporter(stack: &LocalStack) -> Option<HashMap<String, f64>> {
    scrape::samples(stack.port("MESHFLOW_EXPORTER_PORT"))
}

/// The sum of metric `name` at `stage` over its other labels.
pub fn total(samples: &HashMap<String, f64>, name: &str, stage: &str) -> f64 {
    scrape::sum(samples, name, &[("stage", stage)])
}

/// Lag per partition of the stack's group (`meshflow`) on its topic, as the
/// exporter last polled it (other groups the exporter watches aside).
pub fn lags(samples: &HashMap<String, f64>) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = samples
        .iter()
        .filter(|(s, _)| {
            s.starts_with("meshflow_consumer_lag_messages{")
                && s.contains("group=\"meshflow\"")
                && s.contains("meshflow.events")
        })
        .filter_map(|(s, v)| {
            let p = s.split("partition=\"").nth(1)?.split('"').next()?;
            Some((p.to_string(), *v))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// librdkafka settings of a client through the door: TLS with the local
/// CA, plus `auth` (a client certificate, or nothing).
fn door_client(door: &str, ca: &str, auth: &[(&str, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", door)
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", ca);
    for (k, v) in auth {
        config.set(*k, v);
    }
    config
}

/// A real Kafka client through the door with `auth` (librdkafka settings);
/// true when the broker answered a metadata request.
pub fn kafka_client_answered(door: &str, ca: &str, auth: &[(&str, String)]) -> bool {
    let mut config = door_client(door, ca, auth);
    config.set("log_level", "0");
    let Ok(client) = config.create::<BaseConsumer>() else {
        return false;
    };
    client.fetch_metadata(None, Duration::from_secs(4)).is_ok()
}

/// A consumer group of a user's own through the door with `auth`: commits
/// `offset` on `partition` of `topic` for `group`, as any Kafka client does,
/// without joining. True when the broker took the commit.
pub fn commit_through_door(
    door: &str,
    ca: &str,
    auth: &[(&str, String)],
    group: &str,
    (topic, partition, offset): (&str, i32, i64),
) -> bool {
    let mut config = door_client(door, ca, auth);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    let Ok(client) = config.create::<BaseConsumer>() else {
        return false;
    };
    let mut tpl = rdkafka::TopicPartitionList::new();
    if tpl
        .add_partition_offset(topic, partition, rdkafka::Offset::Offset(offset))
        .is_err()
    {
        return false;
    }
    client
        .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
        .is_ok()
}

/// Evaluates every panel query of `dashboards/cluster-mesh.json` that reads
/// a `haproxy_` metric against the Prometheus on `port`, with the stack's
/// topic and group selected; panics naming each query without data (waiting
/// up to 60 s, for the rates' first points). Returns how many were checked.
pub fn mesh_panels_with_data(port: u16) -> usize {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards/cluster-mesh.json");
    let dashboard = Dashboard::load(&path);
    let names = Names {
        topic: "meshflow.events".into(),
        receipts: "meshflow.receipts".into(),
        dlq: "meshflow.events.dlq".into(),
        group: "meshflow".into(),
        producer: String::new(),
    };
    let values = Values { names: &names };
    let queries: Vec<(String, String)> = dashboard
        .targets
        .iter()
        .filter(|q| q.text.contains("haproxy_"))
        .map(|q| {
            (
                q.name(),
                substitute(&q.text, &dashboard, &values, Selection::Single),
            )
        })
        .collect();
    assert!(!queries.is_empty(), "no mesh panel reads HAProxy's metrics");
    for (name, promql) in &queries {
        wait(&format!("data for {name}"), Duration::from_secs(60), || {
            let (code, body) = scrape::get(
                port,
                &format!("/api/v1/query?query={}", encode(promql)),
                None,
            )?;
            let answer: serde_json::Value = serde_json::from_str(&body).ok()?;
            assert_eq!(code, 200, "{name} does not evaluate: {body}");
            let has_data = answer["data"]["result"]
                .as_array()
                .is_some_and(|r| r.iter().any(|s| s["value"][1].as_str() != Some("NaN")));
            has_data.then_some(())
        });
    }
    queries.len()
}

/// The figures `deploy/local/stack status` shows on its one screen.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusScreen {
    /// `(process, supervisord state, readiness)` per line of the table.
    pub processes: Vec<(String, String, String)>,
    /// `(messages, lost, duplicated)` at stage `log`.
    pub log: (f64, f64, f64),
    /// The same at stage `processed`.
    pub processed: (f64, f64, f64),
    /// The worst group's line.
    pub worst_group: String,
    /// Firing alerts by name.
    pub alerts: Vec<String>,
    /// The door's connections without mTLS and policy denials.
    pub without_mtls: f64,
    /// Valid identities the policy refused.
    pub denied: f64,
}

/// Reads the screen `stack status` printed; `None` names what is missing.
pub fn status_screen(output: &str) -> Result<StatusScreen, String> {
    let lines: Vec<&str> = output.lines().collect();
    let processes = [
        "broker",
        "proxy",
        "producer",
        "consumer-1",
        "consumer-2",
        "exporter",
        "prometheus",
    ]
    .iter()
    .map(|name| {
        let line = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .ok_or(format!("no line for {name}"))?;
        let mut words = line.split_whitespace();
        words.next();
        let state = words.next().unwrap_or_default().to_string();
        Ok((name.to_string(), state, words.collect::<Vec<_>>().join(" ")))
    })
    .collect::<Result<Vec<_>, String>>()?;
    let stage = |name: &str| -> Result<(f64, f64, f64), String> {
        let line = lines
            .iter()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .ok_or(format!("no line for stage {name}"))?;
        let n: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .map(|w| w.parse().map_err(|_| format!("{w:?} in {line:?}")))
            .collect::<Result<_, _>>()?;
        match n[..] {
            [seen, lost, dup] => Ok((seen, lost, dup)),
            _ => Err(format!("stage line {line:?}")),
        }
    };
    let after = |prefix: &str| -> Result<&str, String> {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .ok_or(format!("no line {prefix:?}"))
    };
    let count_after = |line: &str, label: &str| -> Result<f64, String> {
        line.split(label)
            .nth(1)
            .and_then(|rest| rest.trim().split([',', ' ']).next())
            .and_then(|n| n.parse().ok())
            .ok_or(format!("no {label:?} count in {line:?}"))
    };
    let alerts = after("alerts firing: ")?;
    let door = after("proxy: ")?;
    Ok(StatusScreen {
        processes,
        log: stage("log")?,
        processed: stage("processed")?,
        worst_group: after("worst group: ")?.to_string(),
        alerts: if alerts == "none" {
            Vec::new()
        } else {
            alerts
                .split(", ")
                .map(|a| a.split(" x").next().unwrap_or(a).to_string())
                .collect()
        },
        without_mtls: count_after(door, "without mTLS (no valid client certificate)")?,
        denied: count_after(door, "denied by policy")?,
    })
}

/// Alerts firing in the Prometheus on `port`, by name, sorted and unique.
pub fn firing_alerts(port: u16) -> Option<Vec<String>> {
    // curl, not scrape::get: Prometheus may answer this one chunked.
    let out = std::process::Command::new("curl")
        .args([
            "-sf",
            "-m",
            "5",
            &format!("http://127.0.0.1:{port}/api/v1/alerts"),
        ])
        .output()
        .ok()?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let mut names: Vec<String> = json["data"]["alerts"]
        .as_array()?
        .iter()
        .filter(|a| a["state"] == "firing")
        .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_screen_is_read() {
        let screen = "meshflow stack in /x\nservice     process   ready\n\
            broker      RUNNING   -\nproxy       RUNNING   -\nproducer    RUNNING   ready\n\
            consumer-1  RUNNING   ready\nconsumer-2  RUNNING   ready\nexporter    RUNNING   ready\n\
            prometheus  RUNNING   -\n\nproducer: acked 10, failed 0\n\
            exporter       messages   lost  duplicated\n  log               120      0           0\n\
              processed         118      0           3\n\
            worst group: meshflow OK, lag 0.0 s (0 messages); groups watched: 2\n\
            alerts firing: MeshflowNonMtlsTraffic, MeshflowMeshConnectionsDenied x2\n\
            proxy: connections 9, admitted 4, without mTLS (no valid client certificate) 2, denied by policy 1, without a TLS handshake (failed, or closed before it ended) 2\n";
        let s = status_screen(screen).unwrap();
        assert_eq!(s.processes.len(), 7);
        assert_eq!(
            s.processes[2],
            ("producer".into(), "RUNNING".into(), "ready".into())
        );
        assert_eq!(s.log, (120.0, 0.0, 0.0));
        assert_eq!(s.processed, (118.0, 0.0, 3.0));
        assert_eq!(
            s.alerts,
            ["MeshflowNonMtlsTraffic", "MeshflowMeshConnectionsDenied"]
        );
        assert_eq!((s.without_mtls, s.denied), (2.0, 1.0));
        assert!(s.worst_group.starts_with("meshflow OK"));
    }
}
