//! Configuration loading from arbitrary environment maps (one `KEY=VALUE`
//! a line, `\n` in a value for a newline), for each service: never panics;
//! a SASL password is kept exactly as given and never appears in an error
//! message.

#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use meshflow_common::config::{load, ConfigError, Sources};

const PASSWORD_VAR: &str = "MESHFLOW__KAFKA__SASL_PASSWORD";

type Env = HashMap<String, String>;

fn sources<'a>(env: &Env, list_keys: &'a [&'a str]) -> Sources<'a> {
    Sources {
        file: None,
        env: Some(env.clone()),
        list_keys,
    }
}

/// Marks the password in a second load: no error message may contain it.
/// (The first error a load reports depends on the map's iteration order, so
/// comparing two loads' messages would not be deterministic; a marker that
/// nothing else in the environment holds is.)
const MARKER: &str = "meshflow-secret-marker";

/// Loads one service's configuration from `env` and checks the password:
/// kept exactly as given when the load succeeds, never in an error.
fn check<T>(
    env: &Env,
    password: Option<&str>,
    load: impl Fn(&Env) -> Result<T, ConfigError>,
    kept: impl Fn(&T) -> Option<String>,
) {
    if let Ok(config) = load(env) {
        assert_eq!(kept(&config).as_deref(), password, "password changed");
    }
    let Some(p) = password else {
        return;
    };
    if env
        .iter()
        .any(|(k, v)| k.contains(MARKER) || (k != PASSWORD_VAR && v.contains(MARKER)))
    {
        return;
    }
    let mut marked = env.clone();
    marked.insert(PASSWORD_VAR.into(), format!("{p}{MARKER}"));
    if let Err(e) = load(&marked) {
        let message = e.to_string();
        assert!(!message.contains(MARKER), "password echoed: {message}");
    }
}

fuzz_target!(|input: &str| {
    let mut env = Env::new();
    for (key, value) in meshflow_fuzz::pairs(input.as_bytes()) {
        let key = String::from_utf8_lossy(key).into_owned();
        let value = meshflow_fuzz::unescape(&String::from_utf8_lossy(value.unwrap_or_default()));
        // One spelling of the password variable, so "kept" is well defined.
        let key = if key.eq_ignore_ascii_case(PASSWORD_VAR) {
            PASSWORD_VAR.to_string()
        } else {
            key
        };
        env.insert(key, value);
    }
    let password = env.get(PASSWORD_VAR).cloned();
    let password = password.as_deref();
    check(
        &env,
        password,
        |env| load::<meshflow_producer::Config>(sources(env, &[])),
        |c| c.kafka.sasl_password.clone(),
    );
    check(
        &env,
        password,
        |env| load::<meshflow_consumer::Config>(sources(env, &[])),
        |c| c.kafka.sasl_password.clone(),
    );
    check(
        &env,
        password,
        |env| {
            load::<meshflow_exporter::config::Config>(sources(
                env,
                meshflow_exporter::config::LIST_KEYS,
            ))
        },
        |c| c.kafka.sasl_password.clone(),
    );
});
