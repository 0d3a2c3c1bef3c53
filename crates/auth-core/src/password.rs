//! Password hashing (Argon2id on dedicated low-priority threads, a bounded number in flight) and the
//! password policy (NIST SP 800-63B: length limits, no composition rules).

use std::sync::Arc;
use std::time::Duration;

use std::sync::Mutex;

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::CoreError;
use crate::domain::{Email, Password, Username};
use crate::error::HashingError;
use crate::secret::{ct_eq, random_bytes};

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
    threads: std::sync::mpsc::Sender<Job>,
}

struct Inner {
    argon2: Argon2<'static>,
    settings: Argon2Settings,
    /// Places of admitted hashes: `max_in_flight` running on the hashing threads and as many
    /// more prepared behind them (a login reading its user), so that a thread finishing a hash
    /// finds the next one queued instead of waiting for a database read.
    slots: Arc<Semaphore>,
    limits: HashingLimits,
    /// Verified instead of a real hash when the user does not exist, so both cost the same.
    dummy_hash: String,
    /// Argon2 working memory, reused: at most one buffer per hashing slot is kept, so memory
    /// stays at `max_in_flight` x `memory_kib` however many hashes run over time, and no hash
    /// pays for allocating and faulting in fresh pages.
    buffers: Mutex<Vec<Vec<Block>>>,
}

impl Inner {
    /// Runs `f` with at least `blocks` blocks of working memory.
    fn with_memory<T>(&self, blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let standard = self.settings.memory_kib as usize;
        let pooled = (blocks <= standard)
            .then(|| self.buffers.lock().unwrap_or_else(|e| e.into_inner()).pop())
            .flatten();
        let mut buffer = pooled.unwrap_or_else(|| vec![Block::default(); blocks.max(standard)]);
        let result = f(&mut buffer);
        if buffer.len() == standard {
            let mut pool = self.buffers.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < self.limits.max_in_flight {
                pool.push(buffer);
            }
        }
        result
    }

    /// Hashes with the configured parameters into a PHC string.
    fn hash(&self, password: &str) -> Result<String, argon2::Error> {
        let salt = random_bytes::<16>();
        let mut out = [0u8; 32];
        let blocks = self.settings.memory_kib as usize;
        self.with_memory(blocks, |mem| {
            self.argon2
                .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, mem)
        })?;
        let Argon2Settings {
            memory_kib,
            iterations,
            parallelism,
        } = self.settings;
        Ok(format!(
            "$argon2id$v=19$m={memory_kib},t={iterations},p={parallelism}${}${}",
            STANDARD_NO_PAD.encode(salt),
            STANDARD_NO_PAD.encode(out)
        ))
    }

    /// Verifies against any Argon2 PHC string (its own parameters, variant and version).
    fn verify(&self, hash: &str, password: &str) -> Result<bool, String> {
        let parsed = PasswordHash::new(hash).map_err(|e| e.to_string())?;
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| e.to_string())?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(|e| e.to_string())?
            .unwrap_or(Version::V0x13);
        let params = Params::try_from(&parsed).map_err(|e| e.to_string())?;
        let expected = parsed.hash.ok_or("hash has no output")?;
        let mut salt_buf = [0u8; 64];
        let salt = parsed
            .salt
            .ok_or("hash has no salt")?
            .decode_b64(&mut salt_buf)
            .map_err(|e| e.to_string())?;
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let mut out = vec![0u8; expected.len()];
        self.with_memory(params.block_count(), |mem| {
            argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, mem)
        })
        .map_err(|e| e.to_string())?;
        Ok(ct_eq(&out, expected.as_bytes()))
    }
}

