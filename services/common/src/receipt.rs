//! Processing receipts: what a consumer publishes to `meshflow.receipts`
//! once it has processed messages, and what the exporter reads to judge loss,
//! duplicates and end-to-end latency at the `processed` stage.
//!
//! One Kafka record holds a batch of entries, keyed by the producer
//! instance id of its entries (a flush writes one record per producer). The
//! record's [`FORMAT_HEADER`] names its format:
//! - absent or `1`: JSON, a [`ReceiptBatch`], every field of every entry
//!   written out (about 200 bytes an entry);
//! - `2`: [`binary`], the entries as runs of offsets per topic partition
//!   with varint deltas, and trace ids only for the entries
//!   [`keeps_trace`] picks (about 6 bytes an entry).
//!
//! Readers take both ([`decode`]), so consumers can move from one to the
//! other one at a time.

use serde::{Deserialize, Serialize};

/// One record on the receipts topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptBatch {
    /// The consumer group that processed the messages.
    pub group: String,
    /// The consumer instance that processed them.
    pub consumer: String,
    /// One entry per processed enveloped message.
    pub entries: Vec<ReceiptEntry>,
}

/// The receipt for one processed message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptEntry {
    /// `mf-producer` of the message.
    pub producer: String,
    /// `mf-seq` of the message.
    pub seq: u64,
    /// `mf-created-ns` of the message.
    pub created_ns: u64,
    /// Where the message was read from.
    pub topic: String,
    /// Partition of the message.
    pub partition: i32,
    /// Offset of the message.
    pub offset: i64,
    /// Unix nanoseconds when processing finished, by the consumer's clock.
    pub processed_ns: u64,
    /// Trace id of the consumer's `process` span, 32 lowercase hex digits.
    pub trace_id: String,
}

pub mod binary;

/// The record header naming a receipt record's format.
pub const FORMAT_HEADER: &str = "mf-receipt-format";

/// How a receipt record's body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Format 1: a [`ReceiptBatch`] as JSON.
    Json,
    /// Format 2: [`binary`].
    #[default]
    Binary,
}

impl Format {
    /// The format a record's [`FORMAT_HEADER`] value names: none means 1.
    pub fn of(header: Option<&[u8]>) -> Option<Format> {
        match header {
            None | Some(b"1") => Some(Format::Json),
            Some(b"2") => Some(Format::Binary),
            Some(_) => None,
        }
    }

    /// The format numbered `n` (1 or 2).
    pub fn numbered(n: u8) -> Option<Format> {
        match n {
            1 => Some(Format::Json),
            2 => Some(Format::Binary),
            _ => None,
        }
    }

    /// The [`FORMAT_HEADER`] value for this format.
    pub fn header_value(self) -> &'static str {
        match self {
            Format::Json => "1",
            Format::Binary => "2",
        }
    }
}

