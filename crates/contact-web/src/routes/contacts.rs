//! "Contact manager": the account's contacts a page at a time, after the last id shown (a
//! keyset, so a page costs the same at the millionth contact as at the first).

use axum::extract::Query;
use axum::response::Html;
use contact_contract::{ContactFilter, ImportId};

use super::login::Tenant;
use super::PageError;
use crate::views;
use crate::views::contacts::Contacts;

const CONTACTS_PER_PAGE: u32 = 50;

#[derive(serde::Deserialize)]
pub struct ContactsQuery {
    #[serde(default)]
    tag: String,
    #[serde(default, rename = "type")]
    contact_type: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    import_id: String,
    after: Option<i64>,
}

impl ContactsQuery {
    fn filter(&self) -> Result<ContactFilter, PageError> {
        let given = |value: &str| Some(value.trim().to_string()).filter(|value| !value.is_empty());
        Ok(ContactFilter {
            import_id: given(&self.import_id)
                .map(ImportId::new)
                .transpose()
                .map_err(|_| PageError::BadInput("That is not an import id.".to_string()))?,
            tag: given(&self.tag),
            contact_type: given(&self.contact_type),
            category: given(&self.category),
        })
    }
}

pub async fn list(
    Tenant(client): Tenant,
    Query(query): Query<ContactsQuery>,
) -> Result<Html<String>, PageError> {
    let client = &client;
    let filter = query.filter()?;
    let page = client
        .contacts_page(&filter, query.after, Some(CONTACTS_PER_PAGE))
        .await?;
    let attributes = client.attributes().await?;
    let next = page.next_after_id.map(|after| {
        let mut address = url_with(&filter);
        address.push_str(&format!("after={after}"));
        address
    });
    Ok(Html(
        views::contacts::page(&Contacts {
            contacts: &page.contacts,
            attributes: &attributes,
            filter: &filter,
            next,
        })
        .into_string(),
    ))
}

/// `/contacts?` with the filter's fields, ready for one more.
fn url_with(filter: &ContactFilter) -> String {
    let mut address = "/contacts?".to_string();
    let fields = [
        ("tag", filter.tag.clone()),
        ("type", filter.contact_type.clone()),
        ("category", filter.category.clone()),
        (
            "import_id",
            filter.import_id.as_ref().map(ToString::to_string),
        ),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            address.push_str(&format!("{name}={}&", encode(&value)));
        }
    }
    address
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_keeps_the_filter_encoded() {
        let filter = ContactFilter {
            tag: Some("targi 2026&vip".into()),
            category: Some("Łódź".into()),
            ..ContactFilter::default()
        };
        assert_eq!(
            url_with(&filter),
            "/contacts?tag=targi%202026%26vip&category=%C5%81%C3%B3d%C5%BA&"
        );
    }
}
