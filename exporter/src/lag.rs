//! Consumer lag of one group on one partition, in messages and in seconds.
//!
//! Inputs are what Kafka reports: the partition's low and high watermarks,
//! the group's committed offset (if any), and — for lag in seconds — the
//! timestamp of one record, which the caller fetches. Definitions:
//!
//! - **Position**: the offset the group will consume next. It is the
//!   committed offset; with no commit it is the low watermark (everything
//!   retained is unconsumed); a committed offset below the low watermark also
//!   counts from the low watermark, because the records below it no longer
//!   exist. A negative committed offset (Kafka's "no offset", -1, or
//!   librdkafka's -1001) means no commit.
//! - **Lag in messages** = high watermark − position, never negative: a
//!   committed offset at or past the high watermark is caught up.
//! - **Lag in seconds** = now − timestamp of the record at the position: how
//!   long the oldest unconsumed message has waited. It is exact, not
//!   interpolated, and 0 when caught up. A record timestamp in the future
//!   (producer clock ahead of the exporter's) gives 0 and sets
//!   [`LagSample::clock_skew`], rather than a negative lag.
//! - **A lower bound**: when the record at the group's committed offset no
//!   longer exists (retention deleted it: committed below the low
//!   watermark; or compaction removed it: the first record found is past
//!   the position), the oldest record the group has not read is gone, and
//!   lag in seconds is read from the next one that exists. The figure is
//!   then a lower bound, and [`LagSample::seconds_lower_bound`] says so.

use std::time::Duration;

use crate::Error;

/// What Kafka reports for one partition and one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// Low watermark: the oldest retained offset.
    pub low: i64,
    /// High watermark: the offset the next produced record will get.
    pub high: i64,
    /// The group's committed offset; `None` (or negative) when it has none.
    pub committed: Option<i64>,
}

impl PartitionOffsets {
    /// The offset the group will consume next (see the module docs).
    pub fn position(&self) -> Result<i64, Error> {
        self.check()?;
        let committed = self.committed.filter(|&offset| offset >= 0);
        Ok(committed.map_or(self.low, |offset| offset.max(self.low)))
    }

    /// High watermark − position, never negative.
    pub fn lag_messages(&self) -> Result<u64, Error> {
        let position = self.position()?;
        Ok(u64::try_from(self.high - position).unwrap_or(0))
    }

    /// The offset whose record timestamp lag in seconds needs, or `None` when
    /// the group is caught up and no record needs fetching.
    pub fn lag_record_offset(&self) -> Result<Option<i64>, Error> {
        let position = self.position()?;
        Ok((position < self.high).then_some(position))
    }

    fn check(&self) -> Result<(), Error> {
        if self.low < 0 || self.high < self.low {
            return Err(Error::Watermarks {
                low: self.low,
                high: self.high,
            });
        }
        Ok(())
    }
}

/// Lag in seconds from a record timestamp (Kafka's milliseconds) at `now_ns`,
/// with whether the record claims to come from the future (clock skew).
pub fn lag_seconds(now_ns: u64, record_timestamp_ms: i64) -> (Duration, bool) {
    let record_ns = i128::from(record_timestamp_ms) * 1_000_000;
    let waited = i128::from(now_ns) - record_ns;
    match u64::try_from(waited) {
        Ok(ns) => (Duration::from_nanos(ns), false),
        Err(_) => (Duration::ZERO, true),
    }
}

/// The record read for lag in seconds: the first one at or after the
/// offset asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundRecord {
    /// Its timestamp, Kafka's milliseconds.
    pub timestamp_ms: i64,
    /// Its offset: past the one asked for when that one was compacted
    /// away (or held a transaction marker).
    pub offset: i64,
}

