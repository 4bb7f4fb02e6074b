//! The exporter's configuration: the shared sections plus `exporter.*`.
//!
//! [`Config`] is what `meshflow-exporter` loads at start (defaults, then
//! `--config FILE`, then `MESHFLOW__SECTION__KEY`). Its [`ExporterSettings`]
//! name what to read and watch; the accounting keys sit directly under
//! `exporter` (`exporter.grace`, `exporter.sla`, ...) and become an
//! [`AccountingConfig`], and `exporter.status.*` is a [`StatusConfig`] for
//! the group status rules. Durations are strings such as `30s` or `5m`.
//! Unknown keys are refused, missing keys take the defaults below, and
//! validation names the key, the value and what is allowed. The accounting
//! part, its defaults and its memory bound are in `config/accounting.rs`.

use std::time::Duration;

use meshflow_common::config::{identifier, millis_in, topic_name, ConfigError, Validate};
use serde::{Deserialize, Serialize};

mod accounting;
mod cluster;
mod clusters;
mod discovery;
mod keys;
mod probe;
mod topics;

pub use crate::status::StatusConfig;
use crate::Error;
pub use accounting::{
    default_grace, default_idle_timeout, default_max_clock_skew, default_max_producers,
    default_max_record_age, default_sla, default_window_bits, AccountingConfig,
};
pub use cluster::{ClusterExpectation, Granularity};
pub use clusters::{
    default_cluster_name, default_max_clusters, WatchedCluster, DEFAULT_CLUSTER_NAME, MAX_CLUSTERS,
};
pub use discovery::{DiscoveryConfig, Filter};
pub use keys::KEYS;
pub use probe::{ProbeConfig, DEFAULT_PROBE_TOPIC, MAX_PROBE_PARTITIONS};
pub use topics::{
    default_max_topics, default_topics, judged_bound, JudgedTopics, TopicMatcher,
    MAX_JUDGED_TOPICS, TOPICS_KEY,
};

/// librdkafka keys the exporter's typed settings own.
pub const OWNED_KEYS: &[&str] = &[
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    // The probe's producer: idempotent, acks=all (`request.required.acks`
    // is librdkafka's other name for `acks`).
    "acks",
    "request.required.acks",
    "enable.idempotence",
];

/// The most consumer groups one exporter watches (labels stay bounded).
pub const MAX_GROUPS: usize = 100;

/// Dotted keys whose environment value is a comma-separated list.
pub const LIST_KEYS: &[&str] = &["exporter.groups", "exporter.topics"];

meshflow_common::service_config! {
    /// Everything `meshflow-exporter` reads at start.
    port: meshflow_common::contract::port::EXPORTER,
    /// What to read, which groups to watch, how to judge.
    exporter: ExporterSettings,
    instance_id: |c| None,
}

