//! Signing keys: generation of Ed25519 keys, their stored form (private part sealed under
//! `AUTH_MASTER_KEY` when one is configured) and their life-cycle states.

use std::fmt;

use ed25519_dalek::SigningKey;

use crate::secret::{Sealer, b64url, b64url_decode, random_bytes};

/// Where a key is in its life: published before it signs, signing, published after it stopped
/// signing until its tokens expire, and finally removed from publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Next,
    Active,
    Retired,
    Removed,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retired => "retired",
            Self::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "next" => Self::Next,
            "active" => Self::Active,
            "retired" => Self::Retired,
            "removed" => Self::Removed,
            _ => return None,
        })
    }

    /// Whether the key appears in the JWKS document and verifies tokens.
    pub fn is_published(self) -> bool {
        !matches!(self, Self::Removed)
    }
}

/// A signing key as stored: the private part is either sealed or, without a master key, plain.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    pub algorithm: String,
    /// Raw 32-byte Ed25519 public key.
    pub public_key: Vec<u8>,
    /// `sealed:<base64url>` or `plain:<base64url>` of the 32-byte seed.
    pub private_key: String,
    pub state: KeyState,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Purpose string for the key that seals signing keys.
const SEAL_PURPOSE: &str = "signing-key-seal";

/// Seals and opens private keys with the master key, if any.
#[derive(Clone, Copy)]
pub struct KeyVault<'a> {
    master: Option<&'a [u8]>,
}

/// Why a stored private key cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyVaultError {
    #[error("signing key {0} is sealed but no AUTH_MASTER_KEY is configured")]
    MasterKeyMissing(String),
    #[error("signing key {0} cannot be opened with the configured AUTH_MASTER_KEY")]
    WrongMasterKey(String),
    #[error("signing key {0} is stored in an unknown format")]
    Corrupt(String),
}

impl<'a> KeyVault<'a> {
    pub fn new(master: Option<&'a [u8]>) -> Self {
        Self { master }
    }

    /// Creates a new Ed25519 key in the given state.
    pub fn generate(&self, state: KeyState, now: i64) -> StoredKey {
        let seed = random_bytes::<32>();
        let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        let kid = b64url(&random_bytes::<12>());
        let private_key = match self.master {
            Some(master) => {
                let sealed = Sealer::derive(master, SEAL_PURPOSE).seal(&seed, kid.as_bytes());
                format!("sealed:{}", b64url(&sealed))
            }
            None => format!("plain:{}", b64url(&seed)),
        };
        StoredKey {
            kid,
            algorithm: "EdDSA".into(),
            public_key: public.to_vec(),
            private_key,
            state,
            created_at: now,
            activated_at: (state == KeyState::Active).then_some(now),
            retired_at: None,
        }
    }

    /// Recovers the 32-byte seed of a stored key.
    pub fn open(&self, key: &StoredKey) -> Result<[u8; 32], KeyVaultError> {
        let corrupt = || KeyVaultError::Corrupt(key.kid.clone());
        let seed = if let Some(sealed) = key.private_key.strip_prefix("sealed:") {
            let master = self
                .master
                .ok_or_else(|| KeyVaultError::MasterKeyMissing(key.kid.clone()))?;
            let sealed = b64url_decode(sealed).ok_or_else(corrupt)?;
            Sealer::derive(master, SEAL_PURPOSE)
                .open(&sealed, key.kid.as_bytes())
                .ok_or_else(|| KeyVaultError::WrongMasterKey(key.kid.clone()))?
        } else if let Some(plain) = key.private_key.strip_prefix("plain:") {
            b64url_decode(plain).ok_or_else(corrupt)?
        } else {
            return Err(corrupt());
        };
        seed.try_into().map_err(|_| corrupt())
    }
}

/// PKCS#8 v1 DER of an Ed25519 private key (RFC 8410): a fixed prefix and the 32-byte seed.
pub fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = PREFIX.to_vec();
    der.extend_from_slice(seed);
    der
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sealed_under_a_master_key_need_that_key_to_open() {
        let vault = KeyVault::new(Some(b"0123456789abcdef0123456789abcdef"));
        let key = vault.generate(KeyState::Active, 1);
        assert!(key.private_key.starts_with("sealed:"));
        let seed = vault.open(&key).unwrap();
        assert_eq!(
            SigningKey::from_bytes(&seed)
                .verifying_key()
                .to_bytes()
                .to_vec(),
            key.public_key
        );
        assert_eq!(
            KeyVault::new(None).open(&key),
            Err(KeyVaultError::MasterKeyMissing(key.kid.clone()))
        );
        assert_eq!(
            KeyVault::new(Some(b"another master key of 32 bytes!!")).open(&key),
            Err(KeyVaultError::WrongMasterKey(key.kid.clone()))
        );
    }

    #[test]
    fn keys_without_a_master_key_are_stored_plain_and_debug_hides_them() {
        let vault = KeyVault::new(None);
        let key = vault.generate(KeyState::Next, 5);
        assert!(key.private_key.starts_with("plain:"));
        assert_eq!(key.activated_at, None);
        assert!(vault.open(&key).is_ok());
        assert!(!format!("{key:?}").contains(&key.private_key));
    }
}
