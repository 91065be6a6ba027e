//! A draft: an uploaded file and the marketer's choices, between the upload and IMPORT.
//!
//! The page keeps no state of its own, so that any replica serves any step: the draft travels
//! with the page (in the mapping page's address and form) as a token the replicas sign with
//! their shared key. A token that was changed, or signed for another account, is refused; it
//! only ever names the signer's own upload, and NATS would refuse another tenant's anyway.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use contact_contract::{AccountId, ImportRequest};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What the upload left for the mapping step: the start request without its mapping (the
/// file is in the uploads bucket already), and the file's size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub request: ImportRequest,
    pub bytes: u64,
}

/// The key drafts are signed with; every replica of one deployment has the same.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

/// Why a token is not a draft of this account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DraftRefused {
    #[error("the draft is not one this page made (its signature does not match)")]
    BadSignature,
    #[error("the draft cannot be read")]
    Malformed,
    #[error("the draft belongs to another account")]
    OtherAccount,
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

    /// A key of random bytes, for a single replica (drafts do not survive its restart).
    pub fn random() -> Self {
        // A version 4 UUID is 122 bits from the operating system's generator.
        let bytes: Vec<u8> = (0..3)
            .flat_map(|_| uuid::Uuid::new_v4().into_bytes())
            .take(Self::MIN_BYTES)
            .collect();
        Self(bytes)
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(payload);
        mac
    }

    /// The draft as `payload.signature`, both base64url.
    pub fn seal(&self, draft: &Draft) -> String {
        let payload = serde_json::to_vec(draft).expect("a draft always encodes");
        let signature = self.mac(&payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// The draft in `token`, if this key signed it for `account`.
    pub fn open(&self, token: &str, account: &AccountId) -> Result<Draft, DraftRefused> {
        let (payload, signature) = token.split_once('.').ok_or(DraftRefused::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| DraftRefused::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| DraftRefused::Malformed)?;
        // Compared in constant time, so that timing tells nothing about the right signature.
        self.mac(&payload)
            .verify_slice(&signature)
            .map_err(|_| DraftRefused::BadSignature)?;
        let draft: Draft = serde_json::from_slice(&payload).map_err(|_| DraftRefused::Malformed)?;
        if &draft.request.account != account {
            return Err(DraftRefused::OtherAccount);
        }
        Ok(draft)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contact_contract::ImportId;

    fn account(name: &str) -> AccountId {
        AccountId::new(name).expect("a valid account")
    }

    fn draft() -> Draft {
        let mut request = ImportRequest::known_by_subject(
            account("acme"),
            ImportId::new("0d9c").expect("a valid import id"),
        );
        request.file_name = Some("kontakty.csv".into());
        Draft {
            request,
            bytes: 1234,
        }
    }

    fn key(fill: u8) -> SigningKey {
        SigningKey::new(vec![fill; 32]).expect("long enough")
    }

    #[test]
    fn a_sealed_draft_opens_with_the_same_key_for_its_account() {
        let token = key(7).seal(&draft());
        assert_eq!(key(7).open(&token, &account("acme")), Ok(draft()));
    }

    #[test]
    fn another_key_another_account_or_a_changed_byte_is_refused() {
        let token = key(7).seal(&draft());
        assert_eq!(
            key(8).open(&token, &account("acme")),
            Err(DraftRefused::BadSignature)
        );
        assert_eq!(
            key(7).open(&token, &account("globex")),
            Err(DraftRefused::OtherAccount)
        );
        // Every byte of the payload is covered by the signature.
        let (payload, signature) = token.split_once('.').expect("two parts");
        let mut bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64");
        let at = bytes.len() / 2;
        bytes[at] ^= 1;
        let changed = format!("{}.{signature}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(
            key(7).open(&changed, &account("acme")),
            Err(DraftRefused::BadSignature)
        );
        assert_eq!(
            key(7).open("no-dot", &account("acme")),
            Err(DraftRefused::Malformed)
        );
    }

    #[test]
    fn a_short_key_is_refused_and_random_keys_differ() {
        assert!(SigningKey::new(vec![1; 31]).is_err());
        assert_ne!(SigningKey::random().0, SigningKey::random().0);
        assert_eq!(SigningKey::random().0.len(), SigningKey::MIN_BYTES);
    }
}