impl PasswordHasher {
    pub fn new(settings: Argon2Settings, limits: HashingLimits) -> Result<Self, String> {
        let params = settings.params()?;
        if limits.max_in_flight == 0 {
            return Err("the number of hashes in flight must be at least 1".into());
        }
        let mut inner = Inner {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            settings,
            slots: Arc::new(Semaphore::new(limits.max_in_flight * ADMITTED_PER_THREAD)),
            limits,
            dummy_hash: String::new(),
            buffers: Mutex::new(Vec::new()),
        };
        inner.dummy_hash = inner
            .hash(&crate::secret::b64url(&random_bytes::<16>()))
            .map_err(|e| format!("cannot compute the dummy hash: {e}"))?;
        // Idle instances keep no hashing memory; the pool refills on first use.
        inner
            .buffers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(Self {
            inner: Arc::new(inner),
            threads: spawn_hashing_threads(limits.max_in_flight)?,
        })
    }

    /// Takes a place among the admitted hashes, waiting at most the queue timeout for one
    /// ([`CoreError::Overloaded`] otherwise). A request that needs a hash takes it before any
    /// other work (a login before reading its user), so a request that will be shed costs
    /// nothing but its wait. The place is given back when the ticket's hash is done or the
    /// ticket is dropped.
    pub async fn admit(&self) -> Result<HashTicket, CoreError> {
        let permit = tokio::time::timeout(
            self.inner.limits.queue_timeout,
            self.inner.slots.clone().acquire_owned(),
        )
        .await
        .map_err(|_| CoreError::Overloaded {
            retry_after: Duration::from_secs(1),
        })?
        .map_err(|_| HashingError::Closed)?;
        Ok(HashTicket {
            hasher: self.clone(),
            permit,
        })
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, CoreError> {
        self.admit().await?.hash(password).await
    }

    /// Verifies `password` against `hash`, or against the dummy hash when `hash` is `None`
    /// (unknown user) so that both take the same time; the latter always answers `false`.
    /// An unparsable stored hash counts as a mismatch (and is logged).
    pub async fn verify(
        &self,
        hash: Option<String>,
        password: &Password,
    ) -> Result<bool, CoreError> {
        self.admit().await?.verify(hash, password).await
    }

    /// Number of admitted hashes: running, queued for a thread or being prepared.
    pub fn in_flight(&self) -> usize {
        self.inner.limits.max_in_flight * ADMITTED_PER_THREAD - self.inner.slots.available_permits()
    }
}

/// Admitted hashes per hashing thread: one running, one prepared behind it.
const ADMITTED_PER_THREAD: usize = 2;

/// A place among the admitted hashes ([`PasswordHasher::admit`]), spent by one hash.
pub struct HashTicket {
    hasher: PasswordHasher,
    permit: OwnedSemaphorePermit,
}

impl HashTicket {
    /// [`PasswordHasher::hash`] in this ticket's place.
    pub async fn hash(self, password: &Password) -> Result<String, CoreError> {
        let inner = self.hasher.inner.clone();
        let password = password.clone();
        self.run(move || inner.hash(password.expose()))
            .await?
            .map_err(|e| HashingError::Argon2(e.to_string()).into())
    }

    /// [`PasswordHasher::verify`] in this ticket's place.
    pub async fn verify(
        self,
        hash: Option<String>,
        password: &Password,
    ) -> Result<bool, CoreError> {
        let inner = self.hasher.inner.clone();
        let password = password.clone();
        self.run(move || {
            let known = hash.is_some();
            let hash = hash.as_deref().unwrap_or(&inner.dummy_hash);
            match inner.verify(hash, password.expose()) {
                Ok(ok) => ok && known,
                Err(e) => {
                    tracing::error!(error = %e, "stored password hash cannot be used");
                    false
                }
            }
        })
        .await
    }

