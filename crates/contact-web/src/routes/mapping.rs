//! "Fields mapping": the uploaded file's start previewed by the writer, each column's
//! attribute chosen, and the import (or dry run) started with exactly that mapping and the
//! encoding and separator the preview read.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use contact_contract::api::CallError;
use contact_contract::{convert_all, ApiErrorKind, AttributeDef, ColumnMapping, ImportOptions};
use contact_contract::{Preview, PREVIEW_SAMPLE_BYTES};
use contact_core::mapping::resolve_mapping;
use contact_import_client::{Client, ClientError};

use super::new_import::{capitalized, form};
use super::PageError;
use crate::draft::Draft;
use crate::forms::{ImportChoices, MappingAction, MappingChoices};
use crate::views::mapping::Mapping;
use crate::{views, AppState};

#[derive(serde::Deserialize)]
pub struct DraftQuery {
    draft: String,
}

pub async fn show(
    State(state): State<AppState>,
    Query(query): Query<DraftQuery>,
) -> Result<Response, PageError> {
    let draft = open(&state, &query.draft)?;
    render(&state, &draft, &query.draft, None, None).await
}

/// IMPORT, DRY RUN, or "read again" with other choices.
pub async fn start(
    State(state): State<AppState>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let choices = MappingChoices::from_fields(&fields)
        .map_err(|error| PageError::BadInput(capitalized(&error)))?;
    let draft = open(&state, &choices.draft)?;
    if choices.action == MappingAction::Check {
        return render(&state, &draft, &choices.draft, Some(&choices), None).await;
    }
    let client = state.tenancy.client();
    let evaluated = match evaluate(client, &draft, Some(&choices)).await? {
        Ok(evaluated) => evaluated,
        Err(refused) => return refused_file(&state, &draft, &refused).await,
    };
    if !evaluated.blocking.is_empty() {
        let page = page(
            &draft,
            &choices.draft,
            &evaluated,
            Some("The import cannot start yet: see what is missing below."),
        );
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let mut request = draft.request.clone();
    request.options.mappings = evaluated.mappings;
    request.options.encoding = Some(evaluated.preview.encoding.to_string());
    request.options.delimiter = Some(evaluated.preview.delimiter.clone());
    request.options.dry_run = choices.action == MappingAction::DryRun;
    client.publish_request(&request).await?;
    tracing::info!(import_id = %request.import_id, dry_run = request.options.dry_run, "import started from the page");
    Ok(Redirect::to(&format!("/imports/{}", request.import_id)).into_response())
}

fn open(state: &AppState, token: &str) -> Result<Draft, PageError> {
    state
        .signing_key
        .open(token, state.tenancy.client().account())
        .map_err(|refused| {
            PageError::BadInput(format!(
                "{}: load the file again.",
                capitalized(&refused.to_string())
            ))
        })
}

async fn render(
    state: &AppState,
    draft: &Draft,
    token: &str,
    choices: Option<&MappingChoices>,
    error: Option<&str>,
) -> Result<Response, PageError> {
    match evaluate(state.tenancy.client(), draft, choices).await? {
        Ok(evaluated) => Ok(page(draft, token, &evaluated, error).into_response()),
        Err(refused) => refused_file(state, draft, &refused).await,
    }
}

/// A file the preview cannot read goes back to the first form, with the choices kept.
async fn refused_file(
    state: &AppState,
    draft: &Draft,
    reason: &str,
) -> Result<Response, PageError> {
    let file = draft.request.file_name.as_deref().unwrap_or("The file");
    let message = format!("{file} cannot be imported: {reason}.");
    let choices = ImportChoices::from_options(&draft.request.options);
    let page = form(state, &choices, Some(&message)).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

fn page(draft: &Draft, token: &str, evaluated: &Evaluated, error: Option<&str>) -> Html<String> {
    Html(
        views::mapping::page(&Mapping {
            draft_token: token,
            file_name: draft.request.file_name.as_deref().unwrap_or("Your file"),
            bytes: draft.bytes,
            preview: &evaluated.preview,
            attributes: &evaluated.attributes,
            selected: &evaluated.selected,
            blocking: &evaluated.blocking,
            error,
        })
        .into_string(),
    )
}

/// The file as the chosen mapping would import it.
struct Evaluated {
    preview: Preview,
    attributes: Vec<AttributeDef>,
    selected: Vec<Option<String>>,
    mappings: Vec<ColumnMapping>,
    /// What stops the import, in words.
    blocking: Vec<String>,
}

/// Previews the file's start with the choices (or, first time, the suggestions) and checks
/// the mapping with the rules the services apply. `Err` says why the file cannot be read.
async fn evaluate(
    client: &Client,
    draft: &Draft,
    choices: Option<&MappingChoices>,
) -> Result<Result<Evaluated, String>, PageError> {
    let object = draft
        .request
        .object_name
        .clone()
        .unwrap_or_else(|| draft.request.import_id.to_string());
    let (sample, whole_file) = client.uploaded_start(&object, PREVIEW_SAMPLE_BYTES).await?;
    let mut options = ImportOptions {
        encoding: choices.and_then(|choices| choices.encoding.clone()),
        delimiter: choices.and_then(|choices| choices.delimiter.clone()),
        ..draft.request.options.clone()
    };
    let first = match client
        .preview_sample(sample.clone(), whole_file, &options)
        .await
    {
        Ok(preview) => preview,
        Err(ClientError::Api(CallError::Api(error)))
            if error.kind == ApiErrorKind::InvalidRequest =>
        {
            return Ok(Err(error.message));
        }
        Err(error) => return Err(error.into()),
    };
    let selected: Vec<Option<String>> = match choices {
        Some(choices) => (0..first.header.len())
            .map(|index| match choices.columns.get(&index) {
                Some(attribute) => {
                    Some(attribute.clone()).filter(|attribute| !attribute.is_empty())
                }
                None => first
                    .suggested_mapping
                    .get(index)
                    .and_then(|suggestion| suggestion.attribute.clone()),
            })
            .collect(),
        None => first
            .suggested_mapping
            .iter()
            .map(|suggestion| suggestion.attribute.clone())
            .collect(),
    };
    options.mappings = first
        .header
        .iter()
        .zip(&selected)
        .filter_map(|(column, attribute)| {
            attribute.as_ref().map(|attribute| ColumnMapping {
                column: column.clone(),
                attribute: attribute.clone(),
            })
        })
        .collect();
    let mut preview = client.preview_sample(sample, whole_file, &options).await?;
    // The second preview takes every column as chosen; the reasons are the first one's.
    preview.suggested_mapping = first.suggested_mapping;
    let attributes = client.attributes().await?;
    let resolved = resolve_mapping(
        &preview.header,
        &convert_all(attributes.clone()),
        &convert_all(options.mappings.clone()),
        &options.match_on,
    );
    let (selected, blocking) = match resolved {
        // What will in fact be imported: a column named like an attribute fills it even
        // when nothing was chosen for it.
        Ok(plan) => (
            plan.columns
                .iter()
                .map(|attribute| attribute.as_ref().map(|attribute| attribute.key.clone()))
                .collect(),
            Vec::new(),
        ),
        Err(errors) => (
            selected,
            errors
                .problems
                .iter()
                .map(|problem| format!("{}.", capitalized(&problem.to_string())))
                .collect(),
        ),
    };
    Ok(Ok(Evaluated {
        preview,
        attributes,
        selected,
        mappings: options.mappings,
        blocking,
    }))
}
