//! `exporter.topics` and `exporter.max_topics`: which data topics the
//! exporter judges end to end (loss, duplicates, latency).
//!
//! An entry starting with `^` is a regular expression matched against the
//! whole topic name (librdkafka's convention for regex subscriptions);
//! any other entry is a literal topic name. The receipts topic and
//! Kafka's internal topics (`__*`) never match. At most
//! `exporter.max_topics` topics are judged at once: the matching topics
//! beyond it, by name order, are left out and counted. The reader and the
//! cluster poller resolve the judged set from their own metadata answers
//! with the same [`TopicMatcher`].

use meshflow_common::config::{topic_name, ConfigError};
use regex::Regex;

use super::discovery::whole;
use crate::Error;

/// The key of the judged topics, named by every error about them.
pub const TOPICS_KEY: &str = "exporter.topics";

/// The most topics `exporter.max_topics` may allow.
pub const MAX_JUDGED_TOPICS: usize = 100;

/// The design's data topic, judged by default.
pub fn default_topics() -> Vec<String> {
    vec![meshflow_common::contract::topic::EVENTS.to_string()]
}

/// 10: a handful of data topics, each with its own windows per producer.
pub fn default_max_topics() -> usize {
    10
}

/// The entry is a regular expression rather than a literal name.
pub(super) fn is_pattern(entry: &str) -> bool {
    entry.starts_with('^')
}

/// Checks the entries and the bound, naming the first bad key.
pub fn validate(
    entries: &[String],
    max_topics: usize,
    receipts_topic: &str,
) -> Result<(), ConfigError> {
    if max_topics == 0 || max_topics > MAX_JUDGED_TOPICS {
        return Err(ConfigError::invalid(
            "exporter.max_topics",
            max_topics.to_string(),
            "1 to 100",
        ));
    }
    if entries.is_empty() {
        return Err(ConfigError::invalid(
            TOPICS_KEY,
            "",
            "a list of topic names and ^regular expressions, at least one",
        ));
    }
    let literals = entries.iter().filter(|e| !is_pattern(e)).count();
    if literals > max_topics {
        return Err(ConfigError::invalid(
            TOPICS_KEY,
            entries.join(","),
            "at most exporter.max_topics literal topic names",
        ));
    }
    for (index, entry) in entries.iter().enumerate() {
        if entries[..index].contains(entry) {
            return Err(ConfigError::invalid(TOPICS_KEY, entry, "each entry once"));
        }
        if is_pattern(entry) {
            whole(TOPICS_KEY, entry).map_err(super::config_error)?;
            continue;
        }
        topic_name(TOPICS_KEY, entry)?;
        if entry == receipts_topic {
            return Err(ConfigError::invalid(
                TOPICS_KEY,
                entry,
                "data topics other than exporter.receipts_topic",
            ));
        }
    }
    Ok(())
}

/// The most topics judged at once: the literal names when no entry is a
/// pattern, else `max_topics`. The memory bound multiplies by it.
pub fn judged_bound(entries: &[String], max_topics: usize) -> usize {
    if entries.iter().any(|e| is_pattern(e)) {
        max_topics
    } else {
        entries.len().min(max_topics)
    }
}

/// The judged topics among those a cluster lists.
#[derive(Debug, Clone)]
pub struct TopicMatcher {
    /// The entries as configured, comma-separated, for messages.
    entries: String,
    literals: Vec<String>,
    patterns: Vec<Regex>,
    /// Never judged: the receipts topic, and the probe's.
    excluded: Vec<String>,
    max_topics: usize,
}

/// The judged topics resolved from one metadata answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JudgedTopics {
    /// The judged topics, sorted by name.
    pub topics: Vec<String>,
    /// Matching topics beyond `exporter.max_topics`.
    pub left_out: usize,
}

impl TopicMatcher {
    /// Compiles the entries; a bad pattern names `exporter.topics`.
    pub fn new(entries: &[String], max_topics: usize, receipts_topic: &str) -> Result<Self, Error> {
        let mut literals = Vec::new();
        let mut patterns = Vec::new();
        for entry in entries {
            if is_pattern(entry) {
                patterns.push(whole(TOPICS_KEY, entry)?);
            } else {
                literals.push(entry.clone());
            }
        }
        Ok(TopicMatcher {
            entries: entries.join(","),
            literals,
            patterns,
            excluded: vec![receipts_topic.to_string()],
            max_topics,
        })
    }

    /// A matcher that judges no topic: a cluster polled without end-to-end
    /// accounting (an entry of `exporter.clusters`).
    pub fn none() -> Self {
        TopicMatcher {
            entries: String::new(),
            literals: Vec::new(),
            patterns: Vec::new(),
            excluded: Vec::new(),
            max_topics: 0,
        }
    }

    /// Never judges `topic` either (the probe's own topic).
    pub fn excluding(mut self, topic: &str) -> Self {
        self.excluded.push(topic.to_string());
        self
    }

    /// The entries as configured, comma-separated.
    pub fn entries(&self) -> &str {
        &self.entries
    }

    /// The literal names, judged from the start whether or not they exist.
    pub fn literals(&self) -> &[String] {
        &self.literals
    }

    /// Some entry is a pattern: every topic of the cluster must be listed
    /// to find the judged ones.
    pub fn has_patterns(&self) -> bool {
        !self.patterns.is_empty()
    }

    /// The topic is judged when it is listed.
    pub fn matches(&self, topic: &str) -> bool {
        if self.excluded.iter().any(|e| e == topic) || topic.starts_with("__") {
            return false;
        }
        self.literals.iter().any(|l| l == topic) || self.patterns.iter().any(|p| p.is_match(topic))
    }

    /// The judged topics among `listed`: the matching ones, by name, up to
    /// `exporter.max_topics`.
    pub fn select<'a>(&self, listed: impl IntoIterator<Item = &'a str>) -> JudgedTopics {
        let mut topics: Vec<String> = listed
            .into_iter()
            .filter(|t| self.matches(t))
            .map(str::to_string)
            .collect();
        topics.sort_unstable();
        topics.dedup();
        let left_out = topics.len().saturating_sub(self.max_topics);
        topics.truncate(self.max_topics);
        JudgedTopics { topics, left_out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn literals_and_patterns_select_whole_names_up_to_the_bound() {
        let matcher =
            TopicMatcher::new(&entries(&["orders", "^pay.*", "^r.*"]), 3, "receipts").unwrap();
        let listed = [
            "payments-eu",
            "orders",
            "orders-2",
            "xpayments",
            "receipts",
            "__consumer_offsets",
            "payments",
            "refunds",
        ];
        let judged = matcher.select(listed);
        assert_eq!(judged.topics, ["orders", "payments", "payments-eu"]);
        assert_eq!(judged.left_out, 1, "refunds is beyond the bound");
        assert!(!matcher.matches("receipts"), "never the receipts topic");
        assert!(!matcher.matches("xpayments"), "the whole name must match");
        assert!(matcher.has_patterns());
        assert_eq!(matcher.literals(), ["orders"]);
    }

    #[test]
    fn internal_topics_never_match() {
        let matcher = TopicMatcher::new(&entries(&["^.*"]), 10, "receipts").unwrap();
        assert!(!matcher.matches("__consumer_offsets"));
        assert!(matcher.matches("events"));
    }

    #[test]
    fn the_bound_counts_literals_unless_a_pattern_is_given() {
        assert_eq!(judged_bound(&entries(&["a", "b"]), 10), 2);
        assert_eq!(judged_bound(&entries(&["a", "^b.*"]), 10), 10);
    }
}
