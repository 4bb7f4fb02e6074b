//! meshflow's performance next to plain rdkafka, in one process and one
//! run: the producer, the consumer and end-to-end latency on librdkafka's
//! mock cluster and on a local Tansu broker, the exporter's accounting core,
//! and per-message instruction counts under callgrind. See docs/performance.md's
//! performance section for what each figure means and how it was made.

pub mod chart;
pub mod consumer;
pub mod cpu;
pub mod exporter;
pub mod latency;
pub mod producer;
pub mod report;
pub mod sections;
pub mod steps;
pub mod target;
pub mod tracing;
