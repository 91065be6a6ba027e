//! How large and how many of whatever a client sends may be: part of the contract, checked by
//! the services, so that no tenant can grow a reply past the payload limit, fill the database
//! with one request, or hold the capacity other tenants need.

use contact_core::mapping::{AttributeDef, AttributeType};
use contact_core::value_map::MAX_VALUE_CHARS;

use crate::{ContactFilter, ImportOptions, ImportRequest};

pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 100;
/// A contact type or category.
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_FILE_NAME_CHARS: usize = 255;
pub const MAX_MAPPINGS: usize = 500;
pub const MAX_MATCH_ON: usize = 5;
/// Value mappings of one import: enough for every distinct value a sample lists in ten
/// choice columns.
pub const MAX_VALUE_MAPPINGS: usize = 500;
/// All the text of an import's value mappings: every chunk carries them in its plan, and the
/// accepted message twice, so they stay small beside the payload limit.
pub const MAX_VALUE_MAPPING_BYTES: usize = 64 * 1024;
pub const MAX_LABEL_CHARS: usize = 200;
pub const MAX_ENUM_VALUES: usize = 1000;
pub const MAX_ENUM_VALUE_CHARS: usize = 200;
/// Attributes of one account.
pub const MAX_ATTRIBUTES: usize = 200;
/// An account's whole attribute catalog as JSON: it travels in replies and in every chunk.
pub const MAX_CATALOG_BYTES: usize = 256 * 1024;
/// A page of a paged reply is cut at this size (it holds one item at least).
pub const MAX_PAGE_BYTES: usize = 512 * 1024;
/// Imports of one account that run at once; start requests beyond them wait their turn, in
/// the order they asked, holding none of the capacity the other accounts share.
pub const DEFAULT_RUNNING_IMPORTS_PER_ACCOUNT: u32 = 4;
/// Start requests of one account that may wait for their turn; one beyond them fails at once
/// with the reason. Each waiting request is a pending message of the ingest consumer, so this
/// times the number of accounts stays far below its `max_ack_pending`.
pub const DEFAULT_QUEUED_IMPORTS_PER_ACCOUNT: u32 = 20;

/// The largest file one import may upload, unless the deployment says otherwise: four times
/// a realistic file of 5 million rows.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 4 << 30;
/// A limit JetStream *reserves*: a stream or bucket with `max_bytes` holds that much of the
/// server's store (`max_file_store`) whether it uses it or not, and one that does not fit is
/// refused. So the byte limits are off unless the deployment sets them, sized to its volume:
/// the four import streams and every account's bucket together must fit.
pub const NO_BYTE_LIMIT: u64 = 0;

/// How much an account may upload: one file, and all its bucket holds at once (none: no
/// limit but the server's store, see [`NO_BYTE_LIMIT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    pub max_file_bytes: u64,
    pub bytes_per_account: Option<u64>,
    /// How many uploaded files one account may keep at once (they stay a week).
    pub files_per_account: Option<u64>,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            bytes_per_account: None,
            files_per_account: None,
        }
    }
}

/// A byte limit as JetStream configurations write it: -1 for none.
pub fn jetstream_max_bytes(limit: Option<u64>) -> i64 {
    limit.map_or(-1, |bytes| i64::try_from(bytes).unwrap_or(i64::MAX))
}

/// Why an upload is refused before it begins.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadRefused {
    #[error("the file is {}, over the {} one file may have", spoken_bytes(*.size), spoken_bytes(*.max))]
    FileTooLarge { size: u64, max: u64 },
    #[error(
        "the account's uploads hold {} of the {} it may keep, and {} more would not fit; \
         uploaded files are removed a week after their upload",
        spoken_bytes(*.held), spoken_bytes(*.quota), .size.map_or("the file".to_string(), spoken_bytes)
    )]
    QuotaFull {
        size: Option<u64>,
        held: u64,
        quota: u64,
    },
    #[error(
        "the account keeps {held} uploaded files, the most it may keep at once ({max}); \
         uploaded files are removed a week after their upload"
    )]
    TooManyFiles { held: u64, max: u64 },
}

impl UploadLimits {
    /// Whether a file of `size` (when the client said it) fits, with `held` bytes in the
    /// account's bucket already.
    pub fn check(&self, size: Option<u64>, held: u64) -> Result<(), UploadRefused> {
        if let Some(size) = size.filter(|&size| size > self.max_file_bytes) {
            return Err(UploadRefused::FileTooLarge {
                size,
                max: self.max_file_bytes,
            });
        }
        let Some(quota) = self.bytes_per_account else {
            return Ok(());
        };
        if held.saturating_add(size.unwrap_or(0)) > quota || held >= quota {
            return Err(UploadRefused::QuotaFull { size, held, quota });
        }
        Ok(())
    }

