//! Checks the sections' `validate` methods share; each error names the key,
//! the value and what is allowed.

use super::ConfigError;

pub fn one_of(key: &str, value: &str, allowed: &[&str]) -> Result<(), ConfigError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            value,
            format!("one of {}", allowed.join(", ")),
        ))
    }
}

/// Fails unless `lo <= value <= hi`.
pub fn in_range<N>(key: &str, value: N, lo: N, hi: N) -> Result<(), ConfigError>
where
    N: PartialOrd + std::fmt::Display + Copy,
{
    if value >= lo && value <= hi {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            value,
            format!("a number from {lo} to {hi}"),
        ))
    }
}

/// Fails when a topic retention is set outside 1 minute to 365 days.
pub fn topic_retention(key: &str, value: Option<std::time::Duration>) -> Result<(), ConfigError> {
    let range = std::time::Duration::from_secs(60)..=std::time::Duration::from_secs(365 * 86_400);
    match value {
        Some(r) if !range.contains(&r) => Err(ConfigError::invalid(
            key,
            humantime_serde::re::humantime::format_duration(r),
            "a duration from 1m to 365days",
        )),
        _ => Ok(()),
    }
}

/// Fails unless `value` is a duration from `lo_ms` to `hi_ms`
/// milliseconds, both included.
pub fn millis_in(
    key: &str,
    value: std::time::Duration,
    lo_ms: u64,
    hi_ms: u64,
) -> Result<(), ConfigError> {
    let show = humantime_serde::re::humantime::format_duration;
    let (lo, hi) = (
        std::time::Duration::from_millis(lo_ms),
        std::time::Duration::from_millis(hi_ms),
    );
    if (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            show(value),
            format!("a duration from {} to {}", show(lo), show(hi)),
        ))
    }
}

/// Fails when a topic name is not one Kafka accepts.
pub fn topic_name(key: &str, value: &str) -> Result<(), ConfigError> {
    let ok = !value.is_empty()
        && value.len() <= 249
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            value,
            "a Kafka topic name: 1-249 characters of [a-zA-Z0-9._-]",
        ))
    }
}

/// Fails on an empty identifier or one longer than `max` bytes.
pub fn identifier(key: &str, value: &str, max: usize) -> Result<(), ConfigError> {
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        Err(ConfigError::invalid(
            key,
            value,
            format!("a non-empty UTF-8 string of at most {max} bytes without control characters"),
        ))
    } else {
        Ok(())
    }
}
