//! The one place where configuration becomes librdkafka settings.
//!
//! Typed fields own their librdkafka keys; the raw `kafka.librdkafka` map can
//! add anything else but may not override an owned key, so a setting is never
//! decided in two places. Services add their own owned keys (the producer owns
//! `acks` and `enable.idempotence`, the consumer `group.id` and the offset
//! store) and pass them to [`KafkaConfig::validate`].

use rdkafka::ClientConfig;

use crate::config::{identifier, one_of, ConfigError, KafkaConfig};

/// librdkafka keys set from the typed `kafka.*` fields.
pub const OWNED_KEYS: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
];

/// Accepted `kafka.security_protocol` values.
const SECURITY_PROTOCOLS: &[&str] = &["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];
/// Accepted `kafka.sasl_mechanism` values. OAUTHBEARER takes its token
/// settings (`sasl.oauthbearer.*`) from the pass-through map, not a user
/// name and password.
const SASL_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

impl KafkaConfig {
    /// Checks the connection settings and refuses pass-through keys owned by
    /// typed fields, here or in `service_owned` (the calling service's keys).
    pub fn validate(&self, service_owned: &[&str]) -> Result<(), ConfigError> {
        let servers = self.bootstrap_servers.trim();
        if servers.is_empty()
            || servers.split(',').any(|s| {
                s.trim()
                    .rsplit_once(':')
                    .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            })
        {
            return Err(ConfigError::invalid(
                "kafka.bootstrap_servers",
                &self.bootstrap_servers,
                "a comma-separated list of host:port",
            ));
        }
        one_of(
            "kafka.security_protocol",
            &self.security_protocol,
            SECURITY_PROTOCOLS,
        )?;
        let sasl = self.security_protocol.starts_with("sasl_");
        match (&self.sasl_mechanism, sasl) {
            (Some(m), _) => one_of("kafka.sasl_mechanism", m, SASL_MECHANISMS)?,
            (None, true) => {
                return Err(ConfigError::invalid(
                    "kafka.sasl_mechanism",
                    "",
                    format!(
                        "one of {} when kafka.security_protocol is {}",
                        SASL_MECHANISMS.join(", "),
                        self.security_protocol
                    ),
                ))
            }
            (None, false) => {}
        }
        let oauth = self.sasl_mechanism.as_deref() == Some("OAUTHBEARER");
        if sasl && !oauth {
            for (key, value) in [
                ("kafka.sasl_username", &self.sasl_username),
                ("kafka.sasl_password", &self.sasl_password),
            ] {
                identifier(key, value.as_deref().unwrap_or(""), 4096)?;
            }
        }
        for key in self.librdkafka.keys() {
            if OWNED_KEYS.contains(&key.as_str()) || service_owned.contains(&key.as_str()) {
                return Err(ConfigError::invalid(
                    &format!("kafka.librdkafka.{key}"),
                    &self.librdkafka[key],
                    "not settable here: a typed meshflow setting owns this librdkafka key",
                ));
            }
        }
        Ok(())
    }

    /// The librdkafka settings for this connection alone (admin clients,
    /// probes).
    pub fn client_config(&self) -> ClientConfig {
        self.client_config_with(|_| {})
    }

    /// The librdkafka settings for this connection plus a service's own:
    /// `service` adds them, then the pass-through map goes last. Validation
    /// has refused every key the service owns in the map, so the map can
    /// override a service default (say `fetch.wait.max.ms`) but never an
    /// owned setting.
    pub fn client_config_with(&self, service: impl FnOnce(&mut ClientConfig)) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", self.bootstrap_servers.trim())
            .set("security.protocol", &self.security_protocol)
            // Fast reconnects: a broker restart should cost about a second,
            // not librdkafka's default backoff ceiling of 10 s.
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "1000")
            .set("socket.keepalive.enable", "true")
            .set("topic.metadata.refresh.interval.ms", "10000");
        let optional = [
            ("sasl.mechanism", &self.sasl_mechanism),
            ("sasl.username", &self.sasl_username),
            ("sasl.password", &self.sasl_password),
            ("ssl.ca.location", &self.ssl_ca_location),
            ("ssl.certificate.location", &self.ssl_certificate_location),
            ("ssl.key.location", &self.ssl_key_location),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                cfg.set(key, v);
            }
        }
        service(&mut cfg);
        for (key, value) in &self.librdkafka {
            cfg.set(key, value);
        }
        cfg
    }
}

/// Milliseconds as librdkafka wants them in its string settings.
pub fn millis(d: std::time::Duration) -> String {
    d.as_millis().to_string()
}

