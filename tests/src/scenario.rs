//! A test's names and the environment of the services it starts.

use std::path::Path;

use crate::process::{kafka_env, with, Service};

/// Topic, group and instance names unique to one test.
#[derive(Debug, Clone)]
pub struct Names {
    /// Data topic.
    pub topic: String,
    /// Receipts topic.
    pub receipts: String,
    /// Dead-letter topic.
    pub dlq: String,
    /// Consumer group.
    pub group: String,
    /// The producer instance id (fixed so the test can list its sequence).
    pub producer: String,
}

impl Names {
    /// Fresh names.
    pub fn new() -> Names {
        let topic = crate::unique("events");
        Names {
            receipts: format!("{topic}.receipts"),
            dlq: format!("{topic}.dlq"),
            group: crate::unique("group"),
            producer: crate::unique("producer"),
            topic,
        }
    }

    /// The three topics.
    pub fn topics(&self) -> [&str; 3] {
        [&self.topic, &self.receipts, &self.dlq]
    }

    /// The environment of a service reading the test's topics at
    /// `bootstrap`: `MESHFLOW__<SECTION>__TOPIC` (the exporter's list
    /// `TOPICS`) and `__RECEIPTS_TOPIC`, and the group as `__<GROUP_KEY>`
    /// (`GROUP`, or the exporter's `GROUPS`), after the broker address.
    pub fn env(&self, bootstrap: &str, section: &str, group_key: &str) -> Vec<(String, String)> {
        let mut env = kafka_env(bootstrap);
        let prefix = format!("MESHFLOW__{section}__");
        let topic_key = if section == "EXPORTER" {
            "TOPICS"
        } else {
            "TOPIC"
        };
        for (key, value) in [
            (topic_key, &self.topic),
            ("RECEIPTS_TOPIC", &self.receipts),
            (group_key, &self.group),
        ] {
            env.push((format!("{prefix}{key}"), value.clone()));
        }
        env
    }
}

impl Default for Names {
    fn default() -> Self {
        Names::new()
    }
}

/// Starts a producer sending `count` messages at `rate` per second.
pub fn producer(dir: &Path, bootstrap: &str, names: &Names, count: u64, rate: u32) -> Service {
    producer_with(dir, bootstrap, names, count, rate, &[])
}

/// Starts a producer with extra environment.
pub fn producer_with(
    dir: &Path,
    bootstrap: &str,
    names: &Names,
    count: u64,
    rate: u32,
    extra: &[(&str, &str)],
) -> Service {
    let env = producer_env(bootstrap, names, count, rate, extra);
    Service::start("producer", "meshflow-producer", &env, dir)
}

/// Starts a producer with command-line arguments (say `--config FILE`).
pub fn producer_with_args(
    dir: &Path,
    bootstrap: &str,
    names: &Names,
    count: u64,
    rate: u32,
    args: &[&str],
) -> Service {
    let env = producer_env(bootstrap, names, count, rate, &[]);
    Service::start_wrapped("producer", &[], "meshflow-producer", &env, args, dir)
}

fn producer_env(
    bootstrap: &str,
    names: &Names,
    count: u64,
    rate: u32,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let env = with(
        kafka_env(bootstrap),
        &[
            ("MESHFLOW__PRODUCER__TOPIC", &names.topic),
            ("MESHFLOW__PRODUCER__INSTANCE_ID", &names.producer),
            ("MESHFLOW__PRODUCER__MAX_MESSAGES", &count.to_string()),
            ("MESHFLOW__PRODUCER__RATE_PER_SEC", &rate.to_string()),
            ("MESHFLOW__PRODUCER__PAYLOAD_BYTES", "100"),
            ("MESHFLOW__PRODUCER__CREATE_TOPIC", "false"),
        ],
    );
    with(env, extra)
}

/// Starts consumer `name` of the test's group.
pub fn consumer(dir: &Path, bootstrap: &str, names: &Names, name: &str) -> Service {
    consumer_with(dir, bootstrap, names, name, &[])
}

/// Starts consumer `name` with extra environment.
pub fn consumer_with(
    dir: &Path,
    bootstrap: &str,
    names: &Names,
    name: &str,
    extra: &[(&str, &str)],
) -> Service {
    let env = with(consumer_env(bootstrap, names, name), extra);
    let args = negative_control_args(dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Service::start_wrapped(name, &[], "meshflow-consumer", &env, &args, dir)
}

/// The negative control of the fault tests (`scripts/negative-controls`):
/// with `MESHFLOW_NEGATIVE_CONTROL=never-commit` in the test's environment,
/// every consumer a test starts auto-commits once an hour instead of every
/// second, so a crash or a rebalance redelivers what it processed since it
/// started (it still commits on revoke and at shutdown). A duplicate bound
/// that holds then is not testing anything. The consumers' arguments for
/// that: a configuration file in `dir`; none otherwise.
fn negative_control_args(dir: &Path) -> Vec<String> {
    match std::env::var("MESHFLOW_NEGATIVE_CONTROL").as_deref() {
        Ok("never-commit") => {
            let file = dir.join("never-commit.toml");
            std::fs::write(
                &file,
                "[kafka.librdkafka]\n\"auto.commit.interval.ms\" = \"3600000\"\n",
            )
            .expect("write the negative control's configuration");
            vec!["--config".into(), file.display().to_string()]
        }
        Ok(other) => panic!("MESHFLOW_NEGATIVE_CONTROL={other}: only never-commit is known"),
        Err(_) => Vec::new(),
    }
}

fn consumer_env(bootstrap: &str, names: &Names, name: &str) -> Vec<(String, String)> {
    with(
        names.env(bootstrap, "CONSUMER", "GROUP"),
        &[
            ("MESHFLOW__CONSUMER__INSTANCE_ID", name),
            ("MESHFLOW__CONSUMER__CREATE_TOPICS", "false"),
        ],
    )
}

/// Starts consumer `name` run by `wrapper` (say `ip netns exec NAME`).
pub fn consumer_wrapped(
    dir: &Path,
    wrapper: &[String],
    bootstrap: &str,
    names: &Names,
    name: &str,
) -> Service {
    let env = consumer_env(bootstrap, names, name);
    let args = negative_control_args(dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Service::start_wrapped(name, wrapper, "meshflow-consumer", &env, &args, dir)
}

/// Waits until `/readyz` of every service answers 200.
pub async fn wait_ready(services: &[&Service], timeout: std::time::Duration) {
    for s in services {
        let port = s.port;
        crate::wait_for(&format!("{} ready", s.name), timeout, || async move {
            crate::scrape::get(port, "/readyz", None)
                .filter(|(code, _)| *code == 200)
                .map(|_| ())
        })
        .await;
    }
}

/// The group's committed offsets on the data topic, by partition (0 where
/// nothing is committed).
pub async fn committed_offsets(
    bootstrap: &str,
    names: &Names,
    partitions: i32,
) -> std::collections::HashMap<i32, i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let bootstrap = bootstrap.to_string();
    let names = names.clone();
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &names.group)
            .create()
            .expect("offsets client");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(&names.topic, p);
        }
        let got = c
            .committed_offsets(tpl, std::time::Duration::from_secs(10))
            .expect("committed offsets");
        got.elements()
            .iter()
            .map(|e| {
                (
                    e.partition(),
                    if let Offset::Offset(o) = e.offset() {
                        o
                    } else {
                        0
                    },
                )
            })
            .collect()
    })
    .await
    .expect("offsets task")
}
