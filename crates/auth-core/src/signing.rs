//! Setting up token signing at start: in EdDSA mode, load the published keys and create the
//! first active key when there is none (safe when several instances start at once).

use secrecy::{ExposeSecret, SecretString};

use crate::keys::{KeyState, KeyVault};
use crate::repo::KeyRepository;
use crate::token::{JwtAlgorithm, TokenService, TokenSettings};
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
    TokenService::with_keys(settings, &keys, vault).map_err(|e| CoreError::Internal(e.to_string()))
}
