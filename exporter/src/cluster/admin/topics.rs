//! Partition watermarks in batches, and the brokers with their racks.
//!
//! Watermarks come from two ListOffsets requests per leader (earliest and
//! latest) for any number of partitions, instead of one round trip per
//! partition; the brokers come from DescribeCluster, which, unlike the
//! metadata librdkafka exposes, tells each broker's rack.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::consumer::BaseConsumer;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use super::{failure, present, request, text};
use crate::Error;

/// A partition by topic and id.
pub type Partition = (String, i32);

/// One broker as DescribeCluster lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// Broker (node) id.
    pub id: i32,
    /// `host:port` it advertises.
    pub address: String,
    /// Its rack, when it has one.
    pub rack: Option<String>,
}

/// The (low, high) watermarks of `partitions`; a partition missing from
/// the answer, or answered with an error, is left out.
pub fn watermarks(
    client: &BaseConsumer,
    partitions: &[Partition],
    timeout: Duration,
) -> Result<BTreeMap<Partition, (i64, i64)>, Error> {
    if partitions.is_empty() {
        return Ok(BTreeMap::new());
    }
    let low = list_offsets(client, partitions, Offset::Beginning, timeout)?;
    let high = list_offsets(client, partitions, Offset::End, timeout)?;
    Ok(low
        .into_iter()
        .filter_map(|(p, low)| {
            let high = *high.get(&p)?;
            Some((p, (low, high)))
        })
        .collect())
}

/// The earliest (`Offset::Beginning`) or latest (`Offset::End`) offset of
/// each of `partitions`.
fn list_offsets(
    client: &BaseConsumer,
    partitions: &[Partition],
    spec: Offset,
    timeout: Duration,
) -> Result<BTreeMap<Partition, i64>, Error> {
    let mut list = TopicPartitionList::with_capacity(partitions.len());
    for (topic, p) in partitions {
        list.add_partition_offset(topic, *p, spec).map_err(|_| {
            failure(
                "list offsets",
                RDKafkaRespErr::RD_KAFKA_RESP_ERR__INVALID_ARG,
            )
        })?;
    }
    let op = rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTOFFSETS;
    let event = request(client, op, timeout, "list offsets", |rk, options, queue| {
        // SAFETY: the list, options and queue are live; librdkafka copies
        // the list before returning.
        unsafe { rd::rd_kafka_ListOffsets(rk, list.ptr(), options, queue) }
    })?;
    // SAFETY: the event is a ListOffsets result (the only request on this
    // queue); the infos and their partitions live as long as the event.
    unsafe {
        let result = present(
            rd::rd_kafka_event_ListOffsets_result(event.0),
            "list offsets",
        )?;
        let mut n = 0;
        let infos = rd::rd_kafka_ListOffsets_result_infos(result, &mut n);
        let mut found = BTreeMap::new();
        for i in 0..n {
            let tp = rd::rd_kafka_ListOffsetsResultInfo_topic_partition(*infos.add(i));
            if tp.is_null() {
                continue;
            }
            let tp = &*tp;
            if tp.err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR && tp.offset >= 0 {
                found.insert((text(tp.topic), tp.partition), tp.offset);
            }
        }
        Ok(found)
    }
}

/// Every broker of the cluster, by id.
pub fn brokers(client: &BaseConsumer, timeout: Duration) -> Result<Vec<Broker>, Error> {
    let op = rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECLUSTER;
    let event = request(
        client,
        op,
        timeout,
        "describe cluster",
        |rk, options, queue| {
            // SAFETY: the handle, options and queue are live.
            unsafe { rd::rd_kafka_DescribeCluster(rk, options, queue) }
        },
    )?;
    // SAFETY: the event is a DescribeCluster result; the nodes and their
    // strings live as long as the event.
    unsafe {
        let result = present(
            rd::rd_kafka_event_DescribeCluster_result(event.0),
            "describe cluster",
        )?;
        let mut n = 0;
        let nodes = rd::rd_kafka_DescribeCluster_result_nodes(result, &mut n);
        let mut brokers: Vec<Broker> = (0..n)
            .map(|i| {
                let node = *nodes.add(i);
                let rack = text(rd::rd_kafka_Node_rack(node));
                Broker {
                    id: rd::rd_kafka_Node_id(node),
                    address: format!(
                        "{}:{}",
                        text(rd::rd_kafka_Node_host(node)),
                        rd::rd_kafka_Node_port(node)
                    ),
                    rack: (!rack.is_empty()).then_some(rack),
                }
            })
            .collect();
        brokers.sort_by_key(|b| b.id);
        Ok(brokers)
    }
}