    /// Whether one more file fits beside the `held` files the account keeps.
    pub fn check_files(&self, held: u64) -> Result<(), UploadRefused> {
        match self.files_per_account {
            Some(max) if held >= max => Err(UploadRefused::TooManyFiles { held, max }),
            _ => Ok(()),
        }
    }
}

/// A size as people read it: bytes below a KiB, else one decimal in the largest binary unit.
pub fn spoken_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn within(what: &str, text: &str, limit: usize) -> Result<(), String> {
    let length = text.chars().count();
    if length > limit {
        Err(format!(
            "{what} is {length} characters long; at most {limit}"
        ))
    } else {
        Ok(())
    }
}

/// Checks what a start request carries besides the file.
pub fn check_request(request: &ImportRequest) -> Result<(), String> {
    if let Some(file_name) = &request.file_name {
        within("the file name", file_name, MAX_FILE_NAME_CHARS)?;
    }
    if let Some(digest) = &request.file_sha256 {
        check_sha256(digest)?;
    }
    check_options(&request.options)
}

/// A file's SHA-256 as the contract spells it: 64 lower-case hex digits.
pub fn check_sha256(digest: &str) -> Result<(), String> {
    if digest.len() == 64
        && digest
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    {
        Ok(())
    } else {
        Err("the file's SHA-256 must be 64 lower-case hex digits".to_string())
    }
}

/// Checks the filters of a contacts export: each as long as what it filters on may be.
pub fn check_contact_filter(filter: &ContactFilter) -> Result<(), String> {
    if let Some(tag) = &filter.tag {
        within("the tag", tag, MAX_TAG_CHARS)?;
    }
    if let Some(contact_type) = &filter.contact_type {
        within("the contact type", contact_type, MAX_NAME_CHARS)?;
    }
    if let Some(category) = &filter.category {
        within("the category", category, MAX_NAME_CHARS)?;
    }
    Ok(())
}

pub fn check_options(options: &ImportOptions) -> Result<(), String> {
    if options.tags.len() > MAX_TAGS {
        return Err(format!(
            "the import has {} tags; at most {MAX_TAGS}",
            options.tags.len()
        ));
    }
    for tag in &options.tags {
        within("a tag", tag, MAX_TAG_CHARS)?;
    }
    if let Some(contact_type) = &options.contact_type {
        within("the contact type", contact_type, MAX_NAME_CHARS)?;
    }
    if let Some(category) = &options.category {
        within("the category", category, MAX_NAME_CHARS)?;
    }
    if options.mappings.len() > MAX_MAPPINGS {
        return Err(format!(
            "the import maps {} columns; at most {MAX_MAPPINGS}",
            options.mappings.len()
        ));
    }
    if options.value_mappings.len() > MAX_VALUE_MAPPINGS {
        return Err(format!(
            "the import maps {} values; at most {MAX_VALUE_MAPPINGS}",
            options.value_mappings.len()
        ));
    }
    let mut value_mapping_bytes = 0;
    for mapping in &options.value_mappings {
        within(
            "the attribute of a mapped value",
            &mapping.attribute,
            MAX_NAME_CHARS,
        )?;
        within("a mapped value", &mapping.value, MAX_VALUE_CHARS)?;
        within("an allowed value", &mapping.allowed, MAX_VALUE_CHARS)?;
        value_mapping_bytes +=
            mapping.attribute.len() + mapping.value.len() + mapping.allowed.len();
    }
    if value_mapping_bytes > MAX_VALUE_MAPPING_BYTES {
        return Err(format!(
            "the import's mapped values hold {value_mapping_bytes} bytes of text; at most {MAX_VALUE_MAPPING_BYTES}"
        ));
    }
    if options.match_on.len() > MAX_MATCH_ON {
        return Err(format!(
            "the import matches on {} attributes; at most {MAX_MATCH_ON}",
            options.match_on.len()
        ));
    }
    Ok(())
}

/// Checks an attribute a client adds.
pub fn check_attribute(attribute: &AttributeDef) -> Result<(), String> {
    within("the label", &attribute.label, MAX_LABEL_CHARS)?;
    if let AttributeType::Enum { values } = &attribute.attribute_type {
        if values.len() > MAX_ENUM_VALUES {
            return Err(format!(
                "attribute \"{}\" has {} allowed values; at most {MAX_ENUM_VALUES}",
                attribute.key,
                values.len()
            ));
        }
        for value in values {
            within("an allowed value", value, MAX_ENUM_VALUE_CHARS)?;
        }
    }
    Ok(())
}

