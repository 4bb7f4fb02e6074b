//! `deploy/local/stack` driven from a test: its own `MESHFLOW_HOME`, ports
//! no other test picks, the workspace's debug binaries, every command bounded
//! in time, and `stack down` (which also removes the broker's network
//! namespace) when the value is dropped.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::WorkDir;

/// The root-namespace ports the stack listens on, by the variable that sets them.
/// The door's ports are in the broker's own namespace as root, and on
/// 127.0.0.1 otherwise, so they are chosen the same way.
const PORT_VARS: &[&str] = &[
    "MESHFLOW_KAFKA_PORT",
    "MESHFLOW_BROKER_PORT",
    "MESHFLOW_PROXY_METRICS_PORT",
    "MESHFLOW_PRODUCER_PORT",
    "MESHFLOW_CONSUMER1_PORT",
    "MESHFLOW_CONSUMER2_PORT",
    "MESHFLOW_EXPORTER_PORT",
    "MESHFLOW_PROMETHEUS_PORT",
    "MESHFLOW_SUPERVISOR_PORT",
    "MESHFLOW_BENCH_PORT",
];

/// What a stack command printed, and whether it exited 0.
pub struct Outcome {
    pub ok: bool,
    pub output: String,
}

/// One stack under a test's own directory.
pub struct LocalStack {
    dir: WorkDir,
    env: Vec<(String, String)>,
    ports: HashMap<&'static str, u16>,
}

impl LocalStack {
    /// A stack for `test`, with `extra` environment (rates, exporter timings).
    /// Nothing runs until [`LocalStack::run`] `up`.
    pub fn new(test: &str, extra: &[(&str, &str)]) -> LocalStack {
        let dir = WorkDir::new(test);
        let mut taken = HashSet::new();
        let mut ports = HashMap::new();
        let mut env = vec![
            (
                "MESHFLOW_HOME".to_string(),
                dir.path().join("stack").display().to_string(),
            ),
            (
                "MESHFLOW_BIN_DIR".to_string(),
                bin_dir().display().to_string(),
            ),
            ("MESHFLOW_SKIP_SETUP".to_string(), "1".to_string()),
        ];
        for var in PORT_VARS {
            // The bench takes four consecutive ports from its base.
            let span = if *var == "MESHFLOW_BENCH_PORT" { 4 } else { 1 };
            let port = quiet_ports(span, &mut taken);
            ports.insert(*var, port);
            env.push((var.to_string(), port.to_string()));
        }
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        LocalStack { dir, env, ports }
    }

    /// `deploy/local/stack ARGS...`, killed after `timeout`.
    pub fn run(&self, args: &[&str], timeout: Duration) -> Outcome {
        let script = repo().join("deploy/local/stack");
        let log = self.dir.path().join("stack-command.log");
        let file = std::fs::File::create(&log).expect("create the command log");
        let mut child = Command::new(script)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone the log handle"))
            .stderr(file)
            .spawn()
            .expect("run deploy/local/stack");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the stack command") {
                break Some(status);
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut output = String::new();
        let _ = std::fs::File::open(&log).and_then(|mut f| f.read_to_string(&mut output));
        if status.is_none() {
            output.push_str(&format!("\n[killed after {timeout:?}]"));
        }
        Outcome {
            ok: status.is_some_and(|s| s.success()),
            output,
        }
    }

    /// The port a variable was given.
    pub fn port(&self, var: &str) -> u16 {
        self.ports[var]
    }

    /// The stack's state directory.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("stack")
    }

    /// `door.env` as written by `up`: (the proxy's address, broker isolated).
    pub fn door(&self) -> (String, bool) {
        let text = std::fs::read_to_string(self.home().join("door.env")).unwrap_or_default();
        let value = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_default()
                .to_string()
        };
        (value("KAFKA_ADDR"), value("ISOLATED") == "1")
    }

    /// The last `n` lines of a process's log under the stack.
    pub fn tail_log(&self, name: &str, n: usize) -> String {
        let text = std::fs::read_to_string(self.home().join(format!("logs/{name}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        let out = self.run(&["down"], Duration::from_secs(120));
        if !out.ok {
            eprintln!("stack down failed:\n{}", out.output);
        }
    }
}

/// The stack's HAProxy counts for the Kafka door, read from its exporter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DoorCounts {
    /// Connections accepted at the TCP level.
    pub connections: f64,
    /// Sessions: TLS handshake done, identity allowed or without a valid
    /// client certificate.
    pub sessions: f64,
    /// Sessions closed for want of a valid client certificate (none, or not
    /// issued by the local CA): connections without mTLS.
    pub without_mtls: f64,
    /// Valid identities refused by the policy.
    pub denied: f64,
}

impl DoorCounts {
    /// Sessions admitted to the broker: valid mTLS, identity allowed.
    pub fn admitted(&self) -> f64 {
        self.sessions - self.without_mtls
    }

    /// Connections that never completed a TLS handshake.
    pub fn failed_handshakes(&self) -> f64 {
        self.connections - self.sessions - self.denied
    }
}

/// HAProxy's counts at `addr` (its metrics port), `None` when it does not answer.
pub fn door_counts(addr: SocketAddr) -> Option<DoorCounts> {
    let body = http_get(addr, "/metrics")?;
    let samples = crate::scrape::parse(&body);
    let value = |name: &str| samples.get(&format!("{name}{{proxy=\"kafka\"}}")).copied();
    Some(DoorCounts {
        connections: value("haproxy_frontend_connections_total")?,
        sessions: value("haproxy_frontend_sessions_total")?,
        without_mtls: value("haproxy_frontend_requests_denied_total")?,
        denied: value("haproxy_frontend_denied_sessions_total")?,
    })
}

/// `GET path` on any address; the body of a 200 answer.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let (status, body) = crate::scrape::get_at(addr, path, None)?;
    (status == 200).then_some(body)
}

/// `span` consecutive free ports from 20000-32000: below the kernel's
/// ephemeral range (32768 and up), so no outgoing connection and no other
/// test's port-0 bind can be holding or take them, and checked free here.
fn quiet_ports(span: u16, taken: &mut HashSet<u16>) -> u16 {
    for _ in 0..1000 {
        let base = 20000 + rand::random::<u16>() % (12000 - span);
        let range = base..base + span;
        if range
            .clone()
            .all(|p| !taken.contains(&p) && TcpListener::bind(("127.0.0.1", p)).is_ok())
        {
            taken.extend(range);
            return base;
        }
    }
    panic!("no free ports between 20000 and 32000");
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where the workspace's binaries are: next to the test executable.
fn bin_dir() -> PathBuf {
    crate::process::binary("meshflow-producer")
        .parent()
        .expect("binary directory")
        .to_path_buf()
}
