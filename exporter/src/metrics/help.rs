//! What each exporter series means: the help text of every family, by
//! name (without the `meshflow_` prefix).

#[rustfmt::skip]
pub(super) const HELP: &[(&str, &str)] = &[
    ("e2e_latency_seconds", "End-to-end latency: processed time (consumer clock) minus created time (producer clock), trace id as exemplar"),
    ("delivery_latency_seconds", "Delivery latency: read from the log by the exporter (exporter clock) minus created time (producer clock)"),
    ("messages", "Distinct enveloped messages seen at each stage"),
    ("messages_lost", "Messages declared lost: log, a sequence gap still open once the reading has passed it by the grace; processed, committed by the group with no receipt within the SLA after the commit"),
    ("messages_duplicated", "Messages seen again at a stage (same producer and sequence number)"),
    ("messages_invalid", "Records that could not be read: malformed envelopes on the data topic, unreadable receipt batches"),
    ("envelope_rejected", "Observations refused as implausible (a sequence jump beyond the window, a created or processed time too far ahead or too old), kept out of every other figure"),
    ("messages_unjudged", "Messages dropped from a full window before they could be judged: neither lost nor processed"),
    ("receipts_unmatched", "Receipts for sequence numbers the log never showed, within the range the log judges; counted, never trusted to close a gap"),
    ("exporter_read_lag_seconds", "How far behind the exporter's reading of a topic is: now minus the time up to which everything written has been read; nothing newer is judged"),
    ("exporter_producers_evicted", "Producer windows dropped: idle past idle_timeout, to make room at max_producers, or restarted after a run of sequence jumps"),
    ("clock_skew", "Negative latencies seen (clocks disagree); counted, never clamped"),
    ("consumer_lag_messages", "High watermark minus the group's committed offset"),
    ("consumer_lag_seconds", "How long the record at the group's committed offset has waited; 0 when caught up"),
    ("consumer_group_status", "Consumer group status (OK, WARN, STALL, STOP, ERR, REWIND) from lag samples; 1 for the current state"),
    ("consumer_group_status_code", "Consumer group status as one number, as Burrow numbers it: 1 OK, 2 WARN, 3 ERR, 4 STOP, 5 STALL, 6 REWIND"),
    ("consumer_partition_status_code", "Status of the group on one partition, numbered as meshflow_consumer_group_status_code"),
    ("partition_under_replicated", "1 when the partition's in-sync replicas are fewer than its replicas (exporter.cluster.granularity partition)"),
    ("partition_leaderless", "1 when the partition has no leader (offline) (exporter.cluster.granularity partition)"),
    ("partition_high_watermark", "The partition's high watermark: the offset the next record gets"),
    ("partition_low_watermark", "The partition's low watermark: the oldest offset retained"),
    ("partition_leader", "The id of the broker leading the partition; -1 when none"),
    ("partition_replicas", "The partition's replicas"),
    ("partition_in_sync_replicas", "The partition's in-sync replicas"),
    ("topic_partitions", "Partitions of the topic"),
    ("topic_partitions_under_replicated", "Partitions of the topic with fewer in-sync replicas than replicas"),
    ("topic_partitions_leaderless", "Partitions of the topic without a leader (offline)"),
    ("topic_high_watermarks", "Sum of the topic's partitions' high watermarks: its rate is the topic's write rate"),
    ("topic_low_watermarks", "Sum of the topic's partitions' low watermarks; high minus low is what the topic retains"),
    ("brokers", "Brokers in the cluster metadata"),
    ("broker_info", "1 for each broker of the cluster, with its id, advertised address and rack (empty when none)"),
    ("brokers_expected", "Brokers the cluster should have (exporter.cluster.brokers); 0 when unknown"),
    ("brokers_min_insync", "The topics' min.insync.replicas as configured (exporter.cluster.min_insync_replicas): with fewer brokers acks=all writes fail"),
    ("exporter_build_info", "1, with the exporter's version and git commit as labels"),
    ("exporter_poll_duration_seconds", "How long one poll of the cluster (metadata, watermarks, committed offsets, record timestamps) took"),
    ("exporter_poll_errors", "Polls in which a kind of request failed: metadata, watermarks, group_offsets, timestamps, list_groups, brokers"),
    ("exporter_last_successful_poll_timestamp_seconds", "When the last poll with no failure ended, Unix seconds"),
    ("exporter_groups_watched", "Consumer groups the exporter watches"),
    ("exporter_lag_seconds_unknown", "Lag figures served without lag in seconds because the timestamp of the record at the group's position could not be read in time; the seconds series is removed, not left at an old value"),
    ("exporter_discovery_left_out", "What was selected but left out in the last poll: beyond exporter.discovery.max_groups (groups) or max_partitions (partitions), or topics matching exporter.topics beyond exporter.max_topics (judged_topics)"),
    ("exporter_partitions_watched", "Partitions with a lag figure in the last poll, summed over the watched groups"),
    ("probe_messages_sent", "Probe messages sent, by partition, the broker leading it, and result: acked by the broker, or failed (timed out or refused; never counted lost)"),
    ("probe_messages_received", "Probe messages read back from the probe topic, by partition and the broker that led it when sent"),
    ("probe_messages_lost", "Probe messages the broker acknowledged that the reading passed without finding (the partition is read in order)"),
    ("probe_messages_duplicated", "Probe messages read back more than once"),
    ("probe_messages_unjudged", "Probe messages dropped from the probe's bounded books before they could be judged"),
    ("probe_records_foreign", "Records of the probe topic this probe did not write (another producer id, or a sequence number or partition it never used); they move no other figure"),
    ("probe_round_trip_seconds", "Probe round trip: read back by the exporter minus created by the exporter (one clock)"),
    ("probe_ack_latency_seconds", "Probe acknowledgement latency: acked by the broker (acks=all) minus created"),
    ("probe_partitions", "Partitions of the probe topic the probe writes to"),
    ("probe_enabled", "1 when the exporter runs its built-in probe (exporter.probe.enabled), else 0"),
    ("probe_brokers_uncovered", "Brokers of the cluster that lead no partition of the probe topic, so the probe does not measure them"),
];

/// The help text of the family `name`.
pub(super) fn help(name: &str) -> &'static str {
    HELP.iter()
        .find(|(family, _)| *family == name)
        .map_or("", |(_, help)| help)
}
