//! meshflow's consumer: joins a consumer group, processes messages at least
//! once, publishes processing receipts, and dead-letters poison input.

mod clients;
pub mod config;
pub mod context;
pub mod dead_letter;
pub mod ledger;
pub mod metrics;
pub mod receipts;
pub mod service;
mod spans;

pub use config::Config;
pub use service::run;
