//! The configuration reference, read off the code: every key a service
//! accepts, its default (the serde default, serialized), its environment
//! variable and what it means. `--help`, `--list-keys` (the tables in
//! docs/configuration.md) and `--check-config` (the effective settings,
//! secrets masked) all come from here.
//!
//! The keys are the fields of the service's serde structs; each service
//! documents them in one `&[KeyDoc]` list, and [`rows`] refuses a field
//! without a line there or a line without a field, so the two cannot drift.

use serde::Serialize;
use serde_json::Value;

use super::{is_secret_key, ENV_PREFIX, ENV_SEPARATOR, REDACTED};

/// One configuration key as documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDoc {
    /// Dotted key, e.g. `producer.rate_per_sec`.
    pub key: &'static str,
    /// What it does and which values are allowed.
    pub meaning: &'static str,
}

/// One key with the value a configuration gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// Dotted key.
    pub key: String,
    /// Its environment variable, or how it is set when not by one variable.
    pub env: String,
    /// The value, as written in a TOML file; `unset` for none, secrets
    /// masked.
    pub value: String,
    /// What it means (from the [`KeyDoc`]).
    pub meaning: &'static str,
}

/// A serde field without a [`KeyDoc`], or a [`KeyDoc`] without a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The configuration has a key nobody documented.
    #[error("config key `{0}` has no line in the service's key list")]
    Undocumented(String),
    /// The key list names a key the configuration does not have.
    #[error("the key list names `{0}`, which the configuration does not have")]
    Stale(String),
    /// The configuration did not serialize to sections of keys.
    #[error("the configuration does not serialize to a table: {0}")]
    NotATable(String),
}

/// The keys every service shares (`kafka`, `http`, `log`, `trace`).
pub const SHARED_KEYS: &[KeyDoc] = &[
    KeyDoc { key: "kafka.bootstrap_servers", meaning: "comma-separated `host:port` list" },
    KeyDoc { key: "kafka.security_protocol", meaning: "`plaintext`, `ssl`, `sasl_plaintext`, `sasl_ssl`" },
    KeyDoc { key: "kafka.sasl_mechanism", meaning: "`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` (required with SASL, with `sasl_username` and `sasl_password`), or `OAUTHBEARER` (its `sasl.oauthbearer.*` settings through `kafka.librdkafka`, no user name or password)" },
    KeyDoc { key: "kafka.sasl_username", meaning: "SASL user (required with SASL)" },
    KeyDoc { key: "kafka.sasl_password", meaning: "SASL password (required with SASL); never printed" },
    KeyDoc { key: "kafka.ssl_ca_location", meaning: "CA bundle (PEM)" },
    KeyDoc { key: "kafka.ssl_certificate_location", meaning: "client certificate (PEM), for mutual TLS" },
    KeyDoc { key: "kafka.ssl_key_location", meaning: "client key (PEM)" },
    KeyDoc { key: "kafka.librdkafka", meaning: "raw librdkafka settings, e.g. `[kafka.librdkafka]` `\"client.rack\" = \"a\"`; keys owned by a typed setting are refused; applied last, so it can override meshflow's other defaults (e.g. `fetch.wait.max.ms`, 100 ms in the consumer and exporter)" },
    KeyDoc { key: "http.listen", meaning: "`/metrics`, `/healthz`, `/readyz`; the default port is the service's own: producer 9464, consumer 9465, exporter 9466" },
    KeyDoc { key: "log.format", meaning: "`text` or `json` (one object per line)" },
    KeyDoc { key: "log.level", meaning: "a `tracing` filter, e.g. `info,rdkafka=warn`" },
    KeyDoc { key: "trace.baggage", meaning: "also propagate W3C Baggage" },
];

/// The environment variable of a dotted key: `MESHFLOW__SECTION__KEY`.
pub fn env_name(key: &str) -> String {
    let mut name = ENV_PREFIX.to_string();
    for part in key.split('.') {
        name.push_str(ENV_SEPARATOR);
        name.push_str(&part.to_ascii_uppercase());
    }
    name
}

/// Every documented key of `config`, in the order of `docs` (a service's
/// lists, shared keys first), with `config`'s value for it. Secret values
/// are masked; `list_keys` take comma-separated lists from the environment;
/// a table-valued key (`kafka.librdkafka`) or an array of tables
/// (`exporter.clusters`) is set in the file only.
pub fn rows(
    config: &impl Serialize,
    docs: &[&[KeyDoc]],
    list_keys: &[&str],
) -> Result<Vec<KeyRow>, ReferenceError> {
    let docs: Vec<&KeyDoc> = docs.iter().flat_map(|d| d.iter()).collect();
    let value =
        serde_json::to_value(config).map_err(|e| ReferenceError::NotATable(e.to_string()))?;
    let mut leaves = Vec::new();
    flatten("", &value, &docs, &mut leaves)?;
    let mut found = Vec::new();
    for doc in &docs {
        let Some((_, value)) = leaves.iter().find(|(key, _)| key == doc.key) else {
            return Err(ReferenceError::Stale(doc.key.to_string()));
        };
        // A table, or an array of tables (`[[exporter.clusters]]`), has no
        // one variable.
        let env = if value.is_object() || value.is_array() && !list_keys.contains(&doc.key) {
            "(file only)".to_string()
        } else if list_keys.contains(&doc.key) {
            format!("{}=a,b", env_name(doc.key))
        } else {
            env_name(doc.key)
        };
        found.push(KeyRow {
            key: doc.key.to_string(),
            env,
            value: shown(doc.key, value),
            meaning: doc.meaning,
        });
    }
    Ok(found)
}

