//! The key the replicas sign what travels with the page: drafts (in the mapping page's
//! address and form) and sessions (in a cookie). Each kind is signed under a purpose of its
//! own, so that a token made for one is never taken for the other.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The key every replica of one deployment shares.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

/// Why a token was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsealed {
    /// Not two base64url parts.
    Malformed,
    /// Changed, signed with another key, or signed for another purpose.
    BadSignature,
}

impl SigningKey {
    /// Keys shorter than this are refused: a signature is only as strong as its key.
    pub const MIN_BYTES: usize = 32;

    pub fn new(key: impl Into<Vec<u8>>) -> Result<Self, String> {
        let key = key.into();
        if key.len() < Self::MIN_BYTES {
            return Err(format!(
                "the signing key has {} bytes; it needs at least {}",
                key.len(),
                Self::MIN_BYTES
            ));
        }
        Ok(Self(key))
    }

    /// A key of random bytes, for a single replica (what it signed ends with it).
    pub fn random() -> Self {
        // A version 4 UUID is 122 bits from the operating system's generator.
        let bytes: Vec<u8> = (0..3)
            .flat_map(|_| uuid::Uuid::new_v4().into_bytes())
            .take(Self::MIN_BYTES)
            .collect();
        Self(bytes)
    }

    fn mac(&self, purpose: &str, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        // The purpose ends at its NUL: no purpose is the start of another's payload.
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(payload);
        mac
    }

    /// `payload` as `payload.signature`, both base64url.
    pub fn seal(&self, purpose: &str, payload: &[u8]) -> String {
        let signature = self.mac(purpose, payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// The payload of `token`, if this key sealed it for `purpose`.
    pub fn open(&self, purpose: &str, token: &str) -> Result<Vec<u8>, Unsealed> {
        let (payload, signature) = token.split_once('.').ok_or(Unsealed::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| Unsealed::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Unsealed::Malformed)?;
        // Compared in constant time, so that timing tells nothing about the right signature.
        self.mac(purpose, &payload)
            .verify_slice(&signature)
            .map_err(|_| Unsealed::BadSignature)?;
        Ok(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fill: u8) -> SigningKey {
        SigningKey::new(vec![fill; 32]).expect("long enough")
    }

    #[test]
    fn a_token_opens_only_with_its_key_and_purpose() {
        let token = key(7).seal("draft", b"payload");
        assert_eq!(key(7).open("draft", &token), Ok(b"payload".to_vec()));
        assert_eq!(key(8).open("draft", &token), Err(Unsealed::BadSignature));
        assert_eq!(key(7).open("session", &token), Err(Unsealed::BadSignature));
        assert_eq!(key(7).open("draft", "no-dot"), Err(Unsealed::Malformed));
    }

    #[test]
    fn a_short_key_is_refused_and_random_keys_differ() {
        assert!(SigningKey::new(vec![1; 31]).is_err());
        assert_ne!(SigningKey::random().0, SigningKey::random().0);
        assert_eq!(SigningKey::random().0.len(), SigningKey::MIN_BYTES);
    }
}
