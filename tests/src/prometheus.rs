//! A real Prometheus server for the tests: scrapes the services under test
//! every second, stores exemplars, evaluates rule files, and answers the
//! HTTP API. Started on a free port with its own data directory; killed
//! when dropped. Also `promtool check metrics` on a scraped body.
//!
//! The calls block (plain HTTP/1.0 over a TCP socket, no client library);
//! from an async test they take a few milliseconds each.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How often Prometheus scrapes and evaluates rules.
pub const INTERVAL: &str = "1s";

/// The Prometheus binary: `$PROMETHEUS_BIN`, else `prometheus` on `PATH`.
pub fn prometheus_binary() -> PathBuf {
    if let Ok(p) = std::env::var("PROMETHEUS_BIN") {
        return p.into();
    }
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join("prometheus"))
        .find(|p| p.exists())
        .expect(
            "prometheus is not installed: run deploy/local/setup.sh (Debian package prometheus)",
        )
}

/// A running Prometheus.
pub struct Prometheus {
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
    /// Its log file.
    pub log: PathBuf,
    child: Child,
}

impl Prometheus {
    /// Starts Prometheus with its files under `dir`: one scrape job per
    /// distinct job name in `scrape_targets` (`(job, "127.0.0.1:port")`),
    /// the given rule files, scrape and evaluation every second, exemplar
    /// storage on (so it asks for OpenMetrics). Waits for `/-/ready`.
    pub fn start(
        dir: &Path,
        scrape_targets: &[(&str, &str)],
        rule_files: &[PathBuf],
    ) -> Prometheus {
        let port = crate::free_port();
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, config_text(scrape_targets, rule_files))
            .expect("write prometheus.yml");
        let log = dir.join("prometheus.log");
        let file = std::fs::File::create(&log).expect("prometheus log");
        let child = Command::new(prometheus_binary())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prometheus-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--enable-feature=exemplar-storage")
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("dup log"))
            .stderr(file)
            .spawn()
            .expect("start prometheus");
        let prometheus = Prometheus { port, log, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if matches!(prometheus.request("/-/ready"), Some((200, _))) {
                return prometheus;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within 30s; log:\n{}",
                std::fs::read_to_string(&prometheus.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `GET path` (with its query string, already encoded); the JSON body.
    /// Panics unless the answer is JSON.
    pub fn get(&self, path: &str) -> Value {
        let (status, body) = self
            .request(path)
            .unwrap_or_else(|| panic!("prometheus did not answer GET {path}"));
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path}: status {status}, not JSON ({e}): {body}"))
    }

    /// An instant query; returns the answer's `data` (`resultType`,
    /// `result`). Panics unless the query succeeded.
    pub fn query(&self, promql: &str) -> Value {
        let answer = self.get(&format!("/api/v1/query?query={}", encode(promql)));
        assert_eq!(answer["status"], "success", "query {promql}: {answer}");
        answer["data"].clone()
    }

    /// The values of an instant vector query, each with its labels.
    pub fn vector(&self, promql: &str) -> Vec<(serde_json::Map<String, Value>, f64)> {
        let data = self.query(promql);
        data["result"]
            .as_array()
            .map(|results| {
                results
                    .iter()
                    .filter_map(|r| {
                        let labels = r["metric"].as_object()?.clone();
                        let value = r["value"][1].as_str()?.parse().ok()?;
                        Some((labels, value))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// [`Prometheus::start`] from async code, with owned arguments.
    pub async fn start_async(
        dir: PathBuf,
        scrape_targets: Vec<(String, String)>,
        rule_files: Vec<PathBuf>,
    ) -> Prometheus {
        tokio::task::spawn_blocking(move || {
            let targets: Vec<(&str, &str)> = scrape_targets
                .iter()
                .map(|(job, target)| (job.as_str(), target.as_str()))
                .collect();
            Prometheus::start(&dir, &targets, &rule_files)
        })
        .await
        .expect("start prometheus")
    }

    /// The sum of an instant vector, or NaN when it is empty: as with
    /// [`crate::scrape::sum`], a series that is not there is no zero.
    pub fn sum(&self, promql: &str) -> f64 {
        let values = self.vector(promql);
        if values.is_empty() {
            return f64::NAN;
        }
        values.iter().map(|(_, v)| v).sum()
    }

    /// Every active target that is not up or whose last scrape failed, one
    /// line each.
    pub fn scrape_errors(&self) -> Vec<String> {
        self.get("/api/v1/targets")["data"]["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| {
                t["health"] != "up" || t["lastError"].as_str().is_some_and(|e| !e.is_empty())
            })
            .map(|t| {
                format!(
                    "{} {}: {} {}",
                    t["labels"]["job"], t["scrapeUrl"], t["health"], t["lastError"]
                )
            })
            .collect()
    }

    /// The `trace_id` labels of the exemplars stored for `series` between
    /// `start` and `end` (unix seconds).
    pub fn exemplar_trace_ids(&self, series: &str, start: u64, end: u64) -> HashSet<String> {
        let answer = self.get(&format!(
            "/api/v1/query_exemplars?query={}&start={start}&end={end}",
            encode(series)
        ));
        answer["data"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["labels"]["trace_id"].as_str().map(str::to_string))
            .collect()
    }

    fn request(&self, path: &str) -> Option<(u16, String)> {
        let mut stream =
            TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(2))
                .ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        // HTTP/1.0: the answer is the rest of the stream, never chunked.
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let (head, body) = answer.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, body.to_string()))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The configuration file's text.
fn config_text(scrape_targets: &[(&str, &str)], rule_files: &[PathBuf]) -> String {
    let mut text = format!(
        "global:\n  scrape_interval: {INTERVAL}\n  scrape_timeout: {INTERVAL}\n  evaluation_interval: {INTERVAL}\n"
    );
    if !rule_files.is_empty() {
        text.push_str("rule_files:\n");
        for file in rule_files {
            text.push_str(&format!("  - {:?}\n", file.display().to_string()));
        }
    }
    text.push_str("scrape_configs:\n");
    let mut jobs: Vec<&str> = Vec::new();
    for (job, _) in scrape_targets {
        if !jobs.contains(job) {
            jobs.push(job);
        }
    }
    for job in jobs {
        let targets: Vec<String> = scrape_targets
            .iter()
            .filter(|(j, _)| *j == job)
            .map(|(_, target)| format!("{target:?}"))
            .collect();
        text.push_str(&format!(
            "  - job_name: {job:?}\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        ));
    }
    text
}

/// Percent-encodes a query-string value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// What `promtool check metrics` said of a text-format body.
pub struct PromtoolCheck {
    /// It exited 0.
    pub passed: bool,
    /// Its stdout and stderr.
    pub output: String,
    /// Lines of the body checked.
    pub lines: usize,
}

impl std::fmt::Display for PromtoolCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.passed { "passed" } else { "FAILED" };
        write!(f, "{verdict} ({} lines checked)", self.lines)?;
        match self.output.trim() {
            "" => Ok(()),
            output => write!(f, ": {output}"),
        }
    }
}

/// Runs `promtool check metrics` on a text-format body.
pub fn promtool_check(body: &str) -> PromtoolCheck {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool (Debian package prometheus)");
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    PromtoolCheck {
        passed: out.status.success(),
        output: text,
        lines: body.lines().count(),
    }
}
