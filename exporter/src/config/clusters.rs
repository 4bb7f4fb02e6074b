//! `exporter.cluster_name`, `exporter.clusters` and `exporter.max_clusters`:
//! the Kafka clusters one exporter watches.
//!
//! The *home* cluster is the one the top-level settings describe: `kafka.*`
//! for its clients, `exporter.discovery.*` for the groups to watch there,
//! `exporter.cluster.*` for what it should look like, and
//! `exporter.cluster_name` for its `kafka_cluster` label. Everything end to end
//! happens there: the judged and receipts topics are read from it, the
//! exporter's own group commits there, and the probe writes there. A
//! configuration written before clusters were several is therefore one
//! home cluster named [`DEFAULT_CLUSTER_NAME`], and nothing else changes.
//!
//! Each entry of `exporter.clusters` is a further cluster that is *polled*
//! only: lag, group status and state, and the cluster view, with its own
//! client settings, discovery filters and expectation. Every series those
//! polls publish carries `kafka_cluster`, so the label set grows with the number
//! of clusters, which `exporter.max_clusters` bounds.

use meshflow_common::config::{ConfigError, KafkaConfig};
use serde::{Deserialize, Serialize};

use super::{ClusterExpectation, DiscoveryConfig};
use crate::Error;

/// The home cluster's name when `exporter.cluster_name` is not set.
pub const DEFAULT_CLUSTER_NAME: &str = "default";
/// The most clusters `exporter.max_clusters` may allow.
pub const MAX_CLUSTERS: usize = 16;
/// The longest cluster name, in bytes.
pub const MAX_CLUSTER_NAME: usize = 64;

/// The home cluster's name.
pub fn default_cluster_name() -> String {
    DEFAULT_CLUSTER_NAME.to_string()
}

/// 4 clusters, home included: each one's poll runs on its own blocking
/// thread and holds its own three Kafka clients.
pub fn default_max_clusters() -> usize {
    4
}

/// What one cluster's poll may hold besides its lag figures: its three
/// Kafka clients and their buffers. `poll-bench` measured +3.2 MiB for a
/// poller watching 1,000 lag figures; 8 MiB leaves room.
pub const POLL_BASE_BYTES: u64 = 8 << 20;
/// What one lag figure (a discovered group's partition) may hold in a
/// poll: its offsets, its cached record timestamp, its status samples and
/// its series. `poll-bench` measured 15.3 MiB more for 100,000 figures
/// than for 1,000 (about 160 bytes each); 256 leaves room.
pub const POLL_BYTES_PER_PARTITION: u64 = 256;

/// One further cluster to poll (an entry of `exporter.clusters`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WatchedCluster {
    /// The `kafka_cluster` label of its series; unique among the clusters.
    pub name: String,
    /// Its client settings, as the top-level `kafka` section has them.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Its groups and topics to watch, as `exporter.discovery`.
    #[serde(default)]
    pub discovery: DiscoveryConfig,
    /// What it should look like, as `exporter.cluster`.
    #[serde(default)]
    pub cluster: ClusterExpectation,
}

impl WatchedCluster {
    /// The most bytes this cluster's poll may hold: its clients, and every
    /// lag figure its discovery may report (`max_partitions`).
    pub fn poll_worst_case_bytes(&self) -> u64 {
        let partitions = self.discovery.max_partitions as u64;
        POLL_BASE_BYTES.saturating_add(partitions.saturating_mul(POLL_BYTES_PER_PARTITION))
    }
}

/// Checks the name of a cluster: the label value must be short and plain,
/// so it reads well in a dashboard's variable and in an alert's summary.
pub fn check_name(key: &str, name: &str) -> Result<(), ConfigError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > MAX_CLUSTER_NAME || !name.chars().all(plain) {
        return Err(ConfigError::invalid(
            key,
            name,
            "1 to 64 ASCII letters, digits, `-`, `_` or `.`",
        ));
    }
    Ok(())
}

