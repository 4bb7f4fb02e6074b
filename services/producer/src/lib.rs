//! meshflow's producer: sends enveloped, traced messages at a configured rate
//! with `acks=all` and idempotence, and measures their delivery.

pub mod config;
pub mod deliveries;
pub mod metrics;
pub mod resend;
pub mod service;
pub mod settled;

pub use config::Config;
pub use service::{run, Summary};
