//! What reached Kafka: every record of a topic, read from the beginning by a
//! background reader, and the receipt book-keeping the tests assert on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meshflow_common::headers::HeaderList;
use meshflow_common::receipt::{decode, FORMAT_HEADER};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// One record as the reader saw it.
#[derive(Debug, Clone)]
pub struct Record {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// Headers in order, names as raw bytes (they need not be UTF-8).
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// When the reader received it.
    pub seen: Instant,
}

impl Record {
    /// All values of header `name`.
    pub fn header(&self, name: &str) -> Vec<Option<&[u8]>> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| v.as_deref())
            .collect()
    }
}

/// Reads every partition of a topic from the beginning until dropped.
pub struct TopicReader {
    records: Arc<Mutex<Vec<Record>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TopicReader {
    /// Starts reading `topic` (which must exist with `partitions` partitions).
    pub fn start(bootstrap: &str, topic: &str, partitions: i32) -> TopicReader {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", crate::unique("reader"))
            .set("enable.auto.commit", "false")
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "500")
            .create()
            .expect("reader consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .expect("partition");
        }
        consumer.assign(&tpl).expect("assign");
        let records = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (records.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    {
                        let headers = HeaderList::copy_of(m.headers()).into_entries();
                        r.lock().unwrap().push(Record {
                            partition: m.partition(),
                            offset: m.offset(),
                            payload: m.payload().unwrap_or_default().to_vec(),
                            headers,
                            seen: Instant::now(),
                        });
                    }
                }
            }
        });
        TopicReader {
            records,
            stop,
            thread: Some(thread),
        }
    }

    /// A copy of everything read so far.
    pub fn records(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }

    /// How many records were read so far.
    pub fn len(&self) -> usize {
        self.records.lock().unwrap().len()
    }

    /// The receipt ledger of everything read so far (a receipts topic).
    pub fn ledger(&self) -> Ledger {
        Ledger::from_records(&self.records())
    }

    /// Waits until every partition has been read up to its high watermark
    /// in `highs` (taken once nothing writes to the topic any more) and
    /// returns the ledger of everything read; panics after `timeout`.
    pub async fn ledger_through(&self, highs: &HashMap<i32, i64>, timeout: Duration) -> Ledger {
        crate::wait_for("the topic read to its end", timeout, || async {
            let records = self.records();
            let through = highs.iter().all(|(partition, high)| {
                *high == 0
                    || records
                        .iter()
                        .any(|r| r.partition == *partition && r.offset + 1 >= *high)
            });
            through.then(|| Ledger::from_records(&records))
        })
        .await
    }

    /// Waits until at least `n` distinct messages have receipts (a receipts
    /// topic); panics after `timeout`.
    pub async fn receipts_for(&self, n: u64, timeout: Duration) -> Ledger {
        crate::wait_for(&format!("receipts for {n} messages"), timeout, || async {
            let l = self.ledger();
            (l.distinct() as u64 >= n).then_some(l)
        })
        .await
    }

    /// Whether nothing was read yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for TopicReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The receipts of one run, per (producer, seq).
#[derive(Debug, Default)]
pub struct Ledger {
    /// Receipts per message.
    pub counts: HashMap<(String, u64), u32>,
    /// The consumer that wrote the first receipt of each message.
    pub first_by: HashMap<(String, u64), String>,
    /// Arrival time of every receipt batch, in order.
    pub arrivals: Vec<Instant>,
    /// Entries of every receipt batch, in the order of `arrivals`.
    pub batch_entries: Vec<usize>,
    /// Total entries.
    pub entries: usize,
    /// (consumer, topic, partition, offset) of every entry, in arrival order.
    pub processed_at: Vec<(String, String, i32, i64)>,
    /// ((producer, seq), trace id) of every entry that carries one (format 2
    /// keeps some, see `consumer.receipt_trace_every`), in arrival order.
    pub trace_ids: Vec<((String, u64), String)>,
    /// `mf-created-ns` of every message with a receipt.
    pub created_ns: HashMap<(String, u64), u64>,
}

impl Ledger {
    /// Builds the ledger from receipt records.
    pub fn from_records(records: &[Record]) -> Ledger {
        let mut l = Ledger::default();
        for r in records {
            let format = r.header(FORMAT_HEADER).first().copied().flatten();
            let batch = decode(format, &r.payload).expect("a receipt batch");
            let consumer = batch.consumer().to_string();
            let mut entries = 0;
            batch.for_each_entry(|e| {
                entries += 1;
                let key = (e.producer.to_string(), e.seq);
                let mut hex = [0u8; 32];
                if let Some(id) = e.trace.as_text(&mut hex) {
                    l.trace_ids.push((key.clone(), id.to_string()));
                }
                l.processed_at
                    .push((consumer.clone(), e.topic.to_string(), e.partition, e.offset));
                l.created_ns.insert(key.clone(), e.created_ns);
                *l.counts.entry(key.clone()).or_default() += 1;
                l.first_by.entry(key).or_insert_with(|| consumer.clone());
            });
            l.arrivals.push(r.seen);
            l.batch_entries.push(entries);
            l.entries += entries;
        }
        l
    }

    /// Distinct messages with a receipt.
    pub fn distinct(&self) -> usize {
        self.counts.len()
    }

    /// Sequence numbers `0..n` of `producer` with no receipt.
    pub fn missing(&self, producer: &str, n: u64) -> Vec<u64> {
        (0..n)
            .filter(|s| !self.counts.contains_key(&(producer.to_string(), *s)))
            .collect()
    }

    /// Extra receipts beyond the first, summed over messages.
    pub fn duplicates(&self) -> u64 {
        self.counts.values().map(|c| u64::from(c - 1)).sum()
    }

