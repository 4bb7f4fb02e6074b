//! Configuration loading shared by every meshflow service.
//!
//! Values come from three layers, later ones winning: the serde defaults of
//! each section, an optional TOML file (`--config PATH`), and environment
//! variables `MESHFLOW__SECTION__KEY`. Every section denies unknown fields, so
//! a typo is an error instead of a silently ignored setting. After
//! deserialising, the service calls [`Validate::validate`] once; a failure is a
//! [`ConfigError`] naming the key, the value and what is allowed, which `main`
//! turns into exit code 2.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Prefix of the environment variables that override configuration.
pub const ENV_PREFIX: &str = "MESHFLOW";
/// Separator between prefix, section and key in environment variable names.
pub const ENV_SEPARATOR: &str = "__";

/// A configuration problem, reported as one line before exiting with code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value was present but not acceptable.
    #[error("config key `{key}`: invalid value {value:?}: {allowed}")]
    Invalid {
        /// Dotted key, e.g. `producer.rate_per_sec`.
        key: String,
        /// The offending value as given.
        value: String,
        /// What the key accepts.
        allowed: String,
    },
    /// The file or environment could not be parsed into the typed sections
    /// (wrong type, unknown key, unreadable file).
    #[error("config: {0}")]
    Load(#[source] config::ConfigError),
}

impl ConfigError {
    /// Builds an [`ConfigError::Invalid`].
    pub fn invalid(key: &str, value: impl ToString, allowed: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }

    /// Process exit code for a configuration error.
    pub const EXIT_CODE: i32 = 2;
}

/// A service's configuration, checked once at start.
pub trait Validate {
    /// Returns the first problem found, naming its key.
    fn validate(&self) -> Result<(), ConfigError>;
}

/// Where configuration comes from besides defaults.
#[derive(Debug, Default, Clone)]
pub struct Sources<'a> {
    /// The TOML file given with `--config`, if any.
    pub file: Option<&'a Path>,
    /// Environment variables to read; `None` reads the process environment.
    /// Tests pass a map so they never touch the process environment.
    pub env: Option<HashMap<String, String>>,
    /// Dotted keys whose environment value is a comma-separated list.
    pub list_keys: &'a [&'a str],
}

impl<'a> Sources<'a> {
    /// Reads `vars` instead of the process environment, so tests and tools
    /// never depend on (or change) it.
    pub fn with_env(
        file: Option<&'a Path>,
        vars: &[(&str, &str)],
        list_keys: &'a [&'a str],
    ) -> Self {
        let env = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Sources {
            file,
            env: Some(env),
            list_keys,
        }
    }
}

/// Loads and validates a service configuration from defaults, file and env.
pub fn load<T>(sources: Sources<'_>) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Validate,
{
    let mut env = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator(ENV_SEPARATOR)
        .separator(ENV_SEPARATOR)
        .try_parsing(true)
        .source(sources.env);
    if !sources.list_keys.is_empty() {
        env = env.list_separator(",");
        for key in sources.list_keys {
            env = env.with_list_parse_key(key);
        }
    }
    let mut builder = config::Config::builder();
    if let Some(path) = sources.file {
        builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
    }
    let settings = builder.add_source(env).build().map_err(ConfigError::Load)?;
    let value: T = settings.try_deserialize().map_err(ConfigError::Load)?;
    value.validate()?;
    Ok(value)
}

/// How the service talks to Kafka. Security settings are plain config so a
/// cluster without a mesh can still use TLS and SASL.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list (librdkafka `bootstrap.servers`).
    #[serde(default = "default_bootstrap_servers")]
    pub bootstrap_servers: String,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    #[serde(default = "default_security_protocol")]
    pub security_protocol: String,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; required with SASL.
    #[serde(default)]
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    #[serde(default)]
    pub sasl_username: Option<String>,
    /// SASL password.
    #[serde(default)]
    pub sasl_password: Option<String>,
    /// PEM file of the CA that signed the brokers' certificates.
    #[serde(default)]
    pub ssl_ca_location: Option<String>,
    /// PEM client certificate, for mutual TLS.
    #[serde(default)]
    pub ssl_certificate_location: Option<String>,
    /// PEM client key, for mutual TLS.
    #[serde(default)]
    pub ssl_key_location: Option<String>,
    /// Raw librdkafka settings passed through as given. Keys that a typed
    /// field (here or in the service section) owns are refused.
    #[serde(default)]
    pub librdkafka: BTreeMap<String, String>,
}

/// librdkafka's conventional local default.
fn default_bootstrap_servers() -> String {
    "localhost:9092".to_string()
}

/// Plain TCP, the librdkafka default; a mesh adds mTLS underneath.
fn default_security_protocol() -> String {
    "plaintext".to_string()
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap_servers: default_bootstrap_servers(),
            security_protocol: default_security_protocol(),
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            ssl_ca_location: None,
            ssl_certificate_location: None,
            ssl_key_location: None,
            librdkafka: BTreeMap::new(),
        }
    }
}

