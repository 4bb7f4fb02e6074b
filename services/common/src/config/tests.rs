use super::*;
use serde::Deserialize;

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
