//! Reading the account's contacts back, a page at a time, filtered.

use contact_contract::{
    limits, AccountId, ApiError, ApiErrorKind, ContactsPage, ExportContactsRequest,
};

use super::{no_such_import, page_limit};
use crate::context::Writer;
use crate::db::{contacts, imports, unavailable};

pub async fn export_contacts(
    writer: &Writer,
    account: &AccountId,
    request: ExportContactsRequest,
) -> Result<ContactsPage, ApiError> {
    limits::check_contact_filter(&request.filter)
        .map_err(|reason| ApiError::new(ApiErrorKind::InvalidRequest, reason))?;
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    let limit = page_limit(request.limit);
    let import = match &request.filter.import_id {
        Some(import_id) => Some(
            imports::load(&mut connection, account, import_id)
                .await
                .map_err(unavailable)?
                .ok_or_else(|| no_such_import(account, import_id))?,
        ),
        None => None,
    };
    let contacts = contacts::export_page(
        &mut connection,
        account,
        request.after_id.unwrap_or(0),
        limit,
        &request.filter,
        import.as_ref().map(|row| contacts::ImportContacts {
            import: &row.request.0.import_id,
            own_ids: row.own_ids(),
        }),
    )
    .await
    .map_err(unavailable)?;
    let mut contacts = contacts;
    let full = contacts.len() == limit as usize;
    let cut = limits::cut_page(&mut contacts);
    let next_after_id = (full || cut)
        .then(|| contacts.last().map(|contact| contact.id))
        .flatten();
    Ok(ContactsPage {
        contacts,
        next_after_id,
    })
}