/// Checks an account's whole catalog, as it would be with a new attribute.
pub fn check_catalog(attributes: &[AttributeDef]) -> Result<(), String> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(format!(
            "the account would have {} attributes; at most {MAX_ATTRIBUTES}",
            attributes.len()
        ));
    }
    // Measured in the form the catalog travels in (each reply of `prepare` carries it).
    let wire: Vec<crate::AttributeDef> = crate::convert_all(attributes.to_vec());
    let bytes = serde_json::to_vec(&wire).map_or(usize::MAX, |encoded| encoded.len());
    if bytes > MAX_CATALOG_BYTES {
        return Err(format!(
            "the account's attributes would take {bytes} bytes; at most {MAX_CATALOG_BYTES} (fewer or shorter allowed values)"
        ));
    }
    Ok(())
}

/// Cuts a page so that its items take at most `MAX_PAGE_BYTES` as JSON, keeping the first item
/// whatever its size. Returns whether any item was cut: the page then continues after the last
/// item kept.
pub fn cut_page<T: serde::Serialize>(items: &mut Vec<T>) -> bool {
    let mut bytes = 0;
    let kept = items
        .iter()
        .position(|item| {
            bytes += serde_json::to_vec(item).map_or(usize::MAX / 2, |encoded| encoded.len() + 1);
            bytes > MAX_PAGE_BYTES
        })
        .map(|first_over| first_over.max(1));
    match kept {
        Some(kept) if kept < items.len() => {
            items.truncate(kept);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contact_core::mapping::standard_attributes;

    #[test]
    fn an_upload_is_refused_when_the_file_is_too_large_or_the_account_has_no_room() {
        let limits = UploadLimits {
            max_file_bytes: 1000,
            bytes_per_account: Some(3000),
            files_per_account: Some(2),
        };
        assert_eq!(limits.check_files(1), Ok(()));
        assert_eq!(
            limits.check_files(2).map_err(|refusal| refusal.to_string()),
            Err(
                "the account keeps 2 uploaded files, the most it may keep at once (2); uploaded \
                 files are removed a week after their upload"
                    .to_string()
            )
        );
        assert_eq!(UploadLimits::default().check_files(u64::MAX), Ok(()));
        assert_eq!(limits.check(Some(1000), 2000), Ok(()));
        assert_eq!(limits.check(None, 2999), Ok(()));
        assert_eq!(
            limits.check(Some(1001), 0),
            Err(UploadRefused::FileTooLarge {
                size: 1001,
                max: 1000
            })
        );
        let full = limits.check(Some(600), 2500).expect_err("no room");
        assert_eq!(
            full.to_string(),
            "the account's uploads hold 2.4 KiB of the 2.9 KiB it may keep, and 600 B more would \
             not fit; uploaded files are removed a week after their upload"
        );
        assert!(limits.check(None, 3000).is_err(), "full, whatever the size");
        let unbounded = UploadLimits {
            bytes_per_account: None,
            ..limits
        };
        assert_eq!(unbounded.check(Some(1000), u64::MAX), Ok(()));
        assert!(
            unbounded.check(Some(1001), 0).is_err(),
            "one file is still bounded"
        );
        assert_eq!(jetstream_max_bytes(None), -1);
        assert_eq!(jetstream_max_bytes(Some(8192)), 8192);
    }

    #[test]
    fn sizes_are_said_in_the_largest_binary_unit() {
        assert_eq!(spoken_bytes(0), "0 B");
        assert_eq!(spoken_bytes(1023), "1023 B");
        assert_eq!(spoken_bytes(1536), "1.5 KiB");
        assert_eq!(spoken_bytes(4 << 30), "4.0 GiB");
        assert_eq!(spoken_bytes(3 << 40), "3.0 TiB");
    }

    #[test]
    fn value_mappings_are_limited_in_number_length_and_bytes() {
        let mapping = |value: String| crate::ValueMapping {
            attribute: "segment".into(),
            value,
            allowed: "gold".into(),
        };
        let options = |value_mappings| ImportOptions {
            value_mappings,
            ..ImportOptions::default()
        };
        assert_eq!(check_options(&options(vec![mapping("VIP".into())])), Ok(()));
        let too_many = options(
            (0..=MAX_VALUE_MAPPINGS)
                .map(|n| mapping(n.to_string()))
                .collect(),
        );
        assert!(check_options(&too_many)
            .expect_err("too many")
            .contains("maps 501 values; at most 500"));
        let long = options(vec![mapping("ż".repeat(MAX_VALUE_CHARS + 1))]);
        assert!(check_options(&long)
            .expect_err("long")
            .contains("a mapped value is 201 characters"));
        // 400 values of 200 two-byte letters: each short enough, all together too much.
        let heavy = options(
            (0..400)
                .map(|n| mapping(format!("{n}{}", "ż".repeat(195))))
                .collect(),
        );
        assert!(check_options(&heavy)
            .expect_err("heavy")
            .contains("bytes of text; at most 65536"));
    }

    #[test]
    fn options_within_the_limits_pass_and_each_limit_is_named() {
        assert_eq!(check_options(&ImportOptions::default()), Ok(()));
        let too_many_tags = ImportOptions {
            tags: (0..51).map(|index| format!("t{index}")).collect(),
            ..ImportOptions::default()
        };
        assert!(check_options(&too_many_tags)
            .expect_err("51 tags")
            .contains("51 tags"));
        let long_tag = ImportOptions {
            tags: ["x".repeat(101)].into(),
            ..ImportOptions::default()
        };
        assert!(check_options(&long_tag)
            .expect_err("long")
            .contains("a tag is 101"));
        let long_type = ImportOptions {
            contact_type: Some("ż".repeat(101)),
            ..ImportOptions::default()
        };
        assert!(check_options(&long_type)
            .expect_err("long")
            .contains("the contact type is 101 characters"));
        let exactly = ImportOptions {
            category: Some("ż".repeat(100)),
            ..ImportOptions::default()
        };
        assert_eq!(check_options(&exactly), Ok(()));
    }

    #[test]
    fn a_file_digest_is_64_lower_case_hex_digits() {
        assert_eq!(check_sha256(&"0a".repeat(32)), Ok(()));
        assert!(check_sha256(&"0A".repeat(32)).is_err());
        assert!(check_sha256(&"0a".repeat(33)).is_err());
        assert!(check_sha256("../../etc").is_err());
    }

    #[test]
    fn export_filters_are_bounded_like_what_they_filter_on() {
        assert_eq!(check_contact_filter(&ContactFilter::default()), Ok(()));
        let long_tag = ContactFilter {
            tag: Some("t".repeat(MAX_TAG_CHARS + 1)),
            ..ContactFilter::default()
        };
        assert!(check_contact_filter(&long_tag)
            .expect_err("long")
            .contains("the tag is 101"));
        let long_category = ContactFilter {
            category: Some("c".repeat(MAX_NAME_CHARS + 1)),
            ..ContactFilter::default()
        };
        assert!(check_contact_filter(&long_category).is_err());
    }

    #[test]
    fn attributes_with_too_many_or_too_long_values_are_refused() {
        let mut attribute = standard_attributes().remove(0);
        assert_eq!(check_attribute(&attribute), Ok(()));
        attribute.attribute_type = AttributeType::Enum {
            values: (0..1001).map(|index| index.to_string()).collect(),
        };
        assert!(check_attribute(&attribute)
            .expect_err("many")
            .contains("1001 allowed values"));
        attribute.attribute_type = AttributeType::Enum {
            values: vec!["v".repeat(201)],
        };
        assert!(check_attribute(&attribute).is_err());
        attribute.attribute_type = AttributeType::Text;
        attribute.label = "l".repeat(201);
        assert!(check_attribute(&attribute)
            .expect_err("long")
            .contains("label"));
    }

    #[test]
    fn a_page_is_cut_at_its_byte_limit_and_keeps_at_least_one_item() {
        let small: Vec<String> = vec!["a".repeat(100); 10];
        let mut page = small.clone();
        assert!(!cut_page(&mut page));
        assert_eq!(page, small);

        // Each item is 102 bytes as JSON plus a separator.
        let mut page: Vec<String> = vec!["b".repeat(100); 10_000];
        assert!(cut_page(&mut page));
        assert_eq!(page.len(), MAX_PAGE_BYTES / 103);

        let mut page = vec!["c".repeat(MAX_PAGE_BYTES * 2), "d".into()];
        assert!(cut_page(&mut page));
        assert_eq!(page.len(), 1, "the first item stays whatever its size");
    }

    #[test]
    fn a_catalog_is_bounded_in_count_and_in_bytes() {
        let catalog = standard_attributes();
        assert_eq!(check_catalog(&catalog), Ok(()));
        let many: Vec<AttributeDef> = (0..=MAX_ATTRIBUTES)
            .map(|index| AttributeDef {
                key: format!("a{index}"),
                ..catalog[0].clone()
            })
            .collect();
        assert!(check_catalog(&many)
            .expect_err("many")
            .contains("201 attributes"));
        // Each within the per-attribute limits, together past the byte limit.
        let big_enum = |key: &str| AttributeDef {
            key: key.to_owned(),
            attribute_type: AttributeType::Enum {
                values: (0..MAX_ENUM_VALUES)
                    .map(|index| format!("{index:0>150}"))
                    .collect(),
            },
            ..catalog[0].clone()
        };
        assert_eq!(check_attribute(&big_enum("one")), Ok(()));
        let heavy = vec![big_enum("one"), big_enum("two")];
        assert!(check_catalog(&heavy).expect_err("heavy").contains("bytes"));
    }
}
