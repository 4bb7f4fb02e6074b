//! Multi-broker failover on librdkafka's mock cluster: the test process hosts
//! three mock brokers; the real producer and consumer binaries connect to
//! them over TCP. Mid-run the broker that leads every partition and
//! coordinates the group goes down, and leadership and coordination move to
//! the other two. The mock is in memory: it stands for the cluster's failover
//! behaviour; durability across a real crash is tested on Tansu.

use std::time::{Duration, Instant};

use meshflow_tests::ledger::{Ledger, TopicReader};
use meshflow_tests::scenario::{consumer, producer, wait_ready, Names};
use meshflow_tests::wait_for;
use rdkafka::mocking::{MockCluster, MockCoordinator};

const PARTITIONS: i32 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_and_coordinator_broker_down_loses_nothing() {
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

    let dir = meshflow_tests::WorkDir::new("failover");
    let receipts = TopicReader::start(&bootstrap, &names.receipts, PARTITIONS);
    let c1 = consumer(dir.path(), &bootstrap, &names, "consumer-a");
    let c2 = consumer(dir.path(), &bootstrap, &names, "consumer-b");
    wait_ready(&[&c1, &c2], Duration::from_secs(60)).await;
    let n: u64 = 3_000;
    let mut p = producer(dir.path(), &bootstrap, &names, n, 500);
    let ledger = || Ledger::from_records(&receipts.records());
    wait_for("800 receipts", Duration::from_secs(60), || async {
        (ledger().distinct() >= 800).then_some(())
    })
    .await;

    let fault = Instant::now();
    for topic in names.topics() {
        for part in 0..PARTITIONS {
            mock.partition_leader(topic, part, Some(2 + part % 2))
                .expect("move leader");
        }
    }
    mock.coordinator(MockCoordinator::Group(names.group.clone()), 2)
        .expect("move coordinator");
    mock.broker_down(1).expect("broker 1 down");

    let done = wait_for(
        &format!("receipts for all {n}"),
        Duration::from_secs(180),
        || async {
            let l = ledger();
            (l.distinct() as u64 >= n).then_some(l)
        },
    )
    .await;
    let status = p.wait_exit(Duration::from_secs(60)).await;
    let first = done.first_after(fault).expect("receipts after the fault");
    println!(
        "mock failover: sent={n} distinct={} duplicates={} missing={} first_receipt_after_fault={:.2}s \
         longest_receipt_gap_after_fault={:.2}s",
        done.distinct(),
        done.duplicates(),
        done.missing(&names.producer, n).len(),
        first.as_secs_f64(),
        done.longest_gap_after(fault).as_secs_f64()
    );
    assert!(status.success(), "producer exit: {status}");
    assert_eq!(done.missing(&names.producer, n), Vec::<u64>::new());
    drop((c1, c2));
}
