//! Signing keys over time: the first key at start, rotation (a new key is published before
//! it signs), promotion of the next key when its time comes, removal of retired keys once
//! every token they signed has expired, and reloading what other instances changed.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::audit::{AuditEvent, AuditKind};
use crate::directory::Actor;
use crate::domain::TenantId;
use crate::session::ClientInfo;

use crate::error::Requirement;
use crate::keys::{KeyState, KeyVault, StoredKey};
use crate::repo::KeyRepository;
use crate::token::{JwtAlgorithm, LEEWAY_SECONDS, TokenService, TokenSettings};
use crate::{CoreError, now_unix};

/// How tokens are signed.
pub enum SigningMode<'a> {
    EdDSA {
        master_key: Option<&'a SecretString>,
    },
    HS256 {
        secret: &'a SecretString,
    },
}

impl SigningMode<'_> {
    pub fn algorithm(&self) -> JwtAlgorithm {
        match self {
            Self::EdDSA { .. } => JwtAlgorithm::EdDSA,
            Self::HS256 { .. } => JwtAlgorithm::HS256,
        }
    }
}

/// Key rotation policy.
#[derive(Debug, Clone, Copy)]
pub struct RotationSettings {
    /// Rotate the active key after this long; `None` turns automatic rotation off.
    pub every: Option<Duration>,
    /// How long a new key is published before it signs.
    pub propagation: Duration,
}

impl Default for RotationSettings {
    fn default() -> Self {
        Self {
            every: Some(Duration::from_secs(30 * 24 * 3600)),
            propagation: Duration::from_secs(600),
        }
    }
}

/// Builds the token service, creating a signing key on first start.
pub async fn start_token_service<R: KeyRepository>(
    repo: &R,
    settings: TokenSettings,
    mode: SigningMode<'_>,
) -> Result<TokenService, CoreError> {
    let master_key = match mode {
        SigningMode::HS256 { secret } => {
            return Ok(TokenService::with_shared_secret(settings, secret));
        }
        SigningMode::EdDSA { master_key } => master_key,
    };
    let vault = KeyVault::new(master_key.map(|k| k.expose_secret().as_bytes()));
    let mut keys = repo.published_keys().await?;
    if !keys.iter().any(|k| k.state == KeyState::Active) {
        let key = vault.generate(KeyState::Active, now_unix());
        let kid = key.kid.clone();
        if repo.insert_first_active_key(key).await? {
            tracing::info!(%kid, sealed = master_key.is_some(), "created the first signing key");
        }
        keys = repo.published_keys().await?;
    }
    TokenService::with_keys(settings, &keys, vault).map_err(|e| CoreError::Internal(e.into()))
}

/// Rotation and upkeep of EdDSA signing keys.
pub struct KeyManager<'a, R> {
    pub repo: &'a R,
    pub tokens: &'a TokenService,
    pub master_key: Option<&'a SecretString>,
    pub rotation: RotationSettings,
}

/// What started a rotation, for its audit event (`key.rotated`).
#[derive(Debug, Clone, Copy)]
pub enum RotationCause<'a> {
    /// An administrator, through the admin API.
    Admin {
        actor: &'a Actor,
        client: &'a ClientInfo,
    },
    /// `auth-service keys rotate`.
    CommandLine,
    /// The automatic rotation (`AUTH_KEY_ROTATION_DAYS`).
    Schedule,
}

impl RotationCause<'_> {
    /// The audit event of a rotation that made `kid` the key signing from `signs_from`.
    fn event(&self, kid: &str, signs_from: i64, now: i64) -> AuditEvent {
        let (trigger, tenant, actor, client) = match *self {
            Self::Admin { actor, client } => (
                "admin",
                actor.tenant.clone(),
                Some(actor.user_id),
                client.clone(),
            ),
            Self::CommandLine => (
                "cli",
                TenantId::default_tenant(),
                None,
                ClientInfo::default(),
            ),
            Self::Schedule => (
                "schedule",
                TenantId::default_tenant(),
                None,
                ClientInfo::default(),
            ),
        };
        AuditEvent::new(AuditKind::KeyRotated, &tenant, now)
            .actor(actor)
            .client(&client)
            .detail(json!({ "kid": kid, "signs_from": signs_from, "trigger": trigger }))
    }
}