/// Checks the clusters: their number against `max_clusters` (home
/// included), each name and that no two are the same, and each entry's
/// settings, naming the entry's key (`exporter.clusters[1].kafka...`).
pub fn validate(
    home: &str,
    clusters: &[WatchedCluster],
    max_clusters: usize,
    owned_keys: &[&str],
) -> Result<(), ConfigError> {
    if max_clusters == 0 || max_clusters > MAX_CLUSTERS {
        return Err(ConfigError::invalid(
            "exporter.max_clusters",
            max_clusters,
            "1 to 16",
        ));
    }
    check_name("exporter.cluster_name", home)?;
    if clusters.len() + 1 > max_clusters {
        return Err(ConfigError::invalid(
            "exporter.clusters",
            format!("{} clusters", clusters.len()),
            format!(
                "at most exporter.max_clusters - 1 = {} further clusters (the home cluster counts)",
                max_clusters - 1
            ),
        ));
    }
    for (index, cluster) in clusters.iter().enumerate() {
        let at = |key: &str| format!("exporter.clusters[{index}].{key}");
        check_name(&at("name"), &cluster.name)?;
        let earlier = clusters[..index].iter().map(|c| c.name.as_str());
        if std::iter::once(home)
            .chain(earlier)
            .any(|n| n == cluster.name)
        {
            return Err(ConfigError::invalid(
                &at("name"),
                &cluster.name,
                "a name no other cluster has (exporter.cluster_name included)",
            ));
        }
        cluster
            .kafka
            .validate(owned_keys)
            .map_err(|e| within(e, &at("")))?;
        let entry = |error: Error| within(super::config_error(error), &at(""));
        cluster.discovery.validate().map_err(entry)?;
        cluster.cluster.validate().map_err(entry)?;
    }
    Ok(())
}

/// `error` with its key moved under `prefix` (`kafka.x` or `exporter.x`
/// becomes `exporter.clusters[i].kafka.x` or `exporter.clusters[i].x`).
fn within(error: ConfigError, prefix: &str) -> ConfigError {
    match error {
        ConfigError::Invalid {
            key,
            value,
            allowed,
        } => {
            let key = key.strip_prefix("exporter.").unwrap_or(&key);
            ConfigError::Invalid {
                key: format!("{prefix}{key}"),
                value,
                allowed,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> WatchedCluster {
        WatchedCluster {
            name: name.to_string(),
            kafka: KafkaConfig::default(),
            discovery: DiscoveryConfig::default(),
            cluster: ClusterExpectation::default(),
        }
    }

    fn refused(home: &str, clusters: &[WatchedCluster], max: usize) -> String {
        match validate(home, clusters, max, &[]) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_are_plain_unique_and_bounded_in_number() {
        assert!(validate("home", &[named("a"), named("b")], 3, &[]).is_ok());
        assert!(validate(DEFAULT_CLUSTER_NAME, &[], 1, &[]).is_ok());
        assert_eq!(
            refused("home", &[named("a"), named("a")], 4),
            "exporter.clusters[1].name"
        );
        assert_eq!(refused("a", &[named("a")], 4), "exporter.clusters[0].name");
        assert_eq!(
            refused("home", &[named("a b")], 4),
            "exporter.clusters[0].name"
        );
        assert_eq!(
            refused("home", &[named("")], 4),
            "exporter.clusters[0].name"
        );
        let long = "x".repeat(MAX_CLUSTER_NAME + 1);
        assert_eq!(refused(&long, &[], 4), "exporter.cluster_name");
        assert_eq!(
            refused("home", &[named("a"), named("b")], 2),
            "exporter.clusters"
        );
        assert_eq!(refused("home", &[], 0), "exporter.max_clusters");
        assert_eq!(
            refused("home", &[], MAX_CLUSTERS + 1),
            "exporter.max_clusters"
        );
    }

    #[test]
    fn an_entrys_own_settings_are_checked_under_its_key() {
        let mut bad_servers = named("a");
        bad_servers.kafka.bootstrap_servers = "nohost".to_string();
        assert_eq!(
            refused("home", &[named("b"), bad_servers], 4),
            "exporter.clusters[1].kafka.bootstrap_servers"
        );
        let mut bad_pattern = named("a");
        bad_pattern.discovery.allow_groups = "(".to_string();
        assert_eq!(
            refused("home", &[bad_pattern], 4),
            "exporter.clusters[0].discovery.allow_groups"
        );
        let mut bad_expectation = named("a");
        bad_expectation.cluster.min_insync_replicas = 9;
        assert_eq!(
            refused("home", &[bad_expectation], 4),
            "exporter.clusters[0].cluster.min_insync_replicas"
        );
    }
}
