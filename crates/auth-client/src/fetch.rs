//! The JWKS source: fetches the key set over HTTP into the cache, one fetch at a time (callers
//! that miss together wait for the same fetch), with a size and time limit.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey};

use crate::error::VerifyError;
use crate::jwks::{CacheSettings, KeyCache, Lookup, max_age, parse_keys};

pub(crate) struct KeySource {
    url: reqwest::Url,
    http: reqwest::Client,
    algorithm: Algorithm,
    settings: CacheSettings,
    cache: RwLock<KeyCache>,
    /// Held while fetching: concurrent misses wait for one fetch, then look again.
    fetching: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

impl KeySource {
    pub(crate) fn new(
        url: reqwest::Url,
        http: reqwest::Client,
        algorithm: Algorithm,
        settings: CacheSettings,
    ) -> Self {
        Self {
            url,
            http,
            algorithm,
            settings,
            cache: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
        }
    }

    fn lookup(&self, kid: &str) -> Lookup {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        cache.lookup(kid, Instant::now(), &self.settings)
    }

    /// The refusal for a `kid` that is not known and may not be fetched now.
    fn miss(&self) -> VerifyError {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        if cache.has_keys() {
            VerifyError::UnknownKey
        } else {
            let why = cache.last_error().unwrap_or("no key set fetched yet");
            VerifyError::KeysUnavailable(why.to_owned())
        }
    }

    /// The key of `kid`, fetching the set when it is stale or the `kid` is new (at most once
    /// per refetch interval).
    pub(crate) async fn key(&self, kid: &str) -> Result<DecodingKey, VerifyError> {
        match self.lookup(kid) {
            Lookup::Hit(key) => return Ok(key),
            Lookup::Miss => return Err(self.miss()),
            Lookup::Fetch { .. } => {}
        }
        let _fetching = self.fetching.lock().await;
        // Whoever held the lock before may have fetched what we need, or used the interval.
        let stale = match self.lookup(kid) {
            Lookup::Hit(key) => return Ok(key),
            Lookup::Miss => return Err(self.miss()),
            Lookup::Fetch { stale } => stale,
        };
        match self.fetch_and_install().await {
            // Just fetched: the key is used whatever the document's max-age.
            Ok(()) => {
                let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
                cache.get(kid).ok_or(VerifyError::UnknownKey)
            }
            Err(_) => stale.ok_or_else(|| self.miss()),
        }
    }

    /// Fetches the set now, whatever its freshness; returns how many keys it holds.
    pub(crate) async fn refresh(&self) -> Result<usize, VerifyError> {
        let _fetching = self.fetching.lock().await;
        self.fetch_and_install().await?;
        Ok(self.cache.read().unwrap_or_else(|e| e.into_inner()).len())
    }

    async fn fetch_and_install(&self) -> Result<(), VerifyError> {
        let fetched = self.fetch().await;
        let now = Instant::now();
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        match fetched {
            Ok((keys, max_age)) => {
                tracing::debug!(url = %self.url, keys = keys.len(), "fetched the JWKS");
                cache.installed(keys, max_age, now, &self.settings);
                Ok(())
            }
            Err(error) => {
                tracing::warn!(url = %self.url, %error, "JWKS fetch failed; keeping the last keys");
                cache.failed(error.clone(), now, &self.settings);
                Err(VerifyError::KeysUnavailable(error))
            }
        }
    }

    async fn fetch(&self) -> Result<(HashMap<String, DecodingKey>, Option<Duration>), String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let url = &self.url;
        let limit = self.settings.max_document_bytes;
        let mut response = self
            .http
            .get(url.clone())
            .header(http::header::ACCEPT, "application/json")
            .timeout(self.settings.fetch_timeout)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url} answered {}", response.status()));
        }
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(format!("GET {url}: document larger than {limit} bytes"));
        }
        let max_age = max_age(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?
        {
            if body.len() + chunk.len() > limit {
                return Err(format!("GET {url}: document larger than {limit} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let keys = parse_keys(&body, self.algorithm, self.settings.max_keys)?;
        Ok((keys, max_age))
    }

    /// How many fetches were started (for tests and metrics).
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }
}