/// The leaves of a serialized configuration: documented keys are leaves
/// even when their value is a table; other tables are sections.
fn flatten(
    prefix: &str,
    value: &Value,
    docs: &[&KeyDoc],
    out: &mut Vec<(String, Value)>,
) -> Result<(), ReferenceError> {
    let Value::Object(fields) = value else {
        return Err(ReferenceError::NotATable(prefix.to_string()));
    };
    for (name, value) in fields {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        if docs.iter().any(|d| d.key == key) {
            out.push((key, value.clone()));
        } else if value.is_object() {
            flatten(&key, value, docs, out)?;
        } else {
            return Err(ReferenceError::Undocumented(key));
        }
    }
    Ok(())
}

/// A value as written in a TOML file (strings quoted), `unset` for none,
/// a secret as [`REDACTED`]; in a table, secret entries are masked.
fn shown(key: &str, value: &Value) -> String {
    match value {
        Value::Null => "unset".to_string(),
        _ if is_secret_key(key) => REDACTED.to_string(),
        Value::Object(entries) => {
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) {
                        REDACTED.to_string()
                    } else {
                        masked(v).to_string()
                    };
                    format!("{k:?} = {v}")
                })
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        other => masked(other).to_string(),
    }
}

/// `value` with every entry of a secret key masked, at any depth: an
/// array of tables (`exporter.clusters`) holds whole client settings,
/// passwords included.
fn masked(value: &Value) -> Value {
    match value {
        Value::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) && !v.is_null() {
                        Value::String(REDACTED.to_string())
                    } else {
                        masked(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
        other => other.clone(),
    }
}

/// The reference as a Markdown table: key, environment variable, default,
/// meaning.
pub fn markdown(rows: &[KeyRow]) -> String {
    let mut text = String::from("| key | env | default | meaning |\n| --- | --- | --- | --- |\n");
    for row in rows {
        text.push_str(&format!(
            "| `{}` | `{}` | `{}` | {} |\n",
            row.key,
            row.env,
            row.value.replace('|', "\\|"),
            row.meaning.replace('|', "\\|")
        ));
    }
    text
}

/// The reference for `--help`: key, default and environment variable, one
/// key a line, aligned.
pub fn help(rows: &[KeyRow]) -> String {
    let width = rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
    let value_width = rows
        .iter()
        .map(|r| r.value.chars().count())
        .filter(|w| *w <= 24)
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for row in rows {
        text.push_str(&format!(
            "  {:width$}  {:value_width$}  {}\n",
            row.key, row.value, row.env
        ));
    }
    text
}

/// The effective settings for `--check-config`: `key = value` a line, as
/// in a TOML file, secrets masked.
pub fn settings(rows: &[KeyRow]) -> String {
    rows.iter()
        .map(|r| format!("{} = {}\n", r.key, r.value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Section {
        name: String,
        password: Option<String>,
        extra: std::collections::BTreeMap<String, String>,
    }

    #[derive(Serialize)]
    struct Config {
        section: Section,
    }

    const DOCS: &[KeyDoc] = &[
        KeyDoc {
            key: "section.name",
            meaning: "a name",
        },
        KeyDoc {
            key: "section.password",
            meaning: "a secret",
        },
        KeyDoc {
            key: "section.extra",
            meaning: "a table",
        },
    ];

    fn config(password: Option<&str>) -> Config {
        let extra = [("client.rack", "a"), ("ssl.key.password", "hunter2")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        Config {
            section: Section {
                name: "x".to_string(),
                password: password.map(str::to_string),
                extra,
            },
        }
    }

    #[test]
    fn every_field_has_a_row_with_its_env_and_value() {
        let rows = rows(&config(None), &[DOCS], &["section.name"]).unwrap();
        let cells: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|r| (r.key.as_str(), r.env.as_str(), r.value.as_str()))
            .collect();
        assert_eq!(
            cells,
            [
                ("section.name", "MESHFLOW__SECTION__NAME=a,b", "\"x\""),
                ("section.password", "MESHFLOW__SECTION__PASSWORD", "unset"),
                (
                    "section.extra",
                    "(file only)",
                    "{\"client.rack\" = \"a\", \"ssl.key.password\" = [redacted]}"
                ),
            ]
        );
    }

    #[test]
    fn secrets_are_masked() {
        let rows = rows(&config(Some("hunter2")), &[DOCS], &[]).unwrap();
        let text = settings(&rows);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("section.password = [redacted]"), "{text}");
    }

    #[test]
    fn secrets_inside_an_array_of_tables_are_masked() {
        let value = serde_json::json!([
            {"name": "us", "kafka": {"sasl_password": "hunter2", "librdkafka": {"ssl.key.password": "pem"}}},
            {"name": "ap", "kafka": {"sasl_password": null}}
        ]);
        let text = shown("exporter.clusters", &value);
        assert!(!text.contains("hunter2") && !text.contains("pem"), "{text}");
        assert!(text.contains("\"us\""), "{text}");
        assert!(
            text.contains("\"sasl_password\":null"),
            "unset stays unset: {text}"
        );
    }

    #[test]
    fn a_field_without_a_line_or_a_line_without_a_field_is_refused() {
        assert_eq!(
            rows(&config(None), &[&DOCS[1..]], &[]),
            Err(ReferenceError::Undocumented("section.name".to_string()))
        );
        let stale = [
            DOCS,
            &[KeyDoc {
                key: "section.gone",
                meaning: "",
            }],
        ];
        assert_eq!(
            rows(&config(None), &stale, &[]),
            Err(ReferenceError::Stale("section.gone".to_string()))
        );
    }
}
