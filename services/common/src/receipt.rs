//! Processing receipts: what a consumer publishes to `meshflow.receipts`
//! once it has processed messages, and what the exporter reads to judge loss,
//! duplicates and end-to-end latency at the `processed` stage.
//!
//! One Kafka record holds a batch of entries as JSON, keyed by the producer
//! instance id of its entries (a flush writes one record per producer).

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

#[cfg(test)]
mod tests {
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