/// One evaluation of a group's lag on one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LagSample {
    /// When the offsets were read, unix ns (the exporter's clock).
    pub at_ns: u64,
    /// The group's committed offset as reported (`None` without a commit).
    pub committed: Option<i64>,
    /// The offset the group will consume next.
    pub position: i64,
    /// The partition's high watermark.
    pub high: i64,
    /// Lag in messages: `high − position`, never negative.
    pub messages: u64,
    /// Lag in seconds: how long the record at `position` has waited; zero
    /// when caught up.
    pub seconds: Duration,
    /// The record at `position` had a timestamp after `at_ns`; `seconds` is 0.
    pub clock_skew: bool,
    /// `seconds` is a lower bound: the record at the group's committed
    /// offset no longer exists (see the module docs).
    pub seconds_lower_bound: bool,
}

impl LagSample {
    /// Computes a sample. `record_timestamp_ms` is the timestamp of the record
    /// at [`PartitionOffsets::lag_record_offset`]; it is only needed when
    /// the group is behind.
    pub fn new(
        at_ns: u64,
        offsets: PartitionOffsets,
        record_timestamp_ms: Option<i64>,
    ) -> Result<Self, Error> {
        let position = offsets.position()?;
        let messages = offsets.lag_messages()?;
        let (seconds, clock_skew) = match offsets.lag_record_offset()? {
            None => (Duration::ZERO, false),
            Some(offset) => {
                let timestamp = record_timestamp_ms.ok_or(Error::MissingTimestamp { offset })?;
                lag_seconds(at_ns, timestamp)
            }
        };
        let committed = offsets.committed.filter(|&offset| offset >= 0);
        Ok(LagSample {
            at_ns,
            committed,
            position,
            high: offsets.high,
            messages,
            seconds,
            clock_skew,
            seconds_lower_bound: messages > 0 && committed.is_some_and(|c| c < position),
        })
    }

    /// A sample from the record found for lag in seconds (`None` when the
    /// group is caught up or the record could not be read); a record past
    /// the position makes the figure a lower bound.
    pub fn from_record(
        at_ns: u64,
        offsets: PartitionOffsets,
        record: Option<FoundRecord>,
    ) -> Result<Self, Error> {
        let mut sample = LagSample::new(at_ns, offsets, record.map(|r| r.timestamp_ms))?;
        if let Some(record) = record {
            sample.seconds_lower_bound |= !sample.caught_up() && record.offset > sample.position;
        }
        Ok(sample)
    }

