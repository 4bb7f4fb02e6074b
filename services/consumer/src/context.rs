//! The consumer's librdkafka context: what happens around a rebalance (the
//! decisions are [`crate::ledger::on_revoke`]'s).
//!
//! Before partitions are revoked, the receipts of everything already
//! processed are flushed (bounded by `consumer.drain_timeout`), their
//! offsets stored and committed synchronously. The next owner of a partition
//! therefore starts right after the last message whose receipt is durable:
//! a graceful hand-over duplicates nothing.
//!
//! The `assigned` readiness condition holds while partitions are assigned:
//! set on assignment, cleared on revoke or loss of the assignment.

use std::sync::Arc;
use std::time::Instant;

use meshflow_common::http::Readiness;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::ledger::on_revoke;
use crate::metrics::ConsumerMetrics;
use crate::receipts::ReceiptSink;

/// Readiness condition: the consumer owns an assignment (cleared on revoke
/// and on loss of the assignment).
pub const READY_ASSIGNED: &str = meshflow_common::contract::ready::ASSIGNED;
/// Readiness condition: no partition is parked on a refused dead letter.
pub const READY_FLOWING: &str = meshflow_common::contract::ready::PARTITIONS_FLOWING;

/// Rebalance hooks of the consumer.
pub struct GroupContext {
    /// Where processed messages wait for their receipts.
    pub sink: Arc<ReceiptSink>,
    /// Rebalance counters.
    pub metrics: ConsumerMetrics,
    /// `/readyz` conditions.
    pub readiness: Arc<Readiness>,
    /// How long a revoke waits for outstanding receipts.
    pub drain_timeout: std::time::Duration,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            self.metrics.record_rebalance("revoke");
            // Owning nothing is not ready, whether the partitions moved in a
            // rebalance or were lost with the coordinator; the next
            // assignment sets it again.
            self.readiness.set(READY_ASSIGNED, false);
            let revoked: Vec<(String, i32)> = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect();
            let parked = self.sink.release(&revoked);
            self.metrics.set_parked(parked);
            self.readiness.set(READY_FLOWING, parked == 0);
            let deadline = Instant::now() + self.drain_timeout;
            let flushed = self.sink.flush(
                &|topic, partition, next| store_next(consumer, topic, partition, next),
                Some(deadline),
            );
            let plan = on_revoke(flushed, consumer.assignment_lost());
            if !plan.commit {
                tracing::warn!(
                    partitions = tpl.count(),
                    "assignment lost; nothing to commit"
                );
                return;
            }
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                // NoOffset: nothing new since the last commit.
                tracing::debug!(error = %e, "commit on revoke");
            }
            tracing::info!(partitions = tpl.count(), ?flushed, "partitions revoked");
            if plan.outstanding {
                tracing::warn!(
                    "revoked with receipts outstanding; their messages will be processed again"
                );
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.metrics.record_rebalance("assign");
                // A partition parked before it was revoked flows again with
                // its new assignment.
                if let Err(e) = consumer.resume(tpl) {
                    tracing::warn!(error = %e, "resume on assign");
                }
                self.readiness.set(READY_ASSIGNED, true);
                let parts: Vec<String> = tpl
                    .elements()
                    .iter()
                    .map(|e| format!("{}:{}", e.topic(), e.partition()))
                    .collect();
                tracing::info!(partitions = %parts.join(","), "partitions assigned");
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

/// Stores `next` as the position to resume `partition` from: the offset
/// after the last message whose receipt is durable. (Not
/// `rd_kafka_offset_store`, which adds one to what it is given.) A
/// partition no longer assigned is not an error here.
pub fn store_next<C: Consumer<GroupContext>>(consumer: &C, topic: &str, partition: i32, next: i64) {
    let mut tpl = TopicPartitionList::with_capacity(1);
    let stored = tpl
        .add_partition_offset(topic, partition, Offset::Offset(next))
        .and_then(|()| consumer.store_offsets(&tpl));
    if let Err(e) = stored {
        tracing::debug!(topic, partition, next, error = %e, "offset not stored");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use prometheus_client::registry::Registry;
    use rdkafka::consumer::BaseConsumer;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::FutureProducer;
    use rdkafka::ClientConfig;

    /// Polls `consumer` until `done` holds or 20 s pass.
    fn poll_until(consumer: &BaseConsumer<GroupContext>, done: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            let _ = consumer.poll(Duration::from_millis(100));
        }
        done()
    }

    #[test]
    fn assigned_readiness_follows_the_assignment() {
        let mock = MockCluster::new(1).expect("mock cluster");
        let bootstrap = mock.bootstrap_servers();
        mock.create_topic("events", 2, 1).expect("topic");
        let mut registry = Registry::default();
        let readiness = Readiness::new(&[READY_ASSIGNED], &mut registry);
        let metrics = ConsumerMetrics::register(&mut registry, "events", "g");
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .expect("producer");
        let context = GroupContext {
            sink: Arc::new(ReceiptSink::new(
                producer,
                "receipts".into(),
                "g".into(),
                "c".into(),
                crate::ledger::Shape {
                    format: Default::default(),
                    batch_max: 500,
                    bytes_max: 1_000_000,
                    trace_every: 64,
                },
                metrics.clone(),
            )),
            metrics,
            readiness: readiness.clone(),
            drain_timeout: Duration::from_secs(1),
        };
        let consumer: BaseConsumer<GroupContext> = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "g")
            .set("enable.auto.offset.store", "false")
            .create_with_context(context)
            .expect("consumer");
        consumer.subscribe(&["events"]).expect("subscribe");
        assert!(
            poll_until(&consumer, || readiness.is_ready()),
            "ready once assigned"
        );
        consumer.unsubscribe();
        assert!(
            poll_until(&consumer, || !readiness.is_ready()),
            "not ready once the assignment is revoked"
        );
    }
}
