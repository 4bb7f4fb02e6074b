//! meshflow exporter: measures loss, duplicates, latency and consumer lag
//! on real traffic.
//!
//! The exporter reads the judged data topics (what reached each log) and the
//! receipts topic (what consumer groups processed), and asks Kafka for
//! offsets. Each judged topic (`exporter.topics`, names and `^` patterns)
//! has its own accounting: a producer's `mf-seq` is counted per topic. The
//! pure core computes everything that needs no Kafka:
//!
//! - [`window`]: a fixed-size sliding bitmap of one producer instance's
//!   sequence numbers, which tells new, late, duplicate and lost messages
//!   apart with memory that does not grow with traffic;
//! - [`accounting`]: the per-stage book-keeping (`log` and `processed` per
//!   consumer group) built from those windows: counts, loss, duplicates and
//!   latency samples;
//! - [`observation`]: the records fed to the accounting and the counts and
//!   latencies it hands back;
//! - [`lag`]: consumer lag in messages and seconds from watermarks,
//!   committed offsets and one record timestamp;
//! - [`expiry`]: records a group lost to retention (its committed offset
//!   below the low watermark), each counted once;
//! - [`membership`]: a described group's state, members and assignment,
//!   reduced to bounded figures;
//! - [`status`]: a consumer group's OK / WARN / STALL / STOP / ERR status
//!   from its recent lag samples;
//! - [`groups`]: the watched consumer groups by identity: a [`GroupId`]
//!   from one [`Groups`] registry keys everything kept per group;
//! - [`config`]: the typed `exporter.*` settings these parts take.
//!
//! Time is always passed in (unix nanoseconds, the exporter's clock), so all
//! of it is deterministic under test.
//!
//! Around the core, the service parts:
//!
//! - [`metrics`]: the `meshflow_*` series the core's results map to;
//! - [`reader`]: the consumer of the judged and receipts topics that feeds
//!   each judged topic's accounting;
//! - [`cluster`]: metadata, watermarks, committed offsets and record
//!   timestamps, polled from Kafka;
//! - [`watch`]: each poll turned into lag gauges and group statuses;
//! - [`service`]: the run loop tying them together until shutdown.

pub mod accounting;
pub mod cluster;
pub mod config;
pub mod expiry;
pub mod groups;
pub mod id_hash;
pub mod lag;
pub mod membership;
pub mod metrics;
pub mod observation;
pub mod probe;
pub mod progress;
pub mod reader;
pub mod service;
pub mod status;
pub mod watch;
pub mod window;

#[cfg(test)]
mod testing;

pub use accounting::Accounting;
pub use config::{AccountingConfig, StatusConfig};
pub use groups::{GroupId, Groups, PerGroup};
pub use lag::{LagSample, PartitionOffsets};
pub use observation::{
    Evictions, Horizon, Latency, LogRecord, Observed, ReceiptEntry, Rejection, StageCounters,
    SweepReport,
};
pub use status::{Evaluation, GroupStatus, GroupStatusTracker, STATUS_RULES};
pub use window::{Outcome, SequenceWindow};

/// Everything that can go wrong in the exporter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range.
    #[error("invalid value {value:?} for {key}: {allowed}")]
    Config {
        /// The full key, e.g. `exporter.grace`.
        key: &'static str,
        /// The rejected value as given.
        value: String,
        /// What would have been accepted.
        allowed: &'static str,
    },
    /// Watermarks that cannot describe a partition (negative, or low above high).
    #[error("invalid watermarks: low {low}, high {high}")]
    Watermarks {
        /// Low watermark as reported.
        low: i64,
        /// High watermark as reported.
        high: i64,
    },
    /// Lag in seconds needs the timestamp of the record at this offset, and
    /// none was given.
    #[error("no timestamp for the record at offset {offset}")]
    MissingTimestamp {
        /// The offset whose record timestamp was needed.
        offset: i64,
    },
    /// A Kafka client could not be created or a request failed.
    #[error("kafka {operation}: {source}")]
    Kafka {
        /// What was being done, e.g. `committed offsets`.
        operation: &'static str,
        /// librdkafka's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A task of the service ended before shutdown.
    #[error(transparent)]
    TaskEnded(#[from] meshflow_common::shutdown::TaskEnded),
    /// The cluster metadata does not list the topic (or lists it with an
    /// error or no partitions).
    #[error("topic {topic} not found in the cluster metadata")]
    UnknownTopic {
        /// The topic asked for.
        topic: String,
    },
    /// The watermarks of a partition were not in the answer.
    #[error("no watermarks for {topic}/{partition}")]
    NoWatermarks {
        /// Topic name.
        topic: String,
        /// Partition id.
        partition: i32,
    },
}

impl Error {
    /// `Ok` if `value` is above zero, else the configuration error for `key`.
    pub fn unless_positive(key: &'static str, value: std::time::Duration) -> Result<(), Error> {
        if value.is_zero() {
            return Err(Error::Config {
                key,
                value: format!("{value:?}"),
                allowed: "a duration greater than zero, such as 30s",
            });
        }
        Ok(())
    }
}

impl Error {
    /// A fixed, low-cardinality name for metric labels and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config { .. } => "config",
            Error::Watermarks { .. } => "watermarks",
            Error::MissingTimestamp { .. } => "missing_timestamp",
            Error::Kafka { .. } => "kafka",
            Error::UnknownTopic { .. } => "unknown_topic",
            Error::NoWatermarks { .. } => "watermarks",
            Error::TaskEnded(_) => "task_ended",
        }
    }
}