    /// True when the group has consumed everything in the partition.
    pub fn caught_up(&self) -> bool {
        self.messages == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;
    const NOW_NS: u64 = 1_795_813_603 * SEC;
    const NOW_MS: i64 = 1_795_813_603_000;

    fn offsets(low: i64, high: i64, committed: Option<i64>) -> PartitionOffsets {
        PartitionOffsets {
            low,
            high,
            committed,
        }
    }

    #[test]
    fn lag_in_messages() {
        let cases = [
            ("behind", offsets(0, 100, Some(40)), Ok(60), Ok(Some(40))),
            ("caught up", offsets(0, 100, Some(100)), Ok(0), Ok(None)),
            (
                "committed past high",
                offsets(0, 100, Some(120)),
                Ok(0),
                Ok(None),
            ),
            (
                "no commit: all retained",
                offsets(30, 100, None),
                Ok(70),
                Ok(Some(30)),
            ),
            ("no commit, empty", offsets(100, 100, None), Ok(0), Ok(None)),
            (
                "kafka's -1 is no commit",
                offsets(30, 100, Some(-1)),
                Ok(70),
                Ok(Some(30)),
            ),
            (
                "-1001 is no commit",
                offsets(30, 100, Some(-1001)),
                Ok(70),
                Ok(Some(30)),
            ),
            (
                "below low counts from low",
                offsets(50, 100, Some(10)),
                Ok(50),
                Ok(Some(50)),
            ),
            (
                "high below low",
                offsets(100, 50, Some(60)),
                Err(Error::Watermarks { low: 100, high: 50 }),
                Err(Error::Watermarks { low: 100, high: 50 }),
            ),
            (
                "negative low",
                offsets(-1, 50, None),
                Err(Error::Watermarks { low: -1, high: 50 }),
                Err(Error::Watermarks { low: -1, high: 50 }),
            ),
        ];
        for (name, input, messages, record) in cases {
            assert_eq!(input.lag_messages(), messages, "{name}");
            assert_eq!(input.lag_record_offset(), record, "{name}");
        }
    }

    #[test]
    fn lag_in_seconds() {
        let cases = [
            (
                "waited 12.5 s",
                NOW_MS - 12_500,
                Duration::from_millis(12_500),
                false,
            ),
            ("written now", NOW_MS, Duration::ZERO, false),
            ("from the future", NOW_MS + 3_000, Duration::ZERO, true),
            ("epoch", 0, Duration::from_nanos(NOW_NS), false),
            (
                "negative timestamp",
                -1,
                Duration::from_nanos(NOW_NS + 1_000_000),
                false,
            ),
        ];
        for (name, timestamp, want, skew) in cases {
            assert_eq!(lag_seconds(NOW_NS, timestamp), (want, skew), "{name}");
        }
    }

    #[test]
    fn samples() {
        let behind = LagSample::new(NOW_NS, offsets(0, 100, Some(40)), Some(NOW_MS - 7_000));
        assert_eq!(
            behind,
            Ok(LagSample {
                at_ns: NOW_NS,
                committed: Some(40),
                position: 40,
                high: 100,
                messages: 60,
                seconds: Duration::from_secs(7),
                clock_skew: false,
                seconds_lower_bound: false,
            })
        );
        // Caught up: zero, and no record is needed.
        let caught_up = LagSample::new(NOW_NS, offsets(0, 100, Some(100)), None).unwrap();
        assert_eq!((caught_up.messages, caught_up.seconds), (0, Duration::ZERO));
        assert!(caught_up.caught_up());
        // Behind without the record's timestamp: an error, not a guess.
        assert_eq!(
            LagSample::new(NOW_NS, offsets(0, 100, Some(40)), None),
            Err(Error::MissingTimestamp { offset: 40 })
        );
        let skewed = LagSample::new(NOW_NS, offsets(0, 100, None), Some(NOW_MS + 1)).unwrap();
        assert_eq!((skewed.seconds, skewed.clock_skew), (Duration::ZERO, true));
        assert_eq!(skewed.committed, None);
        assert_eq!(
            LagSample::new(NOW_NS, offsets(5, 1, None), None),
            Err(Error::Watermarks { low: 5, high: 1 })
        );
    }

    #[test]
    fn lag_seconds_is_a_lower_bound_when_the_record_at_the_position_is_gone() {
        let record = |offset, waited_ms| {
            Some(FoundRecord {
                timestamp_ms: NOW_MS - waited_ms,
                offset,
            })
        };
        // Retention deleted 10..50: the figure comes from the record at 50.
        let expired =
            LagSample::from_record(NOW_NS, offsets(50, 100, Some(10)), record(50, 4_000)).unwrap();
        assert_eq!((expired.position, expired.messages), (50, 50));
        assert_eq!(expired.seconds, Duration::from_secs(4));
        assert!(expired.seconds_lower_bound);
        // Compaction removed 40..45: the first record found is at 45.
        let compacted =
            LagSample::from_record(NOW_NS, offsets(0, 100, Some(40)), record(45, 3_000)).unwrap();
        assert!(compacted.seconds_lower_bound);
        // The record is there: exact.
        let exact =
            LagSample::from_record(NOW_NS, offsets(0, 100, Some(40)), record(40, 3_000)).unwrap();
        assert!(!exact.seconds_lower_bound);
        // No commit counts from the low watermark by definition: exact.
        let fresh = LagSample::from_record(NOW_NS, offsets(30, 100, None), record(30, 1)).unwrap();
        assert!(!fresh.seconds_lower_bound);
        // Caught up past a deleted range: 0 s is exact, nothing waits.
        let caught_up = LagSample::from_record(NOW_NS, offsets(100, 100, Some(10)), None).unwrap();
        assert_eq!(caught_up.seconds, Duration::ZERO);
        assert!(!caught_up.seconds_lower_bound);
    }
}
