//! Timestamps of the records at the groups' positions, for lag in
//! seconds: read, not interpolated.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use meshflow_common::config::KafkaConfig;

use super::{kafka, passive_config, ClusterPoller, RecordAt, TIMESTAMP_TIMEOUT};
use crate::lag::FoundRecord;
use crate::Error;

impl ClusterPoller {
    /// Reads the timestamp of the first record at or after each (topic,
    /// partition, offset), in rounds of at most one offset per partition,
    /// for at most [`TIMESTAMP_TIMEOUT`]; what was not read by then is left
    /// out of the answer.
    pub(super) fn read_timestamps(
        &self,
        wanted: &[RecordAt],
    ) -> Result<HashMap<RecordAt, FoundRecord>, Error> {
        let mut by_partition: BTreeMap<(&str, i32), Vec<i64>> = BTreeMap::new();
        for (topic, p, offset) in wanted {
            by_partition.entry((topic, *p)).or_default().push(*offset);
        }
        let client = &self.timestamp_client;
        let mut found = HashMap::new();
        let deadline = Instant::now() + TIMESTAMP_TIMEOUT;
        while !by_partition.is_empty() && Instant::now() < deadline {
            let round: BTreeMap<(&str, i32), i64> = by_partition
                .iter_mut()
                .filter_map(|(tp, offsets)| offsets.pop().map(|o| (*tp, o)))
                .collect();
            by_partition.retain(|_, offsets| !offsets.is_empty());
            let mut assignment = TopicPartitionList::new();
            for (&(topic, p), &offset) in &round {
                assignment
                    .add_partition_offset(topic, p, Offset::Offset(offset))
                    .map_err(kafka("assign"))?;
            }
            client.assign(&assignment).map_err(kafka("assign"))?;
            let mut pending: BTreeMap<(String, i32), i64> = round
                .into_iter()
                .map(|((topic, p), offset)| ((topic.to_string(), p), offset))
                .collect();
            while !pending.is_empty() && Instant::now() < deadline {
                let Some(result) = client.poll(Duration::from_millis(100)) else {
                    continue;
                };
                let message = match result {
                    Ok(message) => message,
                    Err(e) => {
                        tracing::debug!(error = %e, "record timestamp fetch");
                        continue;
                    }
                };
                let tp = (message.topic().to_string(), message.partition());
                if pending
                    .get(&tp)
                    .is_some_and(|&want| message.offset() >= want)
                {
                    let want = pending.remove(&tp).unwrap_or_default();
                    if let Some(timestamp_ms) = message.timestamp().to_millis() {
                        let record = FoundRecord {
                            timestamp_ms,
                            offset: message.offset(),
                        };
                        found.insert((tp.0, tp.1, want), record);
                    }
                }
            }
        }
        // Nothing is fetched between polls.
        client.unassign().map_err(kafka("unassign"))?;
        Ok(found)
    }
}

/// The client that reads record timestamps, created once and reused by
/// every poll (each round assigns the partitions it reads).
pub(super) fn timestamp_client(kafka: &KafkaConfig, group: &str) -> Result<BaseConsumer, Error> {
    let mut config = passive_config(kafka, group);
    config
        .set("fetch.wait.max.ms", "100")
        .set("enable.partition.eof", "false");
    config.create().map_err(self::kafka("timestamp client"))
}