/// What [`KeyManager::rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotated {
    /// The new key signs from now on.
    Active(String),
    /// The new key is published and starts signing at the given time.
    Scheduled { kid: String, activates_at: i64 },
    /// A rotation was already scheduled; nothing new was created.
    AlreadyScheduled { kid: String, activates_at: i64 },
}

impl<R: KeyRepository> KeyManager<'_, R> {
    fn vault(&self) -> KeyVault<'_> {
        KeyVault::new(self.master_key.map(|k| k.expose_secret().as_bytes()))
    }

    fn require_eddsa(&self) -> Result<(), CoreError> {
        if self.tokens.algorithm() == JwtAlgorithm::EdDSA {
            Ok(())
        } else {
            Err(CoreError::Forbidden(Requirement::EdDsaSigning))
        }
    }

    /// Creates a new key: published now, signing after the propagation delay (at once when
    /// the delay is zero).
    /// The rotation is recorded (`key.rotated`, with `cause`) in the transaction of the key's
    /// creation (or of its promotion, when an already scheduled key is due).
    pub async fn rotate(&self, now: i64, cause: RotationCause<'_>) -> Result<Rotated, CoreError> {
        self.require_eddsa()?;
        let keys = self.repo.published_keys().await?;
        if let Some(next) = keys.iter().find(|k| k.state == KeyState::Next) {
            let activates_at = next.activated_at.unwrap_or(now);
            if self.rotation.propagation.is_zero() || activates_at <= now {
                let event = cause.event(&next.kid, now, now);
                self.repo.promote_key(&next.kid, now, Some(event)).await?;
                self.reload().await?;
                return Ok(Rotated::Active(next.kid.clone()));
            }
            return Ok(Rotated::AlreadyScheduled {
                kid: next.kid.clone(),
                activates_at,
            });
        }
        let mut key = self.vault().generate(KeyState::Next, now);
        let activates_at = now + self.rotation.propagation.as_secs() as i64;
        key.activated_at = Some(activates_at);
        let kid = key.kid.clone();
        let event = cause.event(&kid, activates_at, now);
        self.repo.insert_next_key(key, event).await?;
        tracing::info!(%kid, activates_at, "new signing key published");
        let result = if self.rotation.propagation.is_zero() {
            self.repo.promote_key(&kid, now, None).await?;
            Rotated::Active(kid)
        } else {
            Rotated::Scheduled { kid, activates_at }
        };
        self.reload().await?;
        Ok(result)
    }

    /// Periodic upkeep, run by every instance: promote a due key, schedule the automatic
    /// rotation, remove retired keys whose tokens have all expired, and reload the key ring.
    pub async fn tick(&self, now: i64) -> Result<(), CoreError> {
        if self.tokens.algorithm() != JwtAlgorithm::EdDSA {
            return Ok(());
        }
        let keys = self.repo.published_keys().await?;
        let next = keys.iter().find(|k| k.state == KeyState::Next);
        if let Some(next) = next.filter(|k| k.activated_at.is_some_and(|at| at <= now)) {
            if self.repo.promote_key(&next.kid, now, None).await? {
                tracing::info!(kid = %next.kid, "signing key promoted to active");
            }
        } else if let (None, Some(every)) = (next, self.rotation.every) {
            let active = keys.iter().find(|k| k.state == KeyState::Active);
            let due = active.is_some_and(|k| {
                k.activated_at.unwrap_or(k.created_at) + every.as_secs() as i64 <= now
            });
            if due {
                self.rotate(now, RotationCause::Schedule).await?;
            }
        }
        let lifetime = self.tokens.settings().access_ttl.as_secs() as i64 + LEEWAY_SECONDS as i64;
        let removed = self.repo.remove_retired_keys(now - lifetime).await?;
        if removed > 0 {
            tracing::info!(removed, "retired signing keys removed from publication");
        }
        self.reload().await
    }

    /// Installs the keys currently in the store.
    pub async fn reload(&self) -> Result<(), CoreError> {
        if self.tokens.algorithm() != JwtAlgorithm::EdDSA {
            return Ok(());
        }
        let keys = self.repo.published_keys().await?;
        self.tokens
            .install_keys(&keys, self.vault())
            .map_err(|e| CoreError::Internal(e.into()))
    }

    /// Every key with its state, for `keys list`.
    pub async fn list(&self) -> Result<Vec<StoredKey>, CoreError> {
        Ok(self.repo.all_keys().await?)
    }
}
