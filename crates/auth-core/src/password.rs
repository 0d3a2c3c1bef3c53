//! Password hashing (Argon2id on dedicated low-priority threads, a bounded number in flight),
//! verification of this service's and legacy hash formats ([`formats`]) with re-hashing of
//! outdated ones, and the password policy ([`policy`], NIST SP 800-63B-4).

pub mod formats;
pub mod policy;

pub use formats::{HashKind, identify};
pub use policy::{PasswordPolicy, normalize};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use std::sync::Mutex;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::CoreError;
use crate::domain::Password;
use crate::error::HashingError;
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
    /// Requests waiting for a place (the queue before the admitted hashes).
    waiting: AtomicUsize,
    /// Requests refused after waiting the whole queue timeout.
    shed: AtomicU64,
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

    /// Verifies against a user's stored hash, or the dummy hash for an unknown user (never a
    /// match). An unusable stored hash counts as a mismatch and is logged.
    fn verify_known(&self, hash: Option<String>, password: &str) -> Verification {
        let known = hash.is_some();
        let hash = hash.as_deref().unwrap_or(&self.dummy_hash);
        match self.verify(hash, password) {
            Ok(found) if known => found,
            Ok(_) => Verification::default(),
            Err(e) => {
                tracing::error!(error = %e, "stored password hash cannot be used");
                Verification::default()
            }
        }
    }

    /// Hashes with the configured parameters into a PHC string.
    fn hash(&self, password: &str) -> Result<String, argon2::Error> {
        let salt = random_bytes::<16>();
        let mut out = [0u8; 32];
        let blocks = self.settings.memory_kib as usize;
        self.with_memory(blocks, |mem| {
            self.argon2.hash_password_into_with_memory(
                normalize(password).as_bytes(),
                &salt,
                &mut out,
                mem,
            )
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

    /// Verifies `password` against a stored hash of any supported format: its NFKC form
    /// first, then, when that differs, the text as typed (hashes made before normalisation,
    /// and by the services this one replaces, are of the text as typed).
    fn verify(&self, stored: &str, password: &str) -> Result<Verification, String> {
        let normalized = normalize(password);
        let mut candidates = vec![normalized.as_ref()];
        if normalized != password {
            candidates.push(password);
        }
        for (i, candidate) in candidates.into_iter().enumerate() {
            let checked =
                formats::verify(stored, candidate.as_bytes(), &self.settings, |blocks, f| {
                    self.with_memory(blocks, |mem| f(mem))
                })?;
            if checked.matched {
                return Ok(Verification {
                    matched: true,
                    kind: Some(checked.kind),
                    outdated: !checked.current || i > 0,
                });
            }
        }
        Ok(Verification::default())
    }
}

/// What a password verification found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verification {
    pub matched: bool,
    /// The stored hash's format, when it matched.
    pub kind: Option<HashKind>,
    /// It matched, but the stored hash is not the current scheme (a legacy format, other
    /// Argon2 parameters, or a hash of the text before NFKC normalisation).
    pub outdated: bool,
}

/// A successful login's verification, with the password re-hashed when the stored hash was
/// outdated (see [`HashTicket::verify_and_upgrade`]). Not `Debug`: it may hold a new hash.
#[derive(Clone, Default)]
pub struct Verified {
    pub matched: bool,
    /// The new hash to store in place of the outdated one, and the old one's format.
    pub upgrade: Option<(String, HashKind)>,
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
            waiting: AtomicUsize::new(0),
            shed: AtomicU64::new(0),
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
        let slots = &self.inner.slots;
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return Err(HashingError::Closed.into()),
            Err(TryAcquireError::NoPermits) => {
                let _queued = Queued::enter(&self.inner.waiting);
                let timeout = self.inner.limits.queue_timeout;
                match tokio::time::timeout(timeout, slots.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) => return Err(HashingError::Closed.into()),
                    Err(_) => {
                        self.inner.shed.fetch_add(1, Ordering::Relaxed);
                        return Err(CoreError::Overloaded {
                            retry_after: Duration::from_secs(1),
                        });
                    }
                }
            }
        };
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

    /// Requests waiting for a place among the admitted hashes.
    pub fn queued(&self) -> usize {
        self.inner.waiting.load(Ordering::Relaxed)
    }

    /// Requests refused so far because no place freed up within the queue timeout.
    pub fn shed(&self) -> u64 {
        self.inner.shed.load(Ordering::Relaxed)
    }
}

/// One request counted among those waiting while it lives (a request whose client left while
/// waiting is dropped, and leaves the count with it).
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
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
        self.run(move || inner.verify_known(hash, password.expose()).matched)
            .await
    }

    /// Verifies like [`HashTicket::verify`] and, when the password matched a hash that is
    /// outdated (a legacy format, other Argon2 parameters, the text before normalisation),
    /// hashes it again with the current scheme in the same turn on the hashing thread, so
    /// the caller can store the new hash with the rest of its write.
    pub async fn verify_and_upgrade(
        self,
        hash: Option<String>,
        password: &Password,
    ) -> Result<Verified, CoreError> {
        let inner = self.hasher.inner.clone();
        let password = password.clone();
        self.run(move || {
            let found = inner.verify_known(hash, password.expose());
            let upgrade = match (found.matched && found.outdated, found.kind) {
                (true, Some(kind)) => match inner.hash(password.expose()) {
                    Ok(new) => Some((new, kind)),
                    Err(e) => {
                        // The login goes on with the old hash; the next one tries again.
                        tracing::error!(error = %e, "cannot re-hash an outdated password hash");
                        None
                    }
                },
                _ => None,
            };
            Verified {
                matched: found.matched,
                upgrade,
            }
        })
        .await
    }

    /// Whether `password` matches any of `hashes` (a user's current hash and password
    /// history): one verification per hash, all in this ticket's turn, so callers bound the
    /// list ([`PasswordPolicy::MAX_HISTORY`]).
    pub async fn matches_any(
        self,
        hashes: Vec<String>,
        password: &Password,
    ) -> Result<bool, CoreError> {
        let inner = self.hasher.inner.clone();
        let password = password.clone();
        self.run(move || {
            hashes.iter().any(|h| {
                inner
                    .verify_known(Some(h.clone()), password.expose())
                    .matched
            })
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

#[cfg(test)]
mod tests;
