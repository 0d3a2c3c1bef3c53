//! The stored hash formats a password may be verified against: this service's Argon2 PHC
//! strings (any parameters) and the legacy formats of the services it replaces (bcrypt as
//! passlib writes it, Django's `pbkdf2_sha256$`, `bcrypt_sha256$`, `bcrypt$` and `argon2$`).
//! Each is recognised in full (what import accepts) and verified in constant time; costs are
//! bounded so that a stored hash cannot make a login run for minutes.

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use sha2::{Digest, Sha256};

use super::Argon2Settings;
use crate::secret::ct_eq;

/// Highest bcrypt cost verified (2^16 rounds, some 17 s): above it a hash is refused.
pub const MAX_BCRYPT_COST: u32 = 16;
/// Highest PBKDF2 iteration count verified (Django 5.2 writes 1,000,000).
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// Highest Argon2 memory verified, in KiB (1 GiB).
pub const MAX_ARGON2_MEMORY_KIB: u32 = 1 << 20;
/// Highest Argon2 time cost verified.
pub const MAX_ARGON2_ITERATIONS: u32 = 64;

/// The family of a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// An Argon2 PHC string (`$argon2id$...`, also `$argon2i$` / `$argon2d$`).
    Argon2,
    /// bcrypt, `$2a$`, `$2b$`, `$2x$`, `$2y$` (passlib, PHP, Node).
    Bcrypt,
    /// Django's `pbkdf2_sha256$ITERATIONS$SALT$HASH`.
    DjangoPbkdf2Sha256,
    /// Django's `bcrypt_sha256$$2b$...` (bcrypt of the hex SHA-256 of the password).
    DjangoBcryptSha256,
    /// Django's `bcrypt$$2b$...` (plain bcrypt).
    DjangoBcrypt,
    /// Django's `argon2$argon2id$...` (an Argon2 PHC string behind Django's prefix).
    DjangoArgon2,
}

impl HashKind {
    /// The name used in logs, audit details and import reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Argon2 => "argon2",
            Self::Bcrypt => "bcrypt",
            Self::DjangoPbkdf2Sha256 => "django_pbkdf2_sha256",
            Self::DjangoBcryptSha256 => "django_bcrypt_sha256",
            Self::DjangoBcrypt => "django_bcrypt",
            Self::DjangoArgon2 => "django_argon2",
        }
    }
}

/// A stored hash, parsed.
enum Parsed<'a> {
    Argon2(PasswordHash<'a>),
    Bcrypt(BcryptHash),
    Pbkdf2 {
        iterations: u32,
        salt: &'a str,
        hash: Vec<u8>,
    },
}

struct BcryptHash {
    cost: u32,
    salt: [u8; 16],
    hash: [u8; 23],
}

/// bcrypt's own base64 alphabet; lenient about the unused bits of the last character, as
/// other implementations are.
const BCRYPT_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::BCRYPT,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

fn parse_bcrypt(text: &str) -> Result<BcryptHash, String> {
    // $2b$12$ + 22 characters of salt + 31 of hash.
    let rest = ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .find_map(|p| text.strip_prefix(p))
        .ok_or("not a bcrypt hash")?;
    let (cost, data) = rest.split_once('$').ok_or("bcrypt hash without a cost")?;
    if cost.len() != 2 || !cost.bytes().all(|b| b.is_ascii_digit()) {
        return Err("bcrypt cost must be two digits".into());
    }
    let cost: u32 = cost.parse().map_err(|_| "bcrypt cost is not a number")?;
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(format!("bcrypt cost must be 4 to {MAX_BCRYPT_COST}"));
    }
    if data.len() != 53 || !data.is_ascii() {
        return Err("bcrypt salt and hash must be 53 characters".into());
    }
    let salt: [u8; 16] = BCRYPT_B64
        .decode(&data[..22])
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or("bcrypt salt is not valid")?;
    let hash: [u8; 23] = BCRYPT_B64
        .decode(&data[22..])
        .ok()
        .and_then(|h| h.try_into().ok())
        .ok_or("bcrypt hash is not valid")?;
    Ok(BcryptHash { cost, salt, hash })
}

