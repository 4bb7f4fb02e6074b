//! `producer.*` documented, one line per key: `--help`, `--list-keys` and
//! docs/configuration.md are generated from this and the defaults.

use meshflow_common::config::reference::KeyDoc;

/// Every key of `producer.*`, in the order the reference shows them.
pub const KEYS: &[KeyDoc] = &[
    KeyDoc { key: "producer.topic", meaning: "topic to send to" },
    KeyDoc { key: "producer.rate_per_sec", meaning: "messages per second (0 < rate ≤ 100000)" },
    KeyDoc { key: "producer.payload_bytes", meaning: "payload size" },
    KeyDoc { key: "producer.max_messages", meaning: "stop after this many, flush and exit (0, or 1 when any was not delivered); 0 = until SIGTERM" },
    KeyDoc { key: "producer.instance_id", meaning: "`mf-producer`; unset: host name + random suffix, new per start; set only in tests" },
    KeyDoc { key: "producer.create_topic", meaning: "create the topic if missing" },
    KeyDoc { key: "producer.partitions", meaning: "partitions of a created topic" },
    KeyDoc { key: "producer.replication_factor", meaning: "replication factor of a created topic (3 on a cluster)" },
    KeyDoc { key: "producer.topic_retention", meaning: "a created topic keeps messages this long (`retention.ms`, with `cleanup.policy=delete`); unset: the broker's default" },
    KeyDoc { key: "producer.message_timeout", meaning: "how long librdkafka retries a message (rides out a broker restart)" },
    KeyDoc { key: "producer.linger", meaning: "batching delay" },
    KeyDoc { key: "producer.shutdown_flush_timeout", meaning: "on SIGTERM, how long to wait for outstanding acknowledgements before giving up on them; keep it below the supervisor's kill timeout (the chart: 20 s against a 30 s `terminationGracePeriodSeconds`, checked by a chart test)" },
    KeyDoc { key: "producer.resend_capacity", meaning: "the most messages waiting to be sent again after an error that can pass; while this many wait, no new message is sent" },
];