/// A fixed label for a Kafka error, for metrics and span `error.type`.
pub fn error_reason(error: &rdkafka::error::KafkaError) -> &'static str {
    use rdkafka::error::KafkaError as E;
    use rdkafka::types::RDKafkaErrorCode as C;
    let code = match error {
        E::MessageProduction(c) => *c,
        E::Canceled => return "canceled",
        other => match other.rdkafka_error_code() {
            Some(c) => c,
            None => return "client",
        },
    };
    match code {
        C::QueueFull => "queue_full",
        C::MessageTimedOut => "timed_out",
        C::MessageSizeTooLarge | C::InvalidMessageSize => "message_too_large",
        C::UnknownTopicOrPartition | C::UnknownTopic | C::UnknownPartition => "unknown_topic",
        C::TopicAuthorizationFailed | C::ClusterAuthorizationFailed => "not_authorized",
        C::BrokerTransportFailure | C::AllBrokersDown => "broker_unreachable",
        C::NotEnoughReplicas | C::NotEnoughReplicasAfterAppend => "not_enough_replicas",
        C::OutOfOrderSequenceNumber
        | C::DuplicateSequenceNumber
        | C::InvalidProducerEpoch
        | C::Fatal => "idempotence_fatal",
        C::RequestTimedOut => "request_timed_out",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> KafkaConfig {
        KafkaConfig::default()
    }

    #[test]
    fn typed_fields_map_to_librdkafka_keys() {
        let mut k = base();
        k.bootstrap_servers = "a:9092,b:9093".into();
        k.security_protocol = "sasl_ssl".into();
        k.sasl_mechanism = Some("SCRAM-SHA-512".into());
        k.sasl_username = Some("svc".into());
        k.sasl_password = Some("secret".into());
        k.ssl_ca_location = Some("/etc/ca.pem".into());
        k.librdkafka.insert("client.rack".into(), "rack-1".into());
        k.validate(&[]).unwrap();
        let cfg = k.client_config();
        assert_eq!(cfg.get("bootstrap.servers"), Some("a:9092,b:9093"));
        assert_eq!(cfg.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(cfg.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(cfg.get("sasl.username"), Some("svc"));
        assert_eq!(cfg.get("sasl.password"), Some("secret"));
        assert_eq!(cfg.get("ssl.ca.location"), Some("/etc/ca.pem"));
        assert_eq!(cfg.get("ssl.key.location"), None);
        assert_eq!(cfg.get("client.rack"), Some("rack-1"));
    }

    #[test]
    fn oauthbearer_takes_its_token_settings_from_the_pass_through_map() {
        let mut k = base();
        k.security_protocol = "sasl_ssl".into();
        k.sasl_mechanism = Some("OAUTHBEARER".into());
        k.librdkafka
            .insert("sasl.oauthbearer.method".into(), "oidc".into());
        k.validate(&[]).unwrap();
        let cfg = k.client_config();
        assert_eq!(cfg.get("sasl.mechanism"), Some("OAUTHBEARER"));
        assert_eq!(cfg.get("sasl.oauthbearer.method"), Some("oidc"));
        assert_eq!(cfg.get("sasl.username"), None);
    }

    #[test]
    fn pass_through_overrides_service_defaults_but_not_owned_keys() {
        let mut k = base();
        k.librdkafka
            .insert("fetch.wait.max.ms".into(), "250".into());
        k.validate(&["acks"]).unwrap();
        let cfg = k.client_config_with(|cfg| {
            cfg.set("fetch.wait.max.ms", "100").set("acks", "all");
        });
        assert_eq!(cfg.get("fetch.wait.max.ms"), Some("250"));
        assert_eq!(cfg.get("acks"), Some("all"));
    }

    #[test]
    fn pass_through_refuses_owned_keys() {
        for key in ["bootstrap.servers", "security.protocol", "sasl.password"] {
            let mut k = base();
            k.librdkafka.insert(key.into(), "x".into());
            let err = k.validate(&[]).unwrap_err().to_string();
            assert!(err.contains(&format!("kafka.librdkafka.{key}")), "{err}");
        }
        let mut k = base();
        k.librdkafka.insert("acks".into(), "1".into());
        assert!(k.validate(&[]).is_ok());
        let err = k.validate(&["acks", "enable.idempotence"]).unwrap_err();
        assert!(err.to_string().contains("kafka.librdkafka.acks"));
    }

    #[test]
    fn bad_connection_settings_are_named() {
        type Mutation = fn(&mut KafkaConfig);
        let cases: Vec<(Mutation, &str)> = vec![
            (
                |k| k.bootstrap_servers = "".into(),
                "kafka.bootstrap_servers",
            ),
            (
                |k| k.bootstrap_servers = "host".into(),
                "kafka.bootstrap_servers",
            ),
            (
                |k| k.bootstrap_servers = "h:99999".into(),
                "kafka.bootstrap_servers",
            ),
            (
                |k| k.security_protocol = "tls".into(),
                "kafka.security_protocol",
            ),
            (
                |k| k.security_protocol = "sasl_ssl".into(),
                "kafka.sasl_mechanism",
            ),
            (
                |k| {
                    k.security_protocol = "sasl_plaintext".into();
                    k.sasl_mechanism = Some("PLAIN".into());
                },
                "kafka.sasl_username",
            ),
            (
                |k| k.sasl_mechanism = Some("GSSAPI".into()),
                "kafka.sasl_mechanism",
            ),
        ];
        for (mutate, key) in cases {
            let mut k = base();
            mutate(&mut k);
            let err = k.validate(&[]).unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
        }
    }
}
