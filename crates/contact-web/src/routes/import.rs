//! One import: its page, its live progress as server-sent events, cancel, undo and the error
//! file. An import id another account owns is not found, on every one of them.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use contact_contract::{ImportEventKind, ImportId};
use contact_import_client::error_file::{error_file_record, header_with_error_columns, UTF8_BOM};
use contact_import_client::{Client, FollowUpdate};
use futures::Stream;
use tokio::sync::mpsc;

use super::login::Tenant;
use super::PageError;
use crate::views;
use crate::views::import::{FixedFrom, ImportView, Progress};

/// Failed rows shown on one page.
const FAILED_ROWS_PER_PAGE: u32 = 50;

pub(super) fn import_id(text: &str) -> Result<ImportId, PageError> {
    ImportId::new(text).map_err(|_| PageError::NotFound("There is no such import.".to_string()))
}

#[derive(serde::Deserialize)]
pub struct ImportQuery {
    failed_after: Option<u64>,
    /// The import whose failed rows this one re-imports, fixed in the page.
    fixed_from: Option<String>,
    /// The line the next page of that import's failed rows comes after.
    fix_next: Option<u64>,
}

pub async fn show(
    Tenant(client): Tenant,
    Path(id): Path<String>,
    Query(query): Query<ImportQuery>,
) -> Result<Html<String>, PageError> {
    let client = &client;
    let id = import_id(&id)?;
    let status = client.status(&id).await?;
    // Retention may have removed them: the summary says so instead.
    let failed_rows = if status.status.is_terminal()
        && status.failed > 0
        && status.details_removed_at.is_none()
    {
        Some(
            client
                .failed_rows_page(&id, query.failed_after, Some(FAILED_ROWS_PER_PAGE))
                .await?,
        )
    } else {
        None
    };
    // Only an import of this account is named (another's id is left out, like a wrong one).
    let fixed_from = match query.fixed_from.as_deref().map(ImportId::new) {
        Some(Ok(from)) => client.status(&from).await.ok(),
        _ => None,
    };
    Ok(Html(
        views::import::page(&ImportView {
            status: &status,
            failed_rows: failed_rows.as_ref(),
            failed_after: query.failed_after,
            fixed_from: fixed_from.as_ref().map(|from| FixedFrom {
                status: from,
                next: query.fix_next,
            }),
        })
        .into_string(),
    ))
}

/// The import's events as they come, each with its `sequence` as the event id: a browser
/// that reconnects sends the last id it saw and gets only what came after.
pub async fn events(
    Tenant(client): Tenant,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, PageError> {
    let id = import_id(&id)?;
    // Asked first, so that another account's id is a 404 and not an empty stream.
    client.status(&id).await?;
    let seen: Option<u64> = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(follow(client, id, seen, sender));
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (Ok(event), receiver))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Follows the import until its summary, or until the browser goes away.
async fn follow(client: Client, id: ImportId, seen: Option<u64>, sender: mpsc::Sender<Event>) {
    let forward = sender.clone();
    let following = client.follow(&id, Duration::from_secs(30), move |update| {
        let FollowUpdate::Event(event) = update else {
            return;
        };
        let summary = event.kind == ImportEventKind::Summary;
        if !summary && seen.is_some_and(|seen| event.sequence <= seen) {
            return;
        }
        let data =
            serde_json::to_string(&Progress::of(&event.import)).expect("progress always encodes");
        let message = Event::default()
            .id(event.sequence.to_string())
            .event(if summary { "summary" } else { "progress" })
            .data(data);
        // A full channel means a slow browser: it gets the next event instead.
        let _ = forward.try_send(message);
    });
    tokio::select! {
        ended = following => {
            if let Err(error) = ended {
                tracing::warn!(%error, import_id = %id, "stopped following an import for the page");
                let _ = sender
                    .send(Event::default().event("gone").data("Live progress stopped; reload the page to see where the import is."))
                    .await;
            }
        }
        _ = sender.closed() => {}
    }
}

pub async fn cancel(Tenant(client): Tenant, Path(id): Path<String>) -> Result<Redirect, PageError> {
    let id = import_id(&id)?;
    client.cancel(&id).await?;
    Ok(Redirect::to(&format!("/imports/{id}")))
}

/// One step of the undo; the contact-writer carries on an undo nobody moves on.
pub async fn undo(Tenant(client): Tenant, Path(id): Path<String>) -> Result<Redirect, PageError> {
    let id = import_id(&id)?;
    client.undo_step(&id).await?;
    Ok(Redirect::to(&format!("/imports/{id}")))
}

/// The same error file the CLI writes, a page of failed rows at a time as it is sent.
pub async fn failed_rows_file(
    Tenant(client): Tenant,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = import_id(&id)?;
    let first = client.failed_rows_page(&id, None, None).await?;
    let width = first.header.len();
    let mut head = UTF8_BOM.to_vec();
    head.extend(csv_line(&header_with_error_columns(&first.header)));
    let mut rows = Vec::new();
    for row in &first.rows {
        rows.extend(csv_line(&error_file_record(row, width)));
    }
    head.extend(rows);
    let pages = futures::stream::unfold(
        (Some(head), first.next, client, id.clone()),
        move |(head, next, client, id)| async move {
            if let Some(head) = head {
                return Some((Ok(head), (None, next, client, id)));
            }
            let after = next?;
            match client.failed_rows_page(&id, Some(after), None).await {
                Ok(page) => {
                    let mut bytes = Vec::new();
                    for row in &page.rows {
                        bytes.extend(csv_line(&error_file_record(row, width)));
                    }
                    Some((Ok(bytes), (None, page.next, client, id)))
                }
                // The download breaks off; the browser shows it as failed, not as complete.
                Err(error) => Some((
                    Err(std::io::Error::other(error.to_string())),
                    (None, None, client, id),
                )),
            }
        },
    );
    let disposition = format!("attachment; filename=\"failed-rows-{id}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(pages),
    )
        .into_response())
}

/// One CSV record, as the csv crate quotes it.
pub(super) fn csv_line(record: &[String]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    writer
        .write_record(record)
        .expect("writing into memory cannot fail");
    writer
        .into_inner()
        .expect("writing into memory cannot fail")
}
