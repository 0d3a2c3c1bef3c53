//! Small cryptographic helpers: random bytes, SHA-256, constant-time comparison, and sealing
//! secrets at rest under a key derived from a master secret (HKDF-SHA256 + ChaCha20-Poly1305).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS RNG failing is not recoverable and does not happen on supported platforms.
    getrandom::getrandom(&mut buf).expect("operating system random number generator failed");
    buf
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Constant-time equality of two byte strings (length is not hidden).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// An AEAD key derived from a secret for one purpose; seals and opens short blobs.
/// Output format: 12-byte random nonce followed by ciphertext and tag.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl Sealer {
    /// Derives the key with HKDF-SHA256 from `secret`, bound to `purpose`.
    pub fn derive(secret: &[u8], purpose: &str) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"auth-service/v1"), secret);
        let mut key = [0u8; 32];
        hk.expand(purpose.as_bytes(), &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            cipher: ChaCha20Poly1305::new(&Key::from(key)),
        }
    }

    /// Encrypts `plaintext`, authenticating `aad` alongside it.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_bytes::<12>();
        let mut out = nonce_bytes.to_vec();
        let ct = self
            .cipher
            .encrypt(
                &Nonce::from(nonce_bytes),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("ChaCha20-Poly1305 encryption of a short message cannot fail");
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts what [`Sealer::seal`] produced; `None` when the key, `aad` or data do not match.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 12 + 16 {
            return None;
        }
        let (nonce, ct) = sealed.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        self.cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_the_same_secret_purpose_and_aad() {
        let sealer = Sealer::derive(b"master secret", "signing-key");
        let sealed = sealer.seal(b"private", b"kid-1");
        assert_eq!(
            sealer.open(&sealed, b"kid-1").as_deref(),
            Some(&b"private"[..])
        );
        assert!(sealer.open(&sealed, b"kid-2").is_none());
        assert!(
            Sealer::derive(b"other", "signing-key")
                .open(&sealed, b"kid-1")
                .is_none()
        );
        assert!(
            Sealer::derive(b"master secret", "other")
                .open(&sealed, b"kid-1")
                .is_none()
        );
        assert!(sealer.open(&sealed[..10], b"kid-1").is_none());
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let sealer = Sealer::derive(b"k", "p");
        assert_ne!(sealer.seal(b"x", b""), sealer.seal(b"x", b""));
    }

    #[test]
    fn ct_eq_compares_content() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
