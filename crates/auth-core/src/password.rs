//! Password hashing (Argon2id on the blocking pool, with a bounded number in flight) and the
//! password policy (NIST SP 800-63B: length limits, no composition rules).

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::CoreError;
use crate::domain::{Email, Password, Username};
use crate::secret::random_bytes;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Settings {
    /// OWASP's first recommendation: m=19456 KiB, t=2, p=1.
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl Argon2Settings {
    /// Checks the parameters against Argon2's own limits.
    pub fn params(&self) -> Result<Params, String> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| format!("invalid Argon2 parameters: {e}"))
    }
}

/// How much hashing may run at once and how long a request may wait for a slot.
#[derive(Debug, Clone, Copy)]
pub struct HashingLimits {
    pub max_in_flight: usize,
    pub queue_timeout: Duration,
}

/// Hashes and verifies passwords off the async runtime. Cloning shares the same slots.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    argon2: Argon2<'static>,
    slots: Arc<Semaphore>,
    limits: HashingLimits,
    /// Verified instead of a real hash when the user does not exist, so both cost the same.
    dummy_hash: String,
}

impl PasswordHasher {
    pub fn new(settings: Argon2Settings, limits: HashingLimits) -> Result<Self, String> {
        let params = settings.params()?;
        if limits.max_in_flight == 0 {
            return Err("the number of hashes in flight must be at least 1".into());
        }
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy_hash = hash_with(&argon2, &crate::secret::b64url(&random_bytes::<16>()))
            .map_err(|e| format!("cannot compute the dummy hash: {e}"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                argon2,
                slots: Arc::new(Semaphore::new(limits.max_in_flight)),
                limits,
                dummy_hash,
            }),
        })
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, CoreError> {
        let inner = self.inner.clone();
        let password = password.clone();
        self.run(move || hash_with(&inner.argon2, password.expose()))
            .await?
            .map_err(|e| CoreError::Internal(format!("password hashing failed: {e}")))
    }

    /// Verifies `password` against `hash`, or against the dummy hash when `hash` is `None`
    /// (unknown user) so that both take the same time; the latter always answers `false`.
    /// An unparsable stored hash counts as a mismatch (and is logged).
    pub async fn verify(
        &self,
        hash: Option<String>,
        password: &Password,
    ) -> Result<bool, CoreError> {
        let inner = self.inner.clone();
        let password = password.clone();
        self.run(move || {
            let known = hash.is_some();
            let hash = hash.unwrap_or_else(|| inner.dummy_hash.clone());
            let Ok(parsed) = PasswordHash::new(&hash) else {
                tracing::error!("stored password hash cannot be parsed");
                return false;
            };
            let ok = inner
                .argon2
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok();
            ok && known
        })
        .await
    }

    /// Number of hashing operations running or waiting right now.
    pub fn in_flight(&self) -> usize {
        self.inner.limits.max_in_flight - self.inner.slots.available_permits()
    }

    /// Runs `work` on the blocking pool once a slot is free; gives up with
    /// [`CoreError::Overloaded`] when no slot frees up within the queue timeout.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CoreError> {
        let limits = self.inner.limits;
        let permit = tokio::time::timeout(
            limits.queue_timeout,
            self.inner.slots.clone().acquire_owned(),
        )
        .await
        .map_err(|_| CoreError::Overloaded {
            retry_after: Duration::from_secs(1),
        })?
        .map_err(|_| CoreError::Internal("hashing slots closed".into()))?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            span.in_scope(work)
        })
        .instrument(tracing::Span::current())
        .await
        .map_err(|e| CoreError::Internal(format!("hashing task failed: {e}")))
    }
}

fn hash_with(argon2: &Argon2<'_>, password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::encode_b64(&random_bytes::<16>())?;
    Ok(argon2
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Rules a new password must meet.
#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub min_chars: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_chars: 8 }
    }
}

