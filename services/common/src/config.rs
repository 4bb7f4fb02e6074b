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
    /// Builds an [`ConfigError::Invalid`]. The value of a secret key (see
    /// [`is_secret_key`]) is replaced by [`REDACTED`].
    pub fn invalid(key: &str, value: impl ToString, allowed: impl Into<String>) -> Self {
        let value = if is_secret_key(key) {
            REDACTED.to_string()
        } else {
            value.to_string()
        };
        ConfigError::Invalid {
            key: key.to_string(),
            value,
            allowed: allowed.into(),
        }
    }

    /// Process exit code for a configuration error.
    pub const EXIT_CODE: i32 = 2;
}

/// What is shown instead of a secret value.
pub const REDACTED: &str = "[redacted]";

/// Whether the value of a config key (dotted, e.g. `kafka.sasl_password`, or
/// a librdkafka key such as `ssl.key.password`) is a secret that must never
/// be printed: passwords, passphrases, client secrets, private keys given
/// inline, and librdkafka's free-form credential settings.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase().replace('_', ".");
    ["password", "passphrase", "secret", "token", "credential"]
        .iter()
        .any(|word| key.contains(word))
        || key.ends_with("key.pem")
        || key.ends_with("ssl.key")
        || key.contains("private.key")
        || key.ends_with("sasl.oauthbearer.config")
        || key.ends_with("sasl.jaas.config")
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
    let mut vars = match sources.env {
        Some(vars) => vars,
        None => process_environment()?,
    };
    refuse_sections_set_as_values(&vars)?;
    // List keys are split here rather than by the `config` crate, which
    // splits only when it also parses every value.
    let mut lists = Vec::new();
    vars.retain(|name, value| match env_key(name) {
        Some(key) if sources.list_keys.contains(&key.as_str()) => {
            lists.push((
                key,
                value.split(',').map(str::to_string).collect::<Vec<_>>(),
            ));
            false
        }
        _ => true,
    });
    let env = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator(ENV_SEPARATOR)
        .separator(ENV_SEPARATOR)
        // Values stay strings: serde converts them for numeric and boolean
        // fields, while string fields (passwords, ids, pass-through settings)
        // keep exactly what was given (parsing would turn `0123` into `123`
        // and `TRUE` into `true`).
        .try_parsing(false)
        .source(Some(vars));
    let mut builder = config::Config::builder();
    if let Some(path) = sources.file {
        builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
    }
    builder = builder.add_source(env);
    // The environment is the last layer, so its lists may override.
    for (key, items) in lists {
        builder = builder
            .set_override(key, items)
            .map_err(ConfigError::Load)?;
    }
    let settings = builder.build().map_err(ConfigError::Load)?;
    let value: T = settings.try_deserialize().map_err(ConfigError::Load)?;
    value.validate()?;
    Ok(value)
}

/// A variable that sets a whole section (`MESHFLOW__KAFKA=x`) beside one
/// of its keys (`MESHFLOW__KAFKA__SASL_PASSWORD=...`) would replace or be
/// replaced by the other depending on the order the map is read in, losing
/// settings silently: refused, naming the section.
fn refuse_sections_set_as_values(vars: &HashMap<String, String>) -> Result<(), ConfigError> {
    let keys: Vec<(String, &String)> = vars
        .iter()
        .filter_map(|(name, value)| Some((env_key(name)?, value)))
        .collect();
    let mut sections: Vec<&(String, &String)> = keys
        .iter()
        .filter(|(key, _)| {
            keys.iter()
                .any(|(other, _)| other.len() > key.len() && other.starts_with(&format!("{key}.")))
        })
        .collect();
    sections.sort();
    match sections.first() {
        Some((key, value)) => Err(ConfigError::invalid(
            key,
            value.as_str(),
            "no value: it is a section; set its keys as MESHFLOW__SECTION__KEY",
        )),
        None => Ok(()),
    }
}

/// The dotted key an environment variable sets (`MESHFLOW__EXPORTER__GROUPS`
/// sets `exporter.groups`), or `None` if it is not a meshflow variable.
fn env_key(name: &str) -> Option<String> {
    let prefix = format!("{ENV_PREFIX}{ENV_SEPARATOR}");
    let head = name.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(&prefix) {
        return None;
    }
    Some(
        name[prefix.len()..]
            .to_lowercase()
            .replace(ENV_SEPARATOR, "."),
    )
}

/// The process's `MESHFLOW__*` variables. A value that is not UTF-8 is an
/// error naming its key (the value is not shown).
fn process_environment() -> Result<HashMap<String, String>, ConfigError> {
    let mut vars = HashMap::new();
    for (name, value) in std::env::vars_os() {
        let Some(key) = name.to_str().and_then(env_key) else {
            continue;
        };
        match value.into_string() {
            Ok(value) => {
                vars.insert(name.to_string_lossy().into_owned(), value);
            }
            Err(_) => {
                return Err(ConfigError::Invalid {
                    key,
                    value: REDACTED.to_string(),
                    allowed: "UTF-8 text".to_string(),
                })
            }
        }
    }
    Ok(vars)
}

