//! The JWKS cache's rules, free of I/O and of the clock (the caller passes `now`): how long a
//! key set stays fresh, when an unknown `kid` may trigger a refetch, and what a failed fetch
//! keeps.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use http::HeaderMap;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// How the key set is cached and fetched.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// Freshness when the answer has no `Cache-Control: max-age`.
    pub default_ttl: Duration,
    /// Bounds applied to `max-age` (and to `no-cache` / `no-store`, taken as 0).
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    /// An unknown `kid`, or a failed fetch, triggers a fetch at most once per this interval.
    pub refetch_interval: Duration,
    /// Keys kept from one document; the rest are ignored.
    pub max_keys: usize,
    /// Largest JWKS document read, in bytes.
    pub max_document_bytes: usize,
    /// Time limit of one fetch.
    pub fetch_timeout: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(30),
            max_ttl: Duration::from_secs(24 * 3600),
            refetch_interval: Duration::from_secs(30),
            max_keys: 32,
            max_document_bytes: 256 * 1024,
            fetch_timeout: Duration::from_secs(5),
        }
    }
}

/// What to do for a token's `kid`.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// A fresh key.
    Hit(DecodingKey),
    /// Fetch the set first; `stale` is the key to use if that fetch fails.
    Fetch { stale: Option<DecodingKey> },
    /// Unknown, and a refetch is not allowed yet.
    Miss,
}

/// The keys of the last good document, with its freshness and the last fetch attempt.
#[derive(Default)]
pub(crate) struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fresh_until: Option<Instant>,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

impl KeyCache {
    pub(crate) fn lookup(&self, kid: &str, now: Instant, settings: &CacheSettings) -> Lookup {
        let key = self.keys.get(kid).cloned();
        let fresh = self.fresh_until.is_some_and(|until| now < until);
        match (key, fresh) {
            (Some(key), true) => Lookup::Hit(key),
            (stale, false) => Lookup::Fetch { stale },
            (None, true) if self.may_refetch(now, settings) => Lookup::Fetch { stale: None },
            (None, true) => Lookup::Miss,
        }
    }

    fn may_refetch(&self, now: Instant, settings: &CacheSettings) -> bool {
        self.last_attempt
            .is_none_or(|last| now.saturating_duration_since(last) >= settings.refetch_interval)
    }

    /// A document was fetched: its keys replace the old ones, fresh for `max_age` (bounded).
    pub(crate) fn installed(
        &mut self,
        keys: HashMap<String, DecodingKey>,
        max_age: Option<Duration>,
        now: Instant,
        settings: &CacheSettings,
    ) {
        let ttl = max_age
            .unwrap_or(settings.default_ttl)
            .clamp(settings.min_ttl, settings.max_ttl.max(settings.min_ttl));
        self.keys = keys;
        self.fresh_until = Some(now + ttl);
        self.last_attempt = Some(now);
        self.last_error = None;
    }

    /// A fetch failed: the last good keys stay (stale-if-error) and the next attempt waits
    /// for the refetch interval.
    pub(crate) fn failed(&mut self, error: String, now: Instant, settings: &CacheSettings) {
        // A set still fresh (the fetch was for an unknown kid) stays fresh as long as it was.
        let retry = now + settings.refetch_interval;
        self.fresh_until = Some(self.fresh_until.map_or(retry, |fresh| fresh.max(retry)));
        self.last_attempt = Some(now);
        self.last_error = Some(error);
    }

    pub(crate) fn get(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.get(kid).cloned()
    }

    /// Whether some key set was ever installed.
    pub(crate) fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    pub(crate) fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// `max-age` of a `Cache-Control` header; `no-cache` and `no-store` count as 0.
pub(crate) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut age = None;
    for value in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            let lower = directive.to_ascii_lowercase();
            if lower == "no-cache" || lower == "no-store" {
                return Some(Duration::ZERO);
            }
            if let Some(Ok(seconds)) = lower
                .strip_prefix("max-age=")
                .map(|s| s.trim_matches('"').parse::<u64>())
            {
                age = Some(Duration::from_secs(seconds));
            }
        }
    }
    age
}

