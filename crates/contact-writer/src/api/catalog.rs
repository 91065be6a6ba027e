//! The account's attribute catalog and what is made from it: the sample file, and the preview
//! of a file's first rows mapped onto the attributes.

use contact_contract::{
    convert_all, AddAttributeRequest, AttributeDef, Empty, Preview, RemoveAttributeRequest,
};
use contact_contract::{
    AccountId, ApiError, ApiErrorKind, PreviewRequest, SetAttributeRequest, TemplateReply,
    PREVIEW_SAMPLE_BYTES,
};
use contact_core::encoding::TextEncoding;
use contact_core::mapping;
use contact_core::preview::PreviewOptions;
use contact_core::sniff::parse_delimiter;

use crate::context::Writer;
use crate::db::{accounts, unavailable};

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

pub async fn add_attribute(
    writer: &Writer,
    account: &AccountId,
    request: AddAttributeRequest,
) -> Result<AttributeDef, ApiError> {
    let attribute = request.attribute;
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    accounts::add_attribute(&mut connection, account, attribute.into())
        .await
        .map(AttributeDef::from)
}

pub async fn remove_attribute(
    writer: &Writer,
    account: &AccountId,
    request: RemoveAttributeRequest,
) -> Result<RemoveAttributeRequest, ApiError> {
    let key = request.key;
    let mut transaction = writer.pool.begin().await.map_err(unavailable)?;
    accounts::remove_attribute(&mut transaction, account, &key).await?;
    transaction.commit().await.map_err(unavailable)?;
    Ok(RemoveAttributeRequest { key })
}

pub async fn set_attribute(
    writer: &Writer,
    account: &AccountId,
    request: SetAttributeRequest,
) -> Result<AttributeDef, ApiError> {
    let mut transaction = writer.pool.begin().await.map_err(unavailable)?;
    let attribute = accounts::set_attribute_flags(
        &mut transaction,
        account,
        &request.key,
        request.required,
        request.identifier,
    )
    .await?;
    transaction.commit().await.map_err(unavailable)?;
    Ok(attribute.into())
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
    let invalid = |message: String| ApiError::new(ApiErrorKind::InvalidRequest, message);
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
    contact_core::preview::preview(
        &request.sample,
        request.whole_file,
        &options,
        &attributes,
        &convert_all(request.mappings),
    )
    .map(Preview::from)
    .map_err(|error| invalid(error.to_string()))
}
