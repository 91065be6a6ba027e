//! Which accounts the API serves: every account in an open deployment, only the registered
//! ones in a secure deployment (each looked up once, then remembered by this replica).

use std::collections::HashSet;

use contact_contract::{AccountId, ApiError, ApiErrorKind};

use crate::context::Writer;
use crate::db::accounts::{self, AccountAdmission};
use crate::db::unavailable;

/// Whether an API request may name `account`. In an open deployment any account comes into
/// being on first use; in one whose accounts are registered, only those the operator
/// registered are served (each is looked up once, then remembered).
pub async fn admit(writer: &Writer, account: &AccountId) -> Result<(), ApiError> {
    let remembered = {
        let admitted = writer.admitted.lock().expect("never poisoned");
        served_without_lookup(writer.accounts, &admitted, account)
    };
    if remembered {
        return Ok(());
    }
    let known = accounts::exists(
        &mut *writer.pool.acquire().await.map_err(unavailable)?,
        account,
    )
    .await
    .map_err(unavailable)?;
    if !known {
        return Err(not_registered(account));
    }
    writer
        .admitted
        .lock()
        .expect("never poisoned")
        .insert(account.clone());
    Ok(())
}

/// True when `account` is served without asking the database: every account is in an open
/// deployment; in a registered one, those this replica has already found registered.
fn served_without_lookup(
    admission: AccountAdmission,
    remembered: &HashSet<AccountId>,
    account: &AccountId,
) -> bool {
    admission == AccountAdmission::Open || remembered.contains(account)
}

/// The refusal of an account the operator has not registered: it says who can fix it, and how.
fn not_registered(account: &AccountId) -> ApiError {
    ApiError::new(
        ApiErrorKind::NotFound,
        format!(
            "account {account} is not registered: an operator registers it \
             (contact-import-admin tenant register {account})"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str) -> AccountId {
        AccountId::new(name).expect("valid account")
    }

    #[test]
    fn an_open_deployment_serves_any_account_and_a_registered_one_only_those_found() {
        let remembered = HashSet::from([account("acme")]);
        let (acme, beta) = (account("acme"), account("beta"));
        assert!(served_without_lookup(
            AccountAdmission::Open,
            &HashSet::new(),
            &beta
        ));
        assert!(served_without_lookup(
            AccountAdmission::Registered,
            &remembered,
            &acme
        ));
        assert!(!served_without_lookup(
            AccountAdmission::Registered,
            &remembered,
            &beta
        ));
    }

    #[test]
    fn an_unregistered_account_is_told_the_command_that_registers_it() {
        let refused = not_registered(&account("beta"));
        assert_eq!(refused.kind, ApiErrorKind::NotFound);
        assert!(
            refused
                .message
                .ends_with("(contact-import-admin tenant register beta)"),
            "{}",
            refused.message
        );
    }
}
