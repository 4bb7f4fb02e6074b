//! `exporter.*` documented, one line per key: `--help`, `--list-keys` and
//! docs/configuration.md are generated from this and the defaults.

use meshflow_common::config::reference::KeyDoc;

/// Every key of `exporter.*`, in the order the reference shows them.
pub const KEYS: &[KeyDoc] = &[
    KeyDoc { key: "exporter.topics", meaning: "the data topics judged end to end (what reached the log): literal names, and entries starting with `^`, regular expressions matched against the whole topic name (librdkafka's convention); the receipts topic and `__*` topics never match; in the environment a comma-separated list, `MESHFLOW__EXPORTER__TOPICS=orders,^payments\\..*`. Each topic has its own accounting and series (`topic` label), so a producer's `mf-seq` is counted per topic: a producer writing several topics keeps one sequence per topic (the meshflow producer writes one). A topic that appears later is read from its beginning; one that disappears stops being judged and keeps its counters" },
    KeyDoc { key: "exporter.max_topics", meaning: "the most topics judged at once (1 to 100); matching topics beyond it, by name, are left out and counted in `meshflow_exporter_discovery_left_out{what=\"judged_topics\"}`. The memory worst case is multiplied by the judged topics: their number when every entry is a name, else `max_topics`; `memory_budget_mib` must cover it" },
    KeyDoc { key: "exporter.receipts_topic", meaning: "the receipts topic: what groups processed" },
    KeyDoc { key: "exporter.groups", meaning: "consumer groups judged end to end (lag, status, stage `processed` from their receipts); in the environment a comma-separated list, `MESHFLOW__EXPORTER__GROUPS=a,b`. Every other group of the cluster is found by `discovery`" },
    KeyDoc { key: "exporter.group_id", meaning: "the exporter's own group, under which it commits how far it has read; must not be a watched group" },
    KeyDoc { key: "exporter.poll_interval", meaning: "how often offsets, watermarks and metadata are polled (100ms to 10m)" },
    KeyDoc { key: "exporter.grace", meaning: "a sequence gap still open once the exporter's reading has progressed this far past it is lost at stage `log`" },
    KeyDoc { key: "exporter.sla", meaning: "once a group has committed past a message, its receipt may take this long; then, with none read, it is lost at stage `processed`" },
    KeyDoc { key: "exporter.idle_timeout", meaning: "a producer instance silent this long is forgotten (longer than `grace` and `sla`)" },
    KeyDoc { key: "exporter.max_producers", meaning: "producer instances tracked at once; past this the idlest is forgotten" },
    KeyDoc { key: "exporter.window_bits", meaning: "sequence numbers remembered per producer and stage (a power of two, 64 to 16777216); must cover a producer's rate × `sla`" },
    KeyDoc { key: "exporter.max_clock_skew", meaning: "a created or processed time further ahead of the exporter's clock is refused as implausible" },
    KeyDoc { key: "exporter.max_record_age", meaning: "a created time older than this when read is refused as implausible (a forged `mf-created-ns = 0`)" },
    KeyDoc { key: "exporter.memory_budget_mib", meaning: "the accounting's worst case (`max_producers` × windows for the log and every group, × the judged topics) must fit, or the exporter refuses to start, naming the figure" },
    KeyDoc { key: "exporter.status.window", meaning: "lag samples judged by the status rules; at least `poll_interval` × `status.min_samples`" },
    KeyDoc { key: "exporter.status.min_samples", meaning: "samples a partition needs before STALL or WARN (2 to 512)" },
    KeyDoc { key: "exporter.status.stop_after", meaning: "no commit progress with lag for this long is STOP" },
    KeyDoc { key: "exporter.status.stall_min_lag", meaning: "STALL needs at least this lag (messages) in every sample" },
    KeyDoc { key: "exporter.status.warn_min_growth", meaning: "WARN needs the lag trend to grow by at least this (messages) over the window" },
    KeyDoc { key: "exporter.discovery.enabled", meaning: "list the cluster's consumer groups (ListGroups) every poll and watch those the patterns select: lag in messages and seconds on every partition of every topic they committed on, status per group and per partition. Off on a broker without ListGroups (librdkafka's mock cluster); `exporter.groups` still work" },
    KeyDoc { key: "exporter.discovery.allow_groups", meaning: "groups to watch, a regular expression (Rust `regex` syntax) matched against the whole name" },
    KeyDoc { key: "exporter.discovery.deny_groups", meaning: "groups left out even when allowed; empty for none. The exporter's own groups (`group_id` and `group_id-…`) and `groups` are never discovered" },
    KeyDoc { key: "exporter.discovery.allow_topics", meaning: "topics to report lag on" },
    KeyDoc { key: "exporter.discovery.deny_topics", meaning: "topics left out (Kafka's internal ones by default)" },
    KeyDoc { key: "exporter.discovery.max_groups", meaning: "the most groups watched (1 to 10,000); the rest, by name order, are counted in `meshflow_exporter_discovery_left_out{what=\"groups\"}`" },
    KeyDoc { key: "exporter.discovery.max_partitions", meaning: "the most (group, topic, partition) lag series (1 to 1,000,000); the rest are counted in `meshflow_exporter_discovery_left_out{what=\"partitions\"}`" },
    KeyDoc { key: "exporter.cluster.brokers", meaning: "brokers the cluster should have, for the brokers alerts (`meshflow_brokers_expected`); 0 = unknown, no alert" },
    KeyDoc { key: "exporter.cluster.min_insync_replicas", meaning: "the topics' `min.insync.replicas` (`meshflow_brokers_min_insync`), at most `cluster.brokers`" },
    KeyDoc { key: "exporter.cluster.granularity", meaning: "the cluster view: `partition` publishes per-topic and per-partition series for every reported topic (`discovery.allow_topics`/`deny_topics`, at most `discovery.max_partitions` partitions, whole topics by name); `topic` only the per-topic ones, for large clusters" },
    KeyDoc { key: "exporter.probe.enabled", meaning: "run the [built-in probe](exporter.md#the-built-in-probe): write to and read back a topic of the exporter's own" },
    KeyDoc { key: "exporter.probe.topic", meaning: "the probe's topic, created when missing; neither a judged topic nor the receipts topic, and nothing else should write to it" },
    KeyDoc { key: "exporter.probe.interval", meaning: "time between rounds, each one message per partition (100ms to 60s)" },
    KeyDoc { key: "exporter.probe.partitions_per_broker", meaning: "partitions the topic should have per broker (1 to 16; added when brokers join), so that every broker leads one" },
    KeyDoc { key: "exporter.probe.replication_factor", meaning: "replicas per partition when the probe creates the topic (1 to 7; at most the brokers there are)" },
    KeyDoc { key: "exporter.probe.send_timeout", meaning: "a send not acknowledged within this counts as failed (librdkafka's `message.timeout.ms`; 1s to 5m)" },
];
