use super::*;

const S: u64 = 1_000_000_000;

/// A topic's progress with these (partition, start offset) assigned.
fn assigned(starts: &[(i32, i64)]) -> TopicProgress {
    let mut topic = TopicProgress::default();
    for &(partition, start) in starts {
        topic.assign(partition, start);
    }
    topic
}

#[test]
fn a_topic_is_read_through_its_slowest_partition() {
    let mut topic = TopicProgress::default();
    assert_eq!(topic.through_ns(), None, "nothing assigned");
    topic.assign(0, 100);
    topic.assign(1, 50);
    assert_eq!(topic.through_ns(), None, "nothing known yet");
    topic.record(0, 100);
    topic.watermark(0, 101, 10 * S);
    assert_eq!(topic.through_ns(), None, "partition 1 still unknown");
    topic.watermark(1, 52, 11 * S);
    assert_eq!(topic.through_ns(), None, "partition 1 not read to 52");
    topic.record(1, 50);
    topic.record(1, 51);
    assert_eq!(topic.through_ns(), Some(10 * S));
    topic.watermark(0, 101, 20 * S);
    assert_eq!(topic.through_ns(), Some(11 * S));
}

#[test]
fn an_idle_partition_is_read_through_when_its_watermark_is_reached() {
    let mut topic = assigned(&[(0, 7), (1, 0)]);
    topic.record(1, 0);
    topic.watermark(1, 1, 3 * S);
    // Partition 0 holds nothing beyond where the reading starts.
    topic.watermark(0, 7, 4 * S);
    assert_eq!(topic.through_ns(), Some(3 * S));
    topic.watermark(1, 1, 9 * S);
    assert_eq!(topic.through_ns(), Some(4 * S));
}

#[test]
fn a_watermark_ahead_of_the_reading_counts_once_it_is_reached() {
    let mut topic = assigned(&[(0, 0)]);
    topic.record(0, 0);
    topic.watermark(0, 1, S);
    topic.watermark(0, 5, 10 * S);
    assert_eq!(topic.through_ns(), Some(S), "offsets 1..5 not read yet");
    // A later, further watermark does not replace the one to reach first.
    topic.watermark(0, 9, 20 * S);
    topic.record(0, 4);
    assert_eq!(topic.through_ns(), Some(10 * S));
}

#[test]
fn a_stalled_broker_stops_the_time() {
    let mut topic = assigned(&[(0, 0)]);
    topic.record(0, 0);
    topic.watermark(0, 1, 2 * S);
    // Records keep coming from a buffer, but no watermark is answered.
    topic.record(0, 1);
    topic.record(0, 2);
    assert_eq!(topic.through_ns(), Some(2 * S));
}

#[test]
fn a_group_has_committed_through_the_last_checkpoint_it_passed() {
    let mut horizon = CommitHorizon::default();
    let pos = |a: i64, b: i64| BTreeMap::from([(0, (10, a)), (1, (20, b))]);
    horizon.checkpoint(S, pos(10, 20));
    horizon.checkpoint(2 * S, pos(12, 20));
    horizon.checkpoint(3 * S, pos(15, 25));
    let committed = |a: i64, b: i64| BTreeMap::from([(0, a), (1, b)]);
    assert_eq!(
        horizon.committed_through(&BTreeMap::new()),
        Some(S),
        "nothing read by the first checkpoint"
    );
    assert_eq!(horizon.committed_through(&committed(12, 0)), Some(2 * S));
    assert_eq!(horizon.committed_through(&committed(14, 30)), Some(2 * S));
    assert_eq!(horizon.committed_through(&committed(15, 25)), Some(3 * S));
    let mut other = CommitHorizon::default();
    other.checkpoint(S, pos(11, 21));
    assert_eq!(other.committed_through(&committed(11, 20)), None);
}

#[test]
fn checkpoints_are_bounded_and_thinning_only_delays() {
    let mut horizon = CommitHorizon::default();
    for i in 0..(3 * MAX_CHECKPOINTS as i64) {
        horizon.checkpoint(i as u64 * S, BTreeMap::from([(0, (0, i + 1))]));
    }
    assert!(horizon.len() <= MAX_CHECKPOINTS);
    let committed = BTreeMap::from([(0, 1000)]);
    let through = horizon.committed_through(&committed).expect("passed some");
    assert!(through <= 999 * S, "never later than the truth: {through}");
    horizon.forget_before(u64::MAX);
    assert_eq!(horizon.len(), 1);
}

#[test]
fn a_commit_is_released_after_its_receipts_were_read_and_the_grace_passed() {
    let mut group = GroupHorizon::default();
    let grace = 5 * S;
    group.commit_seen(10 * S, 8 * S);
    group.commit_seen(12 * S, 11 * S);
    assert_eq!(group.release(14 * S, Some(20 * S), grace), None, "grace");
    assert_eq!(
        group.release(15 * S, Some(9 * S), grace),
        None,
        "receipts not read as far as the commit"
    );
    assert_eq!(group.release(15 * S, Some(10 * S), grace), Some(8 * S));
    assert_eq!(group.release(100 * S, None, grace), Some(8 * S));
    assert_eq!(group.release(100 * S, Some(12 * S), grace), Some(11 * S));
    // An older point seen again is no news.
    group.commit_seen(101 * S, 9 * S);
    assert_eq!(group.release(200 * S, Some(200 * S), grace), Some(11 * S));
}

#[test]
fn pending_commits_are_bounded() {
    let mut group = GroupHorizon::default();
    for i in 0..(2 * MAX_PENDING_COMMITS as u64) {
        group.commit_seen(i * S, i * S);
    }
    assert!(group.pending.len() <= MAX_PENDING_COMMITS);
    let last = 2 * MAX_PENDING_COMMITS as u64 - 1;
    assert_eq!(
        group.release(u64::MAX / 2, Some(u64::MAX / 2), S),
        Some(last * S)
    );
}
