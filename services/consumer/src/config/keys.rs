//! `consumer.*` documented, one line per key: `--help`, `--list-keys` and
//! docs/configuration.md are generated from this and the defaults.

use meshflow_common::config::reference::KeyDoc;

/// Every key of `consumer.*`, in the order the reference shows them.
pub const KEYS: &[KeyDoc] = &[
    KeyDoc { key: "consumer.topic", meaning: "topic to consume" },
    KeyDoc { key: "consumer.group", meaning: "consumer group" },
    KeyDoc { key: "consumer.receipts_topic", meaning: "where receipts go" },
    KeyDoc { key: "consumer.dlq_topic", meaning: "dead-letter topic; unset: `<topic>.dlq`" },
    KeyDoc { key: "consumer.instance_id", meaning: "consumer id in receipts and `client.id`; unset: host name + random suffix" },
    KeyDoc { key: "consumer.work", meaning: "simulated work per message" },
    KeyDoc { key: "consumer.receipt_flush_interval", meaning: "receipts are flushed at least this often" },
    KeyDoc { key: "consumer.receipt_batch_max", meaning: "... or when this many wait; a receipt record is also cut before its body could exceed the receipt producer's `message.max.bytes` (`kafka.librdkafka`, default 1,000,000) less 1 KiB for key and framing" },
    KeyDoc { key: "consumer.receipt_format", meaning: "receipt format written: 2 (binary) or 1 (JSON, for exporters before format 2); the exporter reads both" },
    KeyDoc { key: "consumer.receipt_trace_every", meaning: "format 2 keeps the trace ids of each record's slowest message and of every message whose `mf-seq` is a multiple of this (1: all)" },
    KeyDoc { key: "consumer.session_timeout", meaning: "how soon a dead member's partitions move" },
    KeyDoc { key: "consumer.heartbeat_interval", meaning: "at most a third of the session timeout" },
    KeyDoc { key: "consumer.drain_timeout", meaning: "how long a revoke or shutdown waits for receipts" },
    KeyDoc { key: "consumer.create_topics", meaning: "create the receipts and dead-letter topics if missing" },
    KeyDoc { key: "consumer.partitions", meaning: "partitions of created topics" },
    KeyDoc { key: "consumer.replication_factor", meaning: "replication factor of created topics" },
    KeyDoc { key: "consumer.topic_retention", meaning: "as the producer's, for the receipts and dead-letter topics" },
];
