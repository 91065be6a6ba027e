//! "Import contacts": the form, the sample file, and the upload, streamed from the browser
//! into the account's uploads bucket as it arrives, so the page's memory does not grow with
//! the file.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use contact_contract::api::CallError;
use contact_contract::ApiErrorKind;
use contact_import_client::Client;
use futures::TryStreamExt as _;
use tokio::io::{AsyncRead, ReadBuf};

use super::login::Tenant;
use super::PageError;
use crate::draft::Draft;
use crate::forms::ImportChoices;
use crate::views::new_import::{human_bytes, NewImport};
use crate::{views, AppState};

/// What a multipart envelope may add to the file: field names, boundaries, the choices.
const FORM_OVERHEAD_BYTES: u64 = 64 * 1024;

pub async fn show(
    State(state): State<AppState>,
    Tenant(client): Tenant,
) -> Result<Html<String>, PageError> {
    form(&state, &client, &ImportChoices::default(), None).await
}

/// The form, with the reason the last attempt was refused when there is one.
pub async fn form(
    state: &AppState,
    client: &Client,
    choices: &ImportChoices,
    error: Option<&str>,
) -> Result<Html<String>, PageError> {
    let attributes = client.attributes().await?;
    Ok(Html(
        views::new_import::page(&NewImport {
            choices,
            identifiers: attributes
                .iter()
                .filter(|attribute| attribute.identifier)
                .collect(),
            error,
            max_upload_bytes: state.max_upload_bytes,
        })
        .into_string(),
    ))
}

pub async fn sample(Tenant(client): Tenant) -> Result<Response, PageError> {
    let template = client.template().await?;
    let disposition = format!("attachment; filename=\"{}\"", template.file_name);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        template.csv,
    )
        .into_response())
}

/// What the form says when the writer refused the upload before it began: a file over the
/// deployment's limits, or more than the account may keep. Other errors are the page's.
fn upload_refusal(error: &contact_import_client::ClientError) -> Option<String> {
    match error {
        contact_import_client::ClientError::Api(CallError::Api(refusal))
            if matches!(
                refusal.kind,
                ApiErrorKind::InvalidRequest | ApiErrorKind::Conflict
            ) =>
        {
            Some(capitalized(&refusal.message))
        }
        _ => None,
    }
}

/// Why an upload was not taken, with the choices to show again.
struct Refused {
    choices: ImportChoices,
    message: String,
}

