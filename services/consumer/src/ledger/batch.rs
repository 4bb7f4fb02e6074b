//! Cutting receipt entries into records for the receipts topic.
//!
//! One record per producer instance (its key), split at `batch_max` entries
//! or before its body could exceed `bytes_max` bytes, whichever comes
//! first. A record too large for the producer's `message.max.bytes` would be
//! refused every time, and rebuilt the same after a restart. A single entry
//! always makes a record. The body is written in the [`Format`] the
//! [`Shape`] names.

use std::collections::BTreeMap;

use meshflow_common::receipt::binary::{str_len, MAX_ENTRY_BYTES, MAX_RUN_BYTES, MAX_TRACE_BYTES};
use meshflow_common::receipt::{encode_binary, Format, ReceiptBatch, ReceiptEntry};

/// How receipt records are cut and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The body's format.
    pub format: Format,
    /// At most this many entries a record.
    pub batch_max: usize,
    /// At most this many bytes a body.
    pub bytes_max: usize,
    /// Format 2 keeps the trace ids of the slowest entry of a record and
    /// of messages whose `mf-seq` is a multiple of this.
    pub trace_every: u64,
}

/// One record for the receipts topic, encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its key: the producer instance of its entries.
    pub key: String,
    /// The body, in `format`.
    pub body: Vec<u8>,
    /// The body's format, named in the record's header.
    pub format: Format,
    /// Entries in it.
    pub entries: usize,
    /// The caller's index of each of its entries, in order.
    pub items: Vec<usize>,
}

/// The records for `entries` (each with the caller's index for it),
/// grouped by producer instance in key order and in consumption order
/// within a producer.
pub fn cut<'a>(
    group: &str,
    consumer: &str,
    entries: impl IntoIterator<Item = (usize, &'a ReceiptEntry)>,
    shape: Shape,
) -> Vec<Record> {
    let mut by_producer: BTreeMap<&str, Vec<(usize, &ReceiptEntry)>> = BTreeMap::new();
    for (index, entry) in entries {
        by_producer
            .entry(entry.producer.as_str())
            .or_default()
            .push((index, entry));
    }
    let mut out = Vec::new();
    for (producer, entries) in by_producer {
        let frame = frame_len(shape.format, group, consumer, producer);
        let mut chunk: Vec<&ReceiptEntry> = Vec::new();
        let mut items = Vec::new();
        let mut bytes = frame;
        for (index, entry) in entries {
            let size = entry_len(shape.format, entry);
            let full = chunk.len() >= shape.batch_max || bytes + size > shape.bytes_max;
            if full && !chunk.is_empty() {
                let taken = std::mem::take(&mut items);
                out.push(record(group, consumer, producer, &chunk, taken, shape));
                chunk.clear();
                bytes = frame;
            }
            chunk.push(entry);
            items.push(index);
            bytes += size;
        }
        if !chunk.is_empty() {
            out.push(record(group, consumer, producer, &chunk, items, shape));
        }
    }
    out
}

fn record(
    group: &str,
    consumer: &str,
    producer: &str,
    entries: &[&ReceiptEntry],
    items: Vec<usize>,
    shape: Shape,
) -> Record {
    let body = match shape.format {
        Format::Json => {
            let batch = ReceiptBatch {
                group: group.to_string(),
                consumer: consumer.to_string(),
                entries: entries.iter().map(|e| (*e).clone()).collect(),
            };
            // Plain strings and integers: encoding cannot fail.
            serde_json::to_vec(&batch).unwrap_or_default()
        }
        Format::Binary => encode_binary(group, consumer, entries, shape.trace_every),
    };
    Record {
        key: producer.to_string(),
        body,
        format: shape.format,
        entries: entries.len(),
        items,
    }
}

/// A body's bytes besides its entries: exact for JSON, a bound for format 2.
fn frame_len(format: Format, group: &str, consumer: &str, producer: &str) -> usize {
    match format {
        Format::Json => encoded_len(&ReceiptBatch {
            group: group.to_string(),
            consumer: consumer.to_string(),
            entries: Vec::new(),
        }),
        // Version, two names, four counts, the producer table.
        Format::Binary => 1 + str_len(group) + str_len(consumer) + 4 * 10 + str_len(producer),
    }
}