fn parse_argon2(text: &str) -> Result<PasswordHash<'_>, String> {
    let parsed = PasswordHash::new(text).map_err(|e| format!("not an Argon2 hash: {e}"))?;
    Algorithm::try_from(parsed.algorithm).map_err(|e| e.to_string())?;
    if let Some(v) = parsed.version {
        Version::try_from(v).map_err(|e| e.to_string())?;
    }
    let params = Params::try_from(&parsed).map_err(|e| e.to_string())?;
    if params.m_cost() > MAX_ARGON2_MEMORY_KIB || params.t_cost() > MAX_ARGON2_ITERATIONS {
        return Err("Argon2 parameters above the limits verified".into());
    }
    let salt = parsed.salt.ok_or("Argon2 hash has no salt")?;
    let mut buf = [0u8; 64];
    salt.decode_b64(&mut buf).map_err(|e| e.to_string())?;
    let out = parsed.hash.ok_or("Argon2 hash has no output")?;
    if out.len() < 16 {
        return Err("Argon2 output shorter than 16 bytes".into());
    }
    Ok(parsed)
}

fn parse_pbkdf2(rest: &str) -> Result<Parsed<'_>, String> {
    let mut parts = rest.splitn(3, '$');
    let (Some(iterations), Some(salt), Some(hash)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err("pbkdf2_sha256 hash must be pbkdf2_sha256$ITERATIONS$SALT$HASH".into());
    };
    if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
        return Err("pbkdf2_sha256 iterations must be a number".into());
    }
    let iterations: u32 = iterations
        .parse()
        .map_err(|_| "pbkdf2_sha256 iterations out of range")?;
    if !(1..=MAX_PBKDF2_ITERATIONS).contains(&iterations) {
        return Err(format!(
            "pbkdf2_sha256 iterations must be 1 to {MAX_PBKDF2_ITERATIONS}"
        ));
    }
    if salt.is_empty() || salt.contains('$') {
        return Err("pbkdf2_sha256 salt must not be empty".into());
    }
    let hash = STANDARD
        .decode(hash)
        .map_err(|_| "pbkdf2_sha256 hash is not base64")?;
    if hash.len() != 32 {
        return Err("pbkdf2_sha256 hash must be 32 bytes".into());
    }
    Ok(Parsed::Pbkdf2 {
        iterations,
        salt,
        hash,
    })
}

fn parse(text: &str) -> Result<(HashKind, Parsed<'_>), String> {
    if let Some(rest) = text.strip_prefix("pbkdf2_sha256$") {
        return Ok((HashKind::DjangoPbkdf2Sha256, parse_pbkdf2(rest)?));
    }
    if let Some(rest) = text.strip_prefix("bcrypt_sha256$") {
        let bcrypt = parse_bcrypt(rest)?;
        return Ok((HashKind::DjangoBcryptSha256, Parsed::Bcrypt(bcrypt)));
    }
    if let Some(rest) = text.strip_prefix("bcrypt$") {
        return Ok((HashKind::DjangoBcrypt, Parsed::Bcrypt(parse_bcrypt(rest)?)));
    }
    // Django writes `argon2` followed by argon2-cffi's PHC string: `argon2$argon2id$v=19$...`.
    if let Some(rest) = text
        .strip_prefix("argon2")
        .filter(|r| r.starts_with("$argon2"))
    {
        return Ok((HashKind::DjangoArgon2, Parsed::Argon2(parse_argon2(rest)?)));
    }
    if text.starts_with("$2") {
        return Ok((HashKind::Bcrypt, Parsed::Bcrypt(parse_bcrypt(text)?)));
    }
    if text.starts_with("$argon2") {
        return Ok((HashKind::Argon2, Parsed::Argon2(parse_argon2(text)?)));
    }
    if text.starts_with('!') {
        return Err("an unusable password (Django's `!` marker): no password can log in".into());
    }
    Err("unknown password hash format".into())
}

/// The format of a stored hash, or why it is not one this service can verify (what import
/// refuses). Nothing is computed: only the text is checked.
pub fn identify(text: &str) -> Result<HashKind, String> {
    parse(text).map(|(kind, _)| kind)
}

/// What verifying a candidate against a stored hash found.
pub(super) struct Checked {
    pub matched: bool,
    pub kind: HashKind,
    /// Whether the hash is this service's current scheme (Argon2id, version 0x13, the
    /// configured parameters); when it is not, a successful login re-hashes the password.
    pub current: bool,
}

