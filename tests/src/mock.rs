//! librdkafka's mock cluster hosted in the test process: three brokers whose
//! failures the test controls (down, leaderless, erroring, slow), with the
//! test's topics and a reader of the receipts.

use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::producer::{BaseProducer, DefaultProducerContext, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use crate::ledger::{Ledger, TopicReader};
use crate::scenario::Names;
use crate::WorkDir;

/// Partitions of every topic of the bed.
pub const PARTITIONS: i32 = 6;

/// Three mock brokers with the test's topics, broker 1 leading every
/// partition and coordinating the group, and a reader of the receipts.
pub struct MockBed {
    /// Reads the receipts topic from the beginning.
    pub receipts: TopicReader,
    /// The test's topics and group.
    pub names: Names,
    /// The mock brokers' bootstrap list.
    pub bootstrap: String,
    /// The test's directory.
    pub dir: WorkDir,
    /// The cluster. Its client lives as long as the test process, so it
    /// outlives every client above.
    pub mock: MockCluster<'static, DefaultProducerContext>,
    /// The same cluster as librdkafka's handle, for what the safe API does
    /// not offer (one broker's errors).
    raw: *mut rd::rd_kafka_mock_cluster_t,
}

impl MockBed {
    /// The cluster for `test`.
    pub fn new(test: &str) -> MockBed {
        // The cluster belongs to a client made for it, kept for the whole
        // process: the safe API gives no handle of a cluster it creates.
        let owner: &'static BaseProducer = Box::leak(Box::new(
            ClientConfig::new()
                .set("test.mock.num.brokers", "3")
                .create()
                .expect("mock cluster's client"),
        ));
        let mock = owner.client().mock_cluster().expect("mock cluster");
        // SAFETY: the client is alive for the rest of the process, and
        // with it the cluster the handle points to.
        let raw = unsafe { rd::rd_kafka_handle_mock_cluster(owner.client().native_ptr()) };
        assert!(!raw.is_null(), "no mock cluster");
        let bootstrap = mock.bootstrap_servers();
        let names = Names::new();
        for topic in names.topics() {
            mock.create_topic(topic, PARTITIONS, 3)
                .expect("create topic");
            for p in 0..PARTITIONS {
                mock.partition_leader(topic, p, Some(1)).expect("leader 1");
            }
        }
        mock.coordinator(MockCoordinator::Group(names.group.clone()), 1)
            .expect("coordinator 1");
        let receipts = TopicReader::start(&bootstrap, &names.receipts, PARTITIONS);
        MockBed {
            receipts,
            names,
            bootstrap,
            dir: WorkDir::new(test),
            mock,
            raw,
        }
    }

    /// A producer configuration file with one request in flight per
    /// connection, and its `--config` arguments. With more, a failed
    /// Produce followed by a successful one is acknowledged implicitly:
    /// librdkafka relies on a real broker refusing the later request as out
    /// of sequence, but the mock checks idempotent sequences only for
    /// transactional producers (rd_kafka_mock_validate_records), so it
    /// accepts it, and the failed request's records are acknowledged
    /// without being in its log (10 of 3,000 when tried). One in flight
    /// still exercises every retry, and no acknowledgement depends on a
    /// check the mock does not make.
    pub fn one_in_flight_args(&self) -> [String; 2] {
        let config = self.dir.path().join("producer.toml");
        std::fs::write(
            &config,
            "[kafka.librdkafka]\n\"max.in.flight.requests.per.connection\" = \"1\"\n",
        )
        .expect("write producer.toml");
        [
            "--config".to_string(),
            config.to_string_lossy().into_owned(),
        ]
    }

    /// Makes `broker` answer its next `count` Produce requests with
    /// `error`, each after `rtt`, whoever sends them; other requests (Fetch,
    /// ListOffsets, Metadata) and other brokers are untouched.
    pub fn produce_errors(&self, broker: i32, error: RDKafkaRespErr, rtt: Duration, count: usize) {
        let rtt_ms = i32::try_from(rtt.as_millis()).unwrap_or(i32::MAX);
        for _ in 0..count {
            // SAFETY: `raw` is the live cluster (see `new`); the variadic
            // arguments are one (error, rtt in ms) pair, as `cnt` = 1 says.
            let err = unsafe {
                rd::rd_kafka_mock_broker_push_request_error_rtts(
                    self.raw,
                    broker,
                    RDKafkaApiKey::Produce as i16,
                    1,
                    error as i32,
                    rtt_ms,
                )
            };
            assert_eq!(
                err,
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR,
                "push error"
            );
        }
    }

    /// Produce errors `broker` still holds for its next requests.
    pub fn produce_errors_left(&self, broker: i32) -> usize {
        let mut left = 0usize;
        // SAFETY: as in `produce_errors`; `left` outlives the call.
        let err = unsafe {
            rd::rd_kafka_mock_broker_error_stack_cnt(
                self.raw,
                broker,
                RDKafkaApiKey::Produce as i16,
                &mut left,
            )
        };
        assert_eq!(
            err,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR,
            "error stack"
        );
        left
    }

    /// The receipts read so far.
    pub fn ledger(&self) -> Ledger {
        self.receipts.ledger()
    }

    /// Waits (3 minutes at most) until all `n` messages have receipts.
    pub async fn all_receipts(&self, n: u64) -> Ledger {
        self.receipts
            .receipts_for(n, Duration::from_secs(180))
            .await
    }

    /// Makes `broker` (or nobody, with `None`) the leader of every partition
    /// of the test's topics; `spread` alternates between `broker` and the
    /// next one.
    pub fn lead_all(&self, broker: Option<i32>, spread: bool) {
        for topic in self.names.topics() {
            for part in 0..PARTITIONS {
                let leader = broker.map(|b| if spread { b + part % 2 } else { b });
                self.mock
                    .partition_leader(topic, part, leader)
                    .expect("set leader");
            }
        }
    }

    /// Makes `broker` the group's coordinator.
    pub fn coordinate(&self, broker: i32) {
        self.mock
            .coordinator(MockCoordinator::Group(self.names.group.clone()), broker)
            .expect("set coordinator");
    }
}
