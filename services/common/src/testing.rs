//! Test support for the services' own tests and benchmarks (feature
//! `test-support`): a configuration loaded from given variables only, the
//! set-up and checks that tests on librdkafka's mock cluster share, and the
//! fixed headers benchmarks measure meshflow's envelope against.

use std::fmt::{Debug, Display};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{load, ConfigError, Sources, Validate};
use crate::envelope::{Envelope, HeaderList, SEQ};
use crate::fatal::READY_CLIENT;
use crate::http::Readiness;

/// Loads a configuration from `vars` alone: no file, not the process
/// environment; `list_keys` as the service passes them.
pub fn config_from<T>(vars: &[(&str, &str)], list_keys: &[&str]) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Validate,
{
    load(Sources::with_env(None, vars, list_keys))
}

/// Asserts that each `(variable, value, text)` case is refused with an
/// error that contains `text` (the key it names); `variable` is the name
/// after `MESHFLOW__`, e.g. `PRODUCER__RATE_PER_SEC`.
pub fn assert_each_refused<T>(cases: &[(&str, &str, &str)], list_keys: &[&str])
where
    T: DeserializeOwned + Validate + Debug,
{
    for (var, value, key) in cases {
        let var = format!("MESHFLOW__{var}");
        let err = config_from::<T>(&[(&var, value)], list_keys)
            .err()
            .unwrap_or_else(|| panic!("{var}={value} accepted"));
        assert!(err.to_string().contains(key), "{var}={value}: {err}");
    }
}

/// Asserts that setting each dotted `key` to `value` (through its variable,
/// `exporter.status.window` through `MESHFLOW__EXPORTER__STATUS__WINDOW`)
/// is refused with an error that names the key in backquotes, as
/// validation does.
pub fn assert_each_invalid<T>(cases: &[(&str, &str)], list_keys: &[&str])
where
    T: DeserializeOwned + Validate + Debug,
{
    for (key, value) in cases {
        let var = format!("MESHFLOW__{}", key.replace('.', "__").to_uppercase());
        let err = config_from::<T>(&[(&var, value)], list_keys)
            .err()
            .unwrap_or_else(|| panic!("{var}={value} accepted"));
        let named = format!("`{key}`");
        assert!(err.to_string().contains(&named), "{var}={value}: {err}");
    }
}

/// Asserts that `text` contains `part`, showing `text` when it does not.
pub fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "{part:?} is not in:\n{text}");
}

/// A one-broker mock cluster holding `topics`, one partition each.
pub fn mock_cluster(topics: &[&str]) -> MockCluster<'static, DefaultProducerContext> {
    let mock = MockCluster::new(1).expect("mock cluster");
    for topic in topics {
        mock.create_topic(topic, 1, 1).expect("topic");
    }
    mock
}

/// Sends one enveloped message from producer `p` to partition 0 of `topic`
/// for each `(seq, malformed)`; a malformed one carries `mf-seq` that is
/// not a number.
pub fn produce_enveloped(bootstrap: &str, topic: &str, messages: &[(u64, bool)]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    for &(seq, malformed) in messages {
        let mut headers = HeaderList::new();
        Envelope {
            producer: "p".into(),
            seq,
            created_ns: 1,
            settled: None,
        }
        .write_to(&mut headers);
        if malformed {
            headers.set(SEQ, b"not a number");
        }
        let record = BaseRecord::to(topic)
            .partition(0)
            .key("k")
            .payload("v")
            .headers(headers.to_owned_headers());
        producer.send(record).expect("queued");
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");
}

/// The offset `group` has committed for partition 0 of `topic`.
pub fn committed_offset(bootstrap: &str, group: &str, topic: &str) -> Offset {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let got = reader
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    got.elements()[0].offset()
}

/// Waits up to `limit` for a service's `run` to end after a fatal client
/// error (`what` names the client), then asserts that it failed with a
/// fatal error and left the client's readiness condition failing.
pub async fn assert_fatal_stop<T, E: Display>(
    run: &mut JoinHandle<Result<T, E>>,
    shutdown: &CancellationToken,
    readiness: &Readiness,
    limit: Duration,
    what: &str,
) {
    let ended = tokio::time::timeout(limit, run).await;
    shutdown.cancel();
    let result = match ended {
        Ok(joined) => joined.expect("joined"),
        Err(_) => panic!("still running {limit:?} after a fatal {what} error"),
    };
    let Err(err) = result else {
        panic!("a fatal error must make the run fail");
    };
    assert!(err.to_string().contains("fatal"), "{err}");
    assert!(
        readiness.failing().contains(&READY_CLIENT),
        "not ready after a fatal error: {:?}",
        readiness.failing()
    );
}

/// The five headers of meshflow's envelope and trace context with fixed
/// values of their usual size: the cost of building rdkafka headers at all,
/// without meshflow's logic (the benchmarks' baseline).
pub fn envelope_sized_headers(seq: u64) -> OwnedHeaders {
    let seq = seq.to_string();
    let fixed = [
        ("mf-producer", "meshflow-producer-7d9f8b6c5-x2kq1-3f9a2c71"),
        ("mf-seq", seq.as_str()),
        ("mf-created-ns", "1795813603000000000"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("tracestate", ""),
    ];
    fixed.into_iter().fold(
        OwnedHeaders::new_with_capacity(5),
        |headers, (key, value)| {
            headers.insert(Header {
                key,
                value: Some(value),
            })
        },
    )
}

/// Asserts that `keys` (after the shared ones) document every setting of
/// `config` exactly once and name no setting it lacks (`list_keys`: the
/// keys taken as comma-separated lists from the environment).
pub fn assert_keys_documented_once(
    config: &impl serde::Serialize,
    keys: &[crate::config::reference::KeyDoc],
    list_keys: &[&str],
) {
    use crate::config::reference::{rows, SHARED_KEYS};
    let rows = rows(config, &[SHARED_KEYS, keys], list_keys).unwrap();
    assert_eq!(rows.len(), SHARED_KEYS.len() + keys.len());
    let mut names: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), rows.len(), "a key documented twice");
}

/// The bytes of a consumer-protocol assignment of `version` holding
/// `topics` (name, partitions), with no user data: what a member's
/// DescribeGroups assignment carries.
pub fn assignment_bytes(version: i16, topics: &[(&str, &[i32])]) -> Vec<u8> {
    let mut out = version.to_be_bytes().to_vec();
    out.extend((topics.len() as i32).to_be_bytes());
    for (name, partitions) in topics {
        out.extend((name.len() as i16).to_be_bytes());
        out.extend(name.as_bytes());
        out.extend((partitions.len() as i32).to_be_bytes());
        for p in *partitions {
            out.extend(p.to_be_bytes());
        }
    }
    out.extend((-1i32).to_be_bytes());
    out
}
