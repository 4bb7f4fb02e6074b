//! Helpers for meshflow's end-to-end tests: start the real binaries and a
//! real broker as processes, read what they wrote to Kafka, scrape their
//! metrics. Every wait is bounded.

pub mod bed;
pub mod broker;
pub mod broker_file;
pub mod config_reference;
pub mod dashboard_check;
pub mod doc_links;
pub mod emitted;
pub mod exporter;
pub mod grafana;
pub mod groups;
pub mod ledger;
pub mod mock;
pub mod netns;
pub mod otlp;
pub mod process;
pub mod prometheus;
pub mod rules;
pub mod scenario;
pub mod scrape;
pub mod stack;
pub mod stack_checks;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The repository root (dashboards, alerts).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

/// Files of the repository's `dir` whose name ends with `suffix`, sorted.
pub fn repo_files(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
        .unwrap_or_else(|e| panic!("read {dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| file_name(p).ends_with(suffix))
        .collect();
    found.sort();
    found
}

/// The last component of `path` ("" when it has none).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string()
}

/// Runs `cmd` to completion and returns its stdout. Panics with `starting`
/// when it cannot be started, and with `what` and its stderr when it fails.
pub fn run_checked(cmd: &mut std::process::Command, starting: &str, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{starting}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A random suffix for topic and group names, so tests never share state.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// A working directory for one test's processes (logs, broker files),
/// removed afterwards unless `MESHFLOW_TEST_LOGS` names a directory to keep
/// them in (one sub-directory per test), for reading after a failure.
pub struct WorkDir {
    path: std::path::PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl WorkDir {
    /// A directory for `test`.
    pub fn new(test: &str) -> WorkDir {
        match std::env::var("MESHFLOW_TEST_LOGS") {
            Ok(root) if !root.is_empty() => {
                let path = std::path::Path::new(&root).join(unique(test));
                std::fs::create_dir_all(&path).expect("create the kept test directory");
                eprintln!("test files kept in {}", path.display());
                WorkDir { path, _temp: None }
            }
            _ => {
                let temp = tempfile::tempdir().expect("temp dir");
                WorkDir {
                    path: temp.path().to_path_buf(),
                    _temp: Some(temp),
                }
            }
        }
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// A free TCP port on 127.0.0.1 for a child process to bind, from
/// 20000-32000: below the kernel's ephemeral range (32768 and up), so no
/// outgoing connection of any process can take it between this check and
/// the child's bind, nor while a broker is down for a restart on the same
/// port. Ports are chosen at random and never handed out twice by one test
/// process; two test processes picking the same one at the same moment is
/// the one collision left (about 1 in 12,000 per pair of picks).
pub fn free_port() -> u16 {
    use std::sync::Mutex;
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let (low, high) = ephemeral_range();
    let top = high.min(low.saturating_sub(1)).min(32000);
    let bottom = 20000.min(top.saturating_sub(1000));
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = bottom + rand::random::<u16>() % (top - bottom);
        if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port between {bottom} and {top}");
}

/// The kernel's ephemeral port range (`ip_local_port_range`).
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut it = t.split_whitespace().map(|v| v.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// Whether this process runs as root (network namespaces, tmpfs mounts and
/// the secured stack's namespace need it).
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Polls `check` every 100 ms until it returns `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
