//! Cutting receipt entries into records for the receipts topic.
//!
//! One record per producer instance (its key), split at `batch_max` entries
//! or before its JSON would exceed `batch_bytes_max` bytes, whichever comes
//! first. A record too large for the producer's `message.max.bytes` would be
//! refused every time, and rebuilt the same after a restart. A single entry
//! always makes a record.

use std::collections::BTreeMap;

use meshflow_common::receipt::{ReceiptBatch, ReceiptEntry};

/// One record for the receipts topic, encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its key: the producer instance of its entries.
    pub key: String,
    /// The [`ReceiptBatch`] as JSON.
    pub body: Vec<u8>,
    /// Entries in it.
    pub entries: usize,
}

/// The records for `entries`, grouped by producer instance in key order and
/// in consumption order within a producer.
pub fn cut<'a>(
    group: &str,
    consumer: &str,
    entries: impl IntoIterator<Item = &'a ReceiptEntry>,
    batch_max: usize,
    batch_bytes_max: usize,
) -> Vec<Record> {
    let mut by_producer: BTreeMap<&str, Vec<&ReceiptEntry>> = BTreeMap::new();
    for entry in entries {
        by_producer
            .entry(entry.producer.as_str())
            .or_default()
            .push(entry);
    }
    let empty = ReceiptBatch {
        group: group.to_string(),
        consumer: consumer.to_string(),
        entries: Vec::new(),
    };
    let frame = encoded_len(&empty);
    let mut out = Vec::new();
    for (producer, entries) in by_producer {
        let mut batch = empty.clone();
        let mut bytes = frame;
        for entry in entries {
            // One comma between entries.
            let size = encoded_len(entry) + 1;
            let full = batch.entries.len() >= batch_max || bytes + size > batch_bytes_max;
            if full && !batch.entries.is_empty() {
                out.push(record(
                    producer,
                    std::mem::replace(&mut batch, empty.clone()),
                ));
                bytes = frame;
            }
            batch.entries.push(entry.clone());
            bytes += size;
        }
        if !batch.entries.is_empty() {
            out.push(record(producer, batch));
        }
    }
    out
}

fn record(producer: &str, batch: ReceiptBatch) -> Record {
    Record {
        key: producer.to_string(),
        // Plain strings and integers: encoding cannot fail.
        body: serde_json::to_vec(&batch).unwrap_or_default(),
        entries: batch.entries.len(),
    }
}

/// Length of `value` as JSON.
fn encoded_len<T: serde::Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(0, |v| v.len())
}

#[cfg(test)]
mod tests {
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

    fn records(entries: &[ReceiptEntry], batch_max: usize, bytes_max: usize) -> Vec<Record> {
        cut(
            "g",
            "consumer-with-a-long-instance-name",
            entries,
            batch_max,
            bytes_max,
        )
    }

    #[test]
    fn a_full_batch_fits_the_producers_maximum_message_size() {
        let max = 1_000_000;
        let entries: Vec<ReceiptEntry> = (0..10_000).map(entry).collect();
        let records = records(&entries, 10_000, max);
        let total: usize = records.iter().map(|r| r.entries).sum();
        assert_eq!(total, 10_000, "every entry is in some record");
        for r in &records {
            assert!(
                r.body.len() <= max,
                "a record of {} bytes exceeds {max}",
                r.body.len()
            );
        }
    }

    #[test]
    fn one_entry_still_makes_a_record_under_a_tiny_bound() {
        let records = records(&[entry(1), entry(2)], 500, 10);
        assert_eq!(records.len(), 2);
    }

    #[test]
    fn records_are_cut_by_bytes_before_the_entry_count_is_reached() {
        let entries: Vec<ReceiptEntry> = (0..100).map(entry).collect();
        let one = records(&entries[..1], 500, usize::MAX)[0].body.len();
        // Room for about a dozen entries per record, far below 500.
        let max = one * 10;
        let records = records(&entries, 500, max);
        assert!(records.len() > 1, "100 entries do not fit in {max} bytes");
        let mut seqs = Vec::new();
        for r in &records {
            assert!(
                r.body.len() <= max,
                "a record of {} bytes exceeds {max}",
                r.body.len()
            );
            let batch: ReceiptBatch = serde_json::from_slice(&r.body).expect("decodes");
            assert_eq!(batch.entries.len(), r.entries);
            assert_eq!(batch.group, "g");
            seqs.extend(batch.entries.iter().map(|e| e.seq));
        }
        let expected: Vec<u64> = entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, expected, "every entry once, in consumption order");
    }

    #[test]
    fn records_are_cut_by_entry_count_and_keyed_by_producer() {
        let mut entries: Vec<ReceiptEntry> = (0..5).map(entry).collect();
        entries[1].producer = "producer-a".into();
        let records = records(&entries, 2, usize::MAX);
        let keys: Vec<(&str, usize)> = records
            .iter()
            .map(|r| (r.key.as_str(), r.entries))
            .collect();
        assert_eq!(
            keys,
            [
                ("producer-7f9c2b1d-host-with-a-long-name", 2),
                ("producer-7f9c2b1d-host-with-a-long-name", 2),
                ("producer-a", 1)
            ]
        );
    }
}
