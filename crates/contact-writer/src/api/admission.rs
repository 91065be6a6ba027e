//! Which accounts the API serves: every account in an open deployment, only the registered
//! ones in a secure deployment (each looked up once, then remembered by this replica).

use contact_contract::{AccountId, ApiError, ApiErrorKind};

use crate::context::Writer;
use crate::db::accounts::{self, AccountAdmission};
use crate::db::unavailable;

/// Whether an API request may name `account`. In an open deployment any account comes into
/// being on first use; in one whose accounts are registered, only those the operator
/// registered are served (each is looked up once, then remembered).
pub async fn admit(writer: &Writer, account: &AccountId) -> Result<(), ApiError> {
    if writer.accounts == AccountAdmission::Open
        || writer
            .admitted
            .lock()
            .expect("never poisoned")
            .contains(account)
    {
        return Ok(());
    }
    let known = accounts::exists(
        &mut *writer.pool.acquire().await.map_err(unavailable)?,
        account,
    )
    .await
    .map_err(unavailable)?;
    if !known {
        return Err(ApiError::new(
            ApiErrorKind::NotFound,
            format!(
                "account {account} is not registered: an operator registers it \
                 (contact-import-admin tenant register {account})"
            ),
        ));
    }
    writer
        .admitted
        .lock()
        .expect("never poisoned")
        .insert(account.clone());
    Ok(())
}
