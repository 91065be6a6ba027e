//! "Contacts import": the account's imports, newest first, a page at a time.

use axum::extract::Query;
use axum::response::Html;
use chrono::{DateTime, Utc};
use contact_contract::{ImportId, ImportState, ImportsCursor};

use super::login::Tenant;
use super::PageError;
use crate::views;
use crate::views::history::History;

const IMPORTS_PER_PAGE: u32 = 25;

#[derive(serde::Deserialize)]
pub struct HistoryQuery {
    #[serde(default)]
    status: String,
    /// The page after the import started at `before_at` with id `before_id`.
    before_at: Option<DateTime<Utc>>,
    before_id: Option<String>,
}

pub async fn list(
    Tenant(client): Tenant,
    Query(query): Query<HistoryQuery>,
) -> Result<Html<String>, PageError> {
    let status = match query.status.as_str() {
        "" => None,
        text => Some(ImportState::parse(text).ok_or_else(|| {
            PageError::BadInput(format!("\"{text}\" is not a state an import can be in."))
        })?),
    };
    let before = match (query.before_at, query.before_id) {
        (Some(created_at), Some(id)) => Some(ImportsCursor {
            created_at,
            import_id: ImportId::new(id)
                .map_err(|_| PageError::BadInput("The page address is damaged.".to_string()))?,
        }),
        _ => None,
    };
    let page = client
        .imports_page(status, before, Some(IMPORTS_PER_PAGE))
        .await?;
    let older = page.next.map(|next| {
        let status = status.map(|state| state.as_str()).unwrap_or_default();
        format!(
            "/imports?status={status}&before_at={}&before_id={}",
            next.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            next.import_id
        )
    });
    Ok(Html(
        views::history::page(&History {
            imports: &page.imports,
            status,
            older,
        })
        .into_string(),
    ))
}