/// Verifies `candidate` against `stored`, using `memory` for Argon2 (see
/// `Inner::with_memory`). Runs on a hashing thread.
pub(super) fn verify(
    stored: &str,
    candidate: &[u8],
    settings: &Argon2Settings,
    memory: impl FnOnce(usize, &mut dyn FnMut(&mut [Block]) -> Result<(), String>) -> Result<(), String>,
) -> Result<Checked, String> {
    let (kind, parsed) = parse(stored)?;
    let (matched, current) = match parsed {
        Parsed::Argon2(hash) => verify_argon2(&hash, candidate, settings, memory)?,
        Parsed::Bcrypt(hash) => {
            let digest;
            let input = if kind == HashKind::DjangoBcryptSha256 {
                // Django: bcrypt of the lower-case hex SHA-256 of the password.
                digest = hex(&Sha256::digest(candidate));
                digest.as_bytes()
            } else {
                candidate
            };
            (bcrypt_matches(&hash, input), false)
        }
        Parsed::Pbkdf2 {
            iterations,
            salt,
            hash,
        } => {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(candidate, salt.as_bytes(), iterations, &mut out);
            (ct_eq(&out, &hash), false)
        }
    };
    Ok(Checked {
        matched,
        kind,
        // Django's `argon2$` form is rewritten as a plain PHC string even with our parameters.
        current: current && kind == HashKind::Argon2,
    })
}

fn verify_argon2(
    parsed: &PasswordHash<'_>,
    candidate: &[u8],
    settings: &Argon2Settings,
    memory: impl FnOnce(usize, &mut dyn FnMut(&mut [Block]) -> Result<(), String>) -> Result<(), String>,
) -> Result<(bool, bool), String> {
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| e.to_string())?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| e.to_string())?
        .unwrap_or(Version::V0x13);
    let params = Params::try_from(parsed).map_err(|e| e.to_string())?;
    let expected = parsed.hash.ok_or("hash has no output")?;
    let mut salt_buf = [0u8; 64];
    let salt = parsed
        .salt
        .ok_or("hash has no salt")?
        .decode_b64(&mut salt_buf)
        .map_err(|e| e.to_string())?;
    let current = algorithm == Algorithm::Argon2id
        && version == Version::V0x13
        && params.m_cost() == settings.memory_kib
        && params.t_cost() == settings.iterations
        && params.p_cost() == settings.parallelism;
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    memory(params.block_count(), &mut |mem| {
        argon2
            .hash_password_into_with_memory(candidate, salt, &mut out, mem)
            .map_err(|e| e.to_string())
    })?;
    Ok((ct_eq(&out, expected.as_bytes()), current))
}