/// `exporter.*`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExporterSettings {
    /// The data topics judged end to end: literal names, or regular
    /// expressions (an entry starting with `^`) matched against the whole
    /// topic name. See `config/topics.rs`.
    #[serde(default = "default_topics")]
    pub topics: Vec<String>,
    /// The most data topics judged at once; matching topics beyond it (by
    /// name order) are left out and counted.
    #[serde(default = "default_max_topics")]
    pub max_topics: usize,
    /// The receipts topic: what consumer groups processed.
    #[serde(default = "default_receipts_topic")]
    pub receipts_topic: String,
    /// Consumer groups to judge end to end (lag, status, `processed`
    /// stage). The cluster's other groups are found by `discovery`.
    #[serde(default = "default_groups")]
    pub groups: Vec<String>,
    /// The exporter's own consumer group, with which it reads both topics
    /// and commits how far it has read. Must not be a watched group.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// How often offsets, watermarks and cluster metadata are polled.
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// See [`AccountingConfig::grace`].
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub grace: Duration,
    /// See [`AccountingConfig::sla`].
    #[serde(default = "default_sla", with = "humantime_serde")]
    pub sla: Duration,
    /// See [`AccountingConfig::idle_timeout`].
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// See [`AccountingConfig::max_producers`].
    #[serde(default = "default_max_producers")]
    pub max_producers: usize,
    /// See [`AccountingConfig::window_bits`].
    #[serde(default = "default_window_bits")]
    pub window_bits: u32,
    /// See [`AccountingConfig::max_clock_skew`].
    #[serde(default = "default_max_clock_skew", with = "humantime_serde")]
    pub max_clock_skew: Duration,
    /// See [`AccountingConfig::max_record_age`].
    #[serde(default = "default_max_record_age", with = "humantime_serde")]
    pub max_record_age: Duration,
    /// Memory the accounting may need at worst, in MiB: every producer slot
    /// full, with a window per watched group, on every judged topic (their
    /// number when `topics` holds names only, else `max_topics`). A configuration whose worst
    /// case exceeds it is refused at start, with the figure.
    #[serde(default = "default_memory_budget_mib")]
    pub memory_budget_mib: u64,
    /// Thresholds of the group status rules.
    #[serde(default)]
    pub status: StatusConfig,
    /// What the cluster should look like, for the brokers alerts.
    #[serde(default)]
    pub cluster: ClusterExpectation,
    /// The cluster's other consumer groups to watch.
    #[serde(default)]
    pub discovery: DiscoveryConfig,
    /// The home cluster's `cluster` label (the cluster `kafka.*`
    /// describes). See `config/clusters.rs`.
    #[serde(default = "default_cluster_name")]
    pub cluster_name: String,
    /// Further clusters, polled for lag, group status and the cluster
    /// view only, each with its own client settings.
    #[serde(default)]
    pub clusters: Vec<WatchedCluster>,
    /// The most clusters watched, the home cluster included: every
    /// cluster-scoped series carries `cluster`, so this bounds the labels.
    #[serde(default = "default_max_clusters")]
    pub max_clusters: usize,
    /// The built-in probe, for clusters without meshflow traffic.
    #[serde(default)]
    pub probe: ProbeConfig,
}

/// The design's receipts topic.
fn default_receipts_topic() -> String {
    meshflow_common::contract::topic::RECEIPTS.to_string()
}

/// The design's one consumer group.
fn default_groups() -> Vec<String> {
    vec![meshflow_common::contract::topic::GROUP.to_string()]
}

/// Named after the binary, so it is recognisable among the broker's groups.
fn default_group_id() -> String {
    meshflow_common::contract::topic::EXPORTER_GROUP.to_string()
}

/// 5 s: a Prometheus scrape interval's worth; the status rules' defaults
/// count samples at this pace.
pub fn default_poll_interval() -> Duration {
    Duration::from_secs(5)
}

impl Default for ExporterSettings {
    fn default() -> Self {
        ExporterSettings {
            topics: default_topics(),
            max_topics: default_max_topics(),
            receipts_topic: default_receipts_topic(),
            groups: default_groups(),
            group_id: default_group_id(),
            poll_interval: default_poll_interval(),
            grace: default_grace(),
            sla: default_sla(),
            idle_timeout: default_idle_timeout(),
            max_producers: default_max_producers(),
            window_bits: default_window_bits(),
            max_clock_skew: default_max_clock_skew(),
            max_record_age: default_max_record_age(),
            memory_budget_mib: default_memory_budget_mib(),
            status: StatusConfig::default(),
            cluster: ClusterExpectation::default(),
            discovery: DiscoveryConfig::default(),
            cluster_name: default_cluster_name(),
            clusters: Vec::new(),
            max_clusters: default_max_clusters(),
            probe: ProbeConfig::default(),
        }
    }
}

impl ExporterSettings {
    /// The accounting core's part of these settings.
    pub fn accounting(&self) -> AccountingConfig {
        AccountingConfig {
            grace: self.grace,
            sla: self.sla,
            idle_timeout: self.idle_timeout,
            max_producers: self.max_producers,
            window_bits: self.window_bits,
            max_clock_skew: self.max_clock_skew,
            max_record_age: self.max_record_age,
        }
    }

    /// The most topics judged at once: the number of literal names when no
    /// entry of `exporter.topics` is a pattern, else `exporter.max_topics`.
    pub fn judged_bound(&self) -> usize {
        judged_bound(&self.topics, self.max_topics)
    }

    /// The matcher of the judged topics, shared by the reader and the
    /// cluster poller.
    pub fn topic_matcher(&self) -> Result<TopicMatcher, Error> {
        let matcher = TopicMatcher::new(&self.topics, self.max_topics, &self.receipts_topic)?;
        Ok(matcher.excluding(&self.probe.topic))
    }

