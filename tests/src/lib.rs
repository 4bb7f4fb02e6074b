//! Helpers for meshflow's end-to-end tests: start the real binaries and a
//! real broker as processes, read what they wrote to Kafka, scrape their
//! metrics. Every wait is bounded.

pub mod bed;
pub mod broker;
pub mod exporter;
pub mod ledger;
pub mod mock;
pub mod netns;
pub mod otlp;
pub mod process;
pub mod prometheus;
pub mod scenario;
pub mod scrape;
pub mod stack;

use std::time::{Duration, Instant};

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

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
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
