//! The one-shot commands: `migrate`, `user create`, `config check`, `openapi`.

use std::io::BufRead;
use std::process::ExitCode;

use auth_core::CoreError;
use auth_core::domain::TenantId;
use auth_core::service::{Origin, Registration};
use auth_core::session::ClientInfo;
use auth_core::signing::{Rotated, RotationCause};

use crate::config::{Config, RawConfig};
use crate::startup::{build_state, open_store};

/// Prints the effective configuration and any problems; 2 when invalid.
pub fn config_check(raw: &RawConfig) -> ExitCode {
    print!("{}", raw.describe());
    for w in &raw.warnings {
        eprintln!("warning: {w}");
    }
    match raw.validate() {
        Ok(_) => {
            println!("# configuration is valid");
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in problems {
                eprintln!("error: {p}");
            }
            ExitCode::from(2)
        }
    }
}

/// Prints the OpenAPI document of the service this configuration runs (its password policy);
/// with the defaults when the configuration is invalid.
pub fn openapi(raw: &RawConfig) -> ExitCode {
    let (policy, gated) = raw
        .validate()
        .map(|config| {
            (
                config.passwords.policy,
                config.edge.gateway_secret.is_some(),
            )
        })
        .unwrap_or_default();
    match serde_json::to_string_pretty(&crate::http::openapi(policy, gated)) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub async fn migrate(config: &Config) -> ExitCode {
    match open_store(config).await {
        Ok(store) => {
            store.close().await;
            println!("migrations applied");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Creates a user with the password read from the first line of standard input.
pub async fn create_user(
    config: &Config,
    tenant: &str,
    email: &str,
    username: Option<&str>,
    roles: &[String],
) -> ExitCode {
    let mut password = String::new();
    if let Err(e) = std::io::stdin().lock().read_line(&mut password) {
        eprintln!("error: cannot read the password from standard input: {e}");
        return ExitCode::FAILURE;
    }
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    let tenant = match TenantId::parse(tenant) {
        Ok(t) => t,
        Err(m) => return report(CoreError::invalid("tenant", m)),
    };
    let registration = match Registration::parse(email, username, password, roles) {
        Ok(r) => r
            .in_tenant(tenant.clone())
            .made_by(Origin::CommandLine, &Default::default()),
        Err(e) => return report(e),
    };
    let state = match open_state(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match state.directory.tenant_exists(&tenant).await {
        Ok(true) => state.accounts.register(registration).await,
        Ok(false) => Err(CoreError::invalid("tenant", format!("no tenant {tenant}"))),
        Err(e) => Err(e),
    };
    state.store.close().await;
    match result {
        Ok(user) => {
            println!(
                "created user {} ({}) with roles {}",
                user.id,
                user.email,
                user.roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => report(e),
    }
}

/// The database and services, as `serve` builds them.
async fn open_state(
    config: &Config,
) -> Result<crate::state::AppState, crate::startup::StartupError> {
    build_state(config, open_store(config).await?).await
}

fn report(e: auth_core::CoreError) -> ExitCode {
    match e {
        auth_core::CoreError::Validation(fields) => {
            for (field, message) in fields {
                eprintln!("error: {field}: {message}");
            }
        }
        other => eprintln!("error: {other}"),
    }
    ExitCode::from(2)
}

/// `tenant create SLUG [--name NAME]`.
pub async fn create_tenant(config: &Config, slug: &str, name: Option<&str>) -> ExitCode {
    let id = match TenantId::parse(slug) {
        Ok(id) => id,
        Err(m) => return report(CoreError::invalid("slug", m)),
    };
    let state = match open_state(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let name = name.unwrap_or(slug).to_owned();
    let result = state
        .directory
        .create_tenant(None, id, name, &ClientInfo::default())
        .await;
    state.store.close().await;
    match result {
        Ok(t) => {
            println!(
                "created tenant {} ({}) with roles admin, user",
                t.id, t.name
            );
            ExitCode::SUCCESS
        }
        Err(e) => report(e),
    }
}

/// `tenant list`.
pub async fn list_tenants(config: &Config) -> ExitCode {
    let state = match open_state(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = state.directory.tenants(None).await;
    state.store.close().await;
    match result {
        Ok(tenants) => {
            println!("{:<24} {:<21} NAME", "SLUG", "CREATED");
            for t in tenants {
                println!(
                    "{:<24} {:<21} {}",
                    t.id,
                    crate::format::rfc3339(t.created_at),
                    t.name
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `keys list` and `keys rotate`.
pub async fn keys(config: &Config, rotate: bool) -> ExitCode {
    let state = match open_state(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let keys = state.keys();
    let result = if rotate {
        keys.rotate(auth_core::now_unix(), RotationCause::CommandLine)
            .await
            .map(|r| match r {
                Rotated::Active(kid) => println!("key {kid} is now signing"),
                Rotated::Scheduled { kid, activates_at } => {
                    println!(
                        "key {kid} published; it signs from {}",
                        crate::format::rfc3339(activates_at)
                    )
                }
                Rotated::AlreadyScheduled { kid, activates_at } => println!(
                    "a rotation is already scheduled: key {kid} signs from {}",
                    crate::format::rfc3339(activates_at)
                ),
            })
    } else {
        keys.list().await.map(|list| {
            println!(
                "{:<20} {:<8} {:<8} {:<21} {:<21} {:<21}",
                "KID", "ALG", "STATE", "CREATED", "ACTIVATED", "RETIRED"
            );
            let t = |v: Option<i64>| v.map(crate::format::rfc3339).unwrap_or_else(|| "-".into());
            for k in list {
                println!(
                    "{:<20} {:<8} {:<8} {:<21} {:<21} {:<21}",
                    k.kid,
                    k.algorithm,
                    k.state.as_str(),
                    t(Some(k.created_at)),
                    t(k.activated_at),
                    t(k.retired_at)
                );
            }
        })
    };
    state.store.close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