impl PasswordPolicy {
    /// Checks length (in characters, at most [`Password::MAX_BYTES`] bytes) and that the
    /// password is not the account's own email or username.
    pub fn check(
        &self,
        password: &Password,
        email: &Email,
        username: Option<&Username>,
    ) -> Result<(), CoreError> {
        let text = password.expose();
        if text.chars().count() < self.min_chars {
            return Err(CoreError::WeakPassword(format!(
                "must be at least {} characters",
                self.min_chars
            )));
        }
        if text.len() > Password::MAX_BYTES {
            return Err(CoreError::WeakPassword(format!(
                "must be at most {} bytes",
                Password::MAX_BYTES
            )));
        }
        let lowered = text.to_lowercase();
        let same_as_email = lowered == email.normalized()
            || email
                .normalized()
                .split_once('@')
                .is_some_and(|(local, _)| lowered == local);
        if same_as_email {
            return Err(CoreError::WeakPassword(
                "must not be the email address".into(),
            ));
        }
        if username.is_some_and(|u| lowered == u.normalized()) {
            return Err(CoreError::WeakPassword("must not be the username".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordHasher {
        PasswordHasher::new(
            Argon2Settings {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            HashingLimits {
                max_in_flight: 2,
                queue_timeout: Duration::from_secs(5),
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = fast();
        let pw = Password::new("correct horse".into());
        let hash = hasher.hash(&pw).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(hasher.verify(Some(hash.clone()), &pw).await.unwrap());
        let wrong = Password::new("wrong horse".into());
        assert!(!hasher.verify(Some(hash), &wrong).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_users_and_garbage_hashes_never_verify() {
        let hasher = fast();
        let pw = Password::new("anything at all".into());
        assert!(!hasher.verify(None, &pw).await.unwrap());
        assert!(!hasher.verify(Some("not a hash".into()), &pw).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_is_shed_instead_of_waiting_forever() {
        let hasher = PasswordHasher::new(
            Argon2Settings::default(),
            HashingLimits {
                max_in_flight: 1,
                queue_timeout: Duration::from_millis(1),
            },
        )
        .unwrap();
        let held = hasher.inner.slots.clone().acquire_owned().await.unwrap();
        let err = hasher
            .hash(&Password::new("password123".into()))
            .await
            .unwrap_err();
        assert!(matches!(err, CoreError::Overloaded { .. }), "{err:?}");
        drop(held);
        assert!(
            hasher
                .hash(&Password::new("password123".into()))
                .await
                .is_ok()
        );
    }

    #[test]
    fn policy_rejects_short_long_and_self_referencing_passwords() {
        let policy = PasswordPolicy::default();
        let email = Email::parse("Alice.Smith@example.com").unwrap();
        let user = Username::parse("alice_s").unwrap();
        let cases = [
            ("short", "under 8 characters"),
            ("alice.smith@example.com", "the email"),
            ("ALICE.SMITH", "the local part of the email"),
            ("Alice_S", "too short anyway"),
        ];
        for (pw, why) in cases {
            let r = policy.check(&Password::new(pw.into()), &email, Some(&user));
            assert!(
                matches!(r, Err(CoreError::WeakPassword(_))),
                "{pw:?}: {why}"
            );
        }
        let long_name = Username::parse("alice_smith_long").unwrap();
        let r = policy.check(
            &Password::new("ALICE_SMITH_LONG".into()),
            &email,
            Some(&long_name),
        );
        assert!(matches!(r, Err(CoreError::WeakPassword(_))), "the username");
        let r = policy.check(&Password::new("x".repeat(1025)), &email, None);
        assert!(
            matches!(r, Err(CoreError::WeakPassword(_))),
            "over 1024 bytes"
        );
        // Eight multi-byte characters are eight characters.
        assert!(
            policy
                .check(&Password::new("ééééééééé".into()), &email, None)
                .is_ok()
        );
        assert!(
            policy
                .check(&Password::new("correct horse".into()), &email, Some(&user))
                .is_ok()
        );
    }
}
