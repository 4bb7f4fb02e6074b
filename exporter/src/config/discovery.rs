//! `exporter.discovery.*`: which of the cluster's other consumer groups
//! the exporter watches, besides the `exporter.groups` it judges end to
//! end. Groups are listed with Kafka's ListGroups every poll and kept when
//! their name matches `allow_groups` and not `deny_groups`; their lag is
//! reported on every partition they have committed on of a topic that
//! matches `allow_topics` and not `deny_topics`. The patterns are regular
//! expressions matched against the whole name.

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The most discovered groups one exporter watches, and the most
/// partitions (summed over those groups) it reports lag for: the label
/// sets stay bounded whatever the cluster holds.
pub const MAX_DISCOVERED_GROUPS: usize = 10_000;
/// See [`MAX_DISCOVERED_GROUPS`].
pub const MAX_DISCOVERED_PARTITIONS: usize = 1_000_000;

/// The discovery settings, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoveryConfig {
    /// List the cluster's groups and watch those the patterns select.
    pub enabled: bool,
    /// Groups to watch (the whole name must match).
    pub allow_groups: String,
    /// Groups to leave out even when allowed; empty for none.
    pub deny_groups: String,
    /// Topics to report lag on.
    pub allow_topics: String,
    /// Topics to leave out even when allowed; empty for none.
    pub deny_topics: String,
    /// The most groups watched; the rest (by name order) are counted as
    /// left out.
    pub max_groups: usize,
    /// The most (group, topic, partition) lag series.
    pub max_partitions: usize,
}

impl Default for DiscoveryConfig {
    /// Every group on every topic, Kafka's internal topics aside.
    fn default() -> Self {
        DiscoveryConfig {
            enabled: true,
            allow_groups: ".*".to_string(),
            deny_groups: String::new(),
            allow_topics: ".*".to_string(),
            deny_topics: "__.*".to_string(),
            max_groups: 1_000,
            max_partitions: 100_000,
        }
    }
}

impl DiscoveryConfig {
    /// Checks the patterns and bounds, naming the first bad key.
    pub fn validate(&self) -> Result<(), Error> {
        self.filter().map(|_| ())?;
        if self.max_groups == 0 || self.max_groups > MAX_DISCOVERED_GROUPS {
            return Err(Error::Config {
                key: "exporter.discovery.max_groups",
                value: self.max_groups.to_string(),
                allowed: "1 to 10000",
            });
        }
        if self.max_partitions == 0 || self.max_partitions > MAX_DISCOVERED_PARTITIONS {
            return Err(Error::Config {
                key: "exporter.discovery.max_partitions",
                value: self.max_partitions.to_string(),
                allowed: "1 to 1000000",
            });
        }
        Ok(())
    }

    /// The compiled patterns.
    pub fn filter(&self) -> Result<Filter, Error> {
        Ok(Filter {
            allow_groups: whole("exporter.discovery.allow_groups", &self.allow_groups)?,
            deny_groups: optional("exporter.discovery.deny_groups", &self.deny_groups)?,
            allow_topics: whole("exporter.discovery.allow_topics", &self.allow_topics)?,
            deny_topics: optional("exporter.discovery.deny_topics", &self.deny_topics)?,
        })
    }
}

/// The discovery patterns, compiled.
#[derive(Debug, Clone)]
pub struct Filter {
    allow_groups: Regex,
    deny_groups: Option<Regex>,
    allow_topics: Regex,
    deny_topics: Option<Regex>,
}

impl Filter {
    /// The group is to be watched.
    pub fn group(&self, name: &str) -> bool {
        selects(&self.allow_groups, self.deny_groups.as_ref(), name)
    }

    /// Lag on the topic is to be reported.
    pub fn topic(&self, name: &str) -> bool {
        selects(&self.allow_topics, self.deny_topics.as_ref(), name)
    }
}

fn selects(allow: &Regex, deny: Option<&Regex>, name: &str) -> bool {
    allow.is_match(name) && !deny.is_some_and(|deny| deny.is_match(name))
}

/// `pattern` anchored at both ends, compiled; a bad pattern names `key`.
/// Shared by every operator-given pattern (discovery, judged topics).
pub(super) fn whole(key: &'static str, pattern: &str) -> Result<Regex, Error> {
    // Patterns come from the operator, but a huge one must not take the
    // exporter's memory: the compiled size is bounded.
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|_| Error::Config {
            key,
            value: pattern.to_string(),
            allowed: "a regular expression (Rust regex syntax) matched against the whole name",
        })
}

fn optional(key: &'static str, pattern: &str) -> Result<Option<Regex>, Error> {
    if pattern.is_empty() {
        Ok(None)
    } else {
        whole(key, pattern).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(allow_groups: &str, deny_groups: &str) -> DiscoveryConfig {
        DiscoveryConfig {
            allow_groups: allow_groups.to_string(),
            deny_groups: deny_groups.to_string(),
            ..DiscoveryConfig::default()
        }
    }

    #[test]
    fn patterns_match_whole_names_and_deny_wins() {
        let filter = config("orders-.*|billing", "orders-test.*")
            .filter()
            .unwrap();
        assert!(filter.group("orders-eu"));
        assert!(filter.group("billing"));
        assert!(!filter.group("billing-2"), "the whole name must match");
        assert!(!filter.group("xorders-eu"), "the whole name must match");
        assert!(!filter.group("orders-test-1"), "denied");
        let default = DiscoveryConfig::default().filter().unwrap();
        assert!(default.group("anything"));
        assert!(default.topic("events"));
        assert!(!default.topic("__consumer_offsets"));
    }

    #[test]
    fn a_bad_pattern_or_bound_names_its_key() {
        let key = |c: DiscoveryConfig| match c.validate() {
            Err(Error::Config { key, .. }) => key,
            other => panic!("{other:?}"),
        };
        assert_eq!(key(config("(", "")), "exporter.discovery.allow_groups");
        assert_eq!(key(config(".*", "[z-a]")), "exporter.discovery.deny_groups");
        let huge = DiscoveryConfig {
            allow_topics: "a{1000}{1000}".to_string(),
            ..DiscoveryConfig::default()
        };
        assert_eq!(key(huge), "exporter.discovery.allow_topics");
        let none = DiscoveryConfig {
            max_groups: 0,
            ..DiscoveryConfig::default()
        };
        assert_eq!(key(none), "exporter.discovery.max_groups");
        assert_eq!(DiscoveryConfig::default().validate(), Ok(()));
    }
}
