//! Integration tests: each starts the real application on a random port with a fresh
//! database (SQLite by default, PostgreSQL when TEST_DATABASE_URL points at one) and talks to
//! it over HTTP.

mod cli;
mod errors;
mod helpers;
mod jwks;
mod login;
mod me;
mod ops;
mod sessions;
mod signup;
