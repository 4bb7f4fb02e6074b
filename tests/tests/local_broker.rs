//! The local broker's SQLite file: the indexes `deploy/local/tansu-broker`
//! adds at every start (on a new file and on an existing one), and produce
//! and fetch latency as the file grows. Tansu 0.6 looks every fetched
//! record's headers up by (topition, offset_id) in a table it does not
//! index; without the index a fetch slows down in proportion to the number
//! of headers ever stored. Each test prints its figures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures::future::join_all;
use meshflow_tests::broker::{create_topics, Tansu};
use meshflow_tests::{unique, WorkDir};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// The lookup Tansu makes for each fetched record, in the shape of its
/// query: a record by primary key joined to its headers.
const HEADER_LOOKUP: &str = "explain query plan \
    select h.k, h.v from header h \
    join record r on h.topition = r.topition and h.offset_id = r.offset_id \
    where r.topition = 1 and r.offset_id = 42";

/// Messages preloaded by the growth test: as many as fit its share of the CI
/// budget (about 25 s of producing here); `MESHFLOW_GROWTH_MESSAGES` for more.
const DEFAULT_PRELOAD: usize = 30_000;

/// Messages produced and fetched per latency probe.
const PROBE: usize = 200;

/// The index names `deploy/local/tansu-indexes.sql` creates.
fn expected_indexes() -> Vec<String> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/tansu-indexes.sql");
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
fn sqlite(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg("-cmd")
        .arg(".timeout 10000")
        .arg(db)
        .arg(sql)
        .output()
        .expect("run sqlite3 (deploy/local/setup.sh installs it)");
    assert!(
        out.status.success(),
        "sqlite3 {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn present_indexes(db: &Path) -> Vec<String> {
    sqlite(
        db,
        "select name from sqlite_master where type = 'index' order by name",
    )
    .lines()
    .map(str::to_string)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_exist_at_every_start_and_serve_the_header_lookup() {
    let dir = WorkDir::new("broker-indexes");
    let started = Instant::now();
    let mut broker = Tansu::start(dir.path()).await;
    println!("new file: broker answering after {:?}", started.elapsed());
    let db = broker.database();
    let expected = expected_indexes();
    let present = present_indexes(&db);
    for name in &expected {
        assert!(
            present.contains(name),
            "{name} missing on a new file: {present:?}"
        );
    }
    let plan = sqlite(&db, HEADER_LOOKUP);
    println!("header lookup plan:\n{plan}");
    assert!(
        plan.contains("INDEX meshflow_header_record"),
        "header lookup does not use the index:\n{plan}"
    );
    assert!(!plan.contains("SCAN h"), "header lookup scans:\n{plan}");

    // An existing file that lacks them (as one written before the launcher
    // existed): they are added before the broker opens it again.
    broker.kill().await;
    for name in &expected {
        sqlite(&db, &format!("drop index {name}"));
    }
    let started = Instant::now();
    broker.restart().await;
    println!(
        "existing file: broker answering after {:?}",
        started.elapsed()
    );
    let present = present_indexes(&db);
    for name in &expected {
        assert!(
            present.contains(name),
            "{name} missing after a restart: {present:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_fetch_latency_stay_flat_as_the_file_grows() {
    let dir = WorkDir::new("broker-growth");
    let broker = Tansu::start(dir.path()).await;
    let topic = unique("growth");
    create_topics(&broker.bootstrap, &[&topic], 1).await;
    let producer = producer(&broker.bootstrap);

    let empty = probe(&producer, &broker.bootstrap, &topic).await;
    println!("empty file: {empty}");

    let n = std::env::var("MESHFLOW_GROWTH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_PRELOAD);
    let started = Instant::now();
    preload(&producer, &topic, n).await;
    let took = started.elapsed();
    let db = broker.database();
    let headers = sqlite(&db, "select count(*) from header");
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(wal(&db)).map(|m| m.len()).unwrap_or(0);
    println!(
        "preloaded {n} messages with 4 headers in {took:?} ({:.0}/s): {} header rows, {:.1} MB",
        n as f64 / took.as_secs_f64(),
        headers.trim(),
        size as f64 / 1e6
    );

    let grown = probe(&producer, &broker.bootstrap, &topic).await;
    println!("grown file: {grown}");
    // Ratios against the empty file, with 100 ms of slack for a machine
    // shared with other work; without the header index the fetch is tens of
    // times slower at this size.
    let slack = Duration::from_millis(100);
    assert!(
        grown.fetch <= empty.fetch * 3 + slack,
        "fetch of the newest {PROBE} records: {:?} on the grown file, {:?} on the empty one",
        grown.fetch,
        empty.fetch
    );
    assert!(
        grown.produce_median <= empty.produce_median * 3 + slack,
        "produce ack median: {:?} on the grown file, {:?} on the empty one",
        grown.produce_median,
        empty.produce_median
    );
}

fn wal(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn producer(bootstrap: &str) -> FutureProducer {
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
async fn preload(producer: &FutureProducer, topic: &str, n: usize) {
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
struct Probe {
    produce_median: Duration,
    fetch: Duration,
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
async fn probe(producer: &FutureProducer, bootstrap: &str, topic: &str) -> Probe {
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
            .set("group.id", unique("growth-reader"))
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
