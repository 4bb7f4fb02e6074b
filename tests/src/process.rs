//! The services under test, run as real processes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// Path of a workspace binary next to the running test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// A running service process, killed when dropped.
pub struct Service {
    /// What the test calls it, for messages.
    pub name: String,
    child: Child,
    /// Its stderr log file.
    pub log: PathBuf,
    /// Its metrics port.
    pub port: u16,
}

impl Service {
    /// Starts `binary` with `env` (on top of a clean `MESHFLOW__*`/`OTEL_*`
    /// free environment) on a free metrics port, logging to `dir/<name>.log`.
    pub fn start(name: &str, binary_name: &str, env: &[(String, String)], dir: &Path) -> Service {
        Service::start_wrapped(name, &[], binary_name, env, &[], dir)
    }

    /// [`Service::start`] with command-line arguments (say `--config
    /// FILE`), run by `wrapper` when it is not empty (say `ip netns exec
    /// NAME`, which runs it in a network namespace).
    pub fn start_wrapped(
        name: &str,
        wrapper: &[String],
        binary_name: &str,
        env: &[(String, String)],
        args: &[&str],
        dir: &Path,
    ) -> Service {
        let port = crate::free_port();
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("create log file");
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(binary(binary_name));
                c
            }
            None => Command::new(binary(binary_name)),
        };
        for (k, _) in std::env::vars() {
            if k.starts_with("MESHFLOW__") || k.starts_with("OTEL_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("MESHFLOW__HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("dup log file"))
            .stderr(file)
            .kill_on_drop(true);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        Service {
            name: name.to_string(),
            child,
            log,
            port,
        }
    }

    /// `127.0.0.1:<port>` of its metrics endpoint, as a scrape target.
    pub fn metrics_target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Sends a signal by number (15 = TERM, 9 = KILL).
    pub fn signal(&self, signal: i32) {
        if let Some(pid) = self.pid() {
            let status = std::process::Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -{signal} {}", self.name);
        }
    }

    /// Waits for the process to exit; panics after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => panic!("wait for {}: {e}", self.name),
            Err(_) => panic!(
                "{} did not exit within {timeout:?}; log:\n{}",
                self.name,
                self.tail_log(30)
            ),
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last `n` lines of its log.
    pub fn tail_log(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Environment for a service talking to `bootstrap`.
pub fn kafka_env(bootstrap: &str) -> Vec<(String, String)> {
    vec![(
        "MESHFLOW__KAFKA__BOOTSTRAP_SERVERS".into(),
        bootstrap.to_string(),
    )]
}

/// Adds `KEY=value` pairs to an environment list.
pub fn with(mut env: Vec<(String, String)>, pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    env.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}
