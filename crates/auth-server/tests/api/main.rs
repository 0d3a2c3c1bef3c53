//! Integration tests: each starts the real application on a random port with a fresh
//! database (SQLite by default, PostgreSQL when TEST_DATABASE_URL points at one) and talks to
//! it over HTTP.

mod admin;
mod audit;
mod audit_query;
mod cli;
mod client;
mod cluster;
mod compat;
mod downstream;
mod edge;
mod edge_tls;
mod errors;
mod events;
mod events_brokers;
mod events_failover;
mod helpers;
mod hostile;
mod import;
mod instances;
mod jwks;
mod keys;
mod lifecycle;
mod lockout;
mod login;
mod logs;
mod mail;
mod mail_flows;
mod me;
mod metrics;
mod ops;
mod outage;
mod passwords;
mod platform;
mod profile;
mod ratelimit;
mod reset;
mod schema;
mod sessions;
mod signup;
mod smtp;
mod verify;
