//! Parts shared by the meshflow services: configuration, Kafka client
//! settings, the message envelope, trace propagation, telemetry set-up,
//! messaging spans, receipts, the metrics/health HTTP endpoint, shutdown,
//! and the consumer-protocol assignment a described group carries.

pub mod assignment;
pub mod build;
pub mod cluster;
pub mod config;
pub mod contract;
pub mod envelope;
pub mod exposition;
pub mod fatal;
pub mod headers;
mod hex;
pub mod http;
pub mod kafka;
pub mod messaging_metrics;
pub mod otlp_metrics;
pub mod propagation;
pub mod receipt;
pub mod shutdown;
pub mod skeleton;
pub mod spans;
pub mod telemetry;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
