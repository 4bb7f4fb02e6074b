//! Configuration loading shared by every meshflow service.
//!
//! Values come from three layers, later ones winning: the serde defaults of
//! each section, an optional TOML file (`--config PATH`), and environment
//! variables `MESHFLOW__SECTION__KEY`. Every section denies unknown fields, so
//! a typo is an error instead of a silently ignored setting. After
//! deserialising, the service calls [`Validate::validate`] once; a failure is a
//! [`ConfigError`] naming the key, the value and what is allowed, which `main`
//! turns into exit code 2.
//!
//! The files: this one loads (layers, environment, errors); `sections` holds
//! the sections every service shares; `validate` the checks sections use;
//! `cli` the command line of `main`; `reference` the keys with their
//! defaults, environment variables and meanings; `instance` the instance id.

mod cli;
mod instance;
pub mod reference;
mod sections;
mod validate;

pub use cli::load_from_args;
pub use instance::instance_id;
pub use sections::{HttpConfig, KafkaConfig, LogConfig, TraceConfig};
pub use validate::{identifier, in_range, millis_in, one_of, topic_name, topic_retention};

use std::collections::HashMap;
use std::path::Path;

use serde::de::DeserializeOwned;

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

#[cfg(test)]
mod tests;