/// The usable verification keys of a JWKS document for `algorithm`, at most `max_keys`: keys
/// without a `kid`, for another use or algorithm, symmetric (`oct`) or unreadable are skipped.
pub(crate) fn parse_keys(
    document: &[u8],
    algorithm: Algorithm,
    max_keys: usize,
) -> Result<HashMap<String, DecodingKey>, String> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document =
        serde_json::from_slice(document).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = HashMap::new();
    for value in document.keys {
        if keys.len() >= max_keys {
            tracing::warn!(max_keys, "the JWKS document has more keys than kept");
            break;
        }
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        let common = &jwk.common;
        let usable = common.key_id.is_some()
            && !matches!(common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature)
            && common
                .key_algorithm
                .is_none_or(|alg| alg == KeyAlgorithm::from(algorithm))
            && !matches!(
                jwk.algorithm,
                jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
            );
        if !usable {
            continue;
        }
        if let (Some(kid), Ok(key)) = (common.key_id.clone(), DecodingKey::from_jwk(&jwk)) {
            keys.insert(kid, key);
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CacheSettings {
        CacheSettings {
            default_ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(10),
            max_ttl: Duration::from_secs(3600),
            refetch_interval: Duration::from_secs(30),
            ..CacheSettings::default()
        }
    }

    fn keys(kids: &[&str]) -> HashMap<String, DecodingKey> {
        kids.iter()
            .map(|kid| ((*kid).to_owned(), DecodingKey::from_secret(kid.as_bytes())))
            .collect()
    }

    fn kind(lookup: Lookup) -> &'static str {
        match lookup {
            Lookup::Hit(_) => "hit",
            Lookup::Fetch { stale: Some(_) } => "fetch, stale kept",
            Lookup::Fetch { stale: None } => "fetch",
            Lookup::Miss => "miss",
        }
    }

    #[test]
    fn an_empty_cache_fetches_and_a_fresh_one_hits_until_max_age() {
        let (s, t0) = (settings(), Instant::now());
        let mut cache = KeyCache::default();
        assert_eq!(kind(cache.lookup("a", t0, &s)), "fetch");
        cache.installed(keys(&["a"]), Some(Duration::from_secs(60)), t0, &s);
        assert_eq!(
            kind(cache.lookup("a", t0 + Duration::from_secs(59), &s)),
            "hit"
        );
        assert_eq!(
            kind(cache.lookup("a", t0 + Duration::from_secs(60), &s)),
            "fetch, stale kept",
            "expired: refetched, the old key kept in case the fetch fails"
        );
    }

    #[test]
    fn max_age_is_bounded_by_the_minimum_and_maximum_ttl() {
        let (s, t0) = (settings(), Instant::now());
        let cases = [
            (Some(1), 10, "below the minimum"),
            (Some(100_000), 3600, "above the maximum"),
            (None, 300, "no max-age: the default"),
            (Some(120), 120, "within the bounds"),
        ];
        for (age, ttl, why) in cases {
            let mut cache = KeyCache::default();
            cache.installed(keys(&["a"]), age.map(Duration::from_secs), t0, &s);
            let before = t0 + Duration::from_secs(ttl - 1);
            let at = t0 + Duration::from_secs(ttl);
            assert_eq!(kind(cache.lookup("a", before, &s)), "hit", "{why}");
            assert_eq!(
                kind(cache.lookup("a", at, &s)),
                "fetch, stale kept",
                "{why}"
            );
        }
    }

    #[test]
    fn an_unknown_kid_refetches_at_most_once_per_interval() {
        let (s, t0) = (settings(), Instant::now());
        let mut cache = KeyCache::default();
        cache.installed(keys(&["a"]), None, t0, &s);
        let soon = t0 + Duration::from_secs(5);
        assert_eq!(kind(cache.lookup("b", soon, &s)), "miss", "fetched 5 s ago");
        let later = t0 + Duration::from_secs(30);
        assert_eq!(kind(cache.lookup("b", later, &s)), "fetch");
        cache.installed(keys(&["a", "b"]), None, later, &s);
        assert_eq!(kind(cache.lookup("b", later, &s)), "hit");
        assert_eq!(kind(cache.lookup("c", later, &s)), "miss", "just fetched");
    }

    #[test]
    fn a_failed_fetch_keeps_the_last_good_keys_and_waits_to_retry() {
        let (s, t0) = (settings(), Instant::now());
        let mut cache = KeyCache::default();
        cache.installed(keys(&["a"]), Some(Duration::from_secs(60)), t0, &s);
        let t1 = t0 + Duration::from_secs(61);
        cache.failed("down".into(), t1, &s);
        assert!(cache.has_keys());
        assert_eq!(cache.last_error(), Some("down"));
        assert_eq!(kind(cache.lookup("a", t1, &s)), "hit", "stale if error");
        assert_eq!(kind(cache.lookup("z", t1, &s)), "miss", "no refetch storm");
        let t2 = t1 + Duration::from_secs(30);
        assert_eq!(kind(cache.lookup("a", t2, &s)), "fetch, stale kept");

        let mut fresh = KeyCache::default();
        fresh.installed(keys(&["a"]), Some(Duration::from_secs(600)), t0, &s);
        fresh.failed("down".into(), t0 + Duration::from_secs(40), &s);
        let t3 = t0 + Duration::from_secs(500);
        assert_eq!(
            kind(fresh.lookup("a", t3, &s)),
            "hit",
            "still fresh after a failed refetch"
        );

        let mut empty = KeyCache::default();
        empty.failed("down".into(), t0, &s);
        assert!(!empty.has_keys());
        assert_eq!(kind(empty.lookup("a", t0, &s)), "miss");
    }

    #[test]
    fn cache_control_gives_max_age_and_no_store_gives_zero() {
        let cases = [
            ("public, max-age=300", Some(300), "the service's header"),
            ("max-age=\"60\", must-revalidate", Some(60), "quoted"),
            ("no-store", Some(0), "no-store"),
            ("max-age=abc", None, "garbage"),
            ("public", None, "no max-age"),
        ];
        for (value, want, why) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::CACHE_CONTROL, value.parse().unwrap());
            assert_eq!(max_age(&headers), want.map(Duration::from_secs), "{why}");
        }
        assert_eq!(max_age(&HeaderMap::new()), None);
    }

    #[test]
    fn only_usable_signature_keys_are_kept_and_their_number_is_bounded() {
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let ok = |kid: &str| serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"});
        let document = serde_json::json!({"keys": [
            ok("a"),
            {"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "rs", "alg": "RS256"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "oct"},
            {"kty": "weird", "kid": "weird"},
            "not an object",
            ok("b"),
            ok("c"),
        ]});
        let bytes = serde_json::to_vec(&document).unwrap();
        let keys = parse_keys(&bytes, Algorithm::EdDSA, 10).unwrap();
        let mut kids: Vec<_> = keys.keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, ["a", "b", "c"]);
        assert_eq!(parse_keys(&bytes, Algorithm::EdDSA, 2).unwrap().len(), 2);
        assert!(parse_keys(b"{\"keys\": 5}", Algorithm::EdDSA, 2).is_err());
        assert!(parse_keys(b"\xff", Algorithm::EdDSA, 2).is_err());
    }
}
