//! librdkafka's mock cluster hosted in the test process: three brokers whose
//! failures the test controls (down, leaderless, erroring, slow), with the
//! test's topics and a reader of the receipts.

use std::time::Duration;

use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::producer::DefaultProducerContext;

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
    /// The cluster; declared last, so dropped after every client above.
    pub mock: MockCluster<'static, DefaultProducerContext>,
}

impl MockBed {
    /// The cluster for `test`.
    pub fn new(test: &str) -> MockBed {
        let mock = MockCluster::new(3).expect("mock cluster");
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
        }
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