pub async fn upload(
    State(state): State<AppState>,
    Tenant(client): Tenant,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, PageError> {
    match receive(&state, &client, &headers, multipart).await? {
        Ok(draft) => {
            let token = state.signing_key.seal_draft(&draft);
            Ok(Redirect::to(&format!("/mapping?draft={token}")).into_response())
        }
        Err(refused) => {
            let page = form(&state, &client, &refused.choices, Some(&refused.message)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// Reads the form's fields in order (the browser sends the file last, as the form lists it)
/// and streams the file into the uploads bucket.
async fn receive(
    state: &AppState,
    client: &Client,
    headers: &HeaderMap,
    mut multipart: Multipart,
) -> Result<Result<Draft, Refused>, PageError> {
    let max = state.max_upload_bytes;
    let mut choices = ImportChoices::default();
    let refuse = |choices: &ImportChoices, message: String| {
        Ok(Err(Refused {
            choices: choices.clone(),
            message,
        }))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok())
        .and_then(|length| length.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max + FORM_OVERHEAD_BYTES) {
        return refuse(&choices, too_large(max));
    }
    let mut announced: Option<u64> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return refuse(&choices, "Choose a CSV file to load.".to_string()),
            Err(error) => return refuse(&choices, lost_upload(&error.to_string())),
        };
        let Some(name) = field.name().map(str::to_string) else {
            continue;
        };
        if name != "file" {
            match field.text().await {
                // The page's script says the file's size, so that a file over the account's
                // limits is refused before it is sent; without the script there is none.
                Ok(value) if name == "file_size" => announced = value.trim().parse().ok(),
                Ok(value) => choices.set(&name, value),
                Err(error) => return refuse(&choices, lost_upload(&error.to_string())),
            }
            continue;
        }
        let file_name = field
            .file_name()
            .map(str::to_string)
            .filter(|name| !name.is_empty());
        let Some(file_name) = file_name else {
            return refuse(&choices, "Choose a CSV file to load.".to_string());
        };
        let options = match choices.options() {
            Ok(options) => options,
            Err(message) => return refuse(&choices, capitalized(&message)),
        };
        let import_id = Client::new_import_id();
        let body = tokio_util::io::StreamReader::new(field.map_err(std::io::Error::other));
        let mut counted = Counted::new(body, max);
        let uploaded = client
            .upload_from(
                &import_id,
                &mut counted,
                announced,
                Some(file_name.clone()),
                options,
            )
            .await;
        let request = match uploaded {
            Ok(_) if counted.exceeded => {
                discard(client, &import_id).await;
                return refuse(&choices, too_large(max));
            }
            Ok(request) => request,
            Err(error) => {
                if let Some(message) = upload_refusal(&error) {
                    // Refused before a byte was stored, while the browser still sends the
                    // file: read it to the end (dropping it), or the browser would see the
                    // connection cut instead of the reason.
                    let _ = tokio::io::copy(&mut counted, &mut tokio::io::sink()).await;
                    return refuse(&choices, message);
                }
                discard(client, &import_id).await;
                if counted.exceeded {
                    return refuse(&choices, too_large(max));
                }
                return match error {
                    contact_import_client::ClientError::Nats(detail) => {
                        refuse(&choices, lost_upload(&detail))
                    }
                    other => Err(other.into()),
                };
            }
        };
        if counted.read == 0 {
            discard(client, &import_id).await;
            return refuse(
                &choices,
                format!("{file_name} is empty: choose a CSV file with a header row."),
            );
        }
        tracing::info!(%import_id, bytes = counted.read, "file uploaded from the page");
        return Ok(Ok(Draft {
            request,
            bytes: counted.read,
        }));
    }
}

/// Drops an upload that will not be imported; a failure only leaves it to the bucket's limits.
async fn discard(client: &Client, import_id: &contact_contract::ImportId) {
    if let Err(error) = client.discard_upload(import_id.as_str()).await {
        tracing::warn!(%error, %import_id, "could not delete an abandoned upload");
    }
}

fn too_large(max: u64) -> String {
    format!(
        "The file is larger than {}, the most this page accepts. Split it into smaller files.",
        human_bytes(max)
    )
}

fn lost_upload(detail: &str) -> String {
    tracing::warn!(detail, "an upload stopped before its end");
    "The upload stopped before the end of the file (the connection was lost or the contact base \
     stopped answering). Nothing was imported; load the file again."
        .to_string()
}

pub fn capitalized(message: &str) -> String {
    let mut characters = message.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// Counts what passes through, and fails once more than `max` bytes have.
struct Counted<R> {
    inner: R,
    read: u64,
    max: u64,
    exceeded: bool,
}

impl<R> Counted<R> {
    fn new(inner: R, max: u64) -> Self {
        Self {
            inner,
            read: 0,
            max,
            exceeded: false,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        // The read that crosses the limit still hands over its bytes (a failed read must
        // leave the buffer as it was); the one after it fails.
        if self.exceeded {
            return Poll::Ready(Err(std::io::Error::other(
                "the file is over the size limit",
            )));
        }
        let before = buffer.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(context, buffer);
        if let Poll::Ready(Ok(())) = polled {
            self.read += (buffer.filled().len() - before) as u64;
            self.exceeded = self.read > self.max;
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    #[tokio::test]
    async fn counting_stops_the_read_past_the_limit() {
        let mut within = Counted::new(&b"12345"[..], 5);
        let mut sink = Vec::new();
        within
            .read_to_end(&mut sink)
            .await
            .expect("within the limit");
        assert_eq!((within.read, within.exceeded), (5, false));

        // A reader that hands out one byte at a time fails on the read after the limit.
        let mut over = Counted::new(tokio_test_reader(b"123456"), 5);
        assert!(over.read_to_end(&mut Vec::new()).await.is_err());
        assert!(over.exceeded);
        // One that hands everything at once is over the limit, and says so.
        let mut at_once = Counted::new(&b"123456"[..], 5);
        let _ = at_once.read_to_end(&mut Vec::new()).await;
        assert!(at_once.exceeded);
    }

    /// Reads `bytes` one at a time.
    fn tokio_test_reader(bytes: &'static [u8]) -> impl AsyncRead + Unpin {
        tokio_util::io::StreamReader::new(futures::stream::iter(
            bytes
                .chunks(1)
                .map(|chunk| Ok::<_, std::io::Error>(bytes::Bytes::from_static(chunk))),
        ))
    }

    #[test]
    fn messages_start_with_a_capital() {
        assert_eq!(capitalized("ąbc"), "Ąbc");
        assert_eq!(capitalized(""), "");
    }

    #[test]
    fn a_refused_upload_is_said_on_the_form_and_an_outage_is_not() {
        let refused = contact_import_client::ClientError::Api(CallError::Api(
            contact_contract::ApiError::new(
                ApiErrorKind::Conflict,
                "the account's uploads hold 7.0 KiB of the 8.0 KiB it may keep",
            ),
        ));
        assert_eq!(
            upload_refusal(&refused).as_deref(),
            Some("The account's uploads hold 7.0 KiB of the 8.0 KiB it may keep")
        );
        let outage = contact_import_client::ClientError::Api(CallError::Api(
            contact_contract::ApiError::new(
                ApiErrorKind::Unavailable,
                "the uploads bucket is not available right now",
            ),
        ));
        assert_eq!(upload_refusal(&outage), None);
    }
}
