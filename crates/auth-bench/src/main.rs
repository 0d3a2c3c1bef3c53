//! `auth-bench`: the physical limits the benchmark harness compares the service against, each
//! measured by calling the same code the service runs, on all cores, for a fixed time.
//! Prints one JSON object per run.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use auth_core::audit::{AuditEvent, AuditKind};
use auth_core::domain::{Password, User};
use auth_core::domain::{SessionId, TenantId, UserId};
use auth_core::keys::{KeyState, KeyVault};
use auth_core::now_unix;
use auth_core::password::{Argon2Settings, HashingLimits, PasswordHasher};
use auth_core::repo::{
    Record, RefreshRotation, Rotation, RotationOutcome, SessionWrites, UnitOfWork,
};
use auth_core::session::{ClientInfo, RefreshToken, SealedAccess, Session, Successor};
use auth_core::token::{TokenService, TokenSettings};
use auth_store::{Store, StoreOptions};
use clap::{Parser, Subcommand};
use serde_json::json;

#[derive(Parser)]
struct Cli {
    /// How long each measurement runs.
    #[arg(long, default_value = "5")]
    seconds: f64,
    /// Concurrent workers (default: CPU cores).
    #[arg(long)]
    workers: Option<usize>,
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Argon2id verifications per second with the given parameters (the service's hasher).
    Argon2 {
        #[arg(long, default_value = "19456")]
        memory_kib: u32,
        #[arg(long, default_value = "2")]
        iterations: u32,
        #[arg(long, default_value = "1")]
        parallelism: u32,
    },
    /// Access-token verifications per second (EdDSA, the service's verifier).
    Jwt,
    /// Refresh-token rotation transactions per second of the store at DATABASE_URL.
    Rotation {
        #[arg(long)]
        database_url: String,
    },
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `job` on `workers` OS threads until `seconds` pass; returns operations per second.
fn on_threads(workers: usize, seconds: f64, job: impl Fn() + Send + Sync + 'static) -> f64 {
    let job = Arc::new(job);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (job, stop, count) = (job.clone(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    job();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("worker panicked");
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn sample_user() -> User {
    User {
        id: UserId::generate(),
        tenant: TenantId::default_tenant(),
        email: "bench@example.com".into(),
        username: None,
        roles: vec![auth_core::domain::RoleName::user()],
        permissions: vec![],
        email_verified: false,
        disabled: false,
        created_at: 0,
        updated_at: 0,
    }
}

/// A token service with a fresh key, and an access token it minted for [`sample_user`]: what
/// the service signs for a user of the benchmark (role `user`, no permission).
fn sample_access_token() -> (Arc<TokenService>, String) {
    let vault = KeyVault::new(None);
    let key = vault.generate(KeyState::Active, 0);
    let settings = TokenSettings {
        issuer: "http://127.0.0.1".into(),
        audience: Some("api".into()),
        access_ttl: Duration::from_secs(900),
    };
    let tokens = Arc::new(TokenService::with_keys(settings, &[key], vault).expect("keys"));
    let token = tokens
        .mint(&sample_user(), Some(SessionId::generate()), now_unix())
        .expect("mint")
        .token;
    (tokens, token)
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let workers = cli.workers.unwrap_or_else(cores);
    let result = match cli.what {
        What::Argon2 {
            memory_kib,
            iterations,
            parallelism,
        } => {
            let settings = Argon2Settings {
                memory_kib,
                iterations,
                parallelism,
            };
            let limits = HashingLimits {
                max_in_flight: workers,
                queue_timeout: Duration::from_secs(60),
            };
            let hasher = PasswordHasher::new(settings, limits).expect("valid parameters");
            let password = Password::new("correct horse battery".into());
            let hash = hasher.hash(&password).await.expect("hash");
            let rt = tokio::runtime::Handle::current();
            let rate = tokio::task::spawn_blocking(move || {
                on_threads(workers, cli.seconds, move || {
                    let ok = rt
                        .block_on(hasher.verify(Some(hash.clone()), &password))
                        .expect("verify");
                    assert!(ok);
                })
            })
            .await
            .expect("join");
            json!({"baseline": "argon2id_verify", "per_second": rate, "workers": workers,
                   "memory_kib": memory_kib, "iterations": iterations, "parallelism": parallelism})
        }
        What::Jwt => {
            let (tokens, token) = sample_access_token();
            let rate = on_threads(workers, cli.seconds, move || {
                tokens
                    .verify_signature(&token, now_unix())
                    .expect("valid token");
            });
            json!({"baseline": "jwt_verify", "per_second": rate, "workers": workers})
        }
        What::Rotation { database_url } => {
            let rate = rotation_rate(&database_url, workers, cli.seconds).await;
            json!({"baseline": "refresh_rotation", "per_second": rate, "workers": workers})
        }
    };
    println!("{result}");
}

/// Each worker rotates its own chain through the store's rotation (its read, then its one
/// write), as fast as the store allows; the user and sessions are created first.
async fn rotation_rate(url: &str, workers: usize, seconds: f64) -> f64 {
    let store = Store::connect(url, &StoreOptions::default())
        .await
        .expect("database");
    // The successor sealed in each rotation carries an unsigned access token of the size the
    // service makes (it grows with the claims), not a guess: the token less its signature.
    let access_input: Arc<str> = match sample_access_token().1.rsplit_once('.') {
        Some((input, _signature)) => input.into(),
        None => unreachable!("a JWS has three parts"),
    };
    store.migrate().await.expect("migrations");
    let user_id = UserId::generate();
    create_user(&store, user_id).await;
    let now = now_unix();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let store = store.clone();
        let access_input = access_input.clone();
        tasks.push(tokio::spawn(async move {
            let session = Session {
                id: SessionId::generate(),
                user_id,
                tenant: TenantId::default_tenant(),
                client: ClientInfo::default(),
                created_at: now,
                last_used_at: now,
                idle_expires_at: now + 3600,
                absolute_expires_at: now + 7200,
                revoked_at: None,
            };
            let mut token = RefreshToken::generate();
            let audit = AuditEvent::new(AuditKind::LoginSucceeded, &session.tenant, now_unix())
                .user(user_id);
            let (opened, hash) = (session.clone(), token.hash());
            store
                .write(move |tx| {
                    Box::pin(async move {
                        tx.create_session(opened, hash);
                        tx.audit(audit);
                        Ok(())
                    })
                })
                .await
                .expect("session");
            let mut n = 0u64;
            while Instant::now() < deadline {
                let next = RefreshToken::generate();
                let now = now_unix();
                // The same rotation as a refresh of the service: the read of the token,
                // session, user and roles, then the write that claims the token and adds
                // the rest, with a sealed successor of the size the service writes; only the
                // signing of the access token, which the service does after the write, is
                // left out.
                let outcome = store
                    .rotate_refresh_token(&token.hash(), |record, records| {
                        let sealed = token.seal_successor(&Successor {
                            refresh_token: next.as_str().to_owned(),
                            access: SealedAccess::Unsigned(access_input.to_string()),
                            access_expires_at: now + 900,
                        });
                        let rotation = Rotation {
                            successor_hash: next.hash(),
                            successor_sealed: sealed,
                            now,
                            idle_expires_at: now + 3600,
                        };
                        records.audit(
                            AuditEvent::new(AuditKind::TokenRefreshed, &record.session.tenant, now)
                                .user(record.session.user_id)
                                .session(record.session.id),
                        );
                        Some(rotation)
                    })
                    .await
                    .expect("rotation");
                assert!(matches!(outcome, RotationOutcome::Rotated), "{outcome:?}");
                token = next;
                n += 1;
            }
            n
        }));
    }
    let started = Instant::now();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("worker");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Creates the user the sessions belong to, through the same repository the service uses.
async fn create_user(store: &Store, id: UserId) {
    use auth_core::domain::{Email, NewUser, RoleName};
    use auth_core::repo::UserWrites;
    let user = NewUser {
        id,
        tenant: TenantId::default_tenant(),
        email: Email::parse(&format!("rotation-{id}@example.com")).expect("email"),
        username: None,
        password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        roles: vec![RoleName::user()],
        now: now_unix(),
    };
    store
        .write(move |tx| Box::pin(async move { tx.insert_user(user).await }))
        .await
        .expect("user");
}
