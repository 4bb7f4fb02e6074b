//! The local broker's SQLite file, as the broker tests inspect it: the
//! indexes `deploy/local/tansu-indexes.sql` adds, its size, and probes of
//! produce and fetch latency with envelope-sized headers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures::future::join_all;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// The lookup Tansu makes for each fetched record, in the shape of its
/// query: a record by primary key joined to its headers.
pub const HEADER_LOOKUP: &str = "explain query plan \
    select h.k, h.v from header h \
    join record r on h.topition = r.topition and h.offset_id = r.offset_id \
    where r.topition = 1 and r.offset_id = 42";

/// Messages produced and fetched per latency probe.
pub const PROBE: usize = 200;

/// The index names `deploy/local/tansu-indexes.sql` creates.
pub fn expected_indexes() -> Vec<String> {
    let file = crate::repo_root().join("deploy/local/tansu-indexes.sql");
    let sql = std::fs::read_to_string(&file).expect("read tansu-indexes.sql");
    let names: Vec<String> = sql
        .lines()
        .filter_map(|l| l.trim().strip_prefix("create index if not exists "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect();
    assert!(!names.is_empty(), "no indexes in {}", file.display());
    names
}

/// Runs `sql` on the broker's file with the sqlite3 shell.
pub fn sqlite(db: &Path, sql: &str) -> String {
    let mut cmd = Command::new("sqlite3");
    cmd.arg("-cmd").arg(".timeout 10000").arg(db).arg(sql);
    crate::run_checked(
        &mut cmd,
        "run sqlite3 (deploy/local/setup.sh installs it)",
        &format!("sqlite3 {sql}"),
    )
}

/// The names of the indexes the file holds.
pub fn present_indexes(db: &Path) -> Vec<String> {
    sqlite(
        db,
        "select name from sqlite_master where type = 'index' order by name",
    )
    .lines()
    .map(str::to_string)
    .collect()
}

/// The size in bytes of the file and its write-ahead log.
pub fn size(db: &Path) -> u64 {
    std::fs::metadata(db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(wal(db)).map(|m| m.len()).unwrap_or(0)
}

/// The file's write-ahead log beside it.
fn wal(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// An idempotent `acks=all` producer that batches for 20 ms.
pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "20")
        .create()
        .expect("test producer")
}

/// Four headers the size of meshflow's envelope.
fn envelope(seq: usize) -> OwnedHeaders {
    let created = (1_795_813_603_000_000_000u64 + seq as u64).to_string();
    let seq = seq.to_string();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    [
        ("traceparent", traceparent.as_bytes()),
        ("mf-producer", b"growth-test-1a2b3c4d".as_slice()),
        ("mf-seq", seq.as_bytes()),
        ("mf-created-ns", created.as_bytes()),
    ]
    .iter()
    .fold(OwnedHeaders::new(), |h, (key, value)| {
        h.insert(Header {
            key,
            value: Some(*value),
        })
    })
}

/// Produces `n` messages as fast as the broker acknowledges them.
pub async fn preload(producer: &FutureProducer, topic: &str, n: usize) {
    let payload = vec![b'm'; 256];
    for chunk in (0..n).collect::<Vec<_>>().chunks(5_000) {
        let sends = chunk.iter().map(|&i| {
            let record = FutureRecord::to(topic)
                .key("growth")
                .payload(&payload)
                .headers(envelope(i));
            producer.send(record, Duration::from_secs(60))
        });
        for r in join_all(sends).await {
            r.unwrap_or_else(|(e, _)| panic!("preload: {e}"));
        }
    }
}

/// Latency of one probe: produce acknowledgement and fetch.
pub struct Probe {
    /// Median produce acknowledgement.
    pub produce_median: Duration,
    /// Fetch of the probe's records.
    pub fetch: Duration,
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "produce ack median {:?}, fetch of the newest {PROBE} records {:?}",
            self.produce_median, self.fetch
        )
    }
}

/// Produces `PROBE` messages one at a time (each waits for its ack), then
/// fetches them from the first one's offset; the best of three rounds.
pub async fn probe(producer: &FutureProducer, bootstrap: &str, topic: &str) -> Probe {
    let payload = vec![b'p'; 256];
    let mut best: Option<Probe> = None;
    for _ in 0..3 {
        let mut acks = Vec::with_capacity(PROBE);
        let mut first = None;
        for i in 0..PROBE {
            let record = FutureRecord::to(topic)
                .key("probe")
                .payload(&payload)
                .headers(envelope(i));
            let sent = Instant::now();
            let delivery = producer
                .send(record, Duration::from_secs(30))
                .await
                .unwrap_or_else(|(e, _)| panic!("probe send: {e}"));
            acks.push(sent.elapsed());
            first.get_or_insert(delivery.offset);
        }
        acks.sort();
        let fetch = fetch_from(bootstrap, topic, first.expect("an offset")).await;
        let round = Probe {
            produce_median: acks[acks.len() / 2],
            fetch,
        };
        best = Some(match best {
            Some(b) if b.fetch <= round.fetch => Probe {
                produce_median: b.produce_median.min(round.produce_median),
                fetch: b.fetch,
            },
            Some(b) => Probe {
                produce_median: b.produce_median.min(round.produce_median),
                fetch: round.fetch,
            },
            None => round,
        });
    }
    best.expect("three rounds")
}

/// Time to read `PROBE` records from `offset` of partition 0, checking that
/// each carries its four headers.
async fn fetch_from(bootstrap: &str, topic: &str, offset: i64) -> Duration {
    let bootstrap = bootstrap.to_string();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", crate::unique("growth-reader"))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "100")
            .create()
            .expect("test consumer");
        // Connect and learn the partition's leader before the clock starts.
        consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .expect("metadata");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(offset))
            .expect("partition offset");
        let started = Instant::now();
        consumer.assign(&tpl).expect("assign");
        let mut read = 0;
        while read < PROBE {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "read {read} of {PROBE} probe records in 60 s"
            );
            if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                let m = m.expect("fetch");
                assert_eq!(m.headers().map(|h| h.count()), Some(4), "headers");
                read += 1;
            }
        }
        started.elapsed()
    })
    .await
    .expect("fetch task")
}
