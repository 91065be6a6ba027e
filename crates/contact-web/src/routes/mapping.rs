//! "Fields mapping": the uploaded file's start previewed by the writer, each column's
//! attribute chosen, and the import (or dry run) started with exactly that mapping and the
//! encoding and separator the preview read.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use contact_contract::api::CallError;
use contact_contract::{
    convert_all, ApiErrorKind, AttributeDef, ColumnMapping, ImportOptions, ValueMapping,
};
use contact_contract::{Preview, PREVIEW_SAMPLE_BYTES};
use contact_core::value_map::resolve_plan;
use contact_import_client::{Client, ClientError};

use super::login::Tenant;
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
    Tenant(client): Tenant,
    Query(query): Query<DraftQuery>,
) -> Result<Response, PageError> {
    let draft = open(&state, &client, &query.draft)?;
    render(&state, &client, &draft, &query.draft, None, None).await
}

/// IMPORT, DRY RUN, or "read again" with other choices.
pub async fn start(
    State(state): State<AppState>,
    Tenant(client): Tenant,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let choices = MappingChoices::from_fields(&fields)
        .map_err(|error| PageError::BadInput(capitalized(&error)))?;
    let draft = open(&state, &client, &choices.draft)?;
    if choices.action == MappingAction::Check {
        return render(
            &state,
            &client,
            &draft,
            &choices.draft,
            Some(&choices),
            None,
        )
        .await;
    }
    let client = &client;
    let evaluated = match evaluate(client, &draft, Some(&choices)).await? {
        Ok(evaluated) => evaluated,
        Err(refused) => return refused_file(&state, client, &draft, &refused).await,
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
    request.options.value_mappings = evaluated.value_mappings;
    request.options.encoding = Some(evaluated.preview.encoding.to_string());
    request.options.delimiter = Some(evaluated.preview.delimiter.clone());
    request.options.dry_run = choices.action == MappingAction::DryRun;
    client.publish_request(&request).await?;
    tracing::info!(import_id = %request.import_id, dry_run = request.options.dry_run, "import started from the page");
    Ok(Redirect::to(&format!("/imports/{}", request.import_id)).into_response())
}

fn open(state: &AppState, client: &Client, token: &str) -> Result<Draft, PageError> {
    state
        .signing_key
        .open_draft(token, client.account())
        .map_err(|refused| {
            PageError::BadInput(format!(
                "{}: load the file again.",
                capitalized(&refused.to_string())
            ))
        })
}

async fn render(
    state: &AppState,
    client: &Client,
    draft: &Draft,
    token: &str,
    choices: Option<&MappingChoices>,
    error: Option<&str>,
) -> Result<Response, PageError> {
    match evaluate(client, draft, choices).await? {
        Ok(evaluated) => Ok(page(draft, token, &evaluated, error).into_response()),
        Err(refused) => refused_file(state, client, draft, &refused).await,
    }
}

/// A file the preview cannot read goes back to the first form, with the choices kept.
async fn refused_file(
    state: &AppState,
    client: &Client,
    draft: &Draft,
    reason: &str,
) -> Result<Response, PageError> {
    let file = draft.request.file_name.as_deref().unwrap_or("The file");
    let message = format!("{file} cannot be imported: {reason}.");
    let choices = ImportChoices::from_options(&draft.request.options);
    let page = form(state, client, &choices, Some(&message)).await?;
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
    value_mappings: Vec<ValueMapping>,
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
    let selected = first_selection(&first, choices);
    let attributes = client.attributes().await?;
    options.mappings = explicit_mappings(&first.header, &selected, &attributes);
    options.value_mappings = choices
        .map(|choices| choices.value_mappings(&selected))
        .unwrap_or_default();
    options
        .value_mappings
        .extend(remembered_value_mappings(&first, choices, &selected));
    let mut preview = client
        .preview_sample(sample.clone(), whole_file, &options)
        .await?;
    // Values shown for the first time are preset to their suggestion, and the page is
    // evaluated with them, as pressing IMPORT would send it.
    let suggested = suggested_value_mappings(&preview, choices);
    if !suggested.is_empty() {
        options.value_mappings.extend(suggested);
        preview = client.preview_sample(sample, whole_file, &options).await?;
    }
    // The later previews take every column as chosen; the reasons are the first one's.
    preview.suggested_mapping = first.suggested_mapping;
    let resolved = resolve_plan(
        &preview.header,
        &convert_all(attributes.clone()),
        &convert_all(options.mappings.clone()),
        &convert_all(options.value_mappings.clone()),
        &options.match_on,
    );
    let (selected, mut blocking) = match resolved {
        // What will in fact be imported.
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
    // A file of many columns or values could grow the request past what the services take.
    if let Err(reason) = contact_contract::limits::check_options(&options) {
        blocking.push(format!("{}.", capitalized(&reason)));
    }
    Ok(Ok(Evaluated {
        preview,
        attributes,
        selected,
        mappings: options.mappings,
        value_mappings: options.value_mappings,
        blocking,
    }))
}

/// Each column's attribute: as the form chose it; else, the first time, as the account's
/// last import of these columns mapped it; else as suggested.
fn first_selection(first: &Preview, choices: Option<&MappingChoices>) -> Vec<Option<String>> {
    let remembered = first.remembered.as_ref().filter(|_| choices.is_none());
    (0..first.header.len())
        .map(|index| {
            let chosen = choices
                .and_then(|choices| choices.columns.get(&index))
                .or_else(|| {
                    remembered?
                        .mappings
                        .iter()
                        .find(|mapping| mapping.column == first.header[index])
                        .map(|mapping| &mapping.attribute)
                });
            match chosen {
                Some(attribute) => {
                    Some(attribute.clone()).filter(|attribute| !attribute.is_empty())
                }
                None => first
                    .suggested_mapping
                    .get(index)
                    .and_then(|suggestion| suggestion.attribute.clone()),
            }
        })
        .collect()
}

/// The remembered value maps of the attributes `selected` fills that the form has not shown:
/// the first time, all of them; later, those of values the sample does not hold, which the
/// form cannot show but the rest of the file may.
fn remembered_value_mappings(
    first: &Preview,
    choices: Option<&MappingChoices>,
    selected: &[Option<String>],
) -> Vec<ValueMapping> {
    let Some(remembered) = &first.remembered else {
        return Vec::new();
    };
    remembered
        .value_mappings
        .iter()
        .filter(|mapping| {
            selected
                .iter()
                .flatten()
                .any(|key| *key == mapping.attribute)
        })
        .filter(|mapping| {
            !choices.is_some_and(|choices| choices.showed_value(&mapping.attribute, &mapping.value))
        })
        .cloned()
        .collect()
}

/// The columns as chosen, for the services: each column given an attribute, and each one
/// set to "Not imported" that is named like an attribute (it would fill it otherwise).
fn explicit_mappings(
    header: &[String],
    selected: &[Option<String>],
    attributes: &[AttributeDef],
) -> Vec<ColumnMapping> {
    header
        .iter()
        .zip(selected)
        .filter_map(|(column, attribute)| match attribute {
            Some(attribute) => Some(ColumnMapping {
                column: column.clone(),
                attribute: attribute.clone(),
            }),
            None => attributes
                .iter()
                .any(|known| known.key.to_lowercase() == column.trim().to_lowercase())
                .then(|| ColumnMapping {
                    column: column.clone(),
                    attribute: String::new(),
                }),
        })
        .collect()
}

/// The suggestion of each value the form has not shown yet (one it showed keeps what was
/// chosen for it, "leave it" included).
fn suggested_value_mappings(
    preview: &Preview,
    choices: Option<&MappingChoices>,
) -> Vec<ValueMapping> {
    preview
        .unfit_columns
        .iter()
        .flat_map(|column| {
            column.values.iter().filter_map(move |value| {
                let shown = choices
                    .is_some_and(|choices| choices.showed_value(&column.attribute, &value.value));
                match (&value.mapped_to, &value.suggestion) {
                    (None, Some(suggestion)) if !shown => Some(ValueMapping {
                        attribute: column.attribute.clone(),
                        value: value.value.clone(),
                        allowed: suggestion.clone(),
                    }),
                    _ => None,
                }
            })
        })
        .collect()
}