/// Why a receipt record could not be read.
#[derive(Debug)]
pub enum DecodeError {
    /// A [`FORMAT_HEADER`] value this version does not know.
    UnknownFormat,
    /// A format-1 body that is not a receipt batch.
    Json(serde_json::Error),
    /// A format-2 body that is not a receipt batch.
    Binary(binary::DecodeError),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::UnknownFormat => f.write_str("unknown receipt format"),
            DecodeError::Json(e) => write!(f, "receipt format 1: {e}"),
            DecodeError::Binary(e) => write!(f, "receipt format 2: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A receipt record read in either format.
#[derive(Debug)]
pub enum Decoded<'a> {
    /// Format 1.
    Json(ReceiptBatch),
    /// Format 2, borrowing from the record.
    Binary(binary::Batch<'a>),
}

/// A trace id as a record carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceRef<'a> {
    /// Not kept (format 2 keeps a few per record).
    Absent,
    /// Format 1's text, unchecked.
    Text(&'a str),
    /// Format 2's 16 bytes.
    Bytes([u8; 16]),
}

impl<'a> TraceRef<'a> {
    /// The id as text: format 1's as written, format 2's as 32 lowercase
    /// hex digits in `buf`.
    pub fn as_text<'b>(&'b self, buf: &'b mut [u8; 32]) -> Option<&'b str> {
        match self {
            TraceRef::Absent => None,
            TraceRef::Text(t) => Some(t),
            TraceRef::Bytes(b) => {
                crate::hex::write_lower(buf, b);
                std::str::from_utf8(buf).ok()
            }
        }
    }
}

/// One entry of a decoded receipt record, in either format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// `mf-producer` of the message.
    pub producer: &'a str,
    /// Where the message was read from.
    pub topic: &'a str,
    /// Partition of the message.
    pub partition: i32,
    /// Offset of the message.
    pub offset: i64,
    /// `mf-seq` of the message.
    pub seq: u64,
    /// `mf-created-ns` of the message (to the microsecond in format 2).
    pub created_ns: u64,
    /// When processing finished, Unix ns (to the microsecond in format 2).
    pub processed_ns: u64,
    /// Trace id of the consumer's `process` span, where kept.
    pub trace: TraceRef<'a>,
}

impl Decoded<'_> {
    /// The consumer group that processed the messages.
    pub fn group(&self) -> &str {
        match self {
            Decoded::Json(b) => &b.group,
            Decoded::Binary(b) => b.group,
        }
    }

    /// The consumer instance that processed them.
    pub fn consumer(&self) -> &str {
        match self {
            Decoded::Json(b) => &b.consumer,
            Decoded::Binary(b) => b.consumer,
        }
    }

    /// Calls `f` with every entry: format 1 in record order, format 2 run
    /// by run.
    pub fn for_each_entry(&self, mut f: impl FnMut(EntryRef<'_>)) {
        match self {
            Decoded::Json(b) => {
                for e in &b.entries {
                    f(EntryRef {
                        producer: &e.producer,
                        topic: &e.topic,
                        partition: e.partition,
                        offset: e.offset,
                        seq: e.seq,
                        created_ns: e.created_ns,
                        processed_ns: e.processed_ns,
                        trace: TraceRef::Text(&e.trace_id),
                    })
                }
            }
            Decoded::Binary(b) => {
                let mut traces = b.traces.iter().peekable();
                let mut index = 0usize;
                for run in &b.runs {
                    for e in &run.entries {
                        let trace = match traces.peek() {
                            Some(&&(i, id)) if i == index => {
                                traces.next();
                                TraceRef::Bytes(id)
                            }
                            _ => TraceRef::Absent,
                        };
                        // Decoding checked both fit in nanoseconds.
                        f(EntryRef {
                            producer: b.producers[run.producer],
                            topic: b.topics[run.topic],
                            partition: run.partition,
                            offset: e.offset,
                            seq: e.seq,
                            created_ns: e.created_us * 1_000,
                            processed_ns: e.processed_us * 1_000,
                            trace,
                        });
                        index += 1;
                    }
                }
            }
        }
    }
}

/// Reads a receipt record from its [`FORMAT_HEADER`] value and its body.
pub fn decode<'a>(format: Option<&[u8]>, body: &'a [u8]) -> Result<Decoded<'a>, DecodeError> {
    match Format::of(format) {
        Some(Format::Json) => serde_json::from_slice(body)
            .map(Decoded::Json)
            .map_err(DecodeError::Json),
        Some(Format::Binary) => binary::decode(body)
            .map(Decoded::Binary)
            .map_err(DecodeError::Binary),
        None => Err(DecodeError::UnknownFormat),
    }
}

/// Whether format 2 keeps the trace id of `entry`, one of a record's
/// entries, of which `slowest` has the highest latency: that one, and every
/// message whose `mf-seq` is a multiple of `every` (1 keeps all). The
/// exporter uses trace ids as exemplars, and Prometheus keeps at most one
/// per bucket a scrape: the slowest of each record lands in the tail
/// buckets, where a person looks for one, and the sample fills the rest.
pub fn keeps_trace(entry: &ReceiptEntry, slowest: bool, every: u64) -> bool {
    slowest || entry.seq.is_multiple_of(every.max(1))
}

