//! auth-service: configuration, HTTP API and start-up of the authentication service.
#![forbid(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod config;
pub mod format;
pub mod healthcheck;
pub mod http;
pub mod import;
pub mod limits;
pub mod mail;
pub mod metrics;
pub mod outbox;
pub mod serve;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod tasks;
pub mod telemetry;
pub mod tls;