    /// Checks every `exporter.*` value, naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        topic_name("exporter.receipts_topic", &self.receipts_topic)?;
        topics::validate(&self.topics, self.max_topics, &self.receipts_topic)?;
        if self.groups.is_empty() || self.groups.len() > MAX_GROUPS {
            return Err(ConfigError::invalid(
                "exporter.groups",
                self.groups.join(","),
                "a list of 1 to 100 consumer group names",
            ));
        }
        for (index, group) in self.groups.iter().enumerate() {
            identifier("exporter.groups", group, 255)?;
            if self.groups[..index].contains(group) {
                return Err(ConfigError::invalid(
                    "exporter.groups",
                    group,
                    "each group named once",
                ));
            }
        }
        identifier("exporter.group_id", &self.group_id, 255)?;
        if self.groups.contains(&self.group_id) {
            return Err(ConfigError::invalid(
                "exporter.group_id",
                &self.group_id,
                "a group other than the watched exporter.groups (it would join them and take their partitions)",
            ));
        }
        let poll = self.poll_interval;
        millis_in("exporter.poll_interval", poll, 100, 600_000)?;
        self.accounting().validate().map_err(config_error)?;
        let judged = self.judged_bound();
        let accounting = self
            .accounting()
            .worst_case_bytes(self.groups.len())
            .saturating_mul(judged as u64);
        // The home cluster's poll was never counted (it is small beside the
        // accounting); each further cluster's is, bounded by its discovery.
        let polls = self
            .clusters
            .iter()
            .map(WatchedCluster::poll_worst_case_bytes)
            .fold(0u64, u64::saturating_add);
        let worst = accounting.saturating_add(polls);
        let budget = self.memory_budget_mib.saturating_mul(1 << 20);
        if worst > budget {
            return Err(ConfigError::invalid(
                "exporter.memory_budget_mib",
                self.memory_budget_mib.to_string(),
                format!(
                    "at least {} MiB, the worst case of exporter.max_producers={} × \
                     exporter.window_bits={} × ({} watched groups + the log) × {} judged \
                     topics (the literal exporter.topics, or exporter.max_topics with a ^pattern), \
                     plus {} MiB for the {} exporter.clusters (8 MiB + 256 bytes × \
                     discovery.max_partitions each); or lower those",
                    worst.div_ceil(1 << 20),
                    self.max_producers,
                    self.window_bits,
                    self.groups.len(),
                    judged,
                    polls.div_ceil(1 << 20),
                    self.clusters.len()
                ),
            ));
        }
        self.status.validate().map_err(config_error)?;
        self.cluster.validate().map_err(config_error)?;
        self.discovery.validate().map_err(config_error)?;
        clusters::validate(
            &self.cluster_name,
            &self.clusters,
            self.max_clusters,
            OWNED_KEYS,
        )?;
        let literals: Vec<&str> = self
            .topics
            .iter()
            .filter(|t| !topics::is_pattern(t))
            .map(String::as_str)
            .collect();
        self.probe.validate(&literals, &self.receipts_topic)?;
        let needed =
            poll.saturating_mul(u32::try_from(self.status.min_samples).unwrap_or(u32::MAX));
        if self.status.window < needed {
            return Err(ConfigError::invalid(
                "exporter.status.window",
                show(self.status.window),
                format!(
                    "a duration of at least exporter.poll_interval × exporter.status.min_samples ({}), \
                     or STALL and WARN could never be decided",
                    show(needed)
                ),
            ));
        }
        Ok(())
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate(OWNED_KEYS)?;
        self.log.validate()?;
        self.exporter.validate()
    }
}

/// The service's form of the core's configuration error.
fn config_error(error: Error) -> ConfigError {
    match error {
        Error::Config {
            key,
            value,
            allowed,
        } => ConfigError::invalid(key, value, allowed),
        other => ConfigError::invalid("exporter", other.to_string(), "valid settings"),
    }
}

/// Formats a duration for an error message.
fn show(d: Duration) -> String {
    humantime_serde::re::humantime::format_duration(d).to_string()
}

/// 384 MiB: the default 10,000 producers with two watched groups fit
/// (about 320 MiB), inside the chart's 512 MiB container limit.
pub fn default_memory_budget_mib() -> u64 {
    384
}

#[cfg(test)]
mod tests;