    /// Runs `work` on a hashing thread (queued behind the running hashes when every thread is
    /// busy); the ticket's place is given back when it is done.
    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CoreError> {
        let Self { hasher, permit } = self;
        let span = tracing::Span::current();
        let (done, result) = tokio::sync::oneshot::channel();
        hasher
            .threads
            .send(Box::new(move || {
                let out = span.in_scope(work);
                // The place is free before the answer is, so whoever reads the answer sees it.
                drop(permit);
                let _ = done.send(out);
            }))
            .map_err(|_| HashingError::ThreadsStopped)?;
        result.await.map_err(|_| HashingError::TaskLost.into())
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Starts `n` hashing threads at the lowest CPU priority: when requests that need no hash
/// (token verification, refresh) want the CPU, the kernel gives it to them first, so a login
/// flood cannot starve them; when the CPU is otherwise idle, hashing uses all of it.
fn spawn_hashing_threads(n: usize) -> Result<std::sync::mpsc::Sender<Job>, String> {
    let (sender, receiver) = std::sync::mpsc::channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    for i in 0..n {
        let receiver = receiver.clone();
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                lower_priority();
                loop {
                    let job = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            })
            .map_err(|e| format!("cannot start hashing threads: {e}"))?;
    }
    Ok(sender)
}

#[cfg(unix)]
fn lower_priority() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);
    if let Err(e) = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, policy)
    {
        tracing::warn!(error = ?e, "cannot lower the priority of a hashing thread");
    }
}

#[cfg(not(unix))]
fn lower_priority() {}

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
    /// Checks length (in characters, at most [`Password::MAX_CHARS`]) and that the
    /// password is not the account's own email or username.
    pub fn check(
        &self,
        password: &Password,
        email: &Email,
        username: Option<&Username>,
    ) -> Result<(), CoreError> {
        let text = password.expose();
        let chars = text.chars().count();
        if chars < self.min_chars {
            return Err(CoreError::WeakPassword(format!(
                "must be at least {} characters",
                self.min_chars
            )));
        }
        if chars > Password::MAX_CHARS {
            return Err(CoreError::WeakPassword(format!(
                "must be at most {} characters",
                Password::MAX_CHARS
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
        crate::testing::cheap_hasher(2)
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
    async fn hashes_from_the_reference_implementation_verify_and_ours_verify_there() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
        let hasher = fast();
        let pw = Password::new("correct horse".into());
        // Other parameters and the argon2i variant, as other services may have stored them.
        let reference = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(128, 2, 1, None).unwrap(),
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let theirs = reference
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(hasher.verify(Some(theirs.clone()), &pw).await.unwrap());
        assert!(
            !hasher
                .verify(Some(theirs), &Password::new("wrong".into()))
                .await
                .unwrap()
        );
        let ours = hasher.hash(&pw).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            hasher.inner.buffers.lock().unwrap().len() <= 2,
            "the pool is bounded"
        );
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
        // One thread: one hash running and one prepared behind it are admitted, no more.
        let running = hasher.admit().await.unwrap();
        let prepared = hasher.admit().await.unwrap();
        let err = hasher.admit().await.err().unwrap();
        assert!(matches!(err, CoreError::Overloaded { .. }), "{err:?}");
        let err = hasher
            .hash(&Password::new("password123".into()))
            .await
            .unwrap_err();
        assert!(matches!(err, CoreError::Overloaded { .. }), "{err:?}");
        assert_eq!(hasher.in_flight(), 2);
        // A ticket dropped unused (a login whose user read failed) gives its place back.
        drop(prepared);
        let pw = Password::new("password123".into());
        let third = hasher.admit().await.unwrap();
        let (a, b) = tokio::join!(running.hash(&pw), third.verify(None, &pw));
        assert!(a.is_ok());
        assert!(!b.unwrap());
        assert_eq!(hasher.in_flight(), 0);
        assert!(hasher.hash(&pw).await.is_ok());
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
            "over 1024 characters"
        );
        // Counted in characters, as the document's `maxLength` counts them: 1024 of them
        // pass whatever their size in bytes.
        assert!(
            policy
                .check(&Password::new("é".repeat(1024)), &email, None)
                .is_ok()
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