/// The metrics and health endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address for `/metrics`, `/healthz` and `/readyz`. The default
    /// port is the service's own (producer 9464, consumer 9465, exporter 9466).
    pub listen: SocketAddr,
}

/// Log output.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (human-readable) or `json` (one object per line).
    #[serde(default = "default_log_format")]
    pub format: String,
    /// A `tracing` filter directive, e.g. `info` or `meshflow_consumer=debug`.
    #[serde(default = "default_log_level")]
    pub level: String,
}

/// Human-readable by default; deployments set `json`.
fn default_log_format() -> String {
    "text".to_string()
}

/// One line per message is too much for `info`; those lines are at `info`
/// only in the consumer, where the issue asks for them.
fn default_log_level() -> String {
    "info".to_string()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: default_log_format(),
            level: default_log_level(),
        }
    }
}

impl LogConfig {
    /// Checks the format and the filter directive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        one_of("log.format", &self.format, &["text", "json"])?;
        if tracing_subscriber::EnvFilter::try_new(&self.level).is_err() {
            return Err(ConfigError::invalid(
                "log.level",
                &self.level,
                "a tracing filter directive such as `info` or `meshflow_consumer=debug`",
            ));
        }
        Ok(())
    }
}

/// Fails unless `value` is one of `allowed`.
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

/// A process-unique instance id: the pod name or host name plus a random
/// suffix, so a restarted process is a new producer instance.
pub fn instance_id(role: &str) -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| role.to_string());
    let suffix: u32 = rand::random();
    let mut id = format!("{host}-{suffix:08x}");
    // Keep within the envelope's limit even for very long host names.
    if id.len() > crate::envelope::MAX_PRODUCER_ID_BYTES {
        let keep = crate::envelope::MAX_PRODUCER_ID_BYTES - 9;
        let mut cut = keep;
        while !host.is_char_boundary(cut) {
            cut -= 1;
        }
        id = format!("{}-{suffix:08x}", &host[..cut]);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_and_choice_errors_name_key_value_and_allowed() {
        let err = in_range("producer.rate_per_sec", 0u32, 1, 100_000).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config key `producer.rate_per_sec`: invalid value \"0\": a number from 1 to 100000"
        );
        let err = one_of("log.format", "yaml", &["text", "json"]).unwrap_err();
        assert!(err.to_string().contains("`log.format`"));
        assert!(err.to_string().contains("\"yaml\""));
        assert!(err.to_string().contains("one of text, json"));
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        for ok in ["meshflow.events", "a", "A-b_c.9"] {
            assert!(topic_name("t", ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(250);
        for bad in ["", ".", "..", "with space", "slash/", long.as_str()] {
            assert!(topic_name("t", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instance_ids_are_unique_and_bounded() {
        let a = instance_id("producer");
        let b = instance_id("producer");
        assert_ne!(a, b);
        assert!(a.len() <= crate::envelope::MAX_PRODUCER_ID_BYTES);
    }

    #[test]
    fn log_level_must_parse() {
        let bad = LogConfig {
            level: "info,[".into(),
            ..LogConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("log.level"));
        assert!(LogConfig::default().validate().is_ok());
    }
}

/// Settings for trace propagation.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TraceConfig {
    /// Also propagate W3C Baggage (the `baggage` header). Off by default:
    /// baggage is user data and grows every message.
    #[serde(default)]
    pub baggage: bool,
}

/// Reads `--config PATH` from the command line, loads the configuration and
/// exits with code 2 and one line on stderr if it is bad. `--help` prints
/// usage and exits 0. For `main` functions only.
pub fn load_from_args<T>(binary: &str, list_keys: &[&str]) -> T
where
    T: DeserializeOwned + Validate,
{
    let mut args = std::env::args().skip(1);
    let mut file: Option<std::path::PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => match args.next() {
                Some(p) => file = Some(p.into()),
                None => exit_config(binary, "--config needs a file path"),
            },
            "--help" | "-h" => {
                println!(
                    "usage: {binary} [--config FILE.toml]\n\nSettings: defaults, then the TOML file, then \
                     environment variables {ENV_PREFIX}__SECTION__KEY. See the README's configuration reference."
                );
                std::process::exit(0);
            }
            other => match other.strip_prefix("--config=") {
                Some(p) => file = Some(p.into()),
                None => exit_config(
                    binary,
                    &format!("unknown argument {other:?}; usage: {binary} [--config FILE]"),
                ),
            },
        }
    }
    let sources = Sources {
        file: file.as_deref(),
        env: None,
        list_keys,
    };
    match load(sources) {
        Ok(c) => c,
        Err(e) => exit_config(binary, &e.to_string()),
    }
}

/// Prints one line and exits with [`ConfigError::EXIT_CODE`].
fn exit_config(binary: &str, message: &str) -> ! {
    eprintln!("{binary}: {message}");
    std::process::exit(ConfigError::EXIT_CODE)
}
