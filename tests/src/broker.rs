//! Real brokers for the tests: a Tansu process on a SQLite file (durable,
//! killable), and librdkafka's mock cluster hosted in the test process (three
//! brokers whose failures the test controls).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;
use tokio::process::{Child, Command};

/// The Tansu binary: `$TANSU_BIN`, else `tansu` on `PATH` or in `~/.cargo/bin`.
pub fn tansu_binary() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        return p.into();
    }
    let home_bin = std::env::var("HOME")
        .map(|h| PathBuf::from(h).join(".cargo/bin/tansu"))
        .unwrap_or_default();
    let on_path = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join("tansu"))
        .find(|p| p.exists());
    let found = on_path.or_else(|| home_bin.exists().then_some(home_bin));
    found.expect("tansu is not installed: run deploy/local/setup.sh (cargo install tansu)")
}

/// The broker's SQLite file name, in its directory.
const DATABASE: &str = "tansu.db";

/// `deploy/local/tansu-broker`: starts Tansu after making sure the indexes its
/// SQLite queries need exist (the stack starts the broker the same way).
pub fn tansu_launcher() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .join("deploy/local/tansu-broker")
}

/// One Tansu broker on a SQLite file in `dir`.
pub struct Tansu {
    /// `<address>:<port>`.
    pub bootstrap: String,
    /// Where its log goes.
    dir: PathBuf,
    /// Where its SQLite file lives.
    data: PathBuf,
    child: Option<Child>,
    restarts: u32,
}

impl Tansu {
    /// Starts a broker on a free port and waits until it answers.
    pub async fn start(dir: &Path) -> Tansu {
        Tansu::start_on(dir, "127.0.0.1").await
    }

    /// Starts a broker listening on (and advertising) `address`, one of this
    /// machine's addresses, on a free port.
    pub async fn start_on(dir: &Path, address: &str) -> Tansu {
        Tansu::start_with_data(dir, dir, address).await
    }

    /// [`Tansu::start_on`] with its SQLite file in `data` (say a small
    /// file system) and its log in `dir`.
    pub async fn start_with_data(dir: &Path, data: &Path, address: &str) -> Tansu {
        let port = crate::free_port();
        let mut t = Tansu {
            bootstrap: format!("{address}:{port}"),
            dir: dir.to_path_buf(),
            data: data.to_path_buf(),
            child: None,
            restarts: 0,
        };
        t.spawn().await;
        t
    }

    async fn spawn(&mut self) {
        let url = format!("tcp://{}", self.bootstrap);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("tansu.log"))
            .expect("tansu log");
        let mut cmd = Command::new(tansu_launcher());
        cmd.env("TANSU_BIN", tansu_binary())
            .arg("--cluster-id")
            .arg("meshflow-test")
            .arg("--listener-url")
            .arg(&url)
            .arg("--advertised-listener-url")
            .arg(&url)
            .arg("--storage-engine")
            .arg(format!("sqlite://{DATABASE}"))
            .current_dir(&self.data)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .kill_on_drop(true);
        self.child = Some(cmd.spawn().expect("start tansu"));
        wait_reachable(&self.bootstrap, Duration::from_secs(30)).await;
    }

    /// `kill -9` the broker and wait for it to be gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("kill tansu");
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
    }

    /// Sends a signal by number to the broker (19 = STOP, 18 = CONT): a
    /// stopped broker holds every connection open and answers nothing.
    pub fn signal(&self, signal: i32) {
        let Some(pid) = self.child.as_ref().and_then(Child::id) else {
            return;
        };
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} tansu");
    }

    /// Whether the broker process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The broker's SQLite file.
    pub fn database(&self) -> PathBuf {
        self.data.join(DATABASE)
    }

    /// Starts the broker again on the same port and file, as a supervisor would.
    pub async fn restart(&mut self) {
        self.restarts += 1;
        self.spawn().await;
    }
}

/// Waits until a metadata request to `bootstrap` succeeds.
pub async fn wait_reachable(bootstrap: &str, timeout: Duration) {
    let bootstrap = bootstrap.to_string();
    let start = Instant::now();
    tokio::task::spawn_blocking(move || {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .expect("probe client");
        loop {
            if producer
                .client()
                .fetch_metadata(None, Duration::from_secs(1))
                .is_ok()
            {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "broker {bootstrap} not reachable within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .expect("probe task");
}

/// Creates topics with `partitions` partitions and replication factor 1.
pub async fn create_topics(bootstrap: &str, topics: &[&str], partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = tokio::time::timeout(Duration::from_secs(30), admin.create_topics(&new, &opts))
        .await
        .expect("create topics in time")
        .expect("create topics");
    for r in results {
        if let Err((topic, code)) = r {
            assert_eq!(
                code,
                rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
                "create {topic}"
            );
        }
    }
}