/// A 32-digit lowercase hex trace id as bytes; `None` for anything else.
pub fn trace_bytes(text: &str) -> Option<[u8; 16]> {
    crate::hex::read_trace_id(text.as_bytes()).map(u128::to_be_bytes)
}

/// Encodes `entries` as one format-2 batch. Entries are grouped into runs
/// by (topic, partition, producer) in the order each first appears, and
/// keep their order within a run; trace ids are kept as [`keeps_trace`]
/// says (ids that are not 32 hex digits are dropped).
pub fn encode_binary(
    group: &str,
    consumer: &str,
    entries: &[&ReceiptEntry],
    trace_every: u64,
) -> Vec<u8> {
    let latency = |e: &ReceiptEntry| e.processed_ns.saturating_sub(e.created_ns);
    let slowest = entries
        .iter()
        .enumerate()
        .max_by_key(|(i, e)| (latency(e), std::cmp::Reverse(*i)))
        .map(|(i, _)| i);
    let mut batch = binary::Batch {
        group,
        consumer,
        topics: Vec::new(),
        producers: Vec::new(),
        runs: Vec::new(),
        traces: Vec::new(),
    };
    // (run, position in entries) for each entry, to find trace indexes.
    let mut placed: Vec<(usize, usize)> = Vec::with_capacity(entries.len());
    for e in entries {
        let topic = index_of(&mut batch.topics, &e.topic);
        let producer = index_of(&mut batch.producers, &e.producer);
        let run =
            match batch.runs.iter().rposition(|r| {
                r.topic == topic && r.producer == producer && r.partition == e.partition
            }) {
                Some(run) => run,
                None => {
                    batch.runs.push(binary::Run {
                        topic,
                        producer,
                        partition: e.partition,
                        entries: Vec::new(),
                    });
                    batch.runs.len() - 1
                }
            };
        let entry = binary::Entry {
            offset: e.offset,
            seq: e.seq,
            created_us: e.created_ns / 1_000,
            processed_us: e.processed_ns / 1_000,
        };
        batch.runs[run].entries.push(entry);
        placed.push((run, batch.runs[run].entries.len() - 1));
    }
    let starts: Vec<usize> = batch
        .runs
        .iter()
        .scan(0, |start, r| {
            let here = *start;
            *start += r.entries.len();
            Some(here)
        })
        .collect();
    for (i, e) in entries.iter().enumerate() {
        if !keeps_trace(e, Some(i) == slowest, trace_every) {
            continue;
        }
        if let Some(id) = trace_bytes(&e.trace_id) {
            let (run, at) = placed[i];
            batch.traces.push((starts[run] + at, id));
        }
    }
    batch.traces.sort_unstable_by_key(|&(index, _)| index);
    let mut out = Vec::new();
    batch.encode(&mut out);
    out
}

fn index_of<'a>(table: &mut Vec<&'a str>, name: &'a str) -> usize {
    match table.iter().position(|t| *t == name) {
        Some(i) => i,
        None => {
            table.push(name);
            table.len() - 1
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod json_tests {
    use super::*;

    #[test]
    fn json_shape_matches_the_design() {
        let text = r#"{"group":"meshflow","consumer":"consumer-7f3a","entries":[
          {"producer":"producer-1a2b","seq":41,"created_ns":1795813603000000000,
           "topic":"meshflow.events","partition":2,"offset":1187,
           "processed_ns":1795813603004100000,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}]}"#;
        let batch: ReceiptBatch = serde_json::from_str(text).unwrap();
        assert_eq!(batch.entries[0].seq, 41);
        assert_eq!(batch.entries[0].offset, 1187);
        let again: ReceiptBatch =
            serde_json::from_str(&serde_json::to_string(&batch).unwrap()).unwrap();
        assert_eq!(again, batch);
    }
}
