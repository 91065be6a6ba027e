//! The account's attribute catalog and what is made from it: the sample file, and the preview
//! of a file's first rows mapped onto the attributes.

use contact_contract::{
    convert_all, AddAttributeRequest, AttributeDef, Empty, ImportId, Preview, RememberedMapping,
    RemoveAttributeRequest,
};
use contact_contract::{
    limits, AccountId, ApiError, ApiErrorKind, PreviewRequest, SetAttributeRequest, TemplateReply,
    PREVIEW_SAMPLE_BYTES,
};
use contact_core::choices_of_plan;
use contact_core::encoding::TextEncoding;
use contact_core::mapping;
use contact_core::preview::PreviewOptions;
use contact_core::sniff::parse_delimiter;

use crate::context::Writer;
use crate::db::{accounts, imports, unavailable};

pub async fn list_attributes(
    writer: &Writer,
    account: &AccountId,
    _: Empty,
) -> Result<Vec<AttributeDef>, ApiError> {
    catalog(writer, account).await.map(convert_all)
}

/// The account's attributes, as the core computes with them.
pub async fn catalog(
    writer: &Writer,
    account: &AccountId,
) -> Result<Vec<mapping::AttributeDef>, ApiError> {
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    accounts::ensure_account(&mut connection, account)
        .await
        .map_err(unavailable)?;
    accounts::load_attributes(&mut connection, account)
        .await
        .map_err(unavailable)
}

/// Adds an attribute the account's catalog does not have, within the catalog's limits.
pub async fn add_attribute(
    writer: &Writer,
    account: &AccountId,
    request: AddAttributeRequest,
) -> Result<AttributeDef, ApiError> {
    let attribute = mapping::new_attribute(request.attribute.into()).map_err(invalid)?;
    limits::check_attribute(&attribute).map_err(invalid)?;
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    accounts::ensure_account(&mut connection, account)
        .await
        .map_err(unavailable)?;
    let mut catalog = accounts::load_attributes(&mut connection, account)
        .await
        .map_err(unavailable)?;
    catalog.push(attribute.clone());
    limits::check_catalog(&catalog).map_err(invalid)?;
    match accounts::insert_new_attribute(&mut connection, account, &attribute)
        .await
        .map_err(unavailable)?
    {
        accounts::Added::Added => Ok(attribute.into()),
        accounts::Added::KeyTaken => Err(ApiError::new(
            ApiErrorKind::Conflict,
            format!("attribute \"{}\" already exists", attribute.key),
        )),
    }
}

/// Removes an attribute and its values. Refused while a running import maps a column to it or
/// matches on it: its rows would carry values for an attribute that no longer exists.
pub async fn remove_attribute(
    writer: &Writer,
    account: &AccountId,
    request: RemoveAttributeRequest,
) -> Result<RemoveAttributeRequest, ApiError> {
    let key = request.key;
    let mut transaction = writer.pool.begin().await.map_err(unavailable)?;
    accounts::lock_all_lanes(&mut transaction, account)
        .await
        .map_err(unavailable)?;
    let plans = imports::running_plans(&mut transaction, account)
        .await
        .map_err(unavailable)?;
    if let Some((import_id, _)) = plans.iter().find(|(_, plan)| plan.uses_attribute(&key)) {
        return Err(ApiError::new(
            ApiErrorKind::Conflict,
            format!("attribute \"{key}\" is used by running import {import_id}; remove it once that import ends"),
        ));
    }
    if !accounts::delete_attribute(&mut transaction, account, &key)
        .await
        .map_err(unavailable)?
    {
        return Err(no_such_attribute(account, &key));
    }
    transaction.commit().await.map_err(unavailable)?;
    Ok(RemoveAttributeRequest { key })
}

/// Changes an attribute's required and identifier flags, with every lane of the account
/// locked: the identifier flag decides which keys every lane keeps.
pub async fn set_attribute(
    writer: &Writer,
    account: &AccountId,
    request: SetAttributeRequest,
) -> Result<AttributeDef, ApiError> {
    let mut transaction = writer.pool.begin().await.map_err(unavailable)?;
    accounts::ensure_account(&mut transaction, account)
        .await
        .map_err(unavailable)?;
    accounts::lock_all_lanes(&mut transaction, account)
        .await
        .map_err(unavailable)?;
    let attribute = accounts::set_attribute_flags(
        &mut transaction,
        account,
        &request.key,
        request.required,
        request.identifier,
    )
    .await
    .map_err(unavailable)?
    .ok_or_else(|| no_such_attribute(account, &request.key))?;
    transaction.commit().await.map_err(unavailable)?;
    Ok(attribute.into())
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ApiErrorKind::InvalidRequest, message)
}

fn no_such_attribute(account: &AccountId, key: &str) -> ApiError {
    ApiError::new(
        ApiErrorKind::NotFound,
        format!("no attribute \"{key}\" in account {account}"),
    )
}

pub async fn template(
    writer: &Writer,
    account: &AccountId,
    _: Empty,
) -> Result<TemplateReply, ApiError> {
    let attributes = catalog(writer, account).await?;
    Ok(TemplateReply {
        file_name: format!("{account}-contacts-template.csv"),
        csv: contact_core::template::template_csv(&attributes),
    })
}

pub async fn preview(
    writer: &Writer,
    account: &AccountId,
    request: PreviewRequest,
) -> Result<Preview, ApiError> {
    if request.sample.len() > PREVIEW_SAMPLE_BYTES {
        return Err(invalid(format!(
            "a preview reads at most {PREVIEW_SAMPLE_BYTES} bytes"
        )));
    }
    let options = PreviewOptions {
        encoding: request
            .encoding
            .as_deref()
            .map(str::parse::<TextEncoding>)
            .transpose()
            .map_err(|error| invalid(error.to_string()))?,
        delimiter: request
            .delimiter
            .as_deref()
            .map(parse_delimiter)
            .transpose()
            .map_err(invalid)?,
        region: writer.phone_region,
        max_rows: 10,
    };
    let attributes = catalog(writer, account).await?;
    let mut preview = contact_core::preview::preview(
        &request.sample,
        request.whole_file,
        &options,
        &attributes,
        &convert_all(request.mappings),
        &convert_all(request.value_mappings),
    )
    .map(Preview::from)
    .map_err(|error| invalid(error.to_string()))?;
    preview.remembered = remembered_mapping(writer, account, &preview.header, &attributes).await?;
    Ok(preview)
}

/// The choices of the account's latest import of a file with `header`'s columns, as far as
/// the catalog still allows them.
async fn remembered_mapping(
    writer: &Writer,
    account: &AccountId,
    header: &[String],
    attributes: &[mapping::AttributeDef],
) -> Result<Option<RememberedMapping>, ApiError> {
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    let Some(earlier) = imports::latest_with_header(&mut connection, account, header)
        .await
        .map_err(unavailable)?
    else {
        return Ok(None);
    };
    // Ids are checked before an import is stored; one that is not an id is no import to offer.
    let Ok(import_id) = ImportId::new(earlier.import_id) else {
        return Ok(None);
    };
    let (mappings, value_mappings) = choices_of_plan(&earlier.plan.0.into(), attributes);
    Ok(Some(RememberedMapping {
        import_id,
        file_name: earlier.file_name,
        created_at: earlier.created_at,
        mappings: convert_all(mappings),
        value_mappings: convert_all(value_mappings),
    }))
}