    /// Repeated receipts of the messages created before `unix_ns` (by
    /// their `mf-created-ns`): what a fault at that instant may redeliver
    /// of the work done before it, apart from any backlog it held back.
    pub fn duplicates_created_before(&self, unix_ns: u64) -> u64 {
        self.counts
            .iter()
            .filter(|(m, _)| self.created_ns.get(*m).is_some_and(|c| *c < unix_ns))
            .map(|(_, c)| u64::from(c - 1))
            .sum()
    }

    /// `distinct=.. duplicates=.. missing=..` for messages `0..n` of
    /// `producer`, for a test's report.
    pub fn summary(&self, producer: &str, n: u64) -> String {
        format!(
            "distinct={} duplicates={} missing={}",
            self.distinct(),
            self.duplicates(),
            self.missing(producer, n).len()
        )
    }

    /// Duplicates split by cause: (redelivered, the same record processed
    /// again; rewritten, the message at more than one offset of the log).
    pub fn duplicate_causes(&self) -> (u64, u64) {
        let mut at: HashMap<(&str, u64), Vec<(i32, i64)>> = HashMap::new();
        for (((producer, seq), _), (_, _, p, o)) in self.trace_ids.iter().zip(&self.processed_at) {
            at.entry((producer, *seq)).or_default().push((*p, *o));
        }
        let (mut redelivered, mut rewritten) = (0, 0);
        for mut places in at.into_values() {
            let receipts = places.len() as u64;
            places.sort_unstable();
            places.dedup();
            let offsets = places.len() as u64;
            rewritten += offsets - 1;
            redelivered += receipts - offsets;
        }
        (redelivered, rewritten)
    }

    /// Messages with a receipt that their producer created after `unix_ns`
    /// (Unix nanoseconds).
    pub fn created_after(&self, unix_ns: u64) -> usize {
        self.created_ns.values().filter(|c| **c > unix_ns).count()
    }

    /// Receipt entries written by `consumer`.
    pub fn entries_by(&self, consumer: &str) -> usize {
        self.processed_at
            .iter()
            .filter(|(by, ..)| by == consumer)
            .count()
    }

    /// The partitions `consumer` wrote receipts for.
    pub fn partitions_of(&self, consumer: &str) -> std::collections::BTreeSet<i32> {
        self.processed_at
            .iter()
            .filter(|(by, ..)| by == consumer)
            .map(|(_, _, p, _)| *p)
            .collect()
    }

    /// For each partition, how long after `t` the first receipt written by
    /// one of `consumers` arrived (partitions with none are absent).
    pub fn partitions_taken_after(
        &self,
        t: Instant,
        consumers: &[&str],
    ) -> std::collections::BTreeMap<i32, Duration> {
        let mut taken = std::collections::BTreeMap::new();
        let mut entries = self.processed_at.iter();
        for (at, n) in self.arrivals.iter().zip(&self.batch_entries) {
            for (by, _, partition, _) in entries.by_ref().take(*n) {
                if *at > t && consumers.contains(&by.as_str()) {
                    let after = *at - t;
                    taken
                        .entry(*partition)
                        .and_modify(|d: &mut Duration| *d = (*d).min(after))
                        .or_insert(after);
                }
            }
        }
        taken
    }

    /// The first receipt arrival after `t`, as a delay from `t`.
    pub fn first_after(&self, t: Instant) -> Option<Duration> {
        self.arrivals
            .iter()
            .filter(|a| **a > t)
            .min()
            .map(|a| *a - t)
    }

    /// The longest gap between consecutive receipt arrivals after `t`
    /// (counting from `t` itself).
    pub fn longest_gap_after(&self, t: Instant) -> Duration {
        let mut times: Vec<Instant> = self.arrivals.iter().copied().filter(|a| *a > t).collect();
        times.sort();
        let mut prev = t;
        let mut gap = Duration::ZERO;
        for a in times {
            gap = gap.max(a - prev);
            prev = a;
        }
        gap
    }
}

/// The envelopes of a data topic as written to the log: records per
/// (producer, seq), to check that the log itself holds no duplicate.
#[derive(Debug, Default)]
pub struct LogLedger {
    /// Records per message.
    pub counts: HashMap<(String, u64), u32>,
}

impl LogLedger {
    /// Counts the enveloped records among `records` (a data topic).
    pub fn from_records(records: &[Record]) -> LogLedger {
        let mut l = LogLedger::default();
        for r in records {
            let producer = r.header(meshflow_common::envelope::PRODUCER);
            let seq = r.header(meshflow_common::envelope::SEQ);
            let (Some(Some(producer)), Some(Some(seq))) = (producer.first(), seq.first()) else {
                continue;
            };
            let producer = String::from_utf8_lossy(producer).into_owned();
            let seq: u64 = std::str::from_utf8(seq)
                .ok()
                .and_then(|s| s.parse().ok())
                .expect("the test's producer writes decimal mf-seq");
            *l.counts.entry((producer, seq)).or_default() += 1;
        }
        l
    }

    /// Distinct messages in the log.
    pub fn distinct(&self) -> usize {
        self.counts.len()
    }

    /// Extra records beyond the first, summed over messages.
    pub fn duplicates(&self) -> u64 {
        self.counts.values().map(|c| u64::from(c - 1)).sum()
    }

    /// The messages with more than one record, and how many each has.
    pub fn written_twice(&self) -> Vec<(&(String, u64), u32)> {
        let mut twice: Vec<_> = self
            .counts
            .iter()
            .filter(|(_, c)| **c > 1)
            .map(|(m, c)| (m, *c))
            .collect();
        twice.sort_unstable();
        twice
    }
}

/// Unix nanoseconds now, by this machine's clock (what the services stamp).
pub fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}
