//! Fixing failed rows in the page: one page of an import's failed rows as a form, and the
//! corrected rows imported as a new import with the options of the first, so that the
//! marketer never needs a spreadsheet for a few bad cells.

use axum::extract::{Path, Query};
use axum::response::{Html, Redirect};
use axum::Form;
use contact_contract::TextEncoding;
use contact_import_client::Client;

use super::import::{csv_line, import_id};
use super::login::Tenant;
use super::new_import::capitalized;
use super::PageError;
use crate::forms::FixedRows;
use crate::views;
use crate::views::fix::FixView;

/// Failed rows on one page of the form: few enough to correct before sending.
pub const FIX_ROWS_PER_PAGE: u32 = 20;

#[derive(serde::Deserialize)]
pub struct FixQuery {
    after: Option<u64>,
}

pub async fn show(
    Tenant(client): Tenant,
    Path(id): Path<String>,
    Query(query): Query<FixQuery>,
) -> Result<Html<String>, PageError> {
    let client = &client;
    let id = import_id(&id)?;
    let status = client.status(&id).await?;
    let page = client
        .failed_rows_page(&id, query.after, Some(FIX_ROWS_PER_PAGE))
        .await?;
    Ok(Html(
        views::fix::page(&FixView {
            status: &status,
            page: &page,
            after: query.after,
        })
        .into_string(),
    ))
}

/// Writes the ticked rows under the file's header, uploads them and starts their import with
/// the first import's options; the new import's page then leads on to the next failed rows.
pub async fn start(
    Tenant(client): Tenant,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Redirect, PageError> {
    let client = &client;
    let id = import_id(&id)?;
    let fixed = FixedRows::from_fields(&fields).map_err(refused)?;
    // The header and what follows the page come from the writer, not from the form.
    let page = client
        .failed_rows_page(&id, fixed.after, Some(FIX_ROWS_PER_PAGE))
        .await?;
    let rows = fixed.records(page.header.len()).map_err(refused)?;
    if rows.is_empty() {
        return Err(PageError::BadInput(
            "No row was ticked for import: tick the rows you fixed.".to_string(),
        ));
    }
    let new_import = start_fixed(client, &id, &page.header, &rows).await?;
    let mut to = format!("/imports/{new_import}?fixed_from={id}");
    if let Some(next) = page.next {
        to.push_str(&format!("&fix_next={next}"));
    }
    Ok(Redirect::to(&to))
}

fn refused(error: String) -> PageError {
    PageError::BadInput(capitalized(&error))
}

async fn start_fixed(
    client: &Client,
    from: &contact_contract::ImportId,
    header: &[String],
    rows: &[Vec<String>],
) -> Result<contact_contract::ImportId, PageError> {
    let started = client.import_options(from).await?;
    let mut file = csv_line(header);
    for row in rows {
        file.extend(csv_line(row));
    }
    // The file is written here, as UTF-8 with commas, whatever the first one was.
    let mut options = started.options;
    options.encoding = Some(TextEncoding::Utf8.to_string());
    options.delimiter = Some(",".to_string());
    let file_name = format!(
        "{} (fixed rows)",
        started.file_name.as_deref().unwrap_or("import")
    );
    let new_import = Client::new_import_id();
    let request = client
        .upload_from(
            &new_import,
            file.as_slice(),
            Some(file.len() as u64),
            Some(file_name),
            options,
        )
        .await?;
    client.publish_request(&request).await?;
    tracing::info!(import_id = %new_import, fixed_from = %from, rows = rows.len(), "fixed rows imported from the page");
    Ok(new_import)
}
