//! Plumbing every contact-import service repeats: tracing set-up, connections that wait for
//! NATS and PostgreSQL, graceful shutdown, and the one place that acks, naks or terms a
//! JetStream message.

pub mod connect;
pub mod consume;
pub mod http;
pub mod metrics;
pub mod publish;
pub mod service;
pub mod shutdown;
pub mod telemetry;

pub use consume::{keep_in_progress, run_consumer, settle, InProgress, MessageHandler, Outcome};
pub use shutdown::Shutdown;
