//! The configuration sections every service shares: Kafka connection, HTTP
//! endpoint, logging and trace propagation.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{is_secret_key, one_of, ConfigError, REDACTED};

/// How the service talks to Kafka. Security settings are plain config so a
/// cluster without a mesh can still use TLS and SASL. Its `Debug` form
/// redacts the password and secret pass-through settings.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list (librdkafka `bootstrap.servers`).
    pub bootstrap_servers: String,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: String,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; required with SASL.
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    pub sasl_username: Option<String>,
    /// SASL password.
    pub sasl_password: Option<String>,
    /// PEM file of the CA that signed the brokers' certificates.
    pub ssl_ca_location: Option<String>,
    /// PEM client certificate, for mutual TLS.
    pub ssl_certificate_location: Option<String>,
    /// PEM client key, for mutual TLS.
    pub ssl_key_location: Option<String>,
    /// Raw librdkafka settings passed through as given. Keys that a typed
    /// field (here or in the service section) owns are refused.
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
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address for `/metrics`, `/healthz` and `/readyz`. The default
    /// port is the service's own (producer 9464, consumer 9465, exporter 9466).
    pub listen: SocketAddr,
}

impl HttpConfig {
    /// Listening on every interface at `port`: a service's default.
    pub fn on_port(port: u16) -> Self {
        HttpConfig {
            listen: ([0, 0, 0, 0], port).into(),
        }
    }
}

/// Log output.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (human-readable) or `json` (one object per line).
    pub format: String,
    /// A `tracing` filter directive, e.g. `info` or `meshflow_consumer=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            // Human-readable by default; deployments set `json`.
            format: "text".to_string(),
            // One line per message is too much for `info`; those lines are
            // at `info` only in the consumer, where the issue asks for them.
            level: "info".to_string(),
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

/// Settings for trace propagation.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TraceConfig {
    /// Also propagate W3C Baggage (the `baggage` header). Off by default:
    /// baggage is user data and grows every message.
    #[serde(default)]
    pub baggage: bool,
}
