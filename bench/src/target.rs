//! Where the bench sends its messages: librdkafka's mock cluster in this
//! process (no broker bottleneck, so the clients' own cost shows), or one
//! local Tansu broker started as the tests start it (what a user sees).

use std::path::Path;

use meshflow_common::config::{HttpConfig, KafkaConfig};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A running Kafka-protocol target.
pub struct Target {
    /// `mock` or `tansu`, for the report.
    pub name: &'static str,
    /// `bootstrap.servers`.
    pub bootstrap: String,
    mock: Option<MockCluster<'static, DefaultProducerContext>>,
    _tansu: Option<meshflow_tests::broker::Tansu>,
}

impl Target {
    /// Three mock brokers in this process.
    pub fn mock() -> anyhow::Result<Target> {
        let mock = MockCluster::new(3)?;
        Ok(Target {
            name: "mock",
            bootstrap: mock.bootstrap_servers(),
            mock: Some(mock),
            _tansu: None,
        })
    }

    /// One Tansu broker on a SQLite file in `dir`, through
    /// `deploy/local/tansu-broker`.
    pub async fn tansu(dir: &Path) -> Target {
        let tansu = meshflow_tests::broker::Tansu::start(dir).await;
        Target {
            name: "tansu",
            bootstrap: tansu.bootstrap.clone(),
            mock: None,
            _tansu: Some(tansu),
        }
    }

    /// Creates `topics` with `partitions` partitions each (replication 3 on
    /// the mock cluster, as on a real cluster; 1 on Tansu).
    pub async fn create_topics(&self, topics: &[&str], partitions: i32) -> anyhow::Result<()> {
        match &self.mock {
            Some(mock) => {
                for topic in topics {
                    mock.create_topic(topic, partitions, 3)?;
                }
            }
            None => {
                meshflow_tests::broker::create_topics(&self.bootstrap, topics, partitions).await
            }
        }
        Ok(())
    }
}

/// The service config sections a bench run of a meshflow service shares:
/// Kafka at `bootstrap`, metrics on a free loopback port, default logs and
/// traces. The caller adds its own service section.
pub fn service_sections(bootstrap: &str) -> (KafkaConfig, HttpConfig) {
    (
        KafkaConfig {
            bootstrap_servers: bootstrap.to_string(),
            ..KafkaConfig::default()
        },
        HttpConfig {
            listen: ([127, 0, 0, 1], 0).into(),
        },
    )
}
