//! A draft: an uploaded file and the marketer's choices, between the upload and IMPORT.
//!
//! The page keeps no state of its own, so that any replica serves any step: the draft travels
//! with the page (in the mapping page's address and form) as a token the replicas sign with
//! their shared key. A token that was changed, or signed for another account, is refused; it
//! only ever names the signer's own upload, and NATS would refuse another tenant's anyway.

use contact_contract::{AccountId, ImportRequest};
use serde::{Deserialize, Serialize};

pub use crate::signing::SigningKey;
use crate::signing::Unsealed;

/// What the upload left for the mapping step: the start request without its mapping (the
/// file is in the uploads bucket already), and the file's size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub request: ImportRequest,
    pub bytes: u64,
}

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

/// What drafts are signed for (see [`SigningKey`]).
const PURPOSE: &str = "draft";

impl SigningKey {
    /// The draft as a token that travels with the page.
    pub fn seal_draft(&self, draft: &Draft) -> String {
        let payload = serde_json::to_vec(draft).expect("a draft always encodes");
        self.seal(PURPOSE, &payload)
    }

    /// The draft in `token`, if this key signed it for `account`.
    pub fn open_draft(&self, token: &str, account: &AccountId) -> Result<Draft, DraftRefused> {
        let payload = self
            .open(PURPOSE, token)
            .map_err(|unsealed| match unsealed {
                Unsealed::Malformed => DraftRefused::Malformed,
                Unsealed::BadSignature => DraftRefused::BadSignature,
            })?;
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
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
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
        let token = key(7).seal_draft(&draft());
        assert_eq!(key(7).open_draft(&token, &account("acme")), Ok(draft()));
    }

    #[test]
    fn another_key_another_account_or_a_changed_byte_is_refused() {
        let token = key(7).seal_draft(&draft());
        assert_eq!(
            key(8).open_draft(&token, &account("acme")),
            Err(DraftRefused::BadSignature)
        );
        assert_eq!(
            key(7).open_draft(&token, &account("globex")),
            Err(DraftRefused::OtherAccount)
        );
        // Every byte of the payload is covered by the signature.
        let (payload, signature) = token.split_once('.').expect("two parts");
        let mut bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64");
        let at = bytes.len() / 2;
        bytes[at] ^= 1;
        let changed = format!("{}.{signature}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(
            key(7).open_draft(&changed, &account("acme")),
            Err(DraftRefused::BadSignature)
        );
        assert_eq!(
            key(7).open_draft("no-dot", &account("acme")),
            Err(DraftRefused::Malformed)
        );
    }
}
