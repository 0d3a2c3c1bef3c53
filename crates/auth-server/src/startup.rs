//! Building the application from a validated configuration: a bound listener first (port 0
//! picks a free port, for tests), answering 503 while the database is migrated and the signing
//! keys and services are built; then the router, served until a signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use auth_core::password::PasswordHasher;
use auth_core::revocation::RevocationList;
use auth_core::service::{
    AccountService, AuditService, DirectoryService, EventService, SessionService, TokenChecks,
};
use auth_core::signing::{SigningMode, start_token_service};
use auth_core::token::JwtAlgorithm;
use auth_core::token::LEEWAY_SECONDS;
use auth_core::{CoreError, now_unix};
use auth_store::{Store, StoreOptions};
use hyper_util::server::graceful::GracefulShutdown;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::config::{Config, IssuerSource, MailTransport, redact_url};
use crate::limits::RateLimiter;
use crate::mail::Mailer;
use crate::serve::Connections;
pub use crate::shutdown::{Signal, shutdown_signal};
use crate::state::{AppState, Shared};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database {url}: {source}")]
    Database {
        url: String,
        #[source]
        source: auth_core::StoreError,
    },
    #[error("signing keys: {0}")]
    Keys(#[source] CoreError),
    #[error("reading revocations: {0}")]
    Revocations(#[source] CoreError),
    #[error("rate limits: {0}")]
    RateLimits(#[source] redis::RedisError),
    #[error("mail: {0}")]
    Mail(#[source] crate::mail::MailerError),
    #[error("password hashing: {0}")]
    Hashing(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Connects to the database and applies migrations.
pub async fn open_store(config: &Config) -> Result<Store, StartupError> {
    let url = config.database.url.expose_secret();
    let err = |source| StartupError::Database {
        url: redact_url(url),
        source,
    };
    let options = StoreOptions {
        max_connections: config.database.max_connections,
        sqlite_cache_kib: config.database.sqlite_cache_kib,
        mail_seal: auth_core::events::MailSeal::new(
            config
                .keys
                .master_key
                .as_ref()
                .map(|k| k.expose_secret().as_bytes()),
        ),
        ..StoreOptions::default()
    };
    let store = Store::connect(url, &options).await.map_err(err)?;
    store.migrate().await.map_err(err)?;
    Ok(store)
}

/// The configuration with its issuer settled: set (`AUTH_ISSUER`, `AUTH_PUBLIC_URL`), or the
/// one recorded in the database, which the first instance on it records (its own address), so
/// every instance sharing the database signs and accepts the same `iss`.
pub async fn settle_issuer(config: &Config, store: &Store) -> Result<Config, StartupError> {
    let mut config = config.clone();
    let source = config.tokens.issuer_source;
    if source == IssuerSource::Recorded {
        let own = config.tokens.access.issuer.clone();
        let recorded = store
            .record_once(ISSUER_SETTING, &own, now_unix())
            .await
            .map_err(|source| StartupError::Database {
                url: redact_url(config.database.url.expose_secret()),
                source,
            })?;
        // Mail links follow the issuer when AUTH_PUBLIC_URL is unset, as it is here.
        config.mail.links.public_url = recorded.trim_end_matches('/').to_owned();
        config.tokens.access.issuer = recorded;
    } else if let Ok(Some(recorded)) = store.recorded(ISSUER_SETTING).await
        && recorded != config.tokens.access.issuer
    {
        tracing::warn!(
            recorded,
            "the issuer recorded in the database differs: instances without {} sign and \
             accept another `iss`",
            source.describe()
        );
    }
    tracing::info!(
        issuer = config.tokens.access.issuer,
        from = source.describe(),
        "token issuer"
    );
    Ok(config)
}

/// The name the issuer is recorded under in `service_settings`.
const ISSUER_SETTING: &str = "issuer";

/// Builds the services over an open store.
pub async fn build_state(config: &Config, store: Store) -> Result<AppState, StartupError> {
    let config = &settle_issuer(config, &store).await?;
    let mode = match config.tokens.algorithm {
        JwtAlgorithm::EdDSA => SigningMode::EdDSA {
            master_key: config.keys.master_key.as_ref(),
        },
        JwtAlgorithm::HS256 => SigningMode::HS256 {
            secret: config
                .tokens
                .secret
                .as_ref()
                .expect("validated: HS256 has a secret"),
        },
    };
    if config.tokens.algorithm == JwtAlgorithm::EdDSA && config.keys.master_key.is_none() {
        tracing::warn!("AUTH_MASTER_KEY is not set: private signing keys are stored unencrypted");
    }
    let tokens = start_token_service(&store, config.tokens.access.clone(), mode)
        .await
        .map_err(StartupError::Keys)?
        .with_cache_capacity(config.tokens.cache_size);
    let hasher = PasswordHasher::new(config.passwords.argon2, config.passwords.hashing)
        .map_err(StartupError::Hashing)?;
    // Tokens of sessions revoked before this point have expired; start reading from there.
    let horizon =
        now_unix() - config.tokens.access.access_ttl.as_secs() as i64 - 2 * LEEWAY_SECONDS as i64;
    let revocations = Arc::new(RevocationList::starting_at(horizon));
    let tokens = Arc::new(tokens);
    let mailer =
        Mailer::from_config(&config.mail, store.mail_seal().clone()).map_err(StartupError::Mail)?;
    let state = AppState::new(Shared {
        directory: DirectoryService::new(store.clone(), hasher.clone(), revocations.clone())
            .with_flows(config.accounts.flows),
        audit: AuditService::new(store.clone()),
        audit_retention_days: config.logging.audit_retention_days,
        events: EventService::new(store.clone()),
        events_config: config.events.clone(),
        outbox_counters: Arc::default(),
        accounts: AccountService::new(
            store.clone(),
            hasher.clone(),
            config.passwords.policy,
            revocations.clone(),
        )
        .with_flows(config.accounts.flows),
        sessions: SessionService::new(
            store.clone(),
            hasher.clone(),
            tokens.clone(),
            config.sessions.lifetimes,
            revocations.clone(),
        ),
        checks: TokenChecks::new(tokens, revocations),
        store,
        master_key: config.keys.master_key.clone(),
        rotation: config.keys.rotation,
        trusted_proxies: config.server.trusted_proxies.clone().into(),
        limits: RateLimiter::new(&config.limits, config.keys.master_key.as_ref())
            .map_err(StartupError::RateLimits)?,
        mailer,
        hasher,
        counters: Default::default(),
        requests: Default::default(),
        metrics_elsewhere: config.server.metrics_bind.is_some(),
        draining: Default::default(),
    });
    state
        .sessions
        .sync_revocations()
        .await
        .map_err(StartupError::Revocations)?;
    state
        .keys()
        .tick(now_unix())
        .await
        .map_err(StartupError::Keys)?;
    Ok(state)
}

/// A bound listener answering as a starting service ([`crate::http::ops::starting`]) while the
/// application is built on it.
pub struct Starting {
    addr: SocketAddr,
    /// Dropped or sent: the starting service stops accepting and gives the listener back.
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<(TcpListener, GracefulShutdown)>,
    connections: Connections,
}

impl Starting {
    /// Binds the listener and answers on it at once: liveness 200, everything else 503.
    pub async fn bind(config: &Config) -> Result<Self, StartupError> {
        let addr = config.server.addr();
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let addr = listener.local_addr().unwrap_or(addr);
        let connections = Connections {
            tls: config.edge.tls.clone(),
            header_timeout: config.edge.header_timeout,
        };
        let app = crate::http::ops::starting::router(&crate::http::edge::Edge::new(&config.edge));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let until = async move {
            let _ = stopped.await;
        };
        let serving = {
            let connections = connections.clone();
            tokio::spawn(
                async move { crate::serve::accept(listener, app, &connections, until).await },
            )
        };
        Ok(Self {
            addr,
            stop,
            serving,
            connections,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Opens the database (migrations), builds the services, then takes the listener back
    /// from the starting service: the connections it holds are closed once they are idle.
    pub async fn finish(self, config: &Config) -> Result<Application, StartupError> {
        let mut config = config.clone();
        if config.tokens.issuer_source == IssuerSource::Recorded {
            // The address this instance is at (port 0 picked one), should it be the first.
            config.tokens.access.issuer = format!("http://{}", self.addr);
        }
        let config = &config;
        let store = open_store(config).await?;
        let state = build_state(config, store).await?;
        log_mail(config, &state.mailer);
        let metrics = match config.server.metrics_bind {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartupError::Bind { addr, source })?,
            ),
            None => None,
        };
        let Self {
            addr,
            stop,
            serving,
            connections,
        } = self;
        let _ = stop.send(());
        let (listener, starting) = serving.await.map_err(|e| StartupError::Bind {
            addr,
            source: std::io::Error::other(e),
        })?;
        tokio::spawn(starting.shutdown());
        Ok(Application {
            listener,
            metrics,
            connections,
            state,
            edge: config.edge.clone(),
            access_log: config.logging.access_log,
            revocation_poll: config.sessions.revocation_poll,
            key_reload: config.keys.reload,
            shutdown_delay: config.server.shutdown_delay,
            shutdown_drain: config.server.shutdown_drain,
        })
    }
}

/// A built application, listening but not yet serving.
pub struct Application {
    listener: TcpListener,
    /// The listener of `/metrics` alone (`AUTH_METRICS_BIND`).
    metrics: Option<TcpListener>,
    connections: Connections,
    state: AppState,
    edge: crate::config::Edge,
    access_log: crate::config::AccessLog,
    revocation_poll: std::time::Duration,
    key_reload: std::time::Duration,
    shutdown_delay: std::time::Duration,
    shutdown_drain: std::time::Duration,
}

impl Application {
    /// Binds the listener (answering 503 while starting), migrates, builds the services.
    pub async fn build(config: &Config) -> Result<Self, StartupError> {
        Starting::bind(config).await?.finish(config).await
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `/metrics` is served apart, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// `https` when serving TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.edge.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `signal`; on SIGTERM, first [`Self::shutdown_delay`]: readiness answers
    /// 503 and answers close their connections while every request is still served, so a load
    /// balancer stops sending before the listener closes. SIGINT stops at once.
    pub async fn run(
        self,
        signal: impl Future<Output = Signal> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let delay = self.shutdown_delay;
        self.run_until_stopped(async move {
            if signal.await == Signal::Terminate && !delay.is_zero() {
                state.start_draining();
                tracing::info!(
                    delay_seconds = delay.as_secs(),
                    "readiness answers 503 while requests are still served"
                );
                // A second signal (an impatient Ctrl-C) cuts the delay short.
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = crate::shutdown::shutdown_signal() => {}
                }
            }
            tracing::info!("closing the listener, finishing the requests in progress");
        })
        .await
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests and closes the pool.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let store = self.state.store.clone();
        let tasks = crate::tasks::spawn(self.state.clone(), self.revocation_poll, self.key_reload);
        let (in_flight, drained) = crate::http::InFlight::new();
        let edge = crate::http::edge::Edge::new(&self.edge);
        let app = crate::http::router(self.state.clone(), &in_flight, &edge, self.access_log);
        drop(in_flight);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            }
        };
        let metrics = self.metrics.map(|listener| {
            let app = crate::http::ops::metrics::listener_router(self.state.clone());
            let plain = Connections {
                tls: None,
                header_timeout: self.connections.header_timeout,
            };
            tokio::spawn(crate::serve::serve(listener, app, plain, until()))
        });
        let main = crate::serve::serve(self.listener, app, self.connections, until());
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        main.await;
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        // Writes whose clients went away still run on their own tasks: let them finish before
        // the pool closes under them (bounded, like any drain).
        let drain = self.shutdown_drain;
        if tokio::time::timeout(drain, drained.wait()).await.is_err() {
            tracing::warn!("requests still running after {drain:?}; closing anyway");
        }
        tasks.stop().await;
        store.close().await;
        Ok(())
    }
}

/// Says where mail goes; warns when it goes to the log (tokens included).
fn log_mail(config: &Config, mailer: &Mailer) {
    tracing::info!(
        transport = mailer.transport_name(),
        links = %mailer.links().public_url,
        overridden_templates = config.mail.templates.overridden().len(),
        "mailer ready"
    );
    if matches!(config.mail.transport, MailTransport::Log) {
        tracing::warn!(
            "AUTH_MAIL_TRANSPORT=log: mails are not sent, their links (tokens included) are \
             logged; for development only"
        );
    }
    if matches!(config.mail.transport, MailTransport::Off) {
        tracing::warn!("AUTH_MAIL_TRANSPORT=off: no mail is sent; it stays in the outbox");
    }
}
