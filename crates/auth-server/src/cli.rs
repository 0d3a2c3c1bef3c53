//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "auth-service",
    version,
    about = "Authentication and identity service"
)]
pub struct Cli {
    /// TOML configuration file (also AUTH_CONFIG); environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users (also `users`).
    #[command(subcommand, visible_alias = "users")]
    User(UserCommand),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the OpenAPI document.
    Openapi,
    /// Ask the running service's readiness (for container probes without curl): exit 0 when
    /// `GET /health/ready` answers 200, 1 otherwise.
    Healthcheck {
        /// Ask this URL instead of `/health/ready` on the configured port of 127.0.0.1.
        #[arg(long)]
        url: Option<String>,
        /// How long to wait for the answer, in milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        username: Option<String>,
        /// Extra role (repeatable), e.g. `--role admin`; every user also has `user`.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// The tenant (slug) of the user; default `default`.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Read the password from the first line of standard input (required).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Import users exported from another service, all in one transaction or none.
    /// Exit code: 0 imported, 2 invalid input (nothing written), 1 other failure.
    Import {
        /// `django` (a dumpdata of the user model), `csv` or `json` (docs/MIGRATION.md).
        #[arg(long, value_enum)]
        format: crate::import::ImportFormat,
        /// The file to import.
        file: PathBuf,
        /// The tenant to import into.
        #[arg(long, default_value = auth_core::domain::DEFAULT_TENANT)]
        tenant: String,
        /// Validate and report what would change, writing nothing.
        #[arg(long)]
        dry_run: bool,
        /// What to do with a user whose email exists in the tenant already.
        #[arg(long, value_enum, default_value = "skip")]
        on_conflict: crate::import::ConflictChoice,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets redacted); exit 2 when it is invalid.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys with their states.
    List,
    /// Publish a new signing key; it signs after AUTH_KEY_PROPAGATION_SECONDS (at once with 0).
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant with its built-in roles `admin` and `user`.
    Create {
        /// 1 to 64 characters of a-z, 0-9 and '-'.
        slug: String,
        /// A display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the tenants.
    List,
}
