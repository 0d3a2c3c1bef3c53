//! The `auth-service` binary: parse the command line, load and validate the configuration,
//! set up logging, then run the chosen command.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use auth_server::cli::{Cli, Command, ConfigCommand, KeysCommand, TenantCommand, UserCommand};
use auth_server::config::{LogFormat, RawConfig};
use auth_server::startup::{Application, shutdown_signal};
use auth_server::{commands, telemetry};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let raw = match RawConfig::from_process(cli.config.as_deref()) {
        Ok(raw) => raw,
        Err(problems) => return fail(&problems),
    };
    let command = cli.command.unwrap_or(Command::Serve);
    match command {
        Command::Config(ConfigCommand::Check) => return commands::config_check(&raw),
        Command::Openapi => return commands::openapi(&raw),
        _ => {}
    }
    let config = match raw.validate() {
        Ok(c) => c,
        Err(problems) => return fail(&problems),
    };
    telemetry::init(config.logging.format);
    for w in &raw.warnings {
        tracing::warn!("{w}");
    }
    match command {
        Command::Migrate => commands::migrate(&config).await,
        Command::Healthcheck { url, timeout_ms } => {
            let timeout = std::time::Duration::from_millis(timeout_ms);
            auth_server::healthcheck::run(&config, url.as_deref(), timeout).await
        }
        Command::User(UserCommand::Create {
            email,
            username,
            roles,
            tenant,
            password_stdin: _,
        }) => commands::create_user(&config, &tenant, &email, username.as_deref(), &roles).await,
        Command::Tenant(TenantCommand::Create { slug, name }) => {
            commands::create_tenant(&config, &slug, name.as_deref()).await
        }
        Command::Tenant(TenantCommand::List) => commands::list_tenants(&config).await,
        Command::User(UserCommand::Import {
            format,
            file,
            tenant,
            dry_run,
            on_conflict,
        }) => auth_server::import::run(&config, format, &file, &tenant, dry_run, on_conflict).await,
        Command::Keys(KeysCommand::List) => commands::keys(&config, false).await,
        Command::Keys(KeysCommand::Rotate) => commands::keys(&config, true).await,
        Command::Serve | Command::Config(_) | Command::Openapi => serve(config).await,
    }
}

async fn serve(config: auth_server::config::Config) -> ExitCode {
    let shutdown = shutdown_signal();
    let app = match Application::build(&config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        address = %app.local_addr(),
        database = %auth_server::config::redact_url(secrecy::ExposeSecret::expose_secret(&config.database.url)),
        algorithm = config.tokens.algorithm.as_str(),
        gateway_secret = config.edge.gateway_secret.is_some(),
        client_certificates = config.edge.client_certificates,
        "auth-service listening on {}://{}",
        app.scheme(),
        app.local_addr()
    );
    match app.run(shutdown).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "server error");
            ExitCode::FAILURE
        }
    }
}

fn fail(problems: &[String]) -> ExitCode {
    telemetry::init(LogFormat::Pretty);
    for p in problems {
        eprintln!("configuration error: {p}");
    }
    ExitCode::from(2)
}