/// The bytes `entry` adds to a body: exact for JSON (with its comma), for
/// format 2 a bound that also counts a run, a trace and a topic of its own.
fn entry_len(format: Format, entry: &ReceiptEntry) -> usize {
    match format {
        Format::Json => encoded_len(entry) + 1,
        Format::Binary => MAX_ENTRY_BYTES + MAX_RUN_BYTES + MAX_TRACE_BYTES + str_len(&entry.topic),
    }
}

/// Length of `value` as JSON.
fn encoded_len<T: serde::Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(0, |v| v.len())
}

#[cfg(test)]
mod tests {
    use meshflow_common::receipt::decode;

    use super::*;

    fn entry(seq: u64) -> ReceiptEntry {
        ReceiptEntry {
            producer: "producer-7f9c2b1d-host-with-a-long-name".into(),
            seq: u64::MAX - seq,
            created_ns: u64::MAX,
            topic: "meshflow.events".into(),
            partition: 5,
            offset: 1_000_000_000 + seq as i64,
            processed_ns: u64::MAX,
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
        }
    }

    const FORMATS: [Format; 2] = [Format::Json, Format::Binary];

    fn records(
        format: Format,
        entries: &[ReceiptEntry],
        batch_max: usize,
        bytes_max: usize,
    ) -> Vec<Record> {
        let shape = Shape {
            format,
            batch_max,
            bytes_max,
            trace_every: 64,
        };
        cut(
            "g",
            "consumer-with-a-long-instance-name",
            entries.iter().enumerate(),
            shape,
        )
    }

    /// The seqs of a record's entries, read back in its format.
    fn seqs(r: &Record) -> Vec<u64> {
        let decoded = decode(Some(r.format.header_value().as_bytes()), &r.body).expect("decodes");
        assert_eq!(decoded.group(), "g");
        let mut seqs = Vec::new();
        decoded.for_each_entry(|e| seqs.push(e.seq));
        seqs
    }

    #[test]
    fn a_full_batch_fits_the_producers_maximum_message_size() {
        let max = 1_000_000;
        let entries: Vec<ReceiptEntry> = (0..10_000).map(entry).collect();
        for format in FORMATS {
            let records = records(format, &entries, 10_000, max);
            let total: usize = records.iter().map(|r| r.entries).sum();
            assert_eq!(total, 10_000, "every entry is in some record");
            for r in &records {
                assert_eq!(r.format, format);
                assert!(
                    r.body.len() <= max,
                    "a record of {} bytes exceeds {max}",
                    r.body.len()
                );
            }
        }
    }

    #[test]
    fn one_entry_still_makes_a_record_under_a_tiny_bound() {
        for format in FORMATS {
            let records = records(format, &[entry(1), entry(2)], 500, 10);
            assert_eq!(records.len(), 2);
        }
    }

    #[test]
    fn records_are_cut_by_bytes_before_the_entry_count_is_reached() {
        let entries: Vec<ReceiptEntry> = (0..100).map(entry).collect();
        for format in FORMATS {
            let one = records(format, &entries[..1], 500, usize::MAX)[0]
                .body
                .len();
            // Room for a few entries per record, far below 500.
            let max = one * 10;
            let records = records(format, &entries, 500, max);
            assert!(records.len() > 1, "100 entries do not fit in {max} bytes");
            let mut all = Vec::new();
            for r in &records {
                assert!(
                    r.body.len() <= max,
                    "a record of {} bytes exceeds {max}",
                    r.body.len()
                );
                let seqs = seqs(r);
                assert_eq!(seqs.len(), r.entries);
                all.extend(seqs);
            }
            let expected: Vec<u64> = entries.iter().map(|e| e.seq).collect();
            assert_eq!(all, expected, "every entry once, in consumption order");
        }
    }

    #[test]
    fn records_are_cut_by_entry_count_and_keyed_by_producer() {
        let mut entries: Vec<ReceiptEntry> = (0..5).map(entry).collect();
        entries[1].producer = "producer-a".into();
        for format in FORMATS {
            let records = records(format, &entries, 2, usize::MAX);
            let keys: Vec<(&str, usize, &[usize])> = records
                .iter()
                .map(|r| (r.key.as_str(), r.entries, r.items.as_slice()))
                .collect();
            let long = "producer-7f9c2b1d-host-with-a-long-name";
            assert_eq!(
                keys,
                [
                    (long, 2, &[0, 2][..]),
                    (long, 2, &[3, 4][..]),
                    ("producer-a", 1, &[1][..])
                ]
            );
        }
    }
}