fn bcrypt_matches(hash: &BcryptHash, password: &[u8]) -> bool {
    // The password with its terminating NUL, at most 72 bytes (what every bcrypt reads).
    let mut input = Vec::with_capacity(password.len() + 1);
    input.extend_from_slice(password);
    input.push(0);
    input.truncate(72);
    let out = bcrypt::bcrypt(hash.cost, hash.salt, &input);
    input.iter_mut().for_each(|b| *b = 0);
    ct_eq(&out[..23], &hash.hash)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_recognised_in_full_and_anything_else_is_refused_with_a_reason() {
        let ok = [
            (
                "$2b$04$abcdefghijklmnopqrstuuGhrfHRvb.bcB9ftAFxDCEpHaS2tH6pS",
                HashKind::Bcrypt,
            ),
            (
                "pbkdf2_sha256$1000$salt$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=",
                HashKind::DjangoPbkdf2Sha256,
            ),
        ];
        for (text, kind) in ok {
            assert_eq!(identify(text), Ok(kind), "{text}");
        }
        let bad = [
            ("", "empty"),
            ("plaintext", "no format"),
            ("md5$abc$def", "a Django hasher not supported"),
            ("!unusable", "Django's unusable marker"),
            (
                "$2b$99$abcdefghijklmnopqrstuuGhrfHRvb.bcB9ftAFxDCEpHaS2tH6pS",
                "cost",
            ),
            ("$2b$04$short", "truncated"),
            ("pbkdf2_sha256$x$salt$aGFzaA==", "iterations not a number"),
            (
                "pbkdf2_sha256$99999999999$salt$aGFzaA==",
                "iterations too high",
            ),
            ("pbkdf2_sha256$1000$salt$aGFzaA==", "hash too short"),
            (
                "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                "memory",
            ),
        ];
        for (text, why) in bad {
            assert!(identify(text).is_err(), "{text:?}: {why}");
        }
    }

    /// Hashes made by Django, passlib (libpass) and argon2-cffi themselves; see
    /// `tests/fixtures/make_legacy_hashes.py` for how.
    const FIXTURES: &str = include_str!("../../tests/fixtures/legacy-hashes.json");

    #[tokio::test]
    async fn hashes_made_by_the_python_libraries_verify_and_are_upgraded() {
        let hasher = crate::testing::cheap_hasher(2);
        let doc: serde_json::Value = serde_json::from_str(FIXTURES).unwrap();
        let fixtures = doc["fixtures"].as_array().unwrap();
        assert!(fixtures.len() >= 18);
        for f in fixtures {
            let (name, form) = (
                f["format"].as_str().unwrap(),
                f["password_form"].as_str().unwrap(),
            );
            let what = format!("{name} ({form})");
            let hash = f["hash"].as_str().unwrap().to_owned();
            let password = crate::domain::Password::new(f["password"].as_str().unwrap().into());
            assert!(identify(&hash).is_ok(), "{what}: {:?}", identify(&hash));
            let wrong = crate::domain::Password::new("correct horse battery stapler".into());
            assert!(
                !hasher.verify(Some(hash.clone()), &wrong).await.unwrap(),
                "{what}: wrong password"
            );
            let found = hasher
                .admit()
                .await
                .unwrap()
                .verify_and_upgrade(Some(hash.clone()), &password)
                .await
                .unwrap();
            assert!(found.matched, "{what}");
            let (new, _) = found
                .upgrade
                .unwrap_or_else(|| panic!("{what}: not upgraded"));
            assert!(
                new.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
                "{what}: {new}"
            );
            // The new hash is of the NFKC form: composed and decomposed input both verify.
            let nfc: String =
                unicode_normalization::UnicodeNormalization::nfc(password.expose()).collect();
            let nfd: String =
                unicode_normalization::UnicodeNormalization::nfd(password.expose()).collect();
            for typed in [nfc.clone(), nfd] {
                let again = hasher
                    .admit()
                    .await
                    .unwrap()
                    .verify_and_upgrade(Some(new.clone()), &crate::domain::Password::new(typed))
                    .await
                    .unwrap();
                assert!(
                    again.matched && again.upgrade.is_none(),
                    "{what}: the upgraded hash"
                );
            }
            if form == "nfd" {
                // Before the upgrade, a legacy hash of decomposed text verifies only as typed.
                let composed = crate::domain::Password::new(nfc);
                assert!(
                    !hasher.verify(Some(hash), &composed).await.unwrap(),
                    "{what}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_current_hash_is_not_upgraded_and_other_argon2_parameters_are() {
        let hasher = crate::testing::cheap_hasher(1);
        let pw = crate::domain::Password::new("correct horse battery staple".into());
        let ours = hasher.hash(&pw).await.unwrap();
        let found = hasher
            .admit()
            .await
            .unwrap()
            .verify_and_upgrade(Some(ours), &pw)
            .await
            .unwrap();
        assert!(found.matched && found.upgrade.is_none());
        let strong = super::super::PasswordHasher::new(
            Argon2Settings {
                memory_kib: 128,
                iterations: 1,
                parallelism: 1,
            },
            super::super::HashingLimits {
                max_in_flight: 1,
                queue_timeout: std::time::Duration::from_secs(5),
            },
        )
        .unwrap();
        let found = strong
            .admit()
            .await
            .unwrap()
            .verify_and_upgrade(Some(hasher.hash(&pw).await.unwrap()), &pw)
            .await
            .unwrap();
        let (new, kind) = found.upgrade.expect("other parameters are upgraded");
        assert_eq!(kind, HashKind::Argon2);
        assert!(new.starts_with("$argon2id$v=19$m=128,t=1,p=1$"), "{new}");
        // A wrong password upgrades nothing; an unknown user (no hash) never matches.
        let wrong = crate::domain::Password::new("wrong".into());
        let none = strong
            .admit()
            .await
            .unwrap()
            .verify_and_upgrade(Some(new), &wrong)
            .await
            .unwrap();
        assert!(!none.matched && none.upgrade.is_none());
        let none = strong
            .admit()
            .await
            .unwrap()
            .verify_and_upgrade(None, &pw)
            .await
            .unwrap();
        assert!(!none.matched && none.upgrade.is_none());
    }
}