/// How the service talks to Kafka. Security settings are plain config so a
/// cluster without a mesh can still use TLS and SASL. Its `Debug` form
/// redacts the password and secret pass-through settings.
#[derive(Clone, Deserialize, PartialEq)]
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

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let librdkafka: BTreeMap<&str, &str> = self
            .librdkafka
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret_key(k) {
                    REDACTED
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("security_protocol", &self.security_protocol)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .field(
                "sasl_password",
                &self.sasl_password.as_ref().map(|_| REDACTED),
            )
            .field("ssl_ca_location", &self.ssl_ca_location)
            .field("ssl_certificate_location", &self.ssl_certificate_location)
            .field("ssl_key_location", &self.ssl_key_location)
            .field("librdkafka", &librdkafka)
            .finish()
    }
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

    /// A small service configuration for loader tests.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Probe {
        #[serde(default)]
        kafka: KafkaConfig,
        #[serde(default)]
        probe: ProbeSection,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ProbeSection {
        #[serde(default)]
        name: String,
        #[serde(default)]
        count: u32,
        #[serde(default)]
        ratio: f64,
        #[serde(default)]
        enabled: bool,
        #[serde(default)]
        limit: Option<u64>,
        #[serde(default)]
        groups: Vec<String>,
    }

    impl Validate for Probe {
        fn validate(&self) -> Result<(), ConfigError> {
            self.kafka.validate(&[])
        }
    }

    fn probe(vars: &[(&str, &str)]) -> Result<Probe, ConfigError> {
        load(Sources::with_env(None, vars, &["probe.groups"]))
    }

    #[test]
    fn environment_strings_are_kept_as_given() {
        let c = probe(&[
            ("MESHFLOW__PROBE__NAME", "0123"),
            ("MESHFLOW__KAFKA__SASL_USERNAME", "TRUE"),
            ("MESHFLOW__KAFKA__SASL_PASSWORD", "007"),
            ("MESHFLOW__KAFKA__LIBRDKAFKA__CLIENT_ID", "1e3"),
            ("MESHFLOW__PROBE__GROUPS", "0123,TRUE, x"),
        ])
        .unwrap();
        assert_eq!(c.probe.name, "0123");
        assert_eq!(c.probe.groups, ["0123", "TRUE", " x"]);
        assert_eq!(c.kafka.sasl_username.as_deref(), Some("TRUE"));
        assert_eq!(c.kafka.sasl_password.as_deref(), Some("007"));
        assert_eq!(
            c.kafka.librdkafka.get("client_id").map(String::as_str),
            Some("1e3")
        );
    }

    #[test]
    fn a_section_set_as_a_value_beside_its_keys_is_refused() {
        let err = probe(&[
            ("MESHFLOW__KAFKA", "30s"),
            ("MESHFLOW__KAFKA__SASL_PASSWORD", "hunter2"),
        ])
        .expect_err("the password would be lost in some orders");
        let text = err.to_string();
        assert!(
            text.contains("`kafka`") && text.contains("section"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn environment_numbers_and_booleans_still_parse() {
        let c = probe(&[
            ("MESHFLOW__PROBE__COUNT", "0123"),
            ("MESHFLOW__PROBE__RATIO", "2.5"),
            ("MESHFLOW__PROBE__ENABLED", "TRUE"),
            ("MESHFLOW__PROBE__LIMIT", "42"),
        ])
        .unwrap();
        assert_eq!(c.probe.count, 123);
        assert_eq!(c.probe.ratio, 2.5);
        assert!(c.probe.enabled);
        assert_eq!(c.probe.limit, Some(42));
        let err = probe(&[("MESHFLOW__PROBE__COUNT", "many")]).unwrap_err();
        assert!(err.to_string().contains("count"), "{err}");
    }

    #[test]
    fn secrets_never_appear_in_errors_or_debug_output() {
        let secret = "hunter2-s3cr3t";
        let with_newline = format!("{secret}\n");
        let sasl = [
            ("MESHFLOW__KAFKA__SECURITY_PROTOCOL", "sasl_ssl"),
            ("MESHFLOW__KAFKA__SASL_MECHANISM", "PLAIN"),
            ("MESHFLOW__KAFKA__SASL_USERNAME", "svc"),
        ];
        let mut vars = sasl.to_vec();
        vars.push(("MESHFLOW__KAFKA__SASL_PASSWORD", with_newline.as_str()));
        let err = probe(&vars).unwrap_err().to_string();
        assert!(err.contains("kafka.sasl_password"), "{err}");
        assert!(!err.contains(secret), "{err}");

        for key in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "ssl.key.pem",
        ] {
            let mut k = KafkaConfig::default();
            k.librdkafka.insert(key.into(), secret.into());
            let refused = k.validate(&[key]).unwrap_err().to_string();
            assert!(refused.contains(key), "{refused}");
            assert!(!refused.contains(secret), "{key}: {refused}");
            let debug = format!("{k:?}");
            assert!(!debug.contains(secret), "{key}: {debug}");
        }

        let mut vars = sasl.to_vec();
        vars.push(("MESHFLOW__KAFKA__SASL_PASSWORD", secret));
        let c = probe(&vars).unwrap();
        assert_eq!(c.kafka.sasl_password.as_deref(), Some(secret));
        for shown in [format!("{c:?}"), format!("{:#?}", c.kafka)] {
            assert!(!shown.contains(secret), "{shown}");
        }
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
